package server

import (
	"bytes"
	"context"
	"io"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/time/rate"

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
//   - every read is signalled, so idleness is measured by what the person
//     types, not by what the server draws.
type keyboard struct {
	bytes  *rate.Limiter
	typed  chan struct{}
	chunks chan []byte // what the client sent, in order; closed at its end
	queued atomic.Int64
	// interrupted and dropped signal a Ctrl+C and input that did not fit;
	// receive never waits on them, whatever the program is doing.
	interrupted chan struct{}
	dropped     chan struct{}
	// ctx ends with stop: Read then returns io.EOF at once, so the
	// parser's read loop does not outlive the program.
	ctx  context.Context
	stop context.CancelFunc

	// Used by Read only.
	unread  []byte // the rest of the chunk being handed on
	pending []byte // processed bytes not yet handed out
	recent  []byte // the last bytes seen, to find markers split across reads
	inPaste bool
	pasted  int
}

const (
	maxKeyboardRead = 255
	maxQueuedBytes  = 32 << 10
	maxPasteBytes   = 16 << 10
	// pasteIdle is long enough for a paste over a slow link to pause, and
	// short enough that a paste whose end never comes does not keep the
	// keyboard for long (Ctrl+C works throughout).
	pasteIdle  = 10 * time.Second
	pasteStart = "\x1b[200~"
	pasteEnd   = "\x1b[201~"
	ctrlC      = 0x03
)

func newKeyboard(bytesPerSecond int) *keyboard {
	ctx, stop := context.WithCancel(context.Background())
	return &keyboard{
		bytes: rate.NewLimiter(rate.Limit(bytesPerSecond), max(bytesPerSecond, maxKeyboardRead)),
		typed: make(chan struct{}, 1),
		// Typing arrives a key or two per read; the byte bound is the
		// one that holds against floods.
		chunks:      make(chan []byte, 256),
		interrupted: make(chan struct{}, 1),
		dropped:     make(chan struct{}, 1),
		ctx:         ctx,
		stop:        stop,
	}
}

// receive reads everything the client sends until it ends, queueing what
// fits.
func (k *keyboard) receive(in io.Reader) {
	defer close(k.chunks)
	buf := make([]byte, 4096)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			signal(k.typed)
			if bytes.IndexByte(buf[:n], ctrlC) >= 0 {
				signal(k.interrupted)
			}
			k.enqueue(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (k *keyboard) enqueue(data []byte) {
	if k.queued.Load()+int64(len(data)) > maxQueuedBytes {
		signal(k.dropped)
		return
	}
	select {
	case k.chunks <- bytes.Clone(data):
		k.queued.Add(int64(len(data)))
	default:
		signal(k.dropped)
	}
}

// Read hands the queued input to the parser, throttled, at most
// maxKeyboardRead bytes at a time, each piece paid for as it goes.
func (k *keyboard) Read(p []byte) (int, error) {
	p = p[:min(len(p), maxKeyboardRead)]
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
		k.pending = k.boundPastes(piece)
		if k.wait(k.bytes, len(piece)) != nil {
			return 0, io.EOF
		}
	}
	n := copy(p, k.pending)
	k.pending = k.pending[n:]
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
	select {
	case chunk, ok = <-k.chunks:
		k.queued.Add(-int64(len(chunk)))
		return chunk, ok
	case <-quiet:
		k.inPaste = false
		return []byte(pasteEnd), true
	case <-k.ctx.Done():
		return nil, false
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
