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

// HistoryBytes bounds, beside HistoryLimit, what a room keeps for joiners:
// the newest messages whose MessageCost adds up to at most this. Older ones
// are trimmed first, so a joiner sees the latest messages that fit.
const HistoryBytes = 64 << 10

// Costs in bytes of what a person makes a store keep: a store keeps each
// within a small factor of its figure, so that budgets in bytes (per room,
// per client address) bound memory rather than counts. They are what Redis
// really spends (BenchmarkRedisMemory in store/redisstore: the growth of
// used_memory over thousands of rooms, joins and messages), rounded up.
const (
	// RoomCost is what a room costs beside its joins and messages: an
	// empty room's keys (about 250 bytes), and the streams its first join
	// and first message make (Redis gives each a whole 4 KiB node at once:
	// 5.0 and 5.4 KiB more than a later join or message).
	RoomCost = 12 << 10
	// JoinCost is what taking a seat costs (the seat, the name, the log
	// entries of coming and going, the other replica's subscription):
	// 490-650 bytes measured; a leave and rejoin, 240.
	JoinCost = 768
	// messageOverhead is what a message costs beside its body: its IDs,
	// sender's sealed name, time, log entry and remembered ID (350 bytes
	// measured for the smallest class).
	messageOverhead = 320
)

// bodyClasses are the sizes a message body is padded to wherever it is
// kept sealed, so that the store learns a size class and not a length.
var bodyClasses = [...]int{64, 256, 1024, 2048, safetext.MaxMessageBytes}

// BodyCost is the size class of body: the bytes it takes once padded.
func BodyCost(body string) int {
	for _, c := range bodyClasses {
		if len(body) <= c {
			return c
		}
	}
	return len(body)
}

// MessageCost is what keeping a message with body costs a store, in bytes:
// its padded body, a quarter of that again (Redis's allocator rounds up the
// stream node a large body fills: a 4096-byte class costs 5.2 KiB, a
// 2048-byte one 2.6 KiB), and messageOverhead.
func MessageCost(body string) int {
	c := BodyCost(body)
	return c + c/4 + messageOverhead
}

// Sentinel errors for states a caller acts on.
var (
	// ErrNotFound: the room never existed, expired or was destroyed.
	ErrNotFound = errors.New("no such room")
	// ErrFull: both seats of the room are taken.
	ErrFull = errors.New("room is full")
	// ErrSealed: the two people who met in the room keep its seats; the
	// room ID alone admits nobody new.
	ErrSealed = errors.New("room is sealed")
	// ErrGivenAway: the key opened a seat that its room's other person
	// gave to someone else (Seat.Reopen) while its person was away. The
	// room lives on; the key opens nothing in it any more.
	ErrGivenAway = errors.New("seat was given to someone else")
	// ErrNothingToReopen: Reopen found no seat kept for someone away (the
	// room is not sealed, or the partner is in it).
	ErrNothingToReopen = errors.New("no kept seat to reopen")
	// ErrEnded: the seat is no longer in a live room (it left, or the room ended).
	ErrEnded = errors.New("seat has ended")
	// ErrEmptyMessage: nothing printable was left of the message.
	ErrEmptyMessage = errors.New("message is empty")
	// ErrMessageTooLong: the message exceeds safetext.MaxMessageRunes
	// characters or safetext.MaxMessageBytes bytes.
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
	// ErrOverBudget: the sender's address has made the service keep as
	// much as it may for now (its byte budget, refilled over time), or the
	// service is nearly full and keeps what is left for lighter writers.
	// Like ErrTooFast it is the server's policy; nothing was stored.
	ErrOverBudget = errors.New("too much sent from this address lately")
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
	// Key brings this person back into this seat (Store.Rejoin) for as
	// long as the store keeps it for them. It is theirs alone: never
	// shown to anyone else, logged or stored (stores keep its Digest).
	Key SeatKey
	// Back: this person came back to their seat (Store.Rejoin).
	Back bool
	// Sealed: the two people who met in the room keep its seats (see
	// Store.Join). Away is who of them is not in it right now; their seat
	// waits for them.
	Sealed bool
	Away   []Member
}

// Event is one thing that happened in a room, delivered to every seat in the
// same order. It is one of MessageEvent, JoinedEvent, LeftEvent,
// ReopenedEvent, EndedEvent, or, from a shared store only,
// ReconnectingEvent and ReconnectedEvent. TypingEvent is the exception to
// the order: it is a hint, delivered when it can be, and may be lost.
type Event interface{ isEvent() }

