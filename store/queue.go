package store

import "sync"

// EventBuffer is how many undelivered events a seat may hold. A seat that
// falls this far behind is evicted rather than allowed to stall the room;
// one slot is kept free so the EndedEvent always fits.
const EventBuffer = 128

// Queue is one seat's stream of events, as every backend delivers it: it
// never blocks whoever pushes, and it always has room for the final
// EndedEvent, which is the one rule of a seat's stream written here once.
// Its methods are safe for concurrent use; Events is read by the seat's
// owner.
type Queue struct {
	mu    sync.Mutex
	ch    chan Event
	ended bool
}

// NewQueue returns an empty, open queue.
func NewQueue() *Queue { return &Queue{ch: make(chan Event, EventBuffer)} }

// Events is the stream: every pushed event in order, then the final one,
// then closed.
func (q *Queue) Events() <-chan Event { return q.ch }

// Push queues ev without blocking. It reports false when the reader has
// fallen a whole buffer behind: ev was not queued, and the caller must
// evict the seat (End it with EndEvicted). After End, Push drops ev and
// reports true: there is nothing left to evict.
func (q *Queue) Push(ev Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.ended:
		return true
	case len(q.ch) >= cap(q.ch)-1:
		return false // the last slot is the final event's
	}
	q.ch <- ev
	return true
}

// Offer queues a hint (a TypingEvent) without blocking, only while the
// reader is keeping up (the queue is less than half full): a hint is never
// worth evicting a seat for. It reports whether ev was queued.
func (q *Queue) Offer(ev Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended || len(q.ch) >= cap(q.ch)/2 {
		return false
	}
	q.ch <- ev
	return true
}

// End closes the stream, with final as its last event unless it is nil.
// It reports whether this call ended it; later calls do nothing.
func (q *Queue) End(final Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return false
	}
	q.ended = true
	if final != nil {
		q.ch <- final // the reserved slot: never blocks
	}
	close(q.ch)
	return true
}

// Ended reports whether End was called.
func (q *Queue) Ended() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ended
}
