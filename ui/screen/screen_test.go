package screen

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/hinshun/vt10x"
)

// terminal is what a client sees: a terminal emulator fed every write.
type terminal struct {
	mu     sync.Mutex
	vt     vt10x.Terminal
	writes []string
}

func newTerminal(cols, rows int) *terminal {
	return &terminal{vt: vt10x.New(vt10x.WithSize(cols, rows))}
}

func (t *terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writes = append(t.writes, string(p))
	return t.vt.Write(p)
}

// rows is the terminal's text, row by row, without trailing blanks.
func (t *terminal) rows() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	rows := strings.Split(t.vt.String(), "\n")
	for i := range rows {
		rows[i] = strings.TrimRight(rows[i], " ")
	}
	return rows
}

func (t *terminal) lastWrite() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.writes[len(t.writes)-1]
}

func (t *terminal) writeCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.writes)
}

// settle waits until the screen's writer has nothing left to write.
func settle(t testing.TB, s *Screen) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.writing {
		s.idle.Wait()
	}
}

func wantRows(t *testing.T, term *terminal, want ...string) {
	t.Helper()
	rows := term.rows()
	for i, w := range want {
		if rows[i] != w {
			t.Fatalf("row %d is %q, want %q; screen:\n%s", i, rows[i], w, strings.Join(rows, "\n"))
		}
	}
	for i := len(want); i < len(rows); i++ {
		if rows[i] != "" {
			t.Fatalf("row %d is %q, want it blank", i, rows[i])
		}
	}
}

func TestFirstFrameSetsUpTheTerminalAndCloseRestoresIt(t *testing.T) {
	term := newTerminal(20, 5)
	s := New(term, 20, 5)
	s.draw(frame("hello", "world"), nil)
	settle(t, s)
	wantRows(t, term, "hello", "world")
	if term.vt.Mode()&vt10x.ModeAltScreen == 0 || term.vt.CursorVisible() {
		t.Fatal("the first frame did not switch to the alternate screen and hide the cursor")
	}
	if !strings.Contains(term.lastWrite(), "\x1b[?2004h") {
		t.Fatal("bracketed paste is not on")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if term.vt.Mode()&vt10x.ModeAltScreen != 0 || !term.vt.CursorVisible() || !strings.Contains(term.lastWrite(), "\x1b[?2004l") {
		t.Fatalf("close left the terminal as the program had it: %q", term.lastWrite())
	}
	writes := term.writeCount()
	s.draw(frame("late"), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if term.writeCount() != writes {
		t.Fatal("something was written after Close")
	}
}

func TestOnlyChangedLinesAreWritten(t *testing.T) {
	term := newTerminal(20, 4)
	s := New(term, 20, 4)
	s.draw(frame("9:59 header", "first line", "second line"), nil)
	settle(t, s)
	s.draw(frame("9:58 header", "first line", "second line"), nil)
	settle(t, s)
	wantRows(t, term, "9:58 header", "first line", "second line")
	if w := term.lastWrite(); strings.Contains(w, "line") {
		t.Fatalf("a one-line change rewrote the others: %q", w)
	}
	// A shorter line leaves nothing of the longer one behind; a shorter
	// frame leaves no rows of the taller one.
	s.draw(frame("9:57", "first"), nil)
	settle(t, s)
	wantRows(t, term, "9:57", "first")
	writes := term.writeCount()
	s.draw(frame("9:57", "first"), nil)
	settle(t, s)
	if term.writeCount() != writes {
		t.Fatal("an unchanged frame was written")
	}
}

func TestResizeRedrawsWholeAndLinesNeverWrap(t *testing.T) {
	term := newTerminal(10, 3)
	s := New(term, 10, 3)
	p := s.Model(lines{"top", "middle", "bottom"})
	p.View()
	settle(t, s)
	// A resize, even to the same size (the terminal may have been made
	// smaller and larger again in between), draws everything again.
	next, _ := p.Update(tea.WindowSizeMsg{Width: 10, Height: 3})
	next.View()
	settle(t, s)
	wantRows(t, term, "top", "middle", "bottom")
	if w := term.lastWrite(); !strings.Contains(w, "\x1b[2J") || !strings.Contains(w, "middle") {
		t.Fatalf("a resize to the same size was not drawn whole: %q", w)
	}
	// Taller than the terminal: the bottom is kept. Wider: cut, never
	// wrapped onto the next row (wide characters count twice).
	next, _ = next.Update(tea.WindowSizeMsg{Width: 6, Height: 2})
	s.Model(lines{"gone", "0123456789", "日本語です"}).View()
	settle(t, s)
	rows := term.rows()
	if rows[0] != "012345" || rows[1] != "日本語" {
		t.Fatalf("screen after a resize:\n%s", strings.Join(rows, "\n"))
	}
	if _, ok := Inner(next).(lines); !ok {
		t.Fatal("Inner does not return the wrapped model")
	}
}

// A part against the right edge stays there, and is redrawn with its line.
func TestRightPartsSitAgainstTheRightEdge(t *testing.T) {
	term := newTerminal(20, 2)
	s := New(term, 20, 2)
	s.draw([]Line{{Text: "room", Right: "9:59"}, {Text: "text"}}, nil)
	settle(t, s)
	wantRows(t, term, "room            9:59", "text")
	s.draw([]Line{{Text: "room", Right: "10:00"}, {Text: "text"}}, nil)
	settle(t, s)
	wantRows(t, term, "room           10:00", "text")
	if got := (Line{Text: "room", Right: "10:00"}).Render(20); got != "room           10:00" {
		t.Fatalf("Render = %q", got)
	}
}

// A part against the right edge never runs past it, even when it is wider
// than the screen: it would wrap onto the next row.
func TestRightPartsNeverWrap(t *testing.T) {
	term := newTerminal(10, 3)
	s := New(term, 10, 3)
	s.draw([]Line{{Text: "row one"}, {Text: "row two", Right: "much too wide"}, {Text: "row three"}}, nil)
	settle(t, s)
	wantRows(t, term, "row one", "much too w", "row three")
}

// A frame that cannot go out (a client that reads nothing) does not hold
// Close for long, and a writer that panics ends only its screen.
func TestCloseIsBoundedAndSurvivesPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &gate{Writer: newTerminal(20, 3), open: make(chan struct{}), entered: make(chan struct{}, 1)}
		s := New(out, 20, 3)
		s.draw(frame("stuck"), nil)
		<-out.entered
		if err := s.Close(); !errors.Is(err, ErrStuck) {
			t.Fatalf("Close behind a stuck write: %v, want ErrStuck", err)
		}
		close(out.open) // what closing the channel would do
	})
	s := New(panicking{}, 20, 3)
	s.draw(frame("boom"), nil)
	settle(t, s)
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "panicked: a bug") || !strings.Contains(err.Error(), "panicking.Write") {
		t.Fatalf("Close after a panic: %v", err)
	}
}

