package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/ui"
)

// sshDumb opens a pane named name running OpenSSH with a terminal whose
// TERM is dumb, as tm.ssh does otherwise, and returns the reader of its
// raw output.
func (tm *tmux) sshDumb(name, user string, port int) (raw func() string) {
	tm.t.Helper()
	gate := "go-" + name
	cmd := fmt.Sprintf("tmux -S '%s' wait-for %s; TERM=dumb ssh -t -F /dev/null -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR %s@127.0.0.1; echo \"[ssh exited $?]\"; exec sleep 600",
		tm.socket, gate, port, user)
	tm.run("new-session", "-d", "-s", name, "-x", "100", "-y", "30", "sh", "-c", cmd)
	file := filepath.Join(tm.t.TempDir(), name+".raw")
	tm.run("pipe-pane", "-o", "-t", name, "cat >> "+file)
	tm.run("wait-for", "-S", gate)
	return func() string {
		out, _ := os.ReadFile(file)
		return string(out)
	}
}

// destroyInLines types /destroy in the pane and y once the question is
// out, again after a pause if the yes came too soon to count.
func (tm *tmux) destroyInLines(name string) {
	tm.t.Helper()
	tm.keys(name, "-l", "/destroy")
	tm.keys(name, "Enter")
	tm.waitFor(name, "Destroy this room")
	for range 10 {
		tm.keys(name, "y", "Enter")
		if waitfor.Within(time.Second, func() bool { return strings.Contains(tm.capture(name), "Destroying the room") }) {
			return
		}
	}
	tm.t.Fatalf("%s: no yes to destroy the room counted", name)
}

// The plain line mode as people get it: OpenSSH's ssh -T, whose own
// terminal shows and edits each line, and ssh -t with TERM=dumb, whose
// keys the server echoes; both talk with each other and with the full
// screen, and nothing either receives holds an escape.
func TestRealOpenSSHPlainLineMode(t *testing.T) {
	ts := startServer(t, ttl)
	tm := newTmux(t)

	aliceRaw := tm.ssh("alice", "alice", ts.port, "-T")
	pane := tm.waitFor("alice", "Private room, in line mode.", "The room self-destructs in ", "share this command with ONE person:")
	match := shareCommand.FindStringSubmatch(pane)
	if match == nil {
		t.Fatalf("no share command on the creator's screen:\n%s", pane)
	}
	id := match[2]

	bobRaw := tm.sshDumb("bob", id, ts.port)
	tm.waitFor("bob", "you joined; anonymous-")
	tm.waitFor("alice", " joined. The room is now sealed to you two")

	tm.keys("alice", "-l", "hello from ssh -T")
	tm.keys("alice", "Enter")
	tm.waitFor("bob", ": hello from ssh -T")
	// The line shows once on alice's side: her terminal echoed it.
	if pane := tm.capture("alice"); strings.Count(pane, "hello from ssh -T") != 1 {
		t.Errorf("alice's line shows other than once:\n%s", pane)
	}

	tm.keys("bob", "-l", "helo")
	tm.keys("bob", "BSpace")
	tm.keys("bob", "-l", "lo from a dumb terminal")
	tm.keys("bob", "Enter")
	tm.waitFor("alice", ": hello from a dumb terminal")
	if pane := tm.capture("bob"); !strings.Contains(pane, "hello from a dumb terminal") {
		t.Errorf("bob's typing was not echoed as edited:\n%s", pane)
	}

	tm.destroyInLines("alice")
	tm.waitFor("alice", "Room destroyed by you. Every message in it is gone.")
	tm.waitFor("bob", "Room destroyed by your partner (anonymous-")
	for name, want := range map[string]int{"alice": ui.ExitDestroyedBySelf, "bob": ui.ExitDestroyedByOther} {
		if code := tm.exitStatus(name); code != want {
			t.Errorf("%s's ssh exited %d, want %d", name, code, want)
		}
	}
	// What people see, for the record.
	t.Logf("alice (ssh -T):\n%s", tm.capture("alice"))
	t.Logf("bob (TERM=dumb ssh -t):\n%s", tm.capture("bob"))
	for name, raw := range map[string]func() string{"alice": aliceRaw, "bob": bobRaw} {
		if out := raw(); strings.Contains(out, "\x1b") {
			t.Errorf("%s received an escape:\n%q", name, out)
		}
	}
}
