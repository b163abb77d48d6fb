package screen

import (
	"io"
	"sync"
	"time"
)

// idleWriterFor is how long a writer waits for a frame before it ends: a
// busy server's writers never wait that long (its clock alone wakes
// screens every few milliseconds), and a quiet one keeps no goroutines it
// does not use.
const idleWriterFor = 10 * time.Second

// Writers write the frames of many screens on goroutines kept from one
// frame to the next.
//
// A goroutine started for each frame begins with a small stack, and the
// write path of an SSH channel (its cipher, its packet buffer) grows it on
// every frame, copying it two or three times: with 10,000 screens each
// ticking once a second, that was a tenth of the server's CPU. A frame goes
// to an idle writer when there is one, and otherwise to a goroutine of its
// own, which afterwards stays as an idle writer if fewer than the bound
// are: a client that reads nothing holds up only the goroutine writing its
// own frame, never another screen's.
type Writers struct {
	work chan func() // unbuffered: taken only by an idle writer

	mu      sync.Mutex
	idle    int // writers waiting for work
	maxIdle int
	closed  bool
	stop    chan struct{}
	members sync.WaitGroup // the idle writers, for Close
}

// NewWriters returns writers that keep at most maxIdle goroutines waiting
// for frames. Close them once no screen draws any more.
func NewWriters(maxIdle int) *Writers {
	return &Writers{work: make(chan func()), maxIdle: maxIdle, stop: make(chan struct{})}
}

// Screen returns a screen of width×height cells that draws on out, its
// frames written by w.
func (w *Writers) Screen(out io.Writer, width, height int) *Screen {
	s := New(out, width, height)
	s.writers = w
	return s
}

// run has write run by an idle writer, or by a new goroutine.
func (w *Writers) run(write func()) {
	select {
	case w.work <- write:
	default:
		go w.writer(write)
	}
}

// writer runs write, then waits for more as an idle writer, unless enough
// are idle, w is closed, or no frame comes for idleWriterFor.
func (w *Writers) writer(write func()) {
	idle := time.NewTimer(idleWriterFor) // one per writer, reset per frame
	defer idle.Stop()
	for {
		write()
		if !w.join() {
			return
		}
		idle.Reset(idleWriterFor)
		select {
		case write = <-w.work:
			w.leave()
		case <-idle.C:
			w.leave()
			return
		case <-w.stop:
			w.leave()
			return
		}
	}
}

// join counts the calling goroutine as an idle writer, if there is room.
func (w *Writers) join() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.idle >= w.maxIdle {
		return false
	}
	w.idle++
	w.members.Add(1)
	return true
}

// leave uncounts an idle writer that took work or is stopping.
func (w *Writers) leave() {
	w.mu.Lock()
	w.idle--
	w.mu.Unlock()
	w.members.Done()
}

// Close stops the idle writers and waits until they have ended. It is
// idempotent. A frame drawn after it is written by a goroutine of its own,
// which ends with it.
func (w *Writers) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
	w.mu.Unlock()
	w.members.Wait()
}
