package server_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ssh-burn/chat/server"
)

func TestHostKeyIsCreatedPrivateAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".ssh", "id_ed25519")
	first, err := server.LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := first.PublicKey().Type(); got != "ssh-ed25519" {
		t.Errorf("key type %s, want ssh-ed25519", got)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700 | os.ModeDir} {
		if info, err := os.Stat(p); err != nil || info.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, info.Mode(), err, want)
		}
	}
	again, err := server.LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.PublicKey().Marshal(), again.PublicKey().Marshal()) {
		t.Fatal("a restart changed the host key: every client would warn")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".host-key-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

// Replicas starting together on a shared volume must end up with one key.
func TestHostKeyRaceYieldsOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id_ed25519")
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			signer, err := server.LoadOrCreateHostKey(path)
			if err != nil {
				t.Error(err)
				return
			}
			keys[i] = signer.PublicKey().Marshal()
		})
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("replicas started together got different host keys")
		}
	}
}

func TestHostKeyThatIsNotAKeyIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := server.LoadOrCreateHostKey(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
}
