package redisstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ssh-burn/chat/store"
)

// room is this replica's view of a room it has seats in.
type room struct {
	s        *Store
	secrets  roomSecrets
	keys     []string
	channel  string
	deadline time.Time
	wake     chan struct{} // a read of the log is due
	stop     chan struct{} // closed once the room is released
	stopOnce sync.Once

	mu       sync.Mutex
	expiry   *time.Timer // the end at the deadline
	stopped  bool        // stopWork ran: no timer may be set any more
	seats    []*seat
	ended    bool
	members  map[string]string // everyone seated, as far as read: member ID -> replica
	cursor   string            // the newest entry read, for members
	announce bool              // seats were told of a lost link and await its return
	vanish   *time.Timer       // pending end of a room found missing
}

func newRoom(s *Store, secrets roomSecrets, keys []string, channel string, deadline time.Time) *room {
	return &room{
		s: s, secrets: secrets, keys: keys, channel: channel, deadline: deadline,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), members: map[string]string{},
	}
}

// add seats a fresh seat here. members is who sat in the room at its join.
func (r *room) add(seat *seat, members map[string]string, linkDown bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seat.room = r
	r.seats = append(r.seats, seat)
	r.members[seat.snapshot.Me.ID] = r.s.replica
	for id, rid := range members {
		r.members[id] = rid
	}
	// The members are as of the seat's cursor: the room has read that far.
	if streamIDLess(r.cursor, seat.cursor) {
		r.cursor = seat.cursor
	}
	if linkDown {
		seat.events.Push(store.ReconnectingEvent{})
		r.announce = true
	}
}

func (r *room) isEnded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended
}

// endIfIdle marks r ended if no seat of this replica is left in it.
func (r *room) endIfIdle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.seats) == 0 {
		r.ended = true
	}
	return r.ended && len(r.seats) == 0
}

// stopWork stops the room's follower and timers.
func (r *room) stopWork() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopped = true
		if r.expiry != nil {
			r.expiry.Stop()
		}
		if r.vanish != nil {
			r.vanish.Stop()
		}
		r.mu.Unlock()
		close(r.stop)
	})
}

func (r *room) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// follow reads the room's log whenever poked, until the room is released.
func (r *room) follow() {
	for {
		select {
		case <-r.stop:
			return
		case <-r.s.done:
			return
		case <-r.wake:
		}
		r.catchUp()
	}
}

// catchUp delivers every log entry that some seat here has not seen.
func (r *room) catchUp() {
	for {
		r.mu.Lock()
		var from string
		for _, seat := range r.seats {
			if from == "" || streamIDLess(seat.cursor, from) {
				from = seat.cursor
			}
		}
		r.mu.Unlock()
		if from == "" {
			return
		}
		// Nobody but the room waits on this read: a reply later than a
		// person would wait (opTimeout) is still taken, or a Redis that
		// answers that late would let nothing be read until it is fast
		// again, and the seats here would fall behind what the room keeps.
		res, err := r.s.callOn(r.s.bg, r.s.rdb, replyWait, readScript, r.keys, from, readBatch)
		if err != nil {
			// Retried on the next poke: the link's return pokes every
			// room. A late reply leaves the link up, and a quiet room
			// would not be poked again: this read pokes itself.
			r.s.log.Debug("read room log", "err", err)
			if down, _ := r.s.link.state(); !down && classify(err) == unreachable {
				r.s.afterFunc(readRetry, r.poke)
			}
			return
		}
		parts, err := asSlice("read reply", res)
		var st string
		if err == nil {
			st, err = status(parts)
		}
		if err != nil {
			r.s.log.Warn("read room log", "err", err)
			return
		}
		if st == "gone" {
			r.vanished()
			return
		}
		if st == "gap" {
			if !r.gap(parts) {
				return
			}
			continue
		}
		if st != "ok" || len(parts) != 2 {
			r.s.log.Warn("read room log", "err", malformed("read reply "+st, parts))
			return
		}
		entries, err := parseEntries(parts[1])
		if err != nil {
			r.s.log.Warn("read room log", "err", err)
			return
		}
		r.mu.Lock()
		for _, e := range entries {
			r.deliverLocked(e, from)
		}
		caughtUp := len(entries) < readBatch
		for _, seat := range r.seats {
			if streamIDLess(seat.cursor, from) {
				// Attached while the read was in flight, with an older
				// cursor than it read from: read again from there.
				caughtUp = false
			}
		}
		if down, _ := r.s.link.state(); caughtUp && r.announce && !down {
			r.announce = false
			for _, seat := range slices.Clone(r.seats) {
				r.pushLocked(seat, store.ReconnectedEvent{})
			}
		}
		r.mu.Unlock()
		r.s.release(r)
		if caughtUp {
			return
		}
	}
}

