package screen

import (
	"slices"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/ssh-burn/chat/ui/screen/screentest"
)

func TestCellsOfTextTerminalsDisagreeOn(t *testing.T) {
	for _, c := range []struct {
		text  string
		cells int
		sure  bool
	}{
		{"hello", 5, true},
		{"── f1 help • ctrl+x…  ↓ 2 new", 29, true},
		{"\x1b[1mbold\x1b[0m", 4, true},
		{"世界", 4, true},
		{"👍", 2, true},
		{"👍🏽", 4, false},                  // tmux: two code points of two cells
		{"a👨‍👩‍👧", 7, false},              // three emoji, joined
		{"🇩🇪", 4, false},                  // two regional indicators
		{"e\u0301", 1, true},              // a combining accent takes no cell anywhere
		{"\x1b[7m👍🏽\x1b[0m 👍🏽", 9, false}, // escapes take none either
	} {
		cells, sure := Cells(c.text)
		if cells != c.cells || sure != c.sure {
			t.Errorf("Cells(%q) = %d, %v; want %d, %v", c.text, cells, sure, c.cells, c.sure)
		}
	}
	if !Fits("👍", 2) || Fits("👍🏽", 4) || !Fits("👍🏽", 5) || !Fits("0123456789", 10) {
		t.Error("Fits does not keep uncertain text off the last column")
	}
	if got := Cut("ab👍🏽👍🏽cd", 9); got != "ab👍🏽" {
		t.Errorf("Cut = %q", got)
	}
	if got := Cut("\x1b[1mplain\x1b[0m", 5); got != "\x1b[1mplain\x1b[0m" {
		t.Errorf("Cut changed a line that fits: %q", got)
	}
}

// screenOf is what a model's frame looks like on a terminal of width
// cells, as text.
func screenOf(frame []Line, width int) []string {
	rows := make([]string, len(frame))
	for i, l := range frame {
		rows[i] = strings.TrimRight(ansi.Strip(l.Render(width)), " ")
	}
	return rows
}

// sameText reports whether a terminal row shows what the model drew: the
// same text where the terminal counts as the server does; where it draws
// some characters wider, the same words in the same order (the spaces
// between them are what the wider characters take).
func sameText(got, want string, exact bool) bool {
	if exact {
		return got == want
	}
	return slices.Equal(strings.Fields(got), strings.Fields(want))
}

func wantScreen(t *testing.T, term *screentest.Terminal, want []string, exact bool, skip ...int) {
	t.Helper()
	rows := term.Rows()
	for i := range rows {
		if slices.Contains(skip, i) {
			continue
		}
		w := ""
		if i < len(want) {
			w = want[i]
		}
		if !sameText(rows[i], w, exact) {
			t.Fatalf("row %d shows %q, the model drew %q; screen:\n%s", i, rows[i], w, strings.Join(rows, "\n"))
		}
	}
}

// chatFrame is a screen like the chat's: a header with a countdown against
// the right edge, a message, a rule, the input with its counter, the
// footer. The input is laid out as the model does, to fit at its widest.
func chatFrame(width int, typed string, secs int) []Line {
	return []Line{
		{Text: "private room", Right: "0:" + string(rune('0'+secs%10)) + "0"},
		{Text: "12:01 you: 👍🏽 ok"},
		{Text: strings.Repeat("─", width)},
		{Text: "> " + typed, Right: "9/1000"},
		{Text: "f1 help • ctrl+x destroy"},
	}
}

// After every frame, what the terminal shows is what the model drew,
// whether the terminal draws 👍🏽 in two cells (as the server counts) or in
// four (as tmux does): no line runs onto the next, none leaves anything
// behind, and the footer under a growing input stays whole.
func TestTheScreenShowsTheModelWhateverTheEmojiWidth(t *testing.T) {
	for _, c := range []struct {
		name   string
		widths screentest.Widths
	}{{"clusters", screentest.Clusters}, {"code points", screentest.CodePoints}} {
		t.Run(c.name, func(t *testing.T) {
			const width, height = 30, 6
			term := screentest.New(width, height, c.widths)
			s := New(term, width, height)
			typed := ""
			check := func(frame []Line) {
				t.Helper()
				s.draw(frame, nil)
				settle(t, s)
				wantScreen(t, term, screenOf(frame, width), c.name == "clusters")
			}
			for i := range 40 {
				// Type, as the model lays it out: at its widest, off the
				// last column of the text's room.
				next := typed + []string{"👍🏽", "a", "👨‍👩‍👧", " ", "é"}[i%5]
				if Fits("> "+next, width-len("9/1000")) {
					typed = next
				} else {
					typed = "x" // sent; the input starts again
				}
				check(chatFrame(width, typed, i))
			}
			// Deleting leaves nothing behind either; a resize repaints.
			for len(typed) > 0 {
				_, size := lastCluster(typed)
				typed = typed[:len(typed)-size]
				check(chatFrame(width, typed, 0))
			}
			s.resize(width, height)
			check(chatFrame(width, "👍🏽👍🏽", 1))
		})
	}
}

