// Package screen draws a Bubble Tea program on a full-screen terminal: a
// frame is drawn as soon as the program's state changes, and only the lines
// that differ from what the terminal already shows are written.
//
// It replaces Bubble Tea v1's standard renderer, which wakes 60 times a
// second for every program to compare the whole frame with the last one and
// makes every change wait for its next tick. A server running thousands of
// programs, most of them idle, pays for each of those wake-ups; here an
// idle program costs nothing, and a change costs one write of its lines.
//
// Run a program with tea.WithoutRenderer and wrap its model with
// Screen.Model; Bubble Tea calls View after every Update, and that is when
// the wrapper hands the new frame to the screen. Frames are written by a
// goroutine that exists only while there is something to write: frames
// that arrive while one is being written replace each other, so a burst
// (a paste, a flood of messages, a client that reads slowly) is drawn once,
// as its last state.
package screen

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// Model is a Bubble Tea model that draws itself as lines, one per terminal
// row from the top. The screen copies what Lines returns before the next
// Update, so a model may reuse the slice; lines that did not change should
// be the same strings as before, which makes comparing them nearly free.
type Model interface {
	tea.Model
	Lines() []Line
}

// Line is one row of the screen: Text from the left edge and Right, if
// any, against the right edge. A part that changes on its own (a
// countdown) can then be a string made once and shared, rather than a new
// line each time it changes.
//
// A line's text is cut at the right edge, so the terminal never wraps it,
// unless Overflow is set: then it is written whole and the terminal wraps
// it onto the rows below, which the model leaves blank (empty lines). That
// is for text people copy, such as a command, which is worth more whole
// than tidy: most terminals copy a wrapped line as one.
type Line struct {
	Text     string
	Right    string
	Overflow bool
}

// Signaller is a model that has, now and then, bytes for the terminal that
// are not lines: a bell, a write to the clipboard. After every Update the
// screen takes them (they are the model's to forget) and writes them once,
// after the frame of that state: never again, and never after Close.
type Signaller interface {
	// TakeSignals returns the bytes to write and forgets them. The screen
	// copies them before the next Update, so the slice may be reused.
	TakeSignals() []byte
}

// TerminalCursor is a model that, now and then, wants the terminal's own
// cursor shown: for terminals that cannot show the one a model draws (no
// reverse video) or cannot hide their own (a VT100), whose cursor had
// better stand where the person types than wherever the last line ended.
type TerminalCursor interface {
	// TerminalCursor is where the cursor goes after a frame, as a row of
	// Lines and a column (from 0), and whether it is shown at all. It is
	// asked after Lines.
	TerminalCursor() (row, col int, show bool)
}

// Holder is a model that knows, now and then, that its state is about to
// change again at once: it has taken part of an input that came in one
// piece (a line and its Enter, a paste). While it holds, the screen draws
// nothing; the next state it does not hold is drawn, with whatever changed
// meanwhile. A model must not hold for long: nothing it shows changes.
type Holder interface {
	// Holding reports whether the state after this Update is to wait for
	// the next one. It is asked before anything else of the frame.
	Holding() bool
}

// cursorAt is where the terminal's cursor is shown, if it is.
type cursorAt struct {
	row, col int
	show     bool
}

// maxSignals bounds the signals waiting to be written: a model that asks
// for more while a client reads nothing has the rest dropped.
const maxSignals = 4 << 10

// Render is l as one string on a screen width cells wide.
func (l Line) Render(width int) string {
	if l.Right == "" {
		return l.Text
	}
	gap := width - ansi.StringWidth(l.Text) - ansi.StringWidth(l.Right)
	return l.Text + strings.Repeat(" ", max(gap, 0)) + l.Right
}

// Screen is one terminal. Its methods are safe for concurrent use.
type Screen struct {
	out io.Writer

	mu      sync.Mutex
	width   int
	height  int
	latest  []Line // the newest frame, copied from the model
	dirty   bool   // latest is not written yet
	full    bool   // the next frame is drawn whole (first frame, resize)
	writing bool   // a writer goroutine is running
	closed  bool
	signals []byte     // to write after the next frame
	cursor  cursorAt   // where the newest frame wants the terminal's cursor
	failed  bool       // a write failed (the client is gone) or drawing panicked
	err     error      // why drawing panicked
	idle    *sync.Cond // signalled when the writer goroutine ends

	// Used by the writer only (one at a time), and by Close once it is
	// done.
	shown   []Line   // the frame the terminal shows
	work    []Line   // the frame being written
	sending []byte   // the signals being written
	shownAt cursorAt // where the terminal's cursor is
	workAt  cursorAt // where the frame being written wants it
	buf     []byte   // what is written
	started bool     // the terminal was set up
	// writeFn is write, made once: a goroutine started with a method
	// value would allocate a closure for every frame.
	writeFn func()
	// writers write the frames, if set (see Writers); otherwise each
	// frame gets a goroutine of its own.
	writers *Writers
}

