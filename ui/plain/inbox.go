package plain

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxQueuedInput bounds what the client sent and the chat has not
	// taken yet: read as it comes (the SSH channel's window would
	// otherwise let a client park megabytes in the server), and dropped
	// beyond this, a line at a time.
	maxQueuedInput = 32 << 10
	// receiveBuffer is what the reader reads with.
	receiveBuffer = 1 << 10
	ctrlC         = 0x03
)

// inbox is what the client sent and the chat has not taken yet. What does
// not fit is dropped, and the chat told where, so that it drops the
// line it fell in whole: no message is ever made of two lines' pieces.
type inbox struct {
	last atomic.Int64 // unix nanoseconds of the last read

	mu      sync.Mutex
	queue   [][]byte
	queued  int
	dropped bool // something was dropped after what is queued
	ended   bool
	ready   chan struct{} // something to take, or the end
	// interrupt: ctrl+c came, which leaves at once, whatever waits
	// before it.
	interrupt chan struct{}
}

func newInbox() *inbox {
	b := &inbox{ready: make(chan struct{}, 1), interrupt: make(chan struct{}, 1)}
	b.last.Store(time.Now().UnixNano())
	return b
}

// receive reads everything the client sends until it ends.
func (b *inbox) receive(in io.Reader) {
	defer b.end()
	buf := make([]byte, receiveBuffer)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			b.last.Store(time.Now().UnixNano())
			if bytes.IndexByte(buf[:n], ctrlC) >= 0 {
				signal(b.interrupt)
			}
			b.enqueue(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (b *inbox) enqueue(data []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.queued+len(data) > maxQueuedInput {
		b.dropped = true
		signal(b.ready)
		return
	}
	if b.dropped {
		// What follows a drop goes in a chunk of its own, which the
		// chat takes knowing that something was lost before it.
		b.queue = append(b.queue, nil)
		b.dropped = false
	}
	// Small reads (a client sending a byte at a time) are joined, so the
	// bound in bytes bounds memory too.
	if last := len(b.queue) - 1; last >= 0 && b.queue[last] != nil && len(b.queue[last])+len(data) <= receiveBuffer {
		b.queue[last] = append(b.queue[last], data...)
	} else {
		b.queue = append(b.queue, bytes.Clone(data))
	}
	b.queued += len(data)
	signal(b.ready)
}

func (b *inbox) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	signal(b.ready)
}

// take returns the oldest chunk, at most limit bytes of it; lost: input
// was dropped just before it; ended: nothing is queued and nothing more
// will come.
func (b *inbox) take(limit int) (data []byte, lost, ended bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.queue) > 0 && b.queue[0] == nil {
		lost = true
		b.queue = b.queue[1:]
	}
	if len(b.queue) == 0 {
		b.queue = nil // an idle inbox keeps no array
		if b.dropped {
			lost, b.dropped = true, false
		}
		return nil, lost, b.ended
	}
	chunk := b.queue[0]
	if len(chunk) > limit {
		data, b.queue[0] = chunk[:limit], chunk[limit:]
	} else {
		data = chunk
		b.queue = b.queue[1:]
	}
	b.queued -= len(data)
	if len(b.queue) > 0 {
		signal(b.ready)
	}
	return data, lost, false
}

// lastInput is when the client last sent anything.
func (b *inbox) lastInput() time.Time { return time.Unix(0, b.last.Load()) }

// signal wakes whoever waits on c, once.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