func lastCluster(s string) (string, int) {
	var last string
	for len(s) > 0 {
		seq, _, n, _ := ansi.DecodeSequence(s, 0, nil)
		last, s = seq, s[n:]
	}
	return last, len(last)
}

// A line laid out for the server's count alone (as the input once was),
// on a terminal that draws it wider: the screen cuts it rather than let it
// wrap onto the footer, and the rows around it keep what the model drew.
func TestALineLaidOutTooWideNeverSpills(t *testing.T) {
	const width, height = 30, 6
	term := screentest.New(width, height, screentest.CodePoints)
	s := New(term, width, height)
	frame := chatFrame(width, "", 0)
	s.draw(frame, nil)
	settle(t, s)
	// 24 cells by the server's count, padded to the edge: 36 on tmux.
	frame[3] = Line{Text: "> " + strings.Repeat("👍🏽", 6) + strings.Repeat(" ", 2) + "6/1000"}
	s.draw(frame, nil)
	settle(t, s)
	want := screenOf(frame, width)
	wantScreen(t, term, want, false, 3)
	if got := term.Rows()[3]; !strings.HasPrefix(want[3], got) || got == "" {
		t.Fatalf("the line too wide shows %q, not the start of %q", got, want[3])
	}
}

// A terminal wider still than any plan (joiners drawn as cells of their
// own): the line may run onto the row below, which is drawn again after
// it, so nothing of it stays there.
func TestARowASpillMayHaveReachedIsDrawnAgain(t *testing.T) {
	const width, height = 20, 4
	term := screentest.New(width, height, screentest.VisibleJoiners)
	s := New(term, width, height)
	frame := []Line{{Text: "top"}, {Text: "👨‍👩‍👧👨‍👩‍👧"}, {Text: "below stays"}, {Text: "bottom"}}
	s.draw(frame, nil)
	settle(t, s)
	for i := range 5 {
		frame[1] = Line{Text: strings.Repeat("👨‍👩‍👧", i+1)}
		frame[0] = Line{Text: "top " + strings.Repeat("x", i)}
		s.draw(frame, nil)
		settle(t, s)
		wantScreen(t, term, screenOf(frame, width), true, 1)
	}
	if w := term.Output(); !strings.Contains(w[strings.LastIndex(w, "👨"):], "below stays") {
		t.Fatal("the row under the uncertain line was not drawn again after it")
	}
}

// A model that wants the terminal's own cursor gets it where it says,
// shown; hidden again while a frame is drawn, and when it asks no more.
func TestTheTerminalsCursorIsPlacedWhereTheModelSays(t *testing.T) {
	term := screentest.New(20, 4, screentest.Clusters)
	s := New(term, 20, 4)
	p := s.Model(&cursored{lines: lines{"header", "> hi", "footer"}, row: 1, col: 4, show: true})
	p.View()
	settle(t, s)
	if row, col, shown := term.Cursor(); row != 1 || col != 4 || !shown {
		t.Fatalf("cursor at %d,%d shown %v; want 1,4 shown", row, col, shown)
	}
	// Only the cursor moves: that alone is a frame.
	next, _ := p.Update(cursorTo{1, 3, true})
	next.View()
	settle(t, s)
	if row, col, shown := term.Cursor(); row != 1 || col != 3 || !shown {
		t.Fatalf("cursor at %d,%d shown %v; want 1,3 shown", row, col, shown)
	}
	next, _ = next.Update(cursorTo{0, 0, false})
	next.View()
	settle(t, s)
	if _, _, shown := term.Cursor(); shown {
		t.Fatal("the cursor stays shown after the model stopped asking for it")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

type cursorTo cursorAt

type cursored struct {
	lines
	row, col int
	show     bool
}

func (c *cursored) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if to, ok := msg.(cursorTo); ok {
		c.row, c.col, c.show = to.row, to.col, to.show
	}
	return c, nil
}

func (c *cursored) TerminalCursor() (int, int, bool) { return c.row, c.col, c.show }
