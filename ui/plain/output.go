package plain

import (
	"errors"
	"io"
	"sync"
	"time"
)

// ErrStuck is Run's answer when what it wrote did not go out in time:
// the client takes nothing more. Close what it writes to, which ends the
// write still under way, and write nothing more to it.
var ErrStuck = errors.New("plain: the terminal takes nothing more")

const (
	// maxQueuedOutput bounds what waits for a client that reads slowly
	// (or not at all): far more than a room's history, which is the most
	// a chat says at once.
	maxQueuedOutput = 512 << 10
	// closeWait bounds how long the end of a chat waits for what it said
	// to go out.
	closeWait = 5 * time.Second
)

// output writes a chat's lines in a goroutine of its own, so the chat
// never waits on a client that reads slowly: what it has not written yet
// waits in a queue of at most maxQueuedOutput bytes, beyond which the
// client is taken for gone.
type output struct {
	w io.Writer

	mu      sync.Mutex
	queue   []byte
	closed  bool
	broken  bool
	ready   chan struct{} // something was queued, or the output closed
	failed  chan struct{} // closed when a write failed or the queue overflowed
	drained chan struct{} // closed when the writer has ended
}

func newOutput(w io.Writer, guard func(what string)) *output {
	o := &output{w: w, ready: make(chan struct{}, 1), failed: make(chan struct{}), drained: make(chan struct{})}
	go func() {
		defer guard("plain output")
		o.run()
	}()
	return o
}

// write queues s.
func (o *output) write(s string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.broken {
		return
	}
	if len(o.queue)+len(s) > maxQueuedOutput {
		o.breakLocked()
		return
	}
	o.queue = append(o.queue, s...)
	select {
	case o.ready <- struct{}{}:
	default:
	}
}

func (o *output) breakLocked() {
	if !o.broken {
		o.broken = true
		o.queue = nil
		close(o.failed)
	}
}

func (o *output) run() {
	defer close(o.drained)
	for {
		o.mu.Lock()
		chunk := o.queue
		o.queue = nil
		closed, broken := o.closed, o.broken
		o.mu.Unlock()
		if broken {
			return
		}
		if len(chunk) > 0 {
			if _, err := o.w.Write(chunk); err != nil {
				o.mu.Lock()
				o.breakLocked()
				o.mu.Unlock()
				return
			}
			continue
		}
		if closed {
			return
		}
		<-o.ready
	}
}

// close takes nothing more and waits, at most closeWait, for what was
// queued to be written: ErrStuck if it was not, errBroken if writing
// failed. Nothing is written after it returns nil.
func (o *output) close() error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.ready <- struct{}{}:
	default:
	}
	timer := time.NewTimer(closeWait)
	defer timer.Stop()
	select {
	case <-o.drained:
	case <-timer.C:
		return ErrStuck
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.broken {
		return errBroken
	}
	return nil
}

// errBroken: writing to the client failed, or it read too little for
// too long.
var errBroken = errors.New("plain: the connection is gone")