// news delivers e, the log's entry after prev, without reading the log,
// if this replica has read up to prev; a seat here that has not, or any
// doubt, is left to a read of the log, which is the truth.
func (r *room) news(prev string, e entry) {
	r.mu.Lock()
	if r.cursor == prev {
		r.deliverLocked(e, prev)
	}
	behind := streamIDLess(r.cursor, e.id)
	for _, seat := range r.seats {
		behind = behind || streamIDLess(seat.cursor, e.id)
	}
	r.mu.Unlock()
	r.s.release(r)
	if behind {
		r.poke()
	}
}

// deliverLocked hands e, read from after the entry from, to every seat
// that has not seen it. A seat whose cursor is older than from (attached
// while the read was in flight) gets nothing of this read, which does not
// cover what it has not seen: the next read, from its cursor, does.
func (r *room) deliverLocked(e entry, from string) {
	if streamIDLess(r.cursor, e.id) {
		r.cursor = e.id
		switch e.fields["t"] {
		case "j":
			r.members[e.fields["m"]] = e.fields["r"]
		case "l":
			delete(r.members, e.fields["m"])
		}
	}
	ev := r.secrets.event(e)
	for _, seat := range slices.Clone(r.seats) {
		if !streamIDLess(seat.cursor, e.id) || streamIDLess(seat.cursor, from) {
			continue
		}
		seat.cursor = e.id
		switch ev := ev.(type) {
		case nil: // unreadable: skipped, never shown half-decoded
		case store.JoinedEvent:
			if ev.Member.ID == seat.snapshot.Me.ID {
				// Its person came back from another connection, which
				// took the seat over; this one's Leave does nothing now.
				r.endSeatLocked(seat, store.EndedEvent{Reason: store.EndReplaced, RoomLivesOn: true})
				continue
			}
			r.pushLocked(seat, ev)
		case store.LeftEvent:
			if ev.Member.ID == seat.snapshot.Me.ID {
				// Freed behind this replica's back: it was cut off from
				// Redis on its own for longer than a lease.
				r.endSeatLocked(seat, store.EndedEvent{Reason: store.EndLeaseLost, RoomLivesOn: true})
				continue
			}
			r.pushLocked(seat, ev)
		default:
			r.pushLocked(seat, ev)
		}
	}
}

// typing hands a typing hint to the seats here but the typist's, if they
// keep up: a hint never evicts anyone.
func (r *room) typing(ev store.TypingEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, seat := range r.seats {
		if seat.snapshot.Me.ID != ev.Member.ID {
			seat.events.Offer(ev)
		}
	}
}

// gap handles readScript's {'gap', cut}: the seats here that have not
// read up to cut lost what was trimmed after their cursor, so they are
// evicted, as a seat that fell behind its buffer is, rather than left to
// skip it silently. It reports whether any seat was (and so whether
// reading again for the others makes progress).
func (r *room) gap(parts []any) bool {
	var cut string
	var err error
	if len(parts) != 2 {
		err = malformed("gap reply", parts)
	} else if cut, err = asString("gap", parts[1]); err == nil {
		if _, _, ok := parseStreamID(cut); !ok {
			err = fmt.Errorf("%w: gap at %q", errMalformed, cut)
		}
	}
	if err != nil {
		r.s.log.Warn("read room log", "err", err)
		return false
	}
	r.mu.Lock()
	evicted := 0
	for _, seat := range slices.Clone(r.seats) {
		if streamIDLess(seat.cursor, cut) {
			r.evictLocked(seat)
			evicted++
		}
	}
	r.mu.Unlock()
	r.s.release(r)
	if evicted == 0 {
		r.s.log.Warn("read room log", "err", fmt.Errorf("%w: gap at %q behind every seat", errMalformed, cut))
		return false
	}
	r.s.log.Info("evicted seats that fell behind what their room keeps", "seats", evicted)
	return true
}

// pushLocked delivers ev without blocking. A seat that fell a whole buffer
// behind is evicted rather than allowed to hold up the room.
func (r *room) pushLocked(seat *seat, ev store.Event) {
	if !seat.events.Push(ev) {
		r.evictLocked(seat)
	}
}

