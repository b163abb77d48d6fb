// Package store holds rooms: who sits in them, what was said, and when they
// end. It knows nothing of SSH or terminals; the server and the UI reach it
// only through the Store and Seat interfaces, so an in-memory store and a
// shared one behave the same to them (see storetest for the contract).
package store

import (
	"context"
	"errors"
	"time"
)

// Capacity is how many people a room seats at once.
const Capacity = 2

// HistoryLimit is how many of a room's most recent messages a joiner receives.
const HistoryLimit = 256

// Sentinel errors for states a caller acts on.
var (
	// ErrNotFound: the room never existed, expired or was destroyed.
	ErrNotFound = errors.New("no such room")
	// ErrFull: both seats of the room are taken.
	ErrFull = errors.New("room is full")
	// ErrEnded: the seat is no longer in a live room (it left, or the room ended).
	ErrEnded = errors.New("seat has ended")
	// ErrEmptyMessage: nothing printable was left of the message.
	ErrEmptyMessage = errors.New("message is empty")
	// ErrMessageTooLong: the message exceeds safetext.MaxMessageRunes.
	ErrMessageTooLong = errors.New("message is too long")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrUnavailable: the shared store cannot be reached right now; the
	// same call may succeed once it is back.
	ErrUnavailable = errors.New("room store is unreachable")
)

// Room is the public description of a room.
type Room struct {
	ID        RoomID
	CreatedAt time.Time
	// ExpiresAt is absolute: activity never extends it.
	ExpiresAt time.Time
}

// Member is one seat holder. ID is unique within the room and never shown;
// Name is the server-assigned anonymous name.
type Member struct {
	ID   string
	Name string
}

// Message is one accepted chat message. Body is already sanitised.
type Message struct {
	ID   string // opaque, unique within the room
	From Member
	Body string
	At   time.Time
}

// Snapshot is what a joiner learns at the moment of joining. Events on the
// seat continue exactly where History stops: no gap and no duplicate.
type Snapshot struct {
	Room    Room
	Me      Member
	Others  []Member  // who else is seated right now
	History []Message // oldest first, at most HistoryLimit
}

// Event is one thing that happened in a room, delivered to every seat in the
// same order. It is one of MessageEvent, JoinedEvent, LeftEvent, EndedEvent,
// or, from a shared store only, ReconnectingEvent and ReconnectedEvent.
type Event interface{ isEvent() }

// MessageEvent: someone (possibly this seat) posted a message.
type MessageEvent struct{ Message Message }

// JoinedEvent: someone took the other seat.
type JoinedEvent struct{ Member Member }

// LeftEvent: someone gave up their seat; it is free again.
type LeftEvent struct{ Member Member }

// EndedEvent is the last event of a seat's stream: the seat is over.
type EndedEvent struct {
	Reason EndReason
	// By is who destroyed the room, for EndDestroyed. It is zero when the
	// store does not know.
	By Member
	// RoomLivesOn: only the seat ended; the room can still be joined.
	RoomLivesOn bool
}

// ReconnectingEvent: this seat lost its link to the shared store. Messages
// cannot be sent until ReconnectedEvent; nothing already sent is lost.
type ReconnectingEvent struct{}

// ReconnectedEvent: the link is back and every missed event was delivered.
type ReconnectedEvent struct{}

func (MessageEvent) isEvent()      {}
func (ReconnectingEvent) isEvent() {}
func (ReconnectedEvent) isEvent()  {}
func (JoinedEvent) isEvent()       {}
func (LeftEvent) isEvent()         {}
func (EndedEvent) isEvent()        {}

// EndReason says why a seat's stream ended.
type EndReason int

const (
	// EndExpired: the room reached its deadline and is deleted.
	EndExpired EndReason = iota + 1
	// EndDestroyed: a member destroyed the room and it is deleted.
	EndDestroyed
	// EndEvicted: this seat fell too far behind its events and was dropped;
	// the room lives on.
	EndEvicted
	// EndShutdown: the store was closed under the seat.
	EndShutdown
	// EndLeaseLost: this server was cut off from the shared store for longer
	// than a seat's lease, so the seat was given up; the room may live on.
	EndLeaseLost
	// EndVanished: the room disappeared without a word (the shared store lost
	// it, or it was destroyed while this server was cut off).
	EndVanished
)

func (r EndReason) String() string {
	switch r {
	case EndExpired:
		return "expired"
	case EndDestroyed:
		return "destroyed"
	case EndEvicted:
		return "evicted"
	case EndShutdown:
		return "shutdown"
	case EndLeaseLost:
		return "lease lost"
	case EndVanished:
		return "vanished"
	}
	return "unknown"
}

// Store creates rooms and seats people in them.
type Store interface {
	// Create opens an empty room that ends at a fixed deadline.
	Create(ctx context.Context) (Room, error)
	// Join takes a free seat in the room: ErrNotFound or ErrFull otherwise.
	// The seat check is atomic: concurrent joins never exceed Capacity.
	Join(ctx context.Context, id RoomID) (Seat, error)
	// Close ends every seat this store handed out with EndShutdown.
	Close() error
}

// Seat is one person's place in a room. Its methods are safe for concurrent
// use.
type Seat interface {
	// Snapshot is the room as it was when the seat was taken.
	Snapshot() Snapshot
	// Events delivers everything after the snapshot, in room order. It is
	// closed after an EndedEvent, or after Leave.
	Events() <-chan Event
	// Send sanitises body and posts it to the room. The sender receives its
	// own message through Events like everyone else.
	Send(ctx context.Context, body string) error
	// Destroy deletes the room and everything in it for both members; when it
	// returns nothing of the room remains in the store.
	Destroy(ctx context.Context) error
	// Leave gives up the seat. It is idempotent and safe after the room ended.
	Leave(ctx context.Context) error
}
