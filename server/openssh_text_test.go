package server_test

import (
	"strings"
	"testing"

	"github.com/ssh-burn/chat/internal/waitfor"
)

// What a person writes arrives as written, with real OpenSSH in tmux: two
// thumbs with a skin tone count as two characters, a family and a coder
// joined with ZWJs reach the partner's terminal joined, a block of three
// lines pasted (bracketed, as tmux pastes into a program that asks for it)
// arrives as three lines under the text's start, the second indented, and
// alt+enter and ctrl+j start a new line while typing.
func TestRealOpenSSHEmojiAndLinesArriveAsWritten(t *testing.T) {
	const (
		thumbs = "👍🏽👍🏽"
		family = "👨\u200d👩\u200d👧"
		coder  = "👨\u200d💻"
	)
	ts := startServer(t, ttl)
	tm := newTmux(t)
	aliceRaw := tm.ssh("alice", "alice", ts.port)
	id := shareCommand.FindStringSubmatch(tm.waitFor("alice", "Waiting for them to join"))[2]
	bobRaw := tm.ssh("bob", id, ts.port)
	tm.waitFor("bob", "you joined; anonymous-")
	tm.waitFor("alice", "joined")
	// What the server sent, as tmux received it: tmux may draw an emoji
	// wider than the server counts it, and lay it out otherwise.
	sent := func(name string, raw func() string, text string) {
		t.Helper()
		waitfor.Condition(t, waitLimit, name+"'s terminal to receive "+text, func() bool {
			return strings.Contains(raw(), text)
		})
	}

	tm.keys("alice", "-l", thumbs)
	sent("alice", aliceRaw, "2/1000")
	tm.keys("alice", "Enter")
	sent("bob", bobRaw, thumbs)

	tm.keys("alice", "-l", "family "+family+" coder "+coder)
	sent("alice", aliceRaw, "16/1000")
	tm.keys("alice", "Enter")
	sent("bob", bobRaw, family)
	sent("bob", bobRaw, coder)

	tm.run("set-buffer", "-b", "three", "first line\n    second, indented\nthird line")
	tm.run("paste-buffer", "-p", "-b", "three", "-t", "alice")
	tm.waitFor("alice", "> first line", "      second, indented", "  third line")
	tm.keys("alice", "Enter")
	hangs(t, tm.waitFor("bob", "third line"), "first line", "    second, indented", "third line")

	tm.keys("bob", "-l", "typed")
	tm.keys("bob", "M-Enter")
	tm.keys("bob", "-l", "on three")
	tm.keys("bob", "C-j")
	tm.keys("bob", "-l", "lines")
	tm.waitFor("bob", "> typed", "  on three", "  lines")
	tm.keys("bob", "Enter")
	hangs(t, tm.waitFor("alice", ": typed"), "typed", "on three", "lines")

	tm.destroyRoom("bob")
	tm.waitFor("alice", "Room destroyed by your partner")
}

// hangs checks that the pane shows lines one under the other, each
// starting where the first does (plus its own indentation).
func hangs(t *testing.T, pane string, lines ...string) {
	t.Helper()
	rows := strings.Split(pane, "\n")
	for i, row := range rows {
		column := strings.Index(row, lines[0])
		if column < 0 || i+len(lines) > len(rows) {
			continue
		}
		for j, line := range lines[1:] {
			if !strings.HasPrefix(rows[i+1+j][min(column, len(rows[i+1+j])):], line) {
				t.Fatalf("%q is not under %q at column %d:\n%s", line, lines[0], column, pane)
			}
		}
		return
	}
	t.Fatalf("the pane does not show %q:\n%s", lines[0], pane)
}
