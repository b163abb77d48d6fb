package store

import (
	"context"
	"fmt"
	"github.com/ssh-burn/chat/internal/safetext"
	"strconv"
	"sync"
	"time"
)

// eventBuffer is how many undelivered events a seat may hold. A seat that
// falls this far behind is evicted rather than allowed to stall the room; one
// slot is kept free so the EndedEvent always fits.
const eventBuffer = 128

// Memory is a Store that keeps everything in this process. It is the
// embedded default for a single server.
type Memory struct {
	ttl time.Duration

	mu     sync.Mutex
	rooms  map[RoomID]*memRoom
	closed bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store whose rooms live for ttl.
func NewMemory(ttl time.Duration) *Memory {
	return &Memory{ttl: ttl, rooms: make(map[RoomID]*memRoom)}
}

type memRoom struct {
	store *Memory
	room  Room
	timer *time.Timer

	mu      sync.Mutex
	ended   bool
	seats   []*memSeat
	history []Message // at most HistoryLimit, oldest first
	nextID  uint64
}

type memSeat struct {
	room     *memRoom
	snapshot Snapshot
	events   chan Event
	// gone is set, under room.mu, once events is closed.
	gone bool
}

// Create implements Store.
func (m *Memory) Create(context.Context) (Room, error) {
	now := time.Now()
	r := &memRoom{store: m, room: Room{CreatedAt: now, ExpiresAt: now.Add(m.ttl)}}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Room{}, ErrClosed
	}
	for {
		r.room.ID = NewRoomID()
		if _, taken := m.rooms[r.room.ID]; !taken {
			break
		}
	}
	m.rooms[r.room.ID] = r
	r.timer = time.AfterFunc(m.ttl, func() { r.end(EndedEvent{Reason: EndExpired}) })
	return r.room, nil
}

// Join implements Store.
func (m *Memory) Join(_ context.Context, id RoomID) (Seat, error) {
	m.mu.Lock()
	r, ok := m.rooms[id]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if !ok {
		return nil, fmt.Errorf("join room: %w", ErrNotFound)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	// The deadline check covers the moment between expiry and the timer firing.
	if r.ended || !time.Now().Before(r.room.ExpiresAt) {
		return nil, fmt.Errorf("join room: %w", ErrNotFound)
	}
	if len(r.seats) >= Capacity {
		return nil, fmt.Errorf("join room: %w", ErrFull)
	}
	others := make([]Member, 0, len(r.seats))
	for _, s := range r.seats {
		others = append(others, s.snapshot.Me)
	}
	me := Member{ID: newMemberID(), Name: newMemberNameExcept(others)}
	s := &memSeat{
		room: r,
		snapshot: Snapshot{
			Room:    r.room,
			Me:      me,
			Others:  others,
			History: append([]Message(nil), r.history...),
		},
		events: make(chan Event, eventBuffer),
	}
	r.publishLocked(JoinedEvent{Member: me})
	r.seats = append(r.seats, s)
	return s, nil
}

// Len is the number of live rooms.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}

// Close ends every room: with the process gone, nothing of them survives.
func (m *Memory) Close() error {
	m.mu.Lock()
	m.closed = true
	rooms := make([]*memRoom, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	for _, r := range rooms {
		r.end(EndedEvent{Reason: EndShutdown})
	}
	return nil
}

// publishLocked delivers ev to every seat without ever blocking: a seat whose
// buffer is full is evicted (told why, and its partner sees it leave).
func (r *memRoom) publishLocked(ev Event) {
	var evicted []*memSeat
	for _, s := range r.seats {
		if len(s.events) < cap(s.events)-1 {
			s.events <- ev
		} else {
			evicted = append(evicted, s)
		}
	}
	for _, s := range evicted {
		s.closeLocked(EndedEvent{Reason: EndEvicted, RoomLivesOn: true})
		r.removeLocked(s)
		r.publishLocked(LeftEvent{Member: s.snapshot.Me})
	}
}

// closeLocked ends s's stream, with ev as its last event unless ev is nil.
func (s *memSeat) closeLocked(ev Event) {
	if s.gone {
		return
	}
	s.gone = true
	if ev != nil {
		s.events <- ev // the reserved slot
	}
	close(s.events)
}

func (r *memRoom) removeLocked(s *memSeat) {
	for i, x := range r.seats {
		if x == s {
			r.seats = append(r.seats[:i], r.seats[i+1:]...)
			return
		}
	}
}

// end deletes the room: every seat gets ev as its last event and every
// message is dropped. It is idempotent.
func (r *memRoom) end(ev EndedEvent) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.ended = true
	r.timer.Stop()
	for _, s := range r.seats {
		s.closeLocked(ev)
	}
	r.seats = nil
	clear(r.history)
	r.history = nil
	r.mu.Unlock()

	r.store.mu.Lock()
	delete(r.store.rooms, r.room.ID)
	r.store.mu.Unlock()
}

func (s *memSeat) Snapshot() Snapshot   { return s.snapshot }
func (s *memSeat) Events() <-chan Event { return s.events }

func (s *memSeat) Send(_ context.Context, body string) error {
	body = safetext.Sanitize(body)
	switch {
	case body == "":
		return ErrEmptyMessage
	case safetext.RuneCount(body) > safetext.MaxMessageRunes:
		return ErrMessageTooLong
	}
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.gone || r.ended || !time.Now().Before(r.room.ExpiresAt) {
		return fmt.Errorf("send message: %w", ErrEnded)
	}
	r.nextID++
	msg := Message{ID: strconv.FormatUint(r.nextID, 10), From: s.snapshot.Me, Body: body, At: time.Now()}
	if len(r.history) == HistoryLimit {
		// Shift in place rather than re-slicing, so dropped messages do
		// not linger in the backing array.
		copy(r.history, r.history[1:])
		r.history = r.history[:HistoryLimit-1]
	}
	r.history = append(r.history, msg)
	r.publishLocked(MessageEvent{Message: msg})
	return nil
}

func (s *memSeat) Destroy(context.Context) error {
	r := s.room
	r.mu.Lock()
	gone := s.gone || r.ended
	r.mu.Unlock()
	if gone {
		return fmt.Errorf("destroy room: %w", ErrEnded)
	}
	r.end(EndedEvent{Reason: EndDestroyed, By: s.snapshot.Me})
	return nil
}

func (s *memSeat) Leave(context.Context) error {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.gone {
		return nil
	}
	s.closeLocked(nil)
	r.removeLocked(s)
	r.publishLocked(LeftEvent{Member: s.snapshot.Me})
	return nil
}