// New returns a screen of width×height cells that draws on out. Nothing is
// written until the first frame.
func New(out io.Writer, width, height int) *Screen {
	s := &Screen{out: out, width: width, height: height, full: true}
	s.idle = sync.NewCond(&s.mu)
	s.writeFn = s.write
	return s
}

// Model wraps m so that each of its states is drawn on s.
func (s *Screen) Model(m Model) tea.Model { return &program{m, s} }

// Inner returns the model that Model wrapped, as the program ended with it.
func Inner(m tea.Model) tea.Model {
	if p, ok := m.(*program); ok {
		return p.Model
	}
	return m
}

// program is the wrapper Bubble Tea runs.
type program struct {
	Model
	screen *Screen
}

func (p *program) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if size, ok := msg.(tea.WindowSizeMsg); ok {
		p.screen.resize(size.Width, size.Height)
	}
	next, cmd := p.Model.Update(msg)
	p.Model = next.(Model)
	return p, cmd
}

// View is called by Bubble Tea after every Update: the moment a changed
// state is due on the screen. What it returns is for Bubble Tea's renderer,
// which is off.
func (p *program) View() string {
	if h, ok := p.Model.(Holder); ok && h.Holding() {
		return ""
	}
	var signals []byte
	if s, ok := p.Model.(Signaller); ok {
		signals = s.TakeSignals()
	}
	lines := p.Lines()
	var at cursorAt // asked after the lines, which place it
	if c, ok := p.Model.(TerminalCursor); ok {
		at.row, at.col, at.show = c.TerminalCursor()
	}
	p.screen.drawAt(lines, signals, at)
	return ""
}

// resize redraws the whole screen, even at the same size: a terminal
// made smaller and larger again between two resizes has lost lines that
// the screen would otherwise think it shows.
func (s *Screen) resize(width, height int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.width, s.height, s.full = width, height, true
}

// draw takes a copy of frame and signals and makes sure a writer is on its
// way; the terminal's cursor stays hidden.
func (s *Screen) draw(frame []Line, signals []byte) { s.drawAt(frame, signals, cursorAt{}) }

// drawAt is draw, with the terminal's cursor shown at at when at.show.
func (s *Screen) drawAt(frame []Line, signals []byte, at cursorAt) {
	s.mu.Lock()
	defer s.mu.Unlock()
	same := !s.full && sameLines(frame, s.latest) && at == s.cursor
	if s.closed || s.failed || (same && len(signals) == 0) {
		return
	}
	if !same {
		s.latest = append(s.latest[:0], frame...)
		s.cursor = at
	}
	if room := maxSignals - len(s.signals); len(signals) <= room {
		s.signals = append(s.signals, signals...)
	}
	s.dirty = true
	if !s.writing {
		s.writing = true
		if s.writers != nil {
			s.writers.run(s.writeFn)
		} else {
			go s.writeFn()
		}
	}
}

// write draws the latest frame until no newer one is left.
func (s *Screen) write() {
	defer func() {
		// Text from the other person is measured and cut here: a bug
		// in that must end this screen, not the process.
		if r := recover(); r != nil {
			s.mu.Lock()
			// The stack goes with the error, to the log.
			s.failed, s.err, s.writing = true, fmt.Errorf("screen: drawing panicked: %v\n%s", r, debug.Stack()), false
			s.idle.Broadcast()
			s.mu.Unlock()
		}
	}()
	for {
		s.mu.Lock()
		if !s.dirty || s.failed {
			s.writing = false
			s.idle.Broadcast()
			s.mu.Unlock()
			return
		}
		s.work = append(s.work[:0], s.latest...)
		s.sending = append(s.sending[:0], s.signals...)
		s.workAt = s.cursor
		s.signals = s.signals[:0]
		full, width, height := s.full, s.width, s.height
		s.dirty, s.full = false, false
		s.mu.Unlock()

		s.buf = s.appendFrame(s.buf[:0], full, width, height)
		s.buf = append(s.buf, s.sending...)
		if err := s.send(s.buf); err != nil {
			s.mu.Lock()
			s.failed = true
			s.mu.Unlock()
		}
		if cap(s.buf) > maxKeptBuffer {
			s.buf = nil // a whole screen's buffer is not kept for the changes that follow
		}
	}
}

