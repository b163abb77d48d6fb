// Package storetest is the behavioural contract of store.Store: one suite
// that every implementation runs unchanged, in the manner of
// testing/fstest.TestFS.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
)

// Harness describes the implementation under test.
type Harness struct {
	// New returns a fresh store whose rooms live for ttl. The suite closes it.
	New func(t *testing.T, ttl time.Duration) store.Store
	// TTL is the room lifetime for the cases about lifetime, short enough
	// to wait for in real time. Every other case uses longLived, so that a
	// slow machine never ends its rooms early.
	TTL time.Duration
	// Residue lists whatever s still holds of room id (keys, map entries,
	// messages). Empty means the room is completely gone.
	Residue func(t *testing.T, s store.Store, id store.RoomID) []string
	// FakeTime runs every case inside a testing/synctest bubble, so TTLs
	// pass instantly and leaked goroutines fail the case.
	FakeTime bool
}

// wait bounds every wait for an event. With fake time it costs nothing.
const wait = 5 * time.Second

// longLived is the room lifetime of the cases that are not about lifetime.
const longLived = 10 * time.Minute

// Run runs the whole suite against h.
func Run(t *testing.T, h Harness) {
	cases := []struct {
		name       string
		fn         func(t *testing.T, h Harness, s store.Store)
		shortLived bool // rooms live h.TTL
	}{
		{"CreateThenJoin", testCreateThenJoin, true},
		{"JoinUnknownRoom", testJoinUnknownRoom, false},
		{"SecondJoinerSeesFirst", testSecondJoinerSeesFirst, false},
		{"ThirdJoinerIsRefused", testThirdJoinerIsRefused, false},
		{"CapHoldsUnderConcurrentJoins", testCapUnderConcurrency, false},
		{"BothSeeSameOrder", testBothSeeSameOrder, false},
		{"HistoryThenLiveWithoutGap", testHistoryThenLive, false},
		{"HistoryIsBounded", testHistoryIsBounded, false},
		{"HistorySurvivesComingAndGoing", testHistorySurvivesComingAndGoing, false},
		{"MessagesAreSanitisedAndLimited", testMessagesSanitised, false},
		{"LeaveFreesTheSeat", testLeaveFreesSeat, false},
		{"DestroyEndsBothAndDeletesEverything", testDestroy, false},
		{"ExpiryEndsBothAtTheDeadline", testExpiry, true},
		{"SlowSeatIsEvictedNotBlocking", testSlowSeatEvicted, false},
		{"CloseEndsSeats", testClose, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := func(t *testing.T) {
				ttl := longLived
				if c.shortLived {
					ttl = h.TTL
				}
				s := h.New(t, ttl)
				defer s.Close()
				c.fn(t, h, s)
			}
			if h.FakeTime {
				synctest.Test(t, body)
			} else {
				body(t)
			}
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func create(t *testing.T, s store.Store) store.Room {
	t.Helper()
	room, err := s.Create(ctx(t))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return room
}

func join(t *testing.T, s store.Store, id store.RoomID) store.Seat {
	t.Helper()
	seat, err := s.Join(ctx(t), id)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	t.Cleanup(func() { _ = seat.Leave(context.Background()) })
	return seat
}

func send(t *testing.T, seat store.Seat, body string) {
	t.Helper()
	if err := seat.Send(ctx(t), body); err != nil {
		t.Fatalf("Send(%q): %v", body, err)
	}
}

// next returns the seat's next event, failing if none arrives in time or the
// stream is closed.
func next(t *testing.T, seat store.Seat) store.Event {
	t.Helper()
	return nextWithin(t, seat, wait)
}

func nextWithin(t *testing.T, seat store.Seat, wait time.Duration) store.Event {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case ev, ok := <-seat.Events():
		if !ok {
			t.Fatalf("%s: event stream closed, want an event", seat.Snapshot().Me.Name)
		}
		return ev
	case <-timer.C:
		t.Fatalf("%s: no event within %v", seat.Snapshot().Me.Name, wait)
	}
	return nil
}

// nextOf returns the next event, which must be of type E.
func nextOf[E store.Event](t *testing.T, seat store.Seat) E {
	t.Helper()
	ev := next(t, seat)
	e, ok := ev.(E)
	if !ok {
		var want E
		t.Fatalf("%s: got %#v, want a %T", seat.Snapshot().Me.Name, ev, want)
	}
	return e
}

// closed waits until the seat's stream is closed, failing on any event.
func closed(t *testing.T, seat store.Seat) {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case ev, ok := <-seat.Events():
		if ok {
			t.Fatalf("got %#v, want the stream closed", ev)
		}
	case <-timer.C:
		t.Fatalf("stream not closed within %v", wait)
	}
}

// bodies reads n message events and returns their bodies.
func bodies(t *testing.T, seat store.Seat, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for len(out) < n {
		out = append(out, nextOf[store.MessageEvent](t, seat).Message.Body)
	}
	return out
}

func historyBodies(seat store.Seat) []string {
	var out []string
	for _, m := range seat.Snapshot().History {
		out = append(out, m.Body)
	}
	return out
}

func wantNoResidue(t *testing.T, h Harness, s store.Store, id store.RoomID) {
	t.Helper()
	if left := h.Residue(t, s, id); len(left) > 0 {
		t.Errorf("room is over but the store still holds: %q", left)
	}
}

func testCreateThenJoin(t *testing.T, h Harness, s store.Store) {
	before := time.Now()
	room := create(t, s)
	if id, err := store.ParseRoomID(string(room.ID)); err != nil || id != room.ID {
		t.Fatalf("created ID %q does not parse back: %v", room.ID, err)
	}
	if got := room.ExpiresAt.Sub(room.CreatedAt); got != h.TTL {
		t.Errorf("lifetime = %v, want %v", got, h.TTL)
	}
	if room.CreatedAt.Before(before.Add(-time.Second)) || room.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt %v is not now", room.CreatedAt)
	}
	if other := create(t, s); other.ID == room.ID {
		t.Fatalf("two rooms share ID %q", room.ID)
	}

	seat := join(t, s, room.ID)
	snap := seat.Snapshot()
	if snap.Room.ID != room.ID || !snap.Room.ExpiresAt.Equal(room.ExpiresAt) {
		t.Errorf("snapshot room = %+v, want %+v", snap.Room, room)
	}
	if !strings.HasPrefix(snap.Me.Name, "anonymous-") || snap.Me.ID == "" {
		t.Errorf("member = %+v, want an anonymous name and an ID", snap.Me)
	}
	if len(snap.Others) != 0 || len(snap.History) != 0 {
		t.Errorf("fresh room has others %v and history %v", snap.Others, snap.History)
	}
}