// MessageEvent: someone (possibly this seat) posted a message.
type MessageEvent struct{ Message Message }

// JoinedEvent: someone took the other seat. Back: they had a seat in this
// room before and came back to it with their key (Rejoin), under the same
// member ID and name.
type JoinedEvent struct {
	Member Member
	Back   bool
}

// LeftEvent: someone is no longer in the room. Kept: the room is sealed,
// so their seat waits for them (Rejoin); otherwise it is free again.
type LeftEvent struct {
	Member Member
	Kept   bool
}

// ReopenedEvent: the seat kept for Member, who was away, was given up by
// the one still present (Seat.Reopen); the room is no longer sealed, and
// Member's key opens nothing any more.
type ReopenedEvent struct{ Member Member }

// TypingEvent: Member has text in their input (Typing), or no longer.
// It is never stored. A Typing that is not renewed within TypingExpiry
// is to be taken as ended: the one that would end it may be lost.
type TypingEvent struct {
	Member Member
	Typing bool
}

// TypingExpiry is how long a TypingEvent with Typing set holds without
// being renewed; typists renew it well within that (see Seat.Typing).
const TypingExpiry = 6 * time.Second

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
func (ReopenedEvent) isEvent()     {}
func (TypingEvent) isEvent()       {}
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
	// EndReplaced: the same person came back to this seat from another
	// connection (Rejoin), which takes it over; the room lives on.
	EndReplaced
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
	case EndReplaced:
		return "replaced"
	}
	return "unknown"
}

// Store creates rooms and seats people in them.
//
// A room is sealed once two people have been in it together: from then on
// each of its two seats is kept for its person until the room ends, even
// while they are away, and only their key (Snapshot.Key) takes them back
// to it; the room ID alone admits nobody. Before that a seat given up is
// free for anyone with the room ID, though its person may still take it
// back with their key while nobody else has. Seat.Reopen unseals a room
// whose other person is away and lost their key.
type Store interface {
	// Create opens an empty room that ends at a fixed deadline.
	Create(ctx context.Context) (Room, error)
	// Join takes a free seat in the room as a new member with a new key:
	// ErrNotFound, ErrSealed or ErrFull otherwise. The seat check is
	// atomic: concurrent joins never exceed Capacity. A join that brings
	// two people together seals the room.
	Join(ctx context.Context, id RoomID) (Seat, error)
	// Rejoin takes back the seat that key opens in the room, as the same
	// member (ID and name), with the history. If that seat is in use (its
	// person's connection dropped without the store knowing yet, or they
	// came back from a second terminal), the seat in use ends with
	// EndReplaced: the newest connection wins. A key that opens no seat
	// there, and an unknown room, are both ErrNotFound, as alike as they
	// can be made: a wrong key tells nothing about the room. A key whose
	// seat was given away (Seat.Reopen) is ErrGivenAway until the room
	// ends: only its person ever held it, and they are owed the reason.
	Rejoin(ctx context.Context, id RoomID, key SeatKey) (Seat, error)
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
	// Typing tells the others whether this person has text in their input.
	// It is a hint, never stored: a TypingEvent for the seats present now,
	// delivered when it can be. Callers renew a true one well within
	// TypingExpiry while it holds, and keep to a few calls a second.
	Typing(ctx context.Context, typing bool) error
	// Reopen gives up the seat kept for the other person while they are
	// away: the room is no longer sealed, their key opens nothing
	// (ErrGivenAway), and anyone with the room ID may take the seat, under
	// a name whose animal differs from theirs. ErrNothingToReopen when
	// no seat is kept for someone away.
	Reopen(ctx context.Context) error
	// Leave gives up the seat: in a sealed room it is kept for its person,
	// who is then away. It is idempotent and safe after the room ended or
	// the store closed. When the shared store cannot be reached, the seat
	// is given up as soon as it can be, and Leave returns nil.
	Leave(ctx context.Context) error
}

// CleanMessage is what every store does to a body before it keeps it: it
// sanitises it (see safetext.Sanitize) and refuses what is left empty
// (ErrEmptyMessage) or too long, in characters or bytes (ErrMessageTooLong).
func CleanMessage(body string) (string, error) {
	body = safetext.Sanitize(body)
	switch {
	case body == "":
		return "", ErrEmptyMessage
	case safetext.RuneCount(body) > safetext.MaxMessageRunes, len(body) > safetext.MaxMessageBytes:
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
