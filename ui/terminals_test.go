package ui

import (
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/ui/screen"
	"github.com/ssh-burn/chat/ui/screen/screentest"
)

// onTerminal is a chat screen drawn by package screen on an emulated
// terminal, as a client sees it.
type onTerminal struct {
	t       *testing.T
	program tea.Model
	term    *screentest.Terminal
	screen  *screen.Screen
	exact   bool // the terminal counts widths as the server does
}

func newOnTerminal(t *testing.T, cfg Config, widths screentest.Widths) *onTerminal {
	t.Helper()
	rm := newRoom(t, true)
	cfg.Seat, cfg.JoinCommand, cfg.RejoinCommand = rm.a, joinCommand, rejoinCommand
	term := screentest.New(cfg.Width, cfg.Height, widths)
	s := screen.New(term, cfg.Width, cfg.Height)
	t.Cleanup(func() { _ = s.Close() })
	m := deliver(t, New(cfg)) // the partner is here
	o := &onTerminal{t: t, program: s.Model(m), term: term, screen: s}
	o.exact = widths("👍🏽") == screentest.Clusters("👍🏽") // it counts clusters, as the server does
	o.program.View()
	o.wantModel()
	return o
}

func (o *onTerminal) model() *Model { return screen.Inner(o.program).(*Model) }

// send hands msg to the program, which draws the state it leads to, and
// checks the terminal then shows what the model drew.
func (o *onTerminal) send(msg tea.Msg) {
	o.t.Helper()
	o.program, _ = o.program.Update(msg)
	o.program.View()
	o.wantModel()
}

// wantModel waits for the terminal to show the model's lines: the same
// text where the terminal counts widths as the server does, the same
// words in the same order where it draws some characters wider.
func (o *onTerminal) wantModel() {
	o.t.Helper()
	m := o.model()
	var want []string
	for _, l := range m.Lines() {
		want = append(want, strings.TrimRight(ansi.Strip(l.Render(m.width)), " "))
	}
	same := func() bool {
		rows := o.term.Rows()
		for i, row := range rows {
			w := ""
			if i < len(want) {
				w = want[i]
			}
			if o.exact && row != w || !o.exact && !slices.Equal(strings.Fields(row), strings.Fields(w)) {
				return false
			}
		}
		return true
	}
	if !waitfor.Within(waitfor.Timeout, same) {
		o.t.Fatalf("the terminal shows:\n%s\nthe model drew:\n%s", strings.Join(o.term.Rows(), "\n"), strings.Join(want, "\n"))
	}
}

// Skin tones, joined emoji and flags typed until the input scrolls, then
// deleted: on a terminal that draws them wider than the server counts
// (tmux), the footer stays whole, the counter stays in its place, and no
// frame leaves anything behind.
func TestTypingEmojiLeavesNoGarbageOnAnyTerminal(t *testing.T) {
	for _, c := range []struct {
		name   string
		widths screentest.Widths
	}{{"clusters", screentest.Clusters}, {"code points", screentest.CodePoints}} {
		t.Run(c.name, func(t *testing.T) {
			o := newOnTerminal(t, Config{Profile: termenv.ANSI256, Width: 40, Height: 10}, c.widths)
			for i := range 30 {
				o.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune([]string{"👍🏽", "👨‍👩‍👧", "a", "🇩🇪", " "}[i%5])})
			}
			// The input takes several rows, scrolled: its first starts
			// with the prompt or the mark of rows above, its last ends
			// with the counter.
			input := o.inputRows()
			if first := input[0]; !strings.HasPrefix(first, "> ") && !strings.HasPrefix(first, moreAbove) {
				t.Fatalf("input row %q lost its prompt", first)
			}
			if last := input[len(input)-1]; !strings.HasSuffix(last, "/1000") {
				t.Fatalf("input row %q lost its counter", last)
			}
			o.send(press(tea.KeyHome))
			for range 40 {
				o.send(press(tea.KeyDelete))
			}
			// Messages of them, wrapped, and a word of them too long for
			// a line.
			o.send(message(goldenPartner, strings.Repeat("👍🏽 ok ", 12), time.Now()))
			o.send(message(goldenPartner, strings.Repeat("👨‍👩‍👧", 30), time.Now()))
			o.term.Resize(50, 12)
			o.send(tea.WindowSizeMsg{Width: 50, Height: 12})
		})
	}
}

// Point 4 of issue 17: shrinking the window while a draft is typed draws
// the input whole at once: its counter, and the cursor after the text.
func TestShrinkingWhileTypingKeepsCounterAndCursor(t *testing.T) {
	o := newOnTerminal(t, Config{Profile: termenv.ANSI256, Width: 80, Height: 24}, screentest.Clusters)
	draft := strings.Repeat("draft ", 11) + "end" // 69 characters
	o.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(draft), Paste: true})
	o.term.Resize(50, 20)
	o.send(tea.WindowSizeMsg{Width: 50, Height: 20})
	// The draft now takes two rows: the prompt on the first, the counter
	// on the last, every word shown.
	input := o.inputRows()
	last := input[len(input)-1]
	if len(input) != 2 || !strings.HasPrefix(input[0], "> ") || !strings.HasSuffix(last, "69/1000") {
		t.Fatalf("after the shrink the input rows are %q", input)
	}
	if shown := strings.Fields(strings.TrimPrefix(strings.Join(input, " "), "> ")); strings.Join(shown, " ") != draft+" 69/1000" {
		t.Fatalf("after the shrink the input shows %q", shown)
	}
	// The cursor cell, after the last character typed.
	rows := o.term.Rows()
	col := len(strings.TrimRight(strings.TrimSuffix(last, "69/1000"), " "))
	if !o.term.Reverse(len(rows)-2, col) {
		t.Fatalf("no cursor at column %d of %q", col, last)
	}
}

