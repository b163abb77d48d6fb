package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// lockedBuffer collects output written from several goroutines and wakes
// waiters on every write.
type lockedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{changed: make(chan struct{}, 1)} }

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until match finds something in the buffer.
// waitLimit bounds every wait of these tests: generous, for a loaded
// machine under -race.
const waitLimit = 20 * time.Second

func (b *lockedBuffer) waitFor(t *testing.T, match func(string) string) string {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		if m := match(b.String()); m != "" {
			return m
		}
		select {
		case <-b.changed:
		case <-deadline:
			t.Fatalf("never appeared; output so far:\n%q", b.String())
		}
	}
}

func contains(s string) func(string) string {
	return func(out string) string {
		if strings.Contains(out, s) {
			return s
		}
		return ""
	}
}

// openChat connects like `ssh -t user@addr` and returns what the terminal
// receives and where keystrokes go.
func openChat(t *testing.T, addr, user string) (*lockedBuffer, io.Writer) {
	t.Helper()
	conn, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: user, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	session, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	screen := newLockedBuffer()
	session.Stdout, session.Stderr = screen, screen
	keys, err := session.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := session.RequestPty("xterm", 30, 100, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := session.Shell(); err != nil {
		t.Fatal(err)
	}
	return screen, keys
}

// TestRunServesAndShutsDownGracefully runs the real entry point: it listens,
// serves a chat, and on cancellation (as on SIGTERM) tells the open session
// why it ends before returning cleanly.
func TestRunServesAndShutsDownGracefully(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := newLockedBuffer()
	hostKey := filepath.Join(t.TempDir(), "keys", "id_ed25519")
	returned := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-listen", "127.0.0.1:0", "-host-key", hostKey}, func(string) string { return "" }, logs)
		fmt.Fprintf(logs, "run returned: %v\n", err)
		returned <- err
	}()
	listening := regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)
	addr := logs.waitFor(t, func(s string) string {
		if m := listening.FindStringSubmatch(s); m != nil {
			return m[1]
		}
		return ""
	})

	screen, _ := openChat(t, addr, "alice")
	screen.waitFor(t, contains("Waiting for them to join"))

	cancel()
	screen.waitFor(t, contains("The server is shutting down"))
	select {
	case err := <-returned:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("run did not return after shutdown")
	}
	for _, line := range []string{"msg=draining", "msg=stopped", "reason=shutdown"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no %q in the logs:\n%s", line, logs.String())
		}
	}
}
