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

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/store/redistest"
	"github.com/ssh-burn/chat/ui"
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
	// A terminal type with colours, as people's terminals have, so the
	// server draws in colour.
	if err := os.WriteFile(tm.config, []byte("set -g history-limit 1000\nset -g default-terminal tmux-256color\n"), 0o600); err != nil {
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
// output, which would hide exactly the final words under test.) It returns
// a function that reads everything the pane's program wrote so far, raw, as
// tmux received it: ssh starts only once that recording (tmux pipe-pane)
// is in place, so the first frame is in it too.
func (tm *tmux) ssh(name, user string, port int, options ...string) (raw func() string) {
	tm.t.Helper()
	gate := "go-" + name
	cmd := fmt.Sprintf("tmux -S '%s' wait-for %s; ssh -F /dev/null -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR %s %s@127.0.0.1; echo \"[ssh exited $?]\"; exec sleep 600",
		tm.socket, gate, port, strings.Join(options, " "), user)
	tm.run("new-session", "-d", "-s", name, "-x", "100", "-y", "30", "sh", "-c", cmd)
	file := filepath.Join(tm.t.TempDir(), name+".raw")
	tm.run("pipe-pane", "-o", "-t", name, "cat >> "+file)
	tm.run("wait-for", "-S", gate)
	return func() string {
		out, _ := os.ReadFile(file)
		return string(out)
	}
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

// destroyRoom presses ctrl+x in the pane and y once the question shows,
// again after a pause if it did not count (a yes sooner than a quiet
// moment after the question is ignored).
func (tm *tmux) destroyRoom(name string) {
	tm.t.Helper()
	tm.keys(name, "C-x")
	tm.waitFor(name, "Destroy this room")
	for range 10 {
		tm.keys(name, "y")
		if waitfor.Within(time.Second, func() bool {
			pane := tm.capture(name)
			return strings.Contains(pane, "Destroying the room") || strings.Contains(pane, "Room destroyed")
		}) {
			return
		}
	}
	tm.t.Fatalf("%s: no yes to destroy the room counted", name)
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
	tm.waitFor("carol", "This room is private to the two people who met in it.")
	if code := tm.exitStatus("carol"); code == 0 {
		t.Errorf("carol's ssh exited 0, want non-zero")
	}

	// Destroying ends both, and the reason stays readable after ssh exits.
	tm.destroyRoom("alice")
	tm.waitFor("alice", "Room destroyed by you.")
	tm.waitFor("bob", "Room destroyed by your partner")
	for name, want := range map[string]int{"alice": ui.ExitDestroyedBySelf, "bob": ui.ExitDestroyedByOther} {
		if code := tm.exitStatus(name); code != want {
			t.Errorf("%s's ssh exited %d, want %d", name, code, want)
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

var rejoinInHelp = regexp.MustCompile(`ssh -p \d+ ([0-9a-z]{4}(?:-[0-9a-z]{4}){7})@127\.0\.0\.1`)

// What a person does with OpenSSH in a terminal: one on a light terminal
// (COLORFGBG, sent with SetEnv) and one on a dark one see the partner
// typing, hear one bell per message of the partner's (in the raw output,
// as tmux receives it), resize mid-chat, read their own way back in the
// help, lose their connection, come back as themselves with the
// conversation, while a stranger with the room ID gets nothing.
func TestRealOpenSSHTypingBellResizeAndRejoin(t *testing.T) {
	ts := startServer(t, ttl)
	tm := newTmux(t)
	// Alice's connection goes through a proxy that can be cut.
	proxy := redistest.StartProxy(t, ts.addr)
	proxyPort, err := strconv.Atoi(proxy.Addr[strings.LastIndex(proxy.Addr, ":")+1:])
	if err != nil {
		t.Fatal(err)
	}

	aliceRaw := tm.ssh("alice", "alice", proxyPort, "-o", "SetEnv=COLORFGBG=0\\;15")
	id := shareCommand.FindStringSubmatch(tm.waitFor("alice", "Waiting for them to join"))[2]
	bobRaw := tm.ssh("bob", id, ts.port)
	tm.waitFor("bob", "you joined; anonymous-", "sealed to you two")
	tm.waitFor("alice", "joined")
	// Light and dark: the accent colour each background gets (ANSI 256).
	if raw := aliceRaw(); !strings.Contains(raw, "38;5;24m") || strings.Contains(raw, "38;5;81m") {
		t.Errorf("the light terminal did not get the light colours")
	}
	if raw := bobRaw(); !strings.Contains(raw, "38;5;81m") || strings.Contains(raw, "38;5;24m") {
		t.Errorf("the dark terminal did not get the dark colours")
	}

	// Typing shows on the other side, and goes when the message is sent.
	tm.keys("alice", "-l", "hello from")
	tm.waitFor("bob", "is typing…")
	if n := strings.Count(bobRaw(), "\a"); n != 0 {
		t.Errorf("%d bells before any message", n)
	}
	tm.keys("alice", "-l", " openssh")
	tm.keys("alice", "Enter")
	tm.waitFor("bob", "hello from openssh")
	waitForCount(t, func() int { return strings.Count(tm.capture("bob"), "is typing") }, 0)
	waitForCount(t, func() int { return strings.Count(bobRaw(), "\a") }, 1)

	// Bob's own message rings nobody's bell but Alice's.
	tm.keys("bob", "-l", "hi back")
	tm.keys("bob", "Enter")
	tm.waitFor("alice", "hi back")
	waitForCount(t, func() int { return strings.Count(aliceRaw(), "\a") }, 1)
	if n := strings.Count(bobRaw(), "\a"); n != 1 {
		t.Errorf("bob's terminal rang %d times, want once", n)
	}

	// Resize mid-chat: the conversation is laid out again, and a window
	// too small says so until it grows.
	tm.run("resize-window", "-t", "bob", "-x", "60", "-y", "20")
	tm.waitFor("bob", "hello from openssh", "> ", "self-destructs in")
	tm.run("resize-window", "-t", "bob", "-x", "30", "-y", "8")
	tm.waitFor("bob", "Make the window larger")
	tm.run("resize-window", "-t", "bob", "-x", "100", "-y", "30")
	tm.waitFor("bob", "hello from openssh", "you: hi back")

	// Alice reads her own way back in the help, and closes it.
	tm.keys("alice", "F1")
	match := rejoinInHelp.FindStringSubmatch(tm.waitFor("alice", "Your own way back into this room"))
	if match == nil {
		t.Fatalf("no rejoin command in the help:\n%s", tm.capture("alice"))
	}
	tm.keys("alice", "Escape")

	// Her connection drops: the network goes, and she gives up on it.
	proxy.Cut()
	tm.keys("alice", "Enter")
	tm.keys("alice", "-l", "~.")
	tm.exitStatus("alice")

	// A stranger who learned the room ID gets nothing.
	tm.ssh("carol", id, ts.port)
	tm.waitFor("carol", "This room is private to the two people who met in it.")
	if code := tm.exitStatus("carol"); code == 0 {
		t.Errorf("carol's ssh exited 0")
	}

	// Alice comes back with her command: the same name, the conversation.
	tm.ssh("alice-again", match[1], ts.port)
	tm.waitFor("alice-again", "you are back", "hello from openssh", "hi back")
	tm.waitFor("bob", "is back")
	tm.keys("alice-again", "-l", "back again")
	tm.keys("alice-again", "Enter")
	tm.waitFor("bob", "back again")

	tm.destroyRoom("bob")
	tm.waitFor("alice-again", "Room destroyed by your partner")
	tm.waitFor("bob", "Room destroyed by you.")
}

// waitForCount waits until count says want, failing if it never does.
func waitForCount(t *testing.T, count func() int, want int) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitLimit)
	for {
		n := count()
		if n == want {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("counted %d, want %d", n, want)
		}
	}
}
