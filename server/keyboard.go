package server

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/ui"
	"github.com/ssh-burn/chat/ui/screen"
)

// redrawer is a model that knows which messages change its screen.
type redrawer interface{ Redraws(tea.Msg) bool }

// keyboard is a session's input as the chat reads it. It stands between
// the client and Bubble Tea's input parser, whose buffering a hostile
// client could otherwise turn against the server:
//   - the client's bytes are read as they come, into a queue of at most
//     maxQueuedBytes: what does not fit is dropped (and the person told),
//     rather than left in the SSH channel, whose window lets a client park
//     2 MB in the server's memory per session;
//   - they are handed on at a human's pace in bytes (and keys are
//     throttled once parsed, see throttleKeys);
//   - Ctrl+C skips the queue, so leaving never waits behind a flood;
//   - reads are kept below the parser's 256-byte buffer, so it never
//     waits for "more data" and re-copies a growing backlog (a megabyte of
//     text without a space costs it quadratic time);
//   - a bracketed paste is ended after maxPasteBytes, or after pasteIdle
//     without more input (the parser would wait for its end forever, and
//     swallow every key meanwhile);
//   - the time of every read is kept, so idleness is measured by what
//     the person types, not by what the server draws;
//   - after each piece handed on, the chat is told so (ui.InputSettled),
//     after the keys it made: a line and its Enter that came together
//     are drawn once and tell no "typing".
//
// An idle keyboard holds no buffers but the one its reader waits with.
type keyboard struct {
	bytes     *rate.Limiter
	lastInput atomic.Int64 // unix nanoseconds of the last read

	// tell brings a Ctrl+C and notices of dropped input to the chat,
	// from a goroutine of its own: receive never waits on the program,
	// whatever the program is doing (drawing to a client that reads
	// nothing, say).
	tell         func(tea.Msg)
	interrupting atomic.Bool // a Ctrl+C is on its way
	tellDropped  rate.Sometimes

	mu     sync.Mutex
	queue  [][]byte // what the client sent, in order
	queued int      // bytes in queue
	ended  bool     // the client's input ended
	ready  chan struct{}

	// ctx ends with stop: Read then returns io.EOF at once, so the
	// parser's read loop does not outlive the program.
	ctx  context.Context
	stop context.CancelFunc

	// Used by Read only.
	unsettled bool   // bytes were handed on since the chat was last told (ui.InputSettled)
	unread    []byte // the rest of the chunk being handed on
	pending   []byte // processed bytes not yet handed out
	recent    []byte // the last bytes seen, to find markers split across reads
	inPaste   bool
	pasted    int
}

const (
	maxKeyboardRead = 255
	// receiveBuffer is what the reader waits with; a paste arrives in
	// a few reads more, from the SSH channel's own buffer.
	receiveBuffer  = 1 << 10
	maxQueuedBytes = 32 << 10
	maxPasteBytes  = 16 << 10
	// pasteIdle is long enough for a paste over a slow link to pause, and
	// short enough that a paste whose end never comes does not keep the
	// keyboard for long (Ctrl+C works throughout).
	pasteIdle  = 10 * time.Second
	pasteStart = "\x1b[200~"
	pasteEnd   = "\x1b[201~"
	ctrlC      = 0x03
)

// newKeyboard returns a keyboard that hands input on at bytesPerSecond
// and tells the chat of a Ctrl+C or dropped input with tell.
func newKeyboard(bytesPerSecond int, tell func(tea.Msg)) *keyboard {
	ctx, stop := context.WithCancel(context.Background())
	k := &keyboard{
		bytes:       rate.NewLimiter(rate.Limit(bytesPerSecond), max(bytesPerSecond, maxKeyboardRead)),
		tell:        tell,
		tellDropped: rate.Sometimes{Interval: time.Second},
		ready:       make(chan struct{}, 1),
		ctx:         ctx,
		stop:        stop,
	}
	k.lastInput.Store(time.Now().UnixNano())
	return k
}

// receive reads everything the client sends until it ends, queueing what
// fits.
func (k *keyboard) receive(in io.Reader) {
	defer k.end()
	buf := make([]byte, receiveBuffer)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			k.lastInput.Store(time.Now().UnixNano())
			if bytes.IndexByte(buf[:n], ctrlC) >= 0 && k.interrupting.CompareAndSwap(false, true) {
				go func() {
					defer k.interrupting.Store(false)
					k.tell(tea.KeyMsg{Type: tea.KeyCtrlC})
				}()
			}
			if !k.enqueue(buf[:n]) {
				k.tellDropped.Do(func() { go k.tell(ui.InputDropped{}) })
			}
		}
		if err != nil {
			return
		}
	}
}

// lastTyped is when the client last sent anything.
func (k *keyboard) lastTyped() time.Time { return time.Unix(0, k.lastInput.Load()) }

// enqueue queues a copy of data, unless it does not fit.
func (k *keyboard) enqueue(data []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.queued+len(data) > maxQueuedBytes {
		return false
	}
	// Small reads (a client sending a byte at a time) are joined, so
	// the queue's bound in bytes bounds its memory too.
	if last := len(k.queue) - 1; last >= 0 && len(k.queue[last])+len(data) <= receiveBuffer {
		k.queue[last] = append(k.queue[last], data...)
	} else {
		k.queue = append(k.queue, bytes.Clone(data))
	}
	k.queued += len(data)
	k.wake()
	return true
}

