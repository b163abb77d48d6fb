// Package store is the contract between the chat and wherever rooms are
// kept: the Store and Seat interfaces, the domain types, the sentinel errors
// callers act on, room IDs, anonymous names and the per-seat event queue
// every backend uses. It knows nothing of SSH, terminals or any database;
// the backends live in packages of their own (memstore, redisstore) and
// storetest holds the behaviour every one of them must show.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ssh-burn/chat/internal/safetext"
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
	// ErrBadMessageID: the message ID is not one NewMessageID makes.
	ErrBadMessageID = errors.New("malformed message ID")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrUnavailable: the shared store cannot be reached right now. Whether
	// a Send that returned it was stored is unknown: send the same message
	// ID again (once the store is back) and it is stored at most once.
	ErrUnavailable = errors.New("room store is unreachable")
	// ErrServiceFull: the shared store is out of memory, so it takes no new
	// rooms, seats or messages until it has room again. Nothing was stored;
	// people already seated keep their seats.
	ErrServiceFull = errors.New("the service is full right now")
	// ErrTooFast: the sender posts faster than the server allows. It is the
	// server's policy, enforced around the seat, not a store's; it is
	// declared here so the screen can tell it apart without knowing the
	// server. Nothing was stored.
	ErrTooFast = errors.New("messages sent too fast")
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
	// ID is the one the sender chose with NewMessageID when composing it:
	// a message is stored at most once per ID, however often it is sent.
	ID   MessageID
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

// ReconnectingEvent: this seat lost its link to the shared store. The seat
// is kept; messages sent meanwhile fail with ErrUnavailable and can be sent
// again, under the same ID, once it is back.
type ReconnectingEvent struct{}

// ReconnectedEvent: the link is back and every event missed meanwhile was
// delivered, in order, before this one.
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
	// EndLeaseLost: the seat was given up because this server could not
	// vouch for it: it was cut off from the shared store for longer than
	// the outage tolerance, or alone for longer than a seat's lease (which
	// the other servers cannot tell from its death). The room may live on.
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
	// Close ends every seat this store handed out that is still open with
	// an EndedEvent of reason EndShutdown, and gives each seat up (partners
	// served by other stores on the same backend see it leave) before it
	// returns. After that Create and Join fail with ErrClosed, Leave of any
	// seat returns nil, and nothing of the store runs any more: no timer,
	// goroutine or connection of its own. Close is idempotent and safe to
	// call concurrently; every call returns once the store is closed.
	//
	// Seats ended by Close are not left by anyone: callers that want their
	// people told something better than "shutting down" (and partners to
	// see them leave in the order they go) Leave their seats first.
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
	// Send sanitises body and posts it to the room under id, which the
	// caller made with NewMessageID when the message was composed. A message
	// is stored at most once per id: sending an id that is stored already
	// returns nil and stores nothing, so a send whose outcome is unknown
	// (ErrUnavailable, a timeout) can be repeated safely. The sender
	// receives its own message through Events like everyone else.
	Send(ctx context.Context, id MessageID, body string) error
	// Destroy deletes the room and everything in it for both members; when it
	// returns nothing of the room remains in the store.
	Destroy(ctx context.Context) error
	// Leave gives up the seat. It is idempotent and safe after the room
	// ended or the store closed. When the shared store cannot be reached,
	// the seat is given up as soon as it can be, and Leave returns nil.
	Leave(ctx context.Context) error
}

// CleanMessage is what every store does to a body before it keeps it: it
// sanitises it (see safetext.Sanitize) and refuses what is left empty
// (ErrEmptyMessage) or too long (ErrMessageTooLong).
func CleanMessage(body string) (string, error) {
	body = safetext.Sanitize(body)
	switch {
	case body == "":
		return "", ErrEmptyMessage
	case safetext.RuneCount(body) > safetext.MaxMessageRunes:
		return "", ErrMessageTooLong
	}
	return body, nil
}

// MessageID names one message a person composed, so that sending it again
// after an unknown outcome never posts it twice. It is random, never shown
// and unique within a room.
type MessageID string

// messageIDLen is the length of a MessageID: 80 random bits.
const messageIDLen = 16

// NewMessageID returns a fresh message ID.
func NewMessageID() MessageID { return MessageID(randomChars(messageIDLen)) }

// Valid reports whether id is shaped like one NewMessageID makes. Stores
// check it before using an ID in a key or a stream entry.
func (id MessageID) Valid() bool {
	if len(id) != messageIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if idValue[id[i]] < 0 || idAlphabet[idValue[id[i]]] != id[i] {
			return false
		}
	}
	return true
}

// CheckMessageID returns a wrapped ErrBadMessageID unless id is Valid.
func CheckMessageID(id MessageID) error {
	if !id.Valid() {
		return fmt.Errorf("send message: %w", ErrBadMessageID)
	}
	return nil
}
