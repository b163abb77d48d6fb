package server_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/ssh-burn/chat/internal/waitfor"
)

// cursor is where tmux has the pane's cursor, and whether it shows.
func (tm *tmux) cursor(name string) (x, y int, shown bool) {
	tm.t.Helper()
	var flag int
	if _, err := fmt.Sscan(tm.run("display", "-p", "-t", name, "#{cursor_x} #{cursor_y} #{cursor_flag}"), &x, &y, &flag); err != nil {
		tm.t.Fatal(err)
	}
	return x, y, flag == 1
}

// waitForCursor waits until the pane's cursor shows at x, y.
func (tm *tmux) waitForCursor(name string, x, y int) {
	tm.t.Helper()
	if !waitfor.Within(waitLimit, func() bool {
		cx, cy, shown := tm.cursor(name)
		return shown && cx == x && cy == y
	}) {
		cx, cy, shown := tm.cursor(name)
		tm.t.Fatalf("%s: cursor at %d,%d shown %v, want %d,%d shown:\n%s", name, cx, cy, shown, x, y, tm.capture(name))
	}
}

// row is the pane's row y as tmux shows it, with its escapes (-e).
func (tm *tmux) row(name string, y int) string {
	tm.t.Helper()
	return tm.run("capture-pane", "-p", "-e", "-t", name, "-S", fmt.Sprint(y), "-E", fmt.Sprint(y))
}

// Issue 17, points 3 to 5, as a person meets them with OpenSSH in tmux: a
// VT100 shows where one types (the terminal's own cursor, in the input);
// skin-tone emoji, which tmux draws four cells wide, leave the footer
// whole; and a window shrunk while a draft is typed shows the draft's end,
// its counter and its cursor at once, before any key.
func TestRealOpenSSHEveryTerminalAndEmojiAndShrinking(t *testing.T) {
	ts := startServer(t, ttl)
	tm := newTmux(t)

	tm.ssh("bob", "bob", ts.port)
	id := shareCommand.FindStringSubmatch(tm.waitFor("bob", "Waiting for them to join"))[2]
	// Alice's terminal says it is a VT100.
	tm.run("set-option", "-g", "default-terminal", "vt100")
	aliceRaw := tm.ssh("alice", id, ts.port)
	tm.waitFor("alice", "you joined; anonymous-")
	tm.run("set-option", "-g", "default-terminal", "tmux-256color")
	tm.waitFor("bob", "joined")

	// The input is the last row but one of the 100×30 pane.
	const inputRow = 28
	if !strings.Contains(tm.capture("alice"), "> (type a message, enter to send)") {
		t.Errorf("the VT100's placeholder could pass for typed text:\n%s", tm.capture("alice"))
	}
	tm.waitForCursor("alice", 2, inputRow)
	tm.keys("alice", "-l", "hello vt100")
	tm.waitFor("alice", "> hello vt100")
	tm.waitForCursor("alice", 13, inputRow)
	tm.keys("alice", "Left", "Left", "Left")
	tm.waitForCursor("alice", 10, inputRow)
	if c := colour.FindString(aliceRaw()); c != "" {
		t.Errorf("a colour (%q) was sent to a VT100", c)
	}
	// Bold (the header) it has, and keeps.
	if raw := aliceRaw(); !strings.Contains(raw, "\x1b[1m") {
		t.Errorf("no bold for a VT100")
	}

	// Bob, in tmux, types skin tones: tmux draws each four cells wide,
	// the server counts two. The footer under them stays whole.
	for range 3 {
		tm.keys("bob", "-l", strings.Repeat("👍🏽", 10))
		pane := tm.waitFor("bob", "f1 help •")
		rows := strings.Split(strings.TrimRight(pane, "\n"), "\n")
		if footer := rows[len(rows)-1]; !strings.HasPrefix(footer, "f1 help • ") {
			t.Fatalf("the footer under skin tones reads %q:\n%s", footer, pane)
		}
		// The input takes several rows: the prompt (or the mark of rows
		// above) on its first, the counter on its last, the row above
		// the footer.
		input := strings.Split(strings.TrimRight(inputLine(pane), "\n"), "\n")
		if last := strings.TrimRight(rows[len(rows)-2], " "); input[0] == "" || input[len(input)-1] != rows[len(rows)-2] || !strings.HasSuffix(last, "/1000") {
			t.Fatalf("the input under skin tones reads %q:\n%s", input, pane)
		}
	}
	tm.keys("bob", "C-u")
	tm.waitFor("bob", "> type a message")

	// A draft, then the window shrinks: before any key, the draft whole
	// on the input's rows, wrapped anew, the counter on the last of them
	// (the row above the footer) and the cursor after the draft.
	draft := strings.Repeat("draft ", 12) + "end"
	tm.keys("bob", "-l", draft)
	tm.waitFor("bob", "75/1000")
	tm.run("resize-window", "-t", "bob", "-x", "50", "-y", "20")
	shown := func() bool {
		row := tm.row("bob", 18)
		plain := strings.TrimRight(ansi.Strip(row), " \n")
		words := strings.Fields(strings.TrimPrefix(inputLine(tm.capture("bob")), "> "))
		return strings.HasSuffix(plain, "75/1000") &&
			strings.Join(words, " ") == draft+" 75/1000" && strings.Contains(row, "\x1b[7m")
	}
	if !waitfor.Within(waitLimit, shown) {
		t.Fatalf("after the shrink the input's last row is %q:\n%s", tm.row("bob", 18), tm.capture("bob"))
	}
}

// colour is an SGR sequence that sets a foreground colour.
var colour = regexp.MustCompile(`\x1b\[(?:[0-9]+;)*(?:3[0-8]|9[0-7])(?:;[0-9]+)*m`)