// evictLocked ends seat with EndEvicted and gives it up in Redis.
func (r *room) evictLocked(seat *seat) {
	r.endSeatLocked(seat, store.EndedEvent{Reason: store.EndEvicted, RoomLivesOn: true})
	l := seat.leave()
	if !r.s.spawn("give up an evicted seat", func() {
		ctx, cancel := context.WithTimeout(r.s.bg, opTimeout)
		defer cancel()
		if failed := r.s.leaveAll(ctx, []leave{l}); len(failed) > 0 {
			r.s.giveUp(failed...)
		}
	}) {
		r.s.giveUp(l)
	}
}

// endSeatLocked ends one seat's stream with ev (none if nil) and drops it.
func (r *room) endSeatLocked(st *seat, ev store.Event) bool {
	if !st.events.End(ev) {
		return false
	}
	r.seats = slices.DeleteFunc(r.seats, func(x *seat) bool { return x == st })
	return true
}

// endSeats ends every seat here with ev and returns them, to be given up.
func (r *room) endSeats(ev store.EndedEvent) []leave {
	r.mu.Lock()
	defer r.mu.Unlock()
	var leaves []leave
	for _, seat := range slices.Clone(r.seats) {
		if r.endSeatLocked(seat, ev) {
			leaves = append(leaves, seat.leave())
		}
	}
	return leaves
}

// end ends every seat here with ev: the room itself is over.
func (r *room) end(ev store.EndedEvent) {
	r.mu.Lock()
	for _, seat := range slices.Clone(r.seats) {
		r.endSeatLocked(seat, ev)
	}
	r.ended = true
	r.mu.Unlock()
	r.s.release(r)
}

// shutdown ends this replica's seats in r for Close, and returns them to
// be given up.
func (r *room) shutdown() []leave {
	leaves := r.endSeats(store.EndedEvent{Reason: store.EndShutdown, RoomLivesOn: true})
	r.s.release(r)
	return leaves
}

// armExpiry sets the room to end in d, unless its work has stopped.
func (r *room) armExpiry(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if r.expiry != nil {
		r.expiry.Stop()
	}
	r.expiry = r.s.afterFunc(d, r.expire)
}

// expire runs at the deadline as this replica's clock tells it, and ends
// the room once Redis says the deadline has passed: clocks differ, and a
// room must end for both people at once, by the clock of the deadline.
// Told "not yet", it waits for what Redis says is left; when Redis cannot
// answer, the local deadline stands.
func (r *room) expire() {
	res, err := r.s.call(r.s.bg, expireScript, r.keys)
	if left, ok := res.(int64); err == nil && ok && left > 0 {
		r.armExpiry(time.Duration(left) * time.Millisecond)
		return
	}
	r.end(store.EndedEvent{Reason: store.EndExpired})
}

// vanished handles a room that is missing from Redis: past its deadline it
// expired; otherwise it was destroyed (the notice naming who is normally a
// moment away) or Redis lost it.
func (r *room) vanished() {
	if !time.Now().Before(r.deadline) {
		r.expire()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.vanish == nil && !r.ended {
		r.vanish = r.s.afterFunc(vanishGrace, func() { r.end(store.EndedEvent{Reason: store.EndVanished}) })
	}
}

// partnersOn lists the replicas in isDead that hold a seat in r.
func (r *room) partnersOn(isDead map[string]bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rid := range r.members {
		if isDead[rid] && !slices.Contains(out, rid) {
			out = append(out, rid)
		}
	}
	return out
}

// reap frees the seats the dead replicas held in r; the room's log tells
// everyone, this replica included, that they left.
func (r *room) reap(ctx context.Context, dead []string) {
	args := append([]any{streamMaxLen, r.channel}, anys(dead)...)
	n, err := r.s.call(ctx, reapScript, r.keys, args...)
	if err != nil {
		r.s.log.Debug("free the seats of dead replicas", "err", err)
		return
	}
	if count, ok := n.(int64); ok && count > 0 {
		r.s.log.Info("freed the seats of a dead replica", "seats", count)
	}
	r.poke()
}

// linkChanged tells the seats here that the link went down, or, once it is
// back, catches up and then tells them.
func (r *room) linkChanged(down bool) {
	r.mu.Lock()
	if down && !r.announce {
		r.announce = true
		for _, seat := range slices.Clone(r.seats) {
			r.pushLocked(seat, store.ReconnectingEvent{})
		}
	}
	r.mu.Unlock()
	if !down {
		r.poke() // catch up, then announce the return
	}
}
