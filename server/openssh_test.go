package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// tmux drives real OpenSSH clients in panes of a private tmux server.
type tmux struct {
	t      *testing.T
	socket string
	config string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	for _, tool := range []string{"tmux", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			// Never skip: `make test` installs both.
			t.Fatalf("%s is required for this test (run `make test`, which installs it): %v", tool, err)
		}
	}
	dir := t.TempDir()
	tm := &tmux{t: t, socket: filepath.Join(dir, "tmux.sock"), config: filepath.Join(dir, "tmux.conf")}
	if err := os.WriteFile(tm.config, []byte("set -g history-limit 1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", tm.socket, "kill-server").Run() })
	return tm
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tm.socket, "-f", tm.config}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ssh opens a pane named name in which a shell runs OpenSSH as user against
// port, as a person would, and prints ssh's exit status when it ends. (A pane
// whose own process is ssh can be marked dead before tmux has drawn the last
// output, which would hide exactly the final words under test.)
func (tm *tmux) ssh(name, user string, port int) {
	tm.t.Helper()
	cmd := fmt.Sprintf("ssh -F /dev/null -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR %s@127.0.0.1; echo \"[ssh exited $?]\"; exec sleep 600", port, user)
	tm.run("new-session", "-d", "-s", name, "-x", "100", "-y", "30", "sh", "-c", cmd)
}

func (tm *tmux) capture(name string) string {
	tm.t.Helper()
	return tm.run("capture-pane", "-p", "-t", name)
}

// waitFor polls the pane (tmux has no change notification) until it shows
// every text, failing at the deadline.
func (tm *tmux) waitFor(name string, texts ...string) string {
	tm.t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitLimit)
	for {
		pane := tm.capture(name)
		found := true
		for _, text := range texts {
			found = found && strings.Contains(pane, text)
		}
		if found {
			return pane
		}
		select {
		case <-tick.C:
		case <-deadline:
			tm.t.Fatalf("pane %s never showed %q:\n%s", name, texts, pane)
		}
	}
}

func (tm *tmux) keys(name string, keys ...string) {
	tm.t.Helper()
	tm.run(append([]string{"send-keys", "-t", name}, keys...)...)
}

var exitLine = regexp.MustCompile(`\[ssh exited (\d+)\]`)

// exitStatus waits for the pane's ssh to exit and returns its status.
func (tm *tmux) exitStatus(name string) int {
	tm.t.Helper()
	code, _ := strconv.Atoi(exitLine.FindStringSubmatch(tm.waitFor(name, "[ssh exited "))[1])
	return code
}

func TestRealOpenSSHClients(t *testing.T) {
	ts := startServer(t, ttl)
	tm := newTmux(t)

	tm.ssh("alice", "alice", ts.port)
	pane := tm.waitFor("alice", "Waiting for them to join", "self-destructs in")
	match := shareCommand.FindStringSubmatch(pane)
	if match == nil {
		t.Fatalf("no share command on the creator's screen:\n%s", pane)
	}
	id := match[2]

	tm.ssh("bob", id, ts.port)
	tm.waitFor("bob", "you joined; anonymous-")
	tm.waitFor("alice", "joined")

	tm.keys("alice", "-l", "hello from openssh")
	tm.keys("alice", "Enter")
	tm.waitFor("bob", "hello from openssh")

	tm.keys("bob", "-l", "hi back")
	tm.keys("bob", "Enter")
	tm.waitFor("alice", "hi back")

	// A third OpenSSH client is refused and ssh exits non-zero.
	tm.ssh("carol", id, ts.port)
	tm.waitFor("carol", "This room is full")
	if code := tm.exitStatus("carol"); code == 0 {
		t.Errorf("carol's ssh exited 0, want non-zero")
	}

	// Destroying ends both, and the reason stays readable after ssh exits.
	tm.keys("alice", "C-x")
	tm.waitFor("alice", "Destroy this room")
	tm.keys("alice", "y")
	tm.waitFor("alice", "Room destroyed by you.")
	tm.waitFor("bob", "Room destroyed by your partner")
	for _, name := range []string{"alice", "bob"} {
		if code := tm.exitStatus(name); code != 0 {
			t.Errorf("%s's ssh exited %d", name, code)
		}
	}
}

// sftp and scp (which speaks sftp) are told what this server is, instead
// of failing without a word.
func TestRealSFTPAndSCPAreToldWhatThisServerIs(t *testing.T) {
	ts := startServer(t, ttl)
	opts := []string{"-F", "/dev/null", "-P", strconv.Itoa(ts.port), "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"}
	for _, cmd := range [][]string{
		append(append([]string{"sftp"}, opts...), "127.0.0.1"),
		append(append([]string{"scp"}, opts...), "127.0.0.1:/etc/passwd", t.TempDir()),
	} {
		ctx, cancel := context.WithTimeout(t.Context(), waitLimit)
		out, err := exec.CommandContext(ctx, cmd[0], cmd[1:]...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "This server runs only the chat, not commands. Connect with: ssh -t -p") {
			t.Errorf("%s: err %v, output:\n%s", cmd[0], err, out)
		}
	}
}