func testJoinUnknownRoom(t *testing.T, _ Harness, s store.Store) {
	if _, err := s.Join(ctx(t), store.NewRoomID()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Join(unknown) = %v, want ErrNotFound", err)
	}
}

func testSecondJoinerSeesFirst(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	b := join(t, s, room.ID)
	if got := b.Snapshot().Others; len(got) != 1 || got[0] != a.Snapshot().Me {
		t.Errorf("second joiner sees others %v, want [%v]", got, a.Snapshot().Me)
	}
	if a.Snapshot().Me.Name == b.Snapshot().Me.Name {
		t.Errorf("both members are named %q", a.Snapshot().Me.Name)
	}
	if got := nextOf[store.JoinedEvent](t, a).Member; got != b.Snapshot().Me {
		t.Errorf("first joiner saw %v join, want %v", got, b.Snapshot().Me)
	}
}

func testThirdJoinerIsRefused(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	join(t, s, room.ID)
	join(t, s, room.ID)
	if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrFull) {
		t.Fatalf("third Join = %v, want ErrFull", err)
	}
}

func testCapUnderConcurrency(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	join(t, s, room.ID)

	const racers = 50
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		seated []store.Seat
		others []error
		full   int
	)
	start := make(chan struct{})
	for range racers {
		wg.Go(func() {
			<-start
			seat, err := s.Join(ctx(t), room.ID)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				seated = append(seated, seat)
			case errors.Is(err, store.ErrFull):
				full++
			default:
				others = append(others, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, seat := range seated {
		_ = seat.Leave(context.Background())
	}
	if len(seated) != 1 || full != racers-1 || len(others) > 0 {
		t.Fatalf("%d racers for the last seat: %d seated, %d full, errors %v; want 1 seated, %d full",
			racers, len(seated), full, others, racers-1)
	}
}

func testBothSeeSameOrder(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	b := join(t, s, room.ID)
	nextOf[store.JoinedEvent](t, a)

	const each = 50
	var wg sync.WaitGroup
	for _, seat := range []store.Seat{a, b} {
		wg.Go(func() {
			for i := range each {
				if err := seat.Send(ctx(t), fmt.Sprintf("%s %d", seat.Snapshot().Me.Name, i)); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	seenByA, seenByB := bodies(t, a, 2*each), bodies(t, b, 2*each)
	if !slices.Equal(seenByA, seenByB) {
		t.Fatalf("members saw different orders:\nA: %q\nB: %q", seenByA, seenByB)
	}
	// Each sender's own messages keep the order they were sent in.
	for _, seat := range []store.Seat{a, b} {
		i := 0
		prefix := seat.Snapshot().Me.Name + " "
		for _, body := range seenByA {
			if strings.HasPrefix(body, prefix) {
				if want := fmt.Sprintf("%s%d", prefix, i); body != want {
					t.Fatalf("got %q, want %q", body, want)
				}
				i++
			}
		}
		if i != each {
			t.Fatalf("%d of %d messages from %s arrived", i, each, prefix)
		}
	}
}

func testHistoryThenLive(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)

	// B joins while A is sending: whatever B gets from history plus its
	// live events must be exactly A's sequence, once each and in order.
	// (total stays within a seat's event buffer: nobody reads A's stream
	// until the end.)
	const total = 100
	joined := make(chan store.Seat, 1)
	go func() {
		for i := range total {
			if i == total/2 {
				seat, err := s.Join(ctx(t), room.ID)
				if err != nil {
					t.Errorf("Join: %v", err)
					close(joined)
					return
				}
				joined <- seat
			}
			if err := a.Send(ctx(t), fmt.Sprintf("m%03d", i)); err != nil {
				t.Errorf("Send: %v", err)
				return
			}
		}
	}()
	b, ok := <-joined
	if !ok {
		t.FailNow()
	}
	defer b.Leave(context.Background())

	got := historyBodies(b)
	got = append(got, bodies(t, b, total-len(got))...)
	for i, body := range got {
		if want := fmt.Sprintf("m%03d", i); body != want {
			t.Fatalf("joiner's message %d is %q, want %q (history had %d)", i, body, want, len(b.Snapshot().History))
		}
	}
	// A's own stream agrees; B's arrival is somewhere in it.
	var own []string
	for len(own) < total {
		switch ev := next(t, a).(type) {
		case store.MessageEvent:
			own = append(own, ev.Message.Body)
		case store.JoinedEvent:
		default:
			t.Fatalf("unexpected %#v", ev)
		}
	}
	if !slices.Equal(own, got) {
		t.Fatalf("sender saw %q, joiner saw %q", own, got)
	}
}

func testHistoryIsBounded(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	const extra = 10
	for i := range store.HistoryLimit + extra {
		send(t, a, fmt.Sprintf("m%d", i))
		// Keep A's stream drained so it is not evicted as a slow reader.
		nextOf[store.MessageEvent](t, a)
	}
	b := join(t, s, room.ID)
	h := historyBodies(b)
	if len(h) != store.HistoryLimit {
		t.Fatalf("history has %d messages, want %d", len(h), store.HistoryLimit)
	}
	if h[0] != fmt.Sprintf("m%d", extra) || h[len(h)-1] != fmt.Sprintf("m%d", store.HistoryLimit+extra-1) {
		t.Fatalf("history runs %q..%q, want the most recent messages", h[0], h[len(h)-1])
	}
}

// People joining and leaving over and over never push messages out of a
// joiner's history.
func testHistorySurvivesComingAndGoing(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	for i := range store.HistoryLimit {
		send(t, a, fmt.Sprintf("m%d", i))
		nextOf[store.MessageEvent](t, a)
	}
	// A leaves too, so the churn is quick: nobody has to read it.
	if err := a.Leave(ctx(t)); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	for range store.HistoryLimit {
		b, err := s.Join(ctx(t), room.ID)
		if err != nil {
			t.Fatalf("Join: %v", err)
		}
		if err := b.Leave(ctx(t)); err != nil {
			t.Fatalf("Leave: %v", err)
		}
	}
	h := historyBodies(join(t, s, room.ID))
	if len(h) != store.HistoryLimit || h[0] != "m0" || h[len(h)-1] != fmt.Sprintf("m%d", store.HistoryLimit-1) {
		t.Fatalf("after %d joins and leaves, history holds %d messages (%q...), want all %d",
			store.HistoryLimit, len(h), h[:min(len(h), 3)], store.HistoryLimit)
	}
}

func testMessagesSanitised(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	b := join(t, s, room.ID)
	nextOf[store.JoinedEvent](t, a)

	send(t, a, "hi \x1b]0;owned\x07there\x1b[2J\u202e!")
	for _, seat := range []store.Seat{a, b} {
		msg := nextOf[store.MessageEvent](t, seat).Message
		// ESC and BEL are gone, so what is left is harmless text.
		if msg.Body != "hi ]0;ownedthere[2J!" {
			t.Errorf("body = %q, want controls removed", msg.Body)
		}
		if msg.From != a.Snapshot().Me || msg.ID == "" || msg.At.IsZero() {
			t.Errorf("message = %+v, want from %v with an ID and a time", msg, a.Snapshot().Me)
		}
	}
	if err := a.Send(ctx(t), " \x00\x1b\t\n "); !errors.Is(err, store.ErrEmptyMessage) {
		t.Errorf("Send(only controls) = %v, want ErrEmptyMessage", err)
	}
	if err := a.Send(ctx(t), strings.Repeat("x", safetext.MaxMessageRunes+1)); !errors.Is(err, store.ErrMessageTooLong) {
		t.Errorf("Send(too long) = %v, want ErrMessageTooLong", err)
	}
	send(t, a, strings.Repeat("é", safetext.MaxMessageRunes)) // exactly at the limit, multi-byte
	if got := nextOf[store.MessageEvent](t, b).Message.Body; safetext.RuneCount(got) != safetext.MaxMessageRunes {
		t.Errorf("a message at the limit arrived with %d characters", safetext.RuneCount(got))
	}
}

func testLeaveFreesSeat(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	b, err := s.Join(ctx(t), room.ID)
	if err != nil {
		t.Fatal(err)
	}
	nextOf[store.JoinedEvent](t, a)

	if err := b.Leave(ctx(t)); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := b.Leave(ctx(t)); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
	closed(t, b)
	if got := nextOf[store.LeftEvent](t, a).Member; got != b.Snapshot().Me {
		t.Errorf("left = %v, want %v", got, b.Snapshot().Me)
	}
	if err := b.Send(ctx(t), "still here?"); !errors.Is(err, store.ErrEnded) {
		t.Errorf("Send after Leave = %v, want ErrEnded", err)
	}
	c := join(t, s, room.ID)
	if got := c.Snapshot().Others; len(got) != 1 || got[0] != a.Snapshot().Me {
		t.Errorf("new joiner sees %v, want only %v", got, a.Snapshot().Me)
	}
	send(t, c, "hello")
	nextOf[store.JoinedEvent](t, a)
	if got := nextOf[store.MessageEvent](t, a).Message.Body; got != "hello" {
		t.Errorf("got %q from the new joiner", got)
	}
}

func testDestroy(t *testing.T, h Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	b := join(t, s, room.ID)
	send(t, a, "secret")
	nextOf[store.JoinedEvent](t, a)

	if err := b.Destroy(ctx(t)); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	// Deleted by the time Destroy returns, not eventually.
	wantNoResidue(t, h, s, room.ID)
	for _, seat := range []store.Seat{a, b} {
		var ended store.EndedEvent
		for ended.Reason == 0 {
			switch ev := next(t, seat).(type) {
			case store.EndedEvent:
				ended = ev
			case store.MessageEvent: // "secret" may still be queued
			default:
				t.Fatalf("unexpected %#v before the end", ev)
			}
		}
		if ended.Reason != store.EndDestroyed || ended.By != b.Snapshot().Me {
			t.Errorf("%s ended with %+v, want destroyed by %v", seat.Snapshot().Me.Name, ended, b.Snapshot().Me)
		}
		closed(t, seat)
		if err := seat.Send(ctx(t), "after"); !errors.Is(err, store.ErrEnded) {
			t.Errorf("Send after destroy = %v, want ErrEnded", err)
		}
	}
	if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Join after destroy = %v, want ErrNotFound", err)
	}
	if err := a.Destroy(ctx(t)); !errors.Is(err, store.ErrEnded) {
		t.Errorf("second Destroy = %v, want ErrEnded", err)
	}
	if err := a.Leave(ctx(t)); err != nil {
		t.Errorf("Leave after destroy = %v", err)
	}
}

func testExpiry(t *testing.T, h Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	b := join(t, s, room.ID)
	nextOf[store.JoinedEvent](t, a)
	// Activity late in the room's life does not extend it.
	halfway := time.NewTimer(time.Until(room.CreatedAt.Add(h.TTL / 2)))
	<-halfway.C
	send(t, a, "still talking")

	for _, seat := range []store.Seat{a, b} {
		var ended store.EndedEvent
		for ended.Reason == 0 {
			if ev, ok := nextWithin(t, seat, h.TTL+wait).(store.EndedEvent); ok {
				ended = ev
			}
		}
		now := time.Now()
		if ended.Reason != store.EndExpired {
			t.Errorf("ended with %v, want expired", ended.Reason)
		}
		if now.Before(room.ExpiresAt) {
			t.Errorf("ended %v before the deadline", room.ExpiresAt.Sub(now))
		}
		if late := now.Sub(room.ExpiresAt); late > 2*time.Second {
			t.Errorf("ended %v after the deadline", late)
		}
		closed(t, seat)
	}
	if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Join after expiry = %v, want ErrNotFound", err)
	}
	wantNoResidue(t, h, s, room.ID)
}

func testSlowSeatEvicted(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	b := join(t, s, room.ID) // never reads its events
	nextOf[store.JoinedEvent](t, a)

	// A keeps talking far past any reasonable buffer; its sends never block
	// and it keeps receiving its own messages.
	const n = 1000
	var left bool
	for i := range n {
		send(t, a, fmt.Sprintf("m%d", i))
		for {
			ev := next(t, a)
			if l, ok := ev.(store.LeftEvent); ok && l.Member == b.Snapshot().Me {
				left = true
				continue
			}
			if _, ok := ev.(store.MessageEvent); !ok {
				t.Fatalf("unexpected %#v", ev)
			}
			break
		}
	}
	if !left {
		t.Fatalf("a seat that never read %d events was not dropped", n)
	}
	// B's stream ends with the reason, after whatever it had buffered.
	for {
		ev, ok := <-b.Events()
		if !ok {
			t.Fatal("stream closed without an EndedEvent")
		}
		if e, ok := ev.(store.EndedEvent); ok {
			if e.Reason != store.EndEvicted {
				t.Fatalf("ended with %v, want evicted", e.Reason)
			}
			break
		}
	}
	closed(t, b)
	// The seat is free again.
	join(t, s, room.ID)
}

func testClose(t *testing.T, _ Harness, s store.Store) {
	room := create(t, s)
	a := join(t, s, room.ID)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if e := nextOf[store.EndedEvent](t, a); e.Reason != store.EndShutdown {
		t.Errorf("ended with %v, want shutdown", e.Reason)
	}
	closed(t, a)
	if _, err := s.Create(ctx(t)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Create after Close = %v, want ErrClosed", err)
	}
}