// maxKeptBuffer bounds the output buffer kept between frames: the changes
// that follow the first screen are a few hundred bytes, and an idle session
// should not keep a whole screen's worth.
const maxKeptBuffer = 1 << 10

// maxWrite bounds one write. An SSH channel keeps a buffer as large as its
// largest write for as long as the session lasts; a whole screen is
// several kilobytes, the changes that follow a few dozen bytes.
const maxWrite = 1 << 10

func (s *Screen) send(buf []byte) error {
	for len(buf) > 0 {
		n := min(len(buf), maxWrite)
		if _, err := s.out.Write(buf[:n]); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

// Terminal modes of a full-screen program: the alternate screen (so the
// person's scrollback is left as it was), no cursor (the program draws its
// own), and bracketed paste (so a paste arrives as one piece of text, not
// as keys).
const (
	setUp   = ansi.SetModeAltScreenSaveCursor + ansi.ResetModeTextCursorEnable + ansi.SetModeBracketedPaste
	restore = ansi.ResetModeBracketedPaste + ansi.SetModeTextCursorEnable + ansi.ResetModeAltScreenSaveCursor
)

// appendFrame appends to buf what turns the shown frame into the one in
// work, and makes it the shown one.
//
// Every line written starts at its first column, on a row erased first,
// so nothing of what was there survives it. A line whose width terminals
// disagree on is cut to fit at its widest, short of the last column (see
// Cut), and the row under it is written again after it: should a terminal
// still draw it wider than that, what ran onto that row is covered.
func (s *Screen) appendFrame(buf []byte, full bool, width, height int) []byte {
	frame := s.work
	top := 0
	if height > 0 && len(frame) > height {
		// As Bubble Tea's renderer does: the bottom of a frame too tall
		// for the terminal (the input line) matters most.
		top = len(frame) - height
		frame = frame[top:]
	}
	if !s.started {
		s.started = true
		buf = append(buf, setUp...)
	}
	if s.shownAt.show {
		// Hidden while the frame is drawn, so it does not run along it.
		buf = append(buf, ansi.ResetModeTextCursorEnable...)
		s.shownAt.show = false
	}
	if full {
		buf = append(buf, ansi.CursorHomePosition+ansi.EraseEntireScreen...)
		s.shown = s.shown[:0]
	}
	spilled := false // the row above may have run onto this one
	for i := 0; i < len(frame); i++ {
		line := frame[i]
		if line.Overflow && width > 0 {
			// The text and the blank rows it wraps onto are drawn
			// together: a blank row drawn after it would erase its end.
			rows := overflowRows(frame, i, width)
			if spilled || !shownAlready(s.shown, frame, i, rows) {
				for r := i; r < i+rows && !full; r++ {
					buf = appendMoveTo(buf, r, 0)
					buf = append(buf, ansi.EraseEntireLine...)
				}
				buf = appendMoveTo(buf, i, 0)
				// Cut where its blank rows end: never over the next line,
				// nor scrolling the screen from the bottom row.
				buf = append(buf, fit(line.Text, rows*width)...)
			}
			spilled = false
			i += rows - 1
			continue
		}
		if !spilled && i < len(s.shown) && s.shown[i] == line {
			continue
		}
		buf = appendMoveTo(buf, i, 0)
		if !full || spilled {
			buf = append(buf, ansi.EraseEntireLine...)
		}
		text, uncertain := line.Text, false
		if width > 0 && !simple(text) {
			if _, sure := Cells(text); !sure {
				uncertain = true
				text = Cut(oneLine(text), width-ansi.StringWidth(line.Right))
			}
		}
		buf = append(buf, fit(text, width)...)
		if line.Right != "" {
			// Against the right edge, over the end of the text if they
			// meet; never past the edge, which would wrap onto the next
			// row. Where the width is unknown, after the text.
			if width > 0 {
				buf = appendMoveTo(buf, i, max(width-ansi.StringWidth(line.Right), 0))
			}
			buf = append(buf, fit(line.Right, width)...)
		}
		spilled = uncertain
	}
	if len(frame) < len(s.shown) {
		buf = appendMoveTo(buf, len(frame), 0)
		buf = append(buf, ansi.EraseScreenBelow...)
	}
	s.shown = append(s.shown[:0], frame...)
	for i := 0; i < len(frame) && width > 0; i++ {
		if frame[i].Overflow {
			rows := overflowRows(frame, i, width)
			for r := i + 1; r < i+rows; r++ {
				s.shown[r] = covered
			}
			i += rows - 1
		}
	}
	if at := s.workAt; at.show && at.row >= top && at.row-top < len(frame) {
		buf = appendMoveTo(buf, at.row-top, max(at.col, 0))
		buf = append(buf, ansi.SetModeTextCursorEnable...)
		s.shownAt = at
	}
	return buf
}

// covered is what the screen notes for a blank row that an overflowing
// line above it wrapped onto: not blank on the terminal, so a blank line
// drawn there later is written.
var covered = Line{Overflow: true}

// overflowRows is how many rows the overflowing line frame[i] takes: its
// own, and the blank lines under it that its text wraps onto.
func overflowRows(frame []Line, i, width int) int {
	need := (ansi.StringWidth(frame[i].Text) + width - 1) / width
	rows := 1
	for rows < need && i+rows < len(frame) && frame[i+rows] == (Line{}) {
		rows++
	}
	return rows
}

// appendMoveTo moves the cursor to row and column (from 0).
func appendMoveTo(buf []byte, row, col int) []byte {
	buf = append(buf, "\x1b["...)
	buf = strconv.AppendInt(buf, int64(row+1), 10)
	if col > 0 {
		buf = append(buf, ';')
		buf = strconv.AppendInt(buf, int64(col+1), 10)
	}
	return append(buf, 'H')
}

// shownAlready reports whether the overflowing line frame[i], and the rows
// it wraps onto, are what the terminal shows.
func shownAlready(shown, frame []Line, i, rows int) bool {
	if i+rows > len(shown) || shown[i] != frame[i] {
		return false
	}
	for r := i + 1; r < i+rows; r++ {
		if shown[r] != covered {
			return false
		}
	}
	return true
}

// oneLine shows line breaks as spaces (see fit).
func oneLine(line string) string {
	// Two byte searches: ContainsAny builds a set on every call, and
	// every line written passes here.
	if strings.IndexByte(line, '\n') >= 0 || strings.IndexByte(line, '\r') >= 0 {
		return strings.NewReplacer("\r", " ", "\n", " ").Replace(line)
	}
	return line
}

// fit cuts line to width cells, so the terminal never wraps it into the
// next row. A line has at least as many bytes as cells, so most lines are
// never measured. A line break would move the cursor where the screen does
// not expect it (and frames go to the SSH channel as they are, without a
// PTY's \n to \r\n), so one is shown as a space.
func fit(line string, width int) string {
	line = oneLine(line)
	if width <= 0 || len(line) <= width || ansi.StringWidth(line) <= width {
		return line
	}
	return ansi.Truncate(line, width, "")
}

func sameLines(a, b []Line) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ErrStuck is Close's answer when the frame being written has not gone
// out within closeWait: the client takes nothing more. The screen may still
// be writing; close what it writes to, which ends that, and write nothing
// more to it.
var ErrStuck = errors.New("screen: the terminal takes nothing more")

// closeWait bounds how long Close waits for a frame being written.
const closeWait = 5 * time.Second

// Close waits for the frame being written, then restores the terminal:
// the person's own screen comes back, with its cursor, and pastes arrive
// as keys again. Nothing is written after Close returns, unless it returns
// ErrStuck; it is idempotent. It returns why drawing failed, if it
// panicked.
func (s *Screen) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	// Signals not yet written are dropped: nothing is written after Close.
	s.closed, s.dirty, s.signals = true, false, nil
	waited := false
	timeout := time.AfterFunc(closeWait, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		waited = true
		s.idle.Broadcast()
	})
	for s.writing && !waited {
		s.idle.Wait()
	}
	timeout.Stop()
	if s.writing {
		s.mu.Unlock()
		return ErrStuck
	}
	started, failed, err := s.started, s.failed, s.err
	s.mu.Unlock()
	if !started || failed {
		return err
	}
	_, err = io.WriteString(s.out, restore)
	return err
}
