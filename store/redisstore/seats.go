package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ssh-burn/chat/store"
)

// seat implements store.Seat. room and cursor are guarded by room.mu.
type seat struct {
	room       *room
	snapshot   store.Snapshot
	sealedName string
	// value is the seat as Redis has it while this connection holds it:
	// "replica/presence". A person who comes back from a second
	// connection changes it, so whatever the first one still does (send,
	// leave) no longer counts.
	value  string
	events *store.Queue
	cursor string // the last log entry this seat has seen
}

func (seat *seat) Snapshot() store.Snapshot   { return seat.snapshot }
func (seat *seat) Events() <-chan store.Event { return seat.events.Events() }

// leave is what gives this seat up in Redis.
func (seat *seat) leave() leave {
	return leave{keys: seat.room.keys, channel: seat.room.channel, member: seat.snapshot.Me.ID, value: seat.value}
}

// idWindow is how long a room remembers a message ID.
func (s *Store) idWindow() time.Duration { return s.tolerance + idWindowExtra }

func (seat *seat) Send(ctx context.Context, id store.MessageID, body string) error {
	if err := store.CheckMessageID(id); err != nil {
		return err
	}
	body, err := store.CleanMessage(body)
	if err != nil {
		return err
	}
	if seat.events.Ended() {
		return fmt.Errorf("send message: %w", store.ErrEnded)
	}
	r := seat.room
	sealed := r.secrets.sealBody(body)
	res, err := r.s.call(ctx, sendScript, r.keys, seat.snapshot.Me.ID, seat.value, seat.sealedName,
		sealed, string(id), streamMaxLen, r.channel, store.HistoryLimit, r.s.idWindow().Milliseconds(),
		store.HistoryBytes, store.MessageCost(body))
	if classify(err) == full {
		// Refused before it ran; but an earlier attempt of the same
		// message, whose answer never came, may have gone through.
		if stored, serr := r.s.call(ctx, storedScript, r.keys, string(id)); serr == nil && stored == int64(1) {
			return nil
		}
		r.s.full.refused("send")
	}
	if err != nil {
		return fmt.Errorf("send message: %w", failure(err))
	}
	parts, err := asSlice("send reply", res)
	var st string
	if err == nil {
		st, err = status(parts)
	}
	if err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	switch st {
	case "ok":
		r.s.full.wrote()
		// Delivered here without waiting for the notification.
		if len(parts) == 3 {
			entryID, err1 := asString("send reply ID", parts[1])
			prev, err2 := asString("send reply previous ID", parts[2])
			if err1 == nil && err2 == nil {
				r.news(prev, entry{id: entryID, fields: map[string]string{
					"t": "m", "m": seat.snapshot.Me.ID, "i": string(id), "n": seat.sealedName, "b": sealed,
				}})
				return nil
			}
		}
		r.poke()
		return nil
	case "dup":
		r.poke()
		return nil
	case "unseated":
		// The log says why (its person came back elsewhere, or this
		// replica lost its lease) and ends the seat with that reason.
		r.poke()
	case "gone":
		r.vanished()
	default:
		return fmt.Errorf("send message: %w", malformed("send reply "+st, parts))
	}
	return fmt.Errorf("send message: %w", store.ErrEnded)
}

func (seat *seat) Destroy(ctx context.Context) error {
	if seat.events.Ended() {
		return fmt.Errorf("destroy room: %w", store.ErrEnded)
	}
	r := seat.room
	res, err := r.s.call(ctx, destroyScript, r.keys, seat.snapshot.Me.ID, seat.value, r.channel, seat.sealedName)
	if err != nil {
		return fmt.Errorf("destroy room: %w", failure(err))
	}
	n, err := asInt("destroy reply", res)
	if err != nil {
		return fmt.Errorf("destroy room: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("destroy room: %w", store.ErrEnded)
	}
	r.end(store.EndedEvent{Reason: store.EndDestroyed, By: seat.snapshot.Me})
	return nil
}

func (seat *seat) Leave(ctx context.Context) error {
	r := seat.room
	r.mu.Lock()
	ended := r.endSeatLocked(seat, nil)
	r.mu.Unlock()
	if !ended {
		return nil // ended already, and given up by whoever ended it
	}
	r.s.release(r)
	// Even when the caller's context is done (its session hung up), the
	// seat must be given back now rather than left to its replica's death.
	_, err := r.s.call(context.WithoutCancel(ctx), leaveScript, r.keys, seat.snapshot.Me.ID, seat.value, streamMaxLen, r.channel)
	switch classify(err) {
	case unreachable, cancelled:
		// Given up as soon as Redis answers again (or, should this
		// replica close first, when its registry entry is gone).
		r.s.giveUp(seat.leave())
		return nil
	}
	if err != nil {
		return fmt.Errorf("leave room: %w", err)
	}
	return nil
}

// Typing publishes the hint on the room's channel, beside the log: it is
// never stored, and a replica that misses it (a reconnecting Pub/Sub) just
// misses it. The payload is "t", 1 or 0, the member ID and the sealed name.
func (seat *seat) Typing(ctx context.Context, typing bool) error {
	if seat.events.Ended() {
		return fmt.Errorf("typing: %w", store.ErrEnded)
	}
	r := seat.room
	flag := "0"
	if typing {
		flag = "1"
	}
	_, err := r.s.patiently(ctx, opTimeout, func(ctx context.Context) (any, error) {
		return nil, r.s.rdb.SPublish(ctx, r.channel, "t"+flag+seat.snapshot.Me.ID+seat.sealedName).Err()
	})
	if err != nil {
		return fmt.Errorf("typing: %w", failure(err))
	}
	return nil
}

func (seat *seat) Reopen(ctx context.Context) error {
	if seat.events.Ended() {
		return fmt.Errorf("reopen seat: %w", store.ErrEnded)
	}
	r := seat.room
	res, err := r.s.call(ctx, reopenScript, r.keys, seat.snapshot.Me.ID, seat.value, streamMaxLen, r.channel)
	if err != nil {
		return fmt.Errorf("reopen seat: %w", failure(err))
	}
	parts, err := asSlice("reopen reply", res)
	var st string
	if err == nil {
		st, err = status(parts)
	}
	if err != nil {
		return fmt.Errorf("reopen seat: %w", err)
	}
	switch st {
	case "ok":
		r.poke()
		return nil
	case "none":
		return fmt.Errorf("reopen seat: %w", store.ErrNothingToReopen)
	case "unseated", "gone":
		r.poke() // whatever ended the seat is in the log, or the room is gone
		return fmt.Errorf("reopen seat: %w", store.ErrEnded)
	}
	return fmt.Errorf("reopen seat: %w", malformed("reopen reply "+st, parts))
}
