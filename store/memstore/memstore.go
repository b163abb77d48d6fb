// Package memstore is a store.Store that keeps everything in this process:
// the embedded default for a single server. Nothing of it reaches a disk,
// and nothing survives the process.
package memstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ssh-burn/chat/store"
)

// Store keeps rooms in memory.
type Store struct {
	ttl time.Duration

	mu     sync.Mutex
	rooms  map[store.RoomID]*room
	closed bool
	// running counts timer callbacks at work, so Close can wait for them:
	// nothing of the store runs after Close returns.
	running sync.WaitGroup
}

var _ store.Store = (*Store)(nil)

// New returns an empty store whose rooms live for ttl.
func New(ttl time.Duration) *Store {
	return &Store{ttl: ttl, rooms: make(map[store.RoomID]*room)}
}

type room struct {
	store *Store
	room  store.Room
	timer *time.Timer

	mu      sync.Mutex
	ended   bool
	closed  bool // ended because the store closed
	seats   []*seat
	history []store.Message // at most store.HistoryLimit, oldest first
	// sent is every message ID the room stored, so a message sent twice
	// is kept once.
	sent map[store.MessageID]struct{}
}

type seat struct {
	room     *room
	snapshot store.Snapshot
	events   *store.Queue
}

// Create implements store.Store.
func (m *Store) Create(context.Context) (store.Room, error) {
	now := time.Now()
	r := &room{store: m, room: store.Room{CreatedAt: now, ExpiresAt: now.Add(m.ttl)}, sent: make(map[store.MessageID]struct{})}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.Room{}, store.ErrClosed
	}
	for {
		r.room.ID = store.NewRoomID()
		if _, taken := m.rooms[r.room.ID]; !taken {
			break
		}
	}
	m.rooms[r.room.ID] = r
	r.timer = time.AfterFunc(m.ttl, func() { m.run(func() { r.end(store.EndedEvent{Reason: store.EndExpired}) }) })
	return r.room, nil
}

// run runs f unless the store is closed, and lets Close wait for it.
func (m *Store) run(f func()) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.running.Add(1)
	m.mu.Unlock()
	defer m.running.Done()
	f()
}

// Join implements store.Store.
func (m *Store) Join(_ context.Context, id store.RoomID) (store.Seat, error) {
	m.mu.Lock()
	r, ok := m.rooms[id]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, store.ErrClosed
	}
	if !ok {
		return nil, fmt.Errorf("join room: %w", store.ErrNotFound)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return nil, store.ErrClosed
	// The deadline check covers the moment between expiry and the timer firing.
	case r.ended || !time.Now().Before(r.room.ExpiresAt):
		return nil, fmt.Errorf("join room: %w", store.ErrNotFound)
	case len(r.seats) >= store.Capacity:
		return nil, fmt.Errorf("join room: %w", store.ErrFull)
	}
	others := make([]store.Member, 0, len(r.seats))
	for _, s := range r.seats {
		others = append(others, s.snapshot.Me)
	}
	me := store.Member{ID: store.NewMemberID(), Name: store.NewMemberNameExcept(others)}
	s := &seat{
		room: r,
		snapshot: store.Snapshot{
			Room:    r.room,
			Me:      me,
			Others:  others,
			History: append([]store.Message(nil), r.history...),
		},
		events: store.NewQueue(),
	}
	r.publishLocked(store.JoinedEvent{Member: me})
	r.seats = append(r.seats, s)
	return s, nil
}

// Len is the number of live rooms.
func (m *Store) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}

// HasRoom reports whether m still holds anything of room id.
func (m *Store) HasRoom(id store.RoomID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.rooms[id]
	return ok
}

// Health reports whether the store serves: always, while it is open.
func (m *Store) Health() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return store.ErrClosed
	}
	return nil
}

// Close ends every room: with the process gone, nothing of them survives.
// It is idempotent, and returns once no timer of the store runs.
func (m *Store) Close() error {
	m.mu.Lock()
	m.closed = true
	rooms := make([]*room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	for _, r := range rooms {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.end(store.EndedEvent{Reason: store.EndShutdown})
	}
	// A timer that fired before the store closed may still be ending its
	// room; after this nothing of the store runs.
	m.running.Wait()
	return nil
}

// publishLocked delivers ev to every seat without ever blocking: a seat
// whose queue is full is evicted (told why, and its partner sees it leave).
func (r *room) publishLocked(ev store.Event) {
	var evicted []*seat
	for _, s := range r.seats {
		if !s.events.Push(ev) {
			evicted = append(evicted, s)
		}
	}
	for _, s := range evicted {
		s.events.End(store.EndedEvent{Reason: store.EndEvicted, RoomLivesOn: true})
		r.removeLocked(s)
		r.publishLocked(store.LeftEvent{Member: s.snapshot.Me})
	}
}

func (r *room) removeLocked(s *seat) {
	for i, x := range r.seats {
		if x == s {
			r.seats = append(r.seats[:i], r.seats[i+1:]...)
			return
		}
	}
}

// end deletes the room: every seat gets ev as its last event and every
// message is dropped. It is idempotent.
func (r *room) end(ev store.EndedEvent) {
	r.mu.Lock()
	if r.ended {
		r.mu.Unlock()
		return
	}
	r.ended = true
	r.timer.Stop()
	for _, s := range r.seats {
		s.events.End(ev)
	}
	r.seats = nil
	clear(r.history)
	r.history = nil
	clear(r.sent)
	r.mu.Unlock()

	r.store.mu.Lock()
	delete(r.store.rooms, r.room.ID)
	r.store.mu.Unlock()
}

func (s *seat) Snapshot() store.Snapshot   { return s.snapshot }
func (s *seat) Events() <-chan store.Event { return s.events.Events() }

func (s *seat) Send(_ context.Context, id store.MessageID, body string) error {
	if err := store.CheckMessageID(id); err != nil {
		return err
	}
	body, err := store.CleanMessage(body)
	if err != nil {
		return err
	}
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, stored := r.sent[id]; stored {
		return nil
	}
	if s.events.Ended() || r.ended || !time.Now().Before(r.room.ExpiresAt) {
		return fmt.Errorf("send message: %w", store.ErrEnded)
	}
	r.sent[id] = struct{}{}
	msg := store.Message{ID: id, From: s.snapshot.Me, Body: body, At: time.Now()}
	if len(r.history) == store.HistoryLimit {
		// Shift in place rather than re-slicing, so dropped messages do
		// not linger in the backing array.
		copy(r.history, r.history[1:])
		r.history = r.history[:store.HistoryLimit-1]
	}
	r.history = append(r.history, msg)
	r.publishLocked(store.MessageEvent{Message: msg})
	return nil
}

func (s *seat) Destroy(context.Context) error {
	r := s.room
	r.mu.Lock()
	gone := s.events.Ended() || r.ended
	r.mu.Unlock()
	if gone {
		return fmt.Errorf("destroy room: %w", store.ErrEnded)
	}
	r.end(store.EndedEvent{Reason: store.EndDestroyed, By: s.snapshot.Me})
	return nil
}

func (s *seat) Leave(context.Context) error {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.events.End(nil) {
		return nil
	}
	r.removeLocked(s)
	r.publishLocked(store.LeftEvent{Member: s.snapshot.Me})
	return nil
}
