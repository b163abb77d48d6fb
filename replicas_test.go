package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssh-burn/chat/store/redistest"
)

// TestMain lets the test binary double as the server, so a test can run a
// replica as a real process: kill it with SIGKILL, or give it an
// environment of its own.
func TestMain(m *testing.M) {
	if os.Getenv("CHAT_TEST_BE_SERVER") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// replicaProcess is the server as a child process on a loopback port, with
// extra environment variables and flags.
func replicaProcess(t testing.TB, env []string, args ...string) *exec.Cmd {
	t.Helper()
	args = append([]string{"-listen", "127.0.0.1:0", "-host-key", filepath.Join(t.TempDir(), "id_ed25519")}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "CHAT_TEST_BE_SERVER=1"), env...)
	return cmd
}

// startReplicaProcess starts a replica process and returns its address.
func startReplicaProcess(t testing.TB, env []string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	line, cmd, _ := startReplicaListening(t, env, args...)
	return listeningAddr.FindStringSubmatch(line)[1], cmd
}

var listeningAddr = regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)

// startReplicaListening starts a replica process and returns its
// "listening" log line, which has every address it listens on, and
// everything it logs.
func startReplicaListening(t testing.TB, env []string, args ...string) (string, *exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := replicaProcess(t, env, args...)
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
	found := make(chan string, 1)
	all := newLockedBuffer()
	go func() {
		lines := bufio.NewScanner(logs)
		for lines.Scan() {
			fmt.Fprintln(all, lines.Text())
			if listeningAddr.MatchString(lines.Text()) {
				found <- lines.Text()
			}
		}
	}()
	select {
	case line := <-found:
		return line, cmd, all
	case <-time.After(30 * time.Second):
		t.Fatal("replica did not start listening")
		return "", nil, nil
	}
}

// A replica that dies without a word (SIGKILL: no shutdown, no goodbye to
// Redis) must not leave a ghost in the room: within the lease the partner
// sees its person leave, their seat kept for them; the room ID admits
// nobody in their place, and they come back through another replica with
// their own command.
func TestKilledReplicasPeopleComeBackElsewhere(t *testing.T) {
	redisServer := redistest.Start(t)
	const lease = 2 * time.Second
	flags := []string{"-redis", "redis://" + redisServer.Addr, "-seat-lease", lease.String()}
	survivorAddr, _ := startReplicaProcess(t, nil, flags...)
	doomedAddr, doomed := startReplicaProcess(t, nil, flags...)

	alice, _ := openChat(t, survivorAddr, "alice")
	id := alice.waitFor(t, roomIDOnScreen)
	bob, keys := openChat(t, doomedAddr, id)
	bob.waitFor(t, contains("you joined"))
	alice.waitFor(t, contains("joined"))
	if _, err := keys.Write([]byte("\x1bOP")); err != nil { // F1: the help has his own command
		t.Fatal(err)
	}
	user := bob.waitFor(t, rejoinOnScreen)

	if err := doomed.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	alice.waitFor(t, contains("left; their seat is kept for them"))
	took := time.Since(killed)
	t.Logf("the partner saw the killed replica's member leave after %v (lease %v)", took, lease)
	if limit := lease + lease/3 + 2*time.Second; took > limit {
		t.Errorf("the ghost lingered %v, want at most about the lease (%v)", took, limit)
	}
	carol, _ := openChat(t, survivorAddr, id)
	carol.waitFor(t, contains("This room is private to the two people who met in it."))
	back, _ := openChat(t, survivorAddr, user)
	back.waitFor(t, contains("you are back"))
	alice.waitFor(t, contains("is back"))
}

// A replica told to stop (SIGTERM) gives its seats up before it exits: the
// partner on another replica sees the person leave at once, not when a
// lease runs out (here a minute).
func TestStoppedReplicaReleasesItsSeatsAtOnce(t *testing.T) {
	redisServer := redistest.Start(t)
	flags := []string{"-redis", "redis://" + redisServer.Addr, "-seat-lease", "1m"}
	survivorAddr, _ := startReplicaProcess(t, nil, flags...)
	stoppingAddr, stopping := startReplicaProcess(t, nil, flags...)

	alice, _ := openChat(t, survivorAddr, "alice")
	id := alice.waitFor(t, roomIDOnScreen)
	bob, _ := openChat(t, stoppingAddr, id)
	bob.waitFor(t, contains("you joined"))
	alice.waitFor(t, contains("joined"))

	if err := stopping.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	bob.waitFor(t, contains("The server is shutting down"))
	alice.waitFor(t, contains("left; their seat is kept for them"))
	t.Logf("the partner saw the stopped replica's member leave after %v", time.Since(stopped).Round(time.Millisecond))
	if err := stopping.Wait(); err != nil {
		t.Errorf("the stopped replica exited with %v", err)
	}
	// The end screen's command brings Bob back through the other replica.
	back, _ := openChat(t, survivorAddr, bob.waitFor(t, rejoinOnScreen))
	back.waitFor(t, contains("you are back"))
	alice.waitFor(t, contains("is back"))
}

// rediss:// verifies Redis's certificate against the system's roots, which
// an operator with a private CA extends with SSL_CERT_FILE; a certificate
// nobody vouches for stops the server at start.
func TestReplicasOverTLSRedis(t *testing.T) {
	redisServer, caFile := redistest.StartTLS(t)
	url := "rediss://" + redisServer.Addr

	out, err := replicaProcess(t, []string{"SSL_CERT_FILE=" + os.DevNull}, "-redis", url).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate") {
		t.Fatalf("a replica that cannot verify Redis's certificate: err %v, output:\n%s", err, out)
	}

	trust := []string{"SSL_CERT_FILE=" + caFile}
	first, _ := startReplicaProcess(t, trust, "-redis", url)
	second, _ := startReplicaProcess(t, trust, "-redis", url)
	alice, aliceKeys := openChat(t, first, "alice")
	id := alice.waitFor(t, roomIDOnScreen)
	bob, _ := openChat(t, second, id)
	bob.waitFor(t, contains("you joined"))
	fmt.Fprint(aliceKeys, "over tls\r")
	bob.waitFor(t, contains("over tls"))
}

var shareCommand = regexp.MustCompile(`ssh -p \d+ ([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})@`)

var rejoinCommand = regexp.MustCompile(`ssh -p \d+ ([0-9a-z]{4}(?:-[0-9a-z]{4}){7})@`)

// rejoinOnScreen finds the username of a rejoin command.
func rejoinOnScreen(s string) string {
	if m := rejoinCommand.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// roomIDOnScreen finds the room ID in the share command.
func roomIDOnScreen(s string) string {
	if m := shareCommand.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}