type panicking struct{}

func (panicking) Write([]byte) (int, error) { panic("a bug") }

// While a frame is being written (to a client that reads slowly), newer
// frames replace each other: the burst costs one more write, of its end.
func TestBurstsAreCoalesced(t *testing.T) {
	term := newTerminal(20, 3)
	out := &gate{Writer: term, open: make(chan struct{}), entered: make(chan struct{}, 1)}
	s := New(out, 20, 3)
	s.draw(frame("frame 0"), nil)
	<-out.entered // the writer is stuck in the first write
	for i := 1; i <= 100; i++ {
		s.draw(frame("frame "+strings.Repeat("x", i%10), "count"), nil)
	}
	s.draw(frame("last frame", "count"), nil)
	close(out.open)
	settle(t, s)
	if n := term.writeCount(); n != 2 {
		t.Fatalf("%d writes for a burst of 102 frames, want 2", n)
	}
	wantRows(t, term, "last frame", "count")
}

// A client that is gone gets no more writes, and Close does not hang.
func TestFailedWritesStopDrawing(t *testing.T) {
	out := &failing{}
	s := New(out, 20, 3)
	s.draw(frame("one"), nil)
	settle(t, s)
	s.draw(frame("two"), nil)
	settle(t, s)
	done := make(chan struct{})
	go func() {
		_ = s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
	if out.calls != 1 {
		t.Fatalf("%d writes after the client went away, want 1", out.calls)
	}
}

type lines []string

func (l lines) Init() tea.Cmd                       { return nil }
func (l lines) Update(tea.Msg) (tea.Model, tea.Cmd) { return l, nil }
func (l lines) View() string                        { return strings.Join(l, "\n") }
func (l lines) Lines() []Line                       { return frame(l...) }

// frame is lines of text only.
func frame(texts ...string) []Line {
	f := make([]Line, len(texts))
	for i, t := range texts {
		f[i] = Line{Text: t}
	}
	return f
}

// gate holds every write until open is closed.
type gate struct {
	Writer  *terminal
	open    chan struct{}
	entered chan struct{}
}

func (g *gate) Write(p []byte) (int, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	<-g.open
	return g.Writer.Write(p)
}

type failing struct{ calls int }

func (f *failing) Write(p []byte) (int, error) {
	f.calls++
	return 0, bytes.ErrTooLarge
}

// BenchmarkFrameWrite is the cost of one frame written: the countdown's
// one changed line, a message's few, and a whole screen after a resize.
func BenchmarkFrameWrite(b *testing.B) {
	base := make([]Line, 24)
	for i := range base {
		base[i].Text = "\x1b[38;5;8m12:34\x1b[0m \x1b[1;35manonymous-otter-k3f9:\x1b[0m a message of ordinary length " + strings.Repeat("x", i)
	}
	base[0].Right = "\x1b[38;5;8mself-destructs in \x1b[0m\x1b[1m9:59\x1b[0m"
	for _, bc := range []struct {
		name    string
		changed int
		full    bool
	}{{"one-line", 1, false}, {"four-lines", 4, false}, {"whole-screen", 24, true}} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(discard{}, 100, 24)
			s.draw(base, nil)
			settle(b, s)
			next := make([][]Line, 2)
			for k := range next {
				next[k] = append([]Line(nil), base...)
				for i := range bc.changed {
					next[k][i].Text = fmt.Sprintf("changed %d %d", k, i)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if bc.full {
					s.resize(100+i%2, 24)
				}
				s.draw(next[i%2], nil)
				settle(b, s)
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ringer is a model that asks for a bell on every message.
type ringer struct {
	lines
	pending []byte
}

func (r *ringer) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if s, ok := msg.(string); ok {
		r.lines = lines{s}
	}
	r.pending = append(r.pending, '\a')
	return r, nil
}

func (r *ringer) TakeSignals() []byte {
	out := r.pending
	r.pending = r.pending[:0]
	return out
}

func (t *terminal) all() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.writes, "")
}

// Signals are written once each, after the frame of their state, whether
// or not the lines changed; the diffing never repeats them, and Close
// drops those not yet written.
func TestSignalsAreWrittenOnceAndNeverAfterClose(t *testing.T) {
	term := newTerminal(20, 3)
	s := New(term, 20, 3)
	p := s.Model(&ringer{lines: lines{"first"}})
	ring := func(msg tea.Msg) {
		t.Helper()
		next, _ := p.Update(msg)
		next.View()
		settle(t, s)
	}
	ring("first")
	if got := strings.Count(term.all(), "\a"); got != 1 {
		t.Fatalf("%d bells after one ring", got)
	}
	if w := term.lastWrite(); !strings.HasSuffix(w, "\a") || !strings.Contains(w, "first") {
		t.Fatalf("the bell is not written after its frame: %q", w)
	}
	ring("first") // the same lines: only the bell goes out
	if got, w := strings.Count(term.all(), "\a"), term.lastWrite(); got != 2 || w != "\a" {
		t.Fatalf("%d bells, last write %q; want 2, the second alone", got, w)
	}
	writes := term.writeCount()
	p.View() // a frame with nothing new
	settle(t, s)
	if term.writeCount() != writes {
		t.Fatal("a redraw without news wrote something")
	}
	ring("second")
	wantRows(t, term, "second")
	if got := strings.Count(term.all(), "\a"); got != 3 {
		t.Fatalf("%d bells after three rings", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	writes = term.writeCount()
	next, _ := p.Update("late")
	next.View()
	if term.writeCount() != writes {
		t.Fatal("a signal was written after Close")
	}
}

// A burst of signals while the client reads nothing is bounded.
func TestSignalsWaitingAreBounded(t *testing.T) {
	g := &gate{Writer: newTerminal(20, 3), open: make(chan struct{}), entered: make(chan struct{}, 1)}
	s := New(g, 20, 3)
	s.draw(frame("stuck"), nil)
	<-g.entered
	for range 10 * maxSignals {
		s.draw(frame("stuck"), []byte{'\a'})
	}
	s.mu.Lock()
	waiting := len(s.signals)
	s.mu.Unlock()
	if waiting > maxSignals {
		t.Fatalf("%d bytes of signals wait, want at most %d", waiting, maxSignals)
	}
	close(g.open)
	settle(t, s)
}

// An overflowing line is written whole, wrapped by the terminal onto the
// blank rows below it, and redrawn with them when either changes.
func TestOverflowingLinesWrapWhole(t *testing.T) {
	term := newTerminal(10, 6)
	s := New(term, 10, 6)
	command := Line{Text: "ssh -p 2222 ab@host", Overflow: true} // 19 cells: two rows
	s.draw([]Line{{Text: "header"}, command, {}, {Text: "after"}}, nil)
	settle(t, s)
	wantRows(t, term, "header", "ssh -p 222", "2 ab@host", "after")

	// Something else changes: the command is not rewritten.
	s.draw([]Line{{Text: "header 2"}, command, {}, {Text: "after"}}, nil)
	settle(t, s)
	if strings.Contains(term.lastWrite(), "ssh") {
		t.Fatalf("an unchanged command was rewritten: %q", term.lastWrite())
	}
	wantRows(t, term, "header 2", "ssh -p 222", "2 ab@host", "after")

	// The rows under it change from text to blank: drawn with it, so the
	// command's end survives.
	s.draw([]Line{{Text: "header 2"}, {Text: "x"}, {Text: "y"}, {Text: "after"}}, nil)
	settle(t, s)
	s.draw([]Line{{Text: "header 2"}, command, {}, {Text: "after"}}, nil)
	settle(t, s)
	wantRows(t, term, "header 2", "ssh -p 222", "2 ab@host", "after")

	// A shorter one leaves nothing of the longer behind.
	s.draw([]Line{{Text: "header 2"}, {Text: "ssh h", Overflow: true}, {}, {Text: "after"}}, nil)
	settle(t, s)
	wantRows(t, term, "header 2", "ssh h", "", "after")

	// Without the blank rows it needs, it is cut where they end: the
	// line below keeps its text, and at the bottom nothing scrolls.
	s.draw([]Line{{Text: "header"}, command, {Text: "after"}}, nil)
	settle(t, s)
	wantRows(t, term, "header", "ssh -p 222", "after")
	s.draw([]Line{{}, {}, {}, {}, {}, command}, nil)
	settle(t, s)
	wantRows(t, term, "", "", "", "", "", "ssh -p 222")
}
