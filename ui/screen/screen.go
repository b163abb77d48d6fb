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
	"io"
	"strconv"
	"sync"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// Model is a Bubble Tea model that draws itself as lines, one per terminal
// row from the top. A slice returned by Lines must not be changed
// afterwards; lines that did not change should be the same strings as
// before, which makes comparing them nearly free.
type Model interface {
	tea.Model
	Lines() []string
}

// Screen is one terminal. Its methods are safe for concurrent use.
type Screen struct {
	out io.Writer

	mu      sync.Mutex
	width   int
	height  int
	pending []string // the newest frame, not yet written; nil: none
	queued  []string // the last frame handed to the writer, to skip repeats
	full    bool     // the next frame is drawn whole (first frame, resize)
	writing bool     // a writer goroutine is running
	closed  bool
	failed  bool       // a write failed: the client is gone
	idle    *sync.Cond // signalled when the writer goroutine ends

	// Used by the writer only (one at a time), and by Close once it is
	// done.
	shown   []string // the frame the terminal shows
	started bool     // the terminal was set up
}

// New returns a screen of width×height cells that draws on out. Nothing is
// written until the first frame.
func New(out io.Writer, width, height int) *Screen {
	s := &Screen{out: out, width: width, height: height, full: true}
	s.idle = sync.NewCond(&s.mu)
	return s
}

// Model wraps m so that each of its states is drawn on s.
func (s *Screen) Model(m Model) tea.Model { return program{m, s} }

// Inner returns the model that Model wrapped, as the program ended with it.
func Inner(m tea.Model) tea.Model {
	if p, ok := m.(program); ok {
		return p.Model
	}
	return m
}

// program is the wrapper Bubble Tea runs.
type program struct {
	Model
	screen *Screen
}

func (p program) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if size, ok := msg.(tea.WindowSizeMsg); ok {
		p.screen.resize(size.Width, size.Height)
	}
	next, cmd := p.Model.Update(msg)
	return program{next.(Model), p.screen}, cmd
}

// View is called by Bubble Tea after every Update: the moment a changed
// state is due on the screen. What it returns is for Bubble Tea's renderer,
// which is off.
func (p program) View() string {
	p.screen.draw(p.Lines())
	return ""
}

func (s *Screen) resize(width, height int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if width != s.width || height != s.height {
		s.width, s.height, s.full = width, height, true
	}
}

// draw queues frame and makes sure a writer is on its way.
func (s *Screen) draw(frame []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.failed || (!s.full && sameLines(frame, s.queued)) {
		return
	}
	if frame == nil {
		frame = []string{} // nil means "nothing pending"
	}
	s.pending, s.queued = frame, frame
	if !s.writing {
		s.writing = true
		go s.write()
	}
}

// write draws pending frames until there are none left.
func (s *Screen) write() {
	var buf []byte
	for {
		s.mu.Lock()
		frame, full, width, height := s.pending, s.full, s.width, s.height
		s.pending, s.full = nil, false
		if frame == nil || s.failed {
			s.writing = false
			s.idle.Broadcast()
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()

		buf = s.appendFrame(buf[:0], frame, full, width, height)
		if err := s.send(buf); err != nil {
			s.mu.Lock()
			s.failed = true
			s.mu.Unlock()
		}
		if cap(buf) > maxKeptBuffer {
			buf = nil // a huge redraw's buffer is not kept for small ones
		}
	}
}

// maxKeptBuffer bounds the output buffer a writer reuses between frames.
const maxKeptBuffer = 64 << 10

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

// appendFrame appends to buf what turns the shown frame into frame.
func (s *Screen) appendFrame(buf []byte, frame []string, full bool, width, height int) []byte {
	if height > 0 && len(frame) > height {
		// As Bubble Tea's renderer does: the bottom of a frame too tall
		// for the terminal (the input line) matters most.
		frame = frame[len(frame)-height:]
	}
	if !s.started {
		s.started = true
		buf = append(buf, setUp...)
	}
	if full {
		buf = append(buf, ansi.CursorHomePosition+ansi.EraseEntireScreen...)
		s.shown = nil
	}
	for i, line := range frame {
		if i < len(s.shown) && s.shown[i] == line {
			continue
		}
		buf = appendMoveTo(buf, i)
		if !full {
			buf = append(buf, ansi.EraseEntireLine...)
		}
		buf = append(buf, fit(line, width)...)
	}
	if len(frame) < len(s.shown) {
		buf = appendMoveTo(buf, len(frame))
		buf = append(buf, ansi.EraseScreenBelow...)
	}
	s.shown = frame
	return buf
}

// appendMoveTo moves the cursor to the start of row (from 0).
func appendMoveTo(buf []byte, row int) []byte {
	buf = append(buf, "\x1b["...)
	buf = strconv.AppendInt(buf, int64(row+1), 10)
	return append(buf, "H"...)
}

// fit cuts line to width cells, so the terminal never wraps it into the
// next row. A line has at least as many bytes as cells, so most lines are
// never measured.
func fit(line string, width int) string {
	if width <= 0 || len(line) <= width || ansi.StringWidth(line) <= width {
		return line
	}
	return ansi.Truncate(line, width, "")
}

func sameLines(a, b []string) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Close waits for the frame being written, then restores the terminal:
// the person's own screen comes back, with its cursor, and pastes arrive
// as keys again. Nothing is written after Close returns; it is idempotent.
func (s *Screen) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.pending = nil
	for s.writing {
		s.idle.Wait()
	}
	started, failed := s.started, s.failed
	s.mu.Unlock()
	if !started || failed {
		return nil
	}
	_, err := io.WriteString(s.out, restore)
	return err
}