// end marks the end of the client's input.
func (k *keyboard) end() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ended = true
	k.wake()
}

func (k *keyboard) wake() {
	select {
	case k.ready <- struct{}{}:
	default:
	}
}

// Read hands the queued input to the parser, throttled, at most
// maxKeyboardRead bytes at a time, each piece paid for as it goes.
func (k *keyboard) Read(p []byte) (int, error) {
	p = p[:min(len(p), maxKeyboardRead)]
	if len(k.pending) == 0 && k.unsettled {
		// The parser calls Read again only once it has handed the chat
		// every key of what it read, so this comes after them. What
		// follows may be long in coming (the client's next keys, the
		// byte rate's turn), or part of the same paste: either way, the
		// chat has one piece of input to draw.
		k.unsettled = false
		k.tell(ui.InputSettled{})
	}
	for len(k.pending) == 0 {
		if len(k.unread) == 0 {
			chunk, ok := k.next()
			if !ok {
				return 0, io.EOF
			}
			k.unread = chunk
		}
		piece := k.unread[:min(len(k.unread), maxKeyboardRead)]
		k.unread = k.unread[len(piece):]
		if len(k.unread) == 0 {
			k.unread = nil // an idle keyboard keeps no chunk
		}
		k.pending = k.boundPastes(piece)
		if k.wait(k.bytes, len(piece)) != nil {
			return 0, io.EOF
		}
	}
	n := copy(p, k.pending)
	k.unsettled = true
	k.pending = k.pending[n:]
	if len(k.pending) == 0 {
		k.pending = nil
	}
	return n, nil
}

// next returns the next chunk the client sent; false once the input ended
// or the keyboard was stopped. Inside a paste, a client that goes quiet
// gets its paste ended for it.
func (k *keyboard) next() (chunk []byte, ok bool) {
	var quiet <-chan time.Time
	if k.inPaste {
		timer := time.NewTimer(pasteIdle)
		defer timer.Stop()
		quiet = timer.C
	}
	for {
		k.mu.Lock()
		if len(k.queue) > 0 {
			chunk = k.queue[0]
			k.queue[0] = nil
			k.queue = k.queue[1:]
			if len(k.queue) == 0 {
				k.queue = nil // an idle keyboard keeps no array
			}
			k.queued -= len(chunk)
			k.mu.Unlock()
			return chunk, true
		}
		ended := k.ended
		k.mu.Unlock()
		if ended {
			return nil, false
		}
		select {
		case <-k.ready:
		case <-quiet:
			k.inPaste = false
			return []byte(pasteEnd), true
		case <-k.ctx.Done():
			return nil, false
		}
	}
}

// wait takes n tokens from l, in pieces no larger than its burst, unless
// the keyboard is stopped meanwhile.
func (k *keyboard) wait(l *rate.Limiter, n int) error {
	for n > 0 {
		take := min(n, l.Burst())
		if err := l.WaitN(k.ctx, take); err != nil {
			return err
		}
		n -= take
	}
	return nil
}

// throttleKeys is a Bubble Tea filter that lets the keys and mouse events
// a client sends through at most perSecond a second (after a burst as
// large) when they change the screen: each of those costs a redraw. It
// counts what the parser made of the bytes, so no sequence can make many
// keys look like few; waiting here stops the parser, and what arrives
// meanwhile fills the keyboard's queue. Ctrl+C, keys that change nothing
// (into a full input, say) and everything that is not input pass at once.
func throttleKeys(ctx context.Context, perSecond int) func(tea.Model, tea.Msg) tea.Msg {
	turns := rate.NewLimiter(rate.Limit(perSecond), perSecond)
	return func(model tea.Model, msg tea.Msg) tea.Msg {
		switch msg := msg.(type) {
		case tea.KeyMsg:
			if msg.Type == tea.KeyCtrlC {
				return msg
			}
		case tea.MouseMsg:
		default:
			return msg
		}
		if m, ok := screen.Inner(model).(redrawer); ok && !m.Redraws(msg) {
			return msg
		}
		_ = turns.Wait(ctx) // an error means the session is over
		return msg
	}
}

// boundPastes returns in, with an end-of-paste marker inserted wherever a
// paste has run longer than maxPasteBytes.
func (k *keyboard) boundPastes(in []byte) []byte {
	out := make([]byte, 0, len(in)+len(pasteEnd))
	for _, b := range in {
		out = append(out, b)
		k.recent = append(k.recent, b)
		if len(k.recent) > len(pasteStart) {
			k.recent = k.recent[1:]
		}
		switch {
		case !k.inPaste && string(k.recent) == pasteStart:
			k.inPaste, k.pasted = true, 0
		case k.inPaste && string(k.recent) == pasteEnd:
			k.inPaste = false
		case k.inPaste:
			if k.pasted++; k.pasted >= maxPasteBytes {
				out = append(out, pasteEnd...)
				k.inPaste = false
			}
		}
	}
	return out
}
