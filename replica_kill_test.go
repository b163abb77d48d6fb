package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/ssh-burn/chat/store/redistest"
)

// TestMain lets the test binary double as the server, so a test can run a
// replica as a real process and kill it with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("CHAT_TEST_BE_SERVER") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startReplicaProcess runs the server as a child process on a loopback port
// and returns its address.
func startReplicaProcess(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	args = append([]string{"-listen", "127.0.0.1:0", "-host-key", filepath.Join(t.TempDir(), "id_ed25519")}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CHAT_TEST_BE_SERVER=1")
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	listening := regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)
	found := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(logs)
		for lines.Scan() {
			if m := listening.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case addr := <-found:
		return addr, cmd
	case <-time.After(30 * time.Second):
		t.Fatal("replica did not start listening")
		return "", nil
	}
}

// A replica that dies without a word (SIGKILL: no shutdown, no goodbye to
// Redis) must not leave a ghost in the room: within the lease its seat is
// free, the partner sees it leave, and someone else can sit down.
func TestKilledReplicaFreesItsSeats(t *testing.T) {
	redisServer := redistest.Start(t)
	const lease = 2 * time.Second
	flags := []string{"-redis", "redis://" + redisServer.Addr, "-seat-lease", lease.String()}
	survivorAddr, _ := startReplicaProcess(t, flags...)
	doomedAddr, doomed := startReplicaProcess(t, flags...)

	alice, _ := openChat(t, survivorAddr, "alice")
	share := regexp.MustCompile(`ssh -p \d+ ([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})@`)
	id := alice.waitFor(t, func(s string) string {
		if m := share.FindStringSubmatch(s); m != nil {
			return m[1]
		}
		return ""
	})
	bob, _ := openChat(t, doomedAddr, id)
	bob.waitFor(t, contains("you joined"))
	alice.waitFor(t, contains("joined"))

	if err := doomed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	alice.waitFor(t, contains("left; the seat is free again"))
	took := time.Since(killed)
	t.Logf("the partner saw the killed replica's member leave after %v (lease %v)", took, lease)
	if limit := lease + lease/3 + 2*time.Second; took > limit {
		t.Errorf("the ghost lingered %v, want at most about the lease (%v)", took, limit)
	}
	carol, _ := openChat(t, survivorAddr, id)
	carol.waitFor(t, contains(fmt.Sprintf("you joined; %s", "anonymous-")))
}