// inputRows is what the terminal shows of the input: the rows above the
// footer that the model gives it.
func (o *onTerminal) inputRows() []string {
	rows := o.term.Rows()
	n := o.model().inputShown
	return rows[len(rows)-1-n : len(rows)-1]
}

// On a terminal that shows no drawn cursor (no reverse video, or a cursor
// it cannot hide), its own cursor marks the input: on the placeholder's
// first cell, after the text as it is typed, on the character it is moved
// to; hidden while the help covers the input.
func TestTheTerminalsOwnCursorMarksTheInput(t *testing.T) {
	o := newOnTerminal(t, Config{Profile: termenv.Ascii, TerminalCursor: true, Width: 80, Height: 24}, screentest.Clusters)
	wantCursor := func(col int, shown bool) {
		t.Helper()
		o.wantCursor(len(o.term.Rows())-2, col, shown)
	}
	wantCursor(2, true)
	if input := o.term.Rows()[22]; !strings.HasPrefix(input, "> (type a message") {
		t.Fatalf("the placeholder is not told from typed text: %q", input)
	}
	o.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("hi 世界"), Paste: true})
	wantCursor(9, true)
	o.send(press(tea.KeyLeft))
	o.send(press(tea.KeyLeft))
	wantCursor(5, true)
	if strings.Contains(o.term.Output(), "\x1b[7m") {
		t.Fatal("reverse video was sent to a terminal that shows its own cursor")
	}
	o.send(press(tea.KeyF1))
	wantCursor(0, false)
	o.send(press(tea.KeyEsc))
	wantCursor(5, true)
}

// Where the terminal draws reverse video, the cursor is a cell in it and
// the terminal's own stays hidden.
func TestTheDrawnCursorIsInReverseVideo(t *testing.T) {
	o := newOnTerminal(t, Config{Profile: termenv.ANSI, NoColor: true, Width: 80, Height: 24}, screentest.Clusters)
	o.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("hi"), Paste: true})
	if !o.term.Reverse(22, 4) || o.term.Reverse(22, 3) {
		t.Fatalf("no reverse-video cursor after the text: %q", o.term.Rows()[22])
	}
	if _, _, shown := o.term.Cursor(); shown {
		t.Fatal("the terminal's own cursor is shown beside the drawn one")
	}
}

// A draft of several rows: the terminal's own cursor stands on the row the
// cursor is on, at its column there, not on the input's first row.
func TestTheTerminalsOwnCursorFollowsTheInputsRows(t *testing.T) {
	o := newOnTerminal(t, Config{Profile: termenv.Ascii, TerminalCursor: true, Width: 80, Height: 24}, screentest.Clusters)
	wantCursor := func(row, col int) {
		t.Helper()
		o.wantCursor(row, col, true)
	}
	o.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(strings.Repeat("word ", 30) + "世界"), Paste: true})
	input := o.inputRows()
	if len(input) != 3 {
		t.Fatalf("a draft of 154 cells takes %d rows at 80 columns, want 3: %q", len(input), input)
	}
	last := len(o.term.Rows()) - 2
	first := last - len(input) + 1
	end := ansi.StringWidth(strings.TrimRight(strings.TrimSuffix(input[2], "152/1000"), " ")) // after 世界
	wantCursor(last, end)
	o.send(press(tea.KeyLeft))
	wantCursor(last, end-2) // on 界
	o.send(press(tea.KeyHome))
	wantCursor(first, 2)
	o.send(press(tea.KeyEnd))
	o.send(tea.KeyMsg{Type: tea.KeyEnter, Alt: true})
	wantCursor(last, 2) // a fourth row, the first scrolled up by none: room for five
	if got := o.inputRows(); len(got) != 4 {
		t.Fatalf("a line break added no row: %q", got)
	}
}

// wantCursor waits for the terminal's own cursor to show at row and col,
// or to be hidden.
func (o *onTerminal) wantCursor(row, col int, shown bool) {
	o.t.Helper()
	if !waitfor.Within(waitfor.Timeout, func() bool {
		r, c, s := o.term.Cursor()
		return s == shown && (!shown || r == row && c == col)
	}) {
		r, c, s := o.term.Cursor()
		o.t.Fatalf("cursor at row %d column %d, shown %v; want row %d column %d, shown %v\n%s",
			r, c, s, row, col, shown, strings.Join(o.term.Rows(), "\n"))
	}
}
