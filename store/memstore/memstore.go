// Package memstore is a store.Store that keeps everything in this process:
// the embedded default for a single server. Nothing of it reaches a disk,
// and nothing survives the process.
package memstore

import (
	"context"
	"crypto/hmac"
	"fmt"
	"slices"
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

	mu     sync.Mutex
	ended  bool
	closed bool // ended because the store closed
	// records are the seats of the room's members, present or away: in a
	// sealed room exactly the two who met; otherwise whoever is present
	// and at most one who left before anyone met.
	records []*record
	sealed  bool
	// givenAway is the key digests of the seats given to someone else
	// (Reopen): their keys get ErrGivenAway while the room lives. gaveAway
	// is the last such seat's person, whose animal the next newcomer's
	// name avoids.
	givenAway []string
	gaveAway  store.Member
	// history is the newest messages that fit store.HistoryLimit and
	// store.HistoryBytes, oldest first; historyCost is what they cost.
	history     []store.Message
	historyCost int
	// sent is every message ID the room stored, so a message sent twice
	// is kept once.
	sent map[store.MessageID]struct{}
}

// record is one member's seat. Only the digest of its key is kept.
type record struct {
	me     store.Member
	digest string
	seat   *seat // nil while its person is away
}

type seat struct {
	room     *room
	rec      *record
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

// live returns room id, locked, if it can be entered; the caller unlocks
// it. err is ErrClosed or ErrNotFound otherwise.
func (m *Store) live(id store.RoomID) (*room, error) {
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
	switch {
	case r.closed:
		r.mu.Unlock()
		return nil, store.ErrClosed
	// The deadline check covers the moment between expiry and the timer firing.
	case r.ended || !time.Now().Before(r.room.ExpiresAt):
		r.mu.Unlock()
		return nil, fmt.Errorf("join room: %w", store.ErrNotFound)
	}
	return r, nil
}

// Join implements store.Store.
func (m *Store) Join(_ context.Context, id store.RoomID) (store.Seat, error) {
	r, err := m.live(id)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	switch {
	case r.sealed:
		return nil, fmt.Errorf("join room: %w", store.ErrSealed)
	case r.presentLocked() >= store.Capacity:
		return nil, fmt.Errorf("join room: %w", store.ErrFull)
	}
	taken := make([]store.Member, 0, len(r.records)+1)
	for _, rec := range r.records {
		taken = append(taken, rec.me)
	}
	if r.gaveAway.ID != "" {
		taken = append(taken, r.gaveAway)
	}
	key := store.NewSeatKey(id)
	rec := &record{me: store.Member{ID: store.NewMemberID(), Name: store.NewMemberNameExcept(taken)}, digest: key.Digest(id)}
	r.records = append(r.records, rec)
	return r.seatLocked(rec, key, false), nil
}

// Rejoin implements store.Store.
func (m *Store) Rejoin(_ context.Context, id store.RoomID, key store.SeatKey) (store.Seat, error) {
	// The digest first, so an unknown room costs what a wrong key does.
	digest := key.Digest(id)
	r, err := m.live(id)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	var rec *record
	for _, x := range r.records {
		if hmac.Equal([]byte(x.digest), []byte(digest)) {
			rec = x
		}
	}
	if rec == nil && slices.ContainsFunc(r.givenAway, func(d string) bool { return hmac.Equal([]byte(d), []byte(digest)) }) {
		return nil, fmt.Errorf("join room: %w", store.ErrGivenAway)
	}
	if rec == nil {
		// Exactly what an unknown room answers. No key (the zero key)
		// lands here too: no seat has its digest.
		return nil, fmt.Errorf("join room: %w", store.ErrNotFound)
	}
	if old := rec.seat; old != nil {
		old.events.End(store.EndedEvent{Reason: store.EndReplaced, RoomLivesOn: true})
		rec.seat = nil
	}
	return r.seatLocked(rec, key, true), nil
}

// seatLocked seats rec's person, tells the others, and seals the room
// once two are in it.
func (r *room) seatLocked(rec *record, key store.SeatKey, back bool) *seat {
	s := &seat{
		room: r,
		rec:  rec,
		snapshot: store.Snapshot{
			Room:    r.room,
			Me:      rec.me,
			History: append([]store.Message(nil), r.history...),
			Key:     key,
			Back:    back,
		},
		events: store.NewQueue(),
	}
	for _, x := range r.records {
		switch {
		case x == rec:
		case x.seat != nil:
			s.snapshot.Others = append(s.snapshot.Others, x.me)
		case r.sealed:
			s.snapshot.Away = append(s.snapshot.Away, x.me)
		}
	}
	// Seated, and the room sealed, before the others are told: telling
	// them may evict one who fell behind, and that departure must find
	// the room as this join left it.
	rec.seat = s
	if !r.sealed && r.presentLocked() == store.Capacity {
		// The two have met: the seats are theirs, and nobody else's.
		r.sealed = true
		r.records = slices.DeleteFunc(r.records, func(x *record) bool { return x.seat == nil })
	}
	s.snapshot.Sealed = r.sealed
	r.publishLocked(store.JoinedEvent{Member: rec.me, Back: back}, s)
	return s
}

func (r *room) presentLocked() int {
	n := 0
	for _, rec := range r.records {
		if rec.seat != nil {
			n++
		}
	}
	return n
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

// publishLocked delivers ev to every seat present but except without ever
// blocking: a seat whose queue is full is evicted (told why, and the others
// see it leave).
func (r *room) publishLocked(ev store.Event, except *seat) {
	var evicted []*seat
	for _, rec := range r.records {
		if s := rec.seat; s != nil && s != except && !s.events.Push(ev) {
			evicted = append(evicted, s)
		}
	}
	for _, s := range evicted {
		s.events.End(store.EndedEvent{Reason: store.EndEvicted, RoomLivesOn: true})
		r.departLocked(s)
	}
}

// departLocked takes s, whose stream has ended, out of the room, and tells
// the others. In a sealed room its seat is kept for its person; otherwise
// it is free, and theirs to take back only until someone else's seat is.
func (r *room) departLocked(s *seat) {
	if s.rec.seat != s {
		return // replaced by the same person's newer connection
	}
	s.rec.seat = nil
	if !r.sealed {
		r.records = slices.DeleteFunc(r.records, func(x *record) bool { return x.seat == nil && x != s.rec })
	}
	r.publishLocked(store.LeftEvent{Member: s.snapshot.Me, Kept: r.sealed}, nil)
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
	for _, rec := range r.records {
		if rec.seat != nil {
			rec.seat.events.End(ev)
		}
	}
	r.records, r.givenAway = nil, nil
	clear(r.history)
	r.history, r.historyCost = nil, 0
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
	r.keepLocked(msg)
	r.publishLocked(store.MessageEvent{Message: msg}, nil)
	return nil
}

// keepLocked adds msg to the history, after trimming the oldest messages
// until it fits both the count and the byte budget.
func (r *room) keepLocked(msg store.Message) {
	cost := store.MessageCost(msg.Body)
	drop := 0
	for drop < len(r.history) && (len(r.history)-drop >= store.HistoryLimit || r.historyCost+cost > store.HistoryBytes) {
		r.historyCost -= store.MessageCost(r.history[drop].Body)
		drop++
	}
	// Shift in place rather than re-slicing, so dropped messages do not
	// linger in the backing array.
	n := copy(r.history, r.history[drop:])
	clear(r.history[n:])
	r.history = append(r.history[:n], msg)
	r.historyCost += cost
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
	r.departLocked(s)
	return nil
}

func (s *seat) Typing(_ context.Context, typing bool) error {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.events.Ended() || r.ended {
		return fmt.Errorf("typing: %w", store.ErrEnded)
	}
	for _, rec := range r.records {
		if rec.seat != nil && rec.seat != s {
			rec.seat.events.Offer(store.TypingEvent{Member: s.snapshot.Me, Typing: typing})
		}
	}
	return nil
}

func (s *seat) Reopen(context.Context) error {
	r := s.room
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.events.Ended() || r.ended {
		return fmt.Errorf("reopen seat: %w", store.ErrEnded)
	}
	i := slices.IndexFunc(r.records, func(x *record) bool { return x != s.rec })
	if !r.sealed || i < 0 || r.records[i].seat != nil {
		return fmt.Errorf("reopen seat: %w", store.ErrNothingToReopen)
	}
	away := r.records[i].me
	r.givenAway = append(r.givenAway, r.records[i].digest)
	r.gaveAway = away
	r.records = slices.Delete(r.records, i, i+1)
	r.sealed = false
	r.publishLocked(store.ReopenedEvent{Member: away}, nil)
	return nil
}
