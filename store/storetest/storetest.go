// Package storetest is the behavioural contract of store.Store: one suite
// that every implementation runs unchanged, in the manner of
// testing/fstest.TestFS and nettest.TestConn. A backend that several
// servers share gives the suite two stores on it (two replicas), and every
// case that can span replicas puts its people on both.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime/pprof"
	"slices"
	"strconv"
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
	// New returns a fresh store whose rooms live for ttl and, for a backend
	// several servers share, a second store on the same backend (another
	// replica); nil for a backend of one. The suite closes both.
	New func(t *testing.T, ttl time.Duration) (store.Store, store.Store)
	// TTL is the room lifetime for the cases about lifetime, short enough
	// to wait for in real time. Every other case uses longLived, so that a
	// slow machine never ends its rooms early.
	TTL time.Duration
	// Residue lists whatever s still holds of room id (keys, map entries,
	// messages). Empty means the room is completely gone.
	Residue func(t *testing.T, s store.Store, id store.RoomID) []string
	// FakeTime runs every case inside a testing/synctest bubble, so TTLs
	// pass instantly.
	FakeTime bool
	// Faults, for a backend that can fail apart from the store (a server
	// of its own), starts a fresh backend for one case and says how to
	// break it; the fault cases run then. Nil for a backend that cannot
	// fail on its own (memory).
	Faults func(t *testing.T) *Faulty
}

// Faulty is a backend the fault cases can break, as operators see it
// happen: paused, restarted, full.
type Faulty struct {
	// New returns one more store (a replica) on this backend, with rooms
	// living ttl, seats outliving a dead replica by lease, and riding out
	// outages of the backend up to tolerance. The suite closes it.
	New func(t *testing.T, ttl, lease, tolerance time.Duration) store.Store
	// Pause makes the backend stop answering, as a process stopped with
	// SIGSTOP does (connections stay open, nothing is read), until resume.
	Pause func(t *testing.T) (resume func())
	// Restart stops the backend and starts it again on the same address,
	// with its data (a restart that persists, or a failover) or without.
	Restart func(t *testing.T, keepData bool)
	// Fill makes the backend refuse whatever needs more memory until free.
	Fill func(t *testing.T) (free func())
	// NewBehind returns one more store, as New does, that reaches the
	// backend over a line the case can degrade (a fault proxy). Nil for a
	// backend reached over no line; the cases that need one fail then.
	NewBehind func(t *testing.T, ttl, lease, tolerance time.Duration) (store.Store, *Line)
}

// Line is one replica's way to the backend, which a fault case degrades as
// a struggling network or backend does: replies late, held or lost, rather
// than none at all.
type Line struct {
	// Delay makes every reply on the line come between min and max late,
	// in order; Delay(0, 0) ends it.
	Delay func(min, max time.Duration)
	// Hold holds the replies on a connection for d from when a request of
	// op passes on it (the request itself goes through at once), for the
	// next times such requests (0: every one); Hold("", 0, 0) ends it.
	Hold func(op Op, d time.Duration, times int)
	// Lose drops every request of op before it reaches the backend, as a
	// request written just before its connection broke; Lose("") ends it.
	Lose func(op Op)
	// Close takes the line down; the suite calls it once the stores on
	// it are closed.
	Close func()
}

// Op names a kind of request a store makes of its backend, for Line.
type Op string

// The operations a Line tells apart.
const (
	OpJoin   Op = "join"
	OpRejoin Op = "rejoin"
	OpLeave  Op = "leave"
	OpRead   Op = "read"
)

// wait bounds every wait for an event. With fake time it costs nothing.
const wait = 10 * time.Second

// longLived is the room lifetime of the cases that are not about lifetime.
const longLived = 10 * time.Minute

// leakLabel is the profiler label every case runs under: whatever
// goroutines the stores start inherit it, so one still running after the
// stores closed is a leak.
const leakLabel = "storetest.case"

type testCase struct {
	name       string
	fn         func(t *testing.T, h Harness, a, b store.Store)
	shortLived bool // rooms live h.TTL
}

// Run runs the whole suite against h.
func Run(t *testing.T, h Harness) {
	cases := []testCase{
		{"CreateThenJoin", testCreateThenJoin, true},
		{"JoinUnknownRoom", testJoinUnknownRoom, false},
		{"SecondJoinerSeesFirst", testSecondJoinerSeesFirst, false},
		{"ThirdJoinerIsRefused", testThirdJoinerIsRefused, false},
		{"CapHoldsUnderConcurrentJoins", testCapUnderConcurrency, false},
		{"BothSeeSameOrder", testBothSeeSameOrder, false},
		{"HistoryThenLiveWithoutGap", testHistoryThenLive, false},
		{"HistoryIsBounded", testHistoryIsBounded, false},
		{"HistorySurvivesComingAndGoing", testHistorySurvivesComingAndGoing, false},
		{"HistoryKeepsTheNewestThatFitItsBytes", testHistoryBytes, false},
		{"MessagesAreSanitisedAndLimited", testMessagesSanitised, false},
		{"AMessageOverTheByteLimitIsRefused", testMessageBytesLimit, false},
		{"LinesAndEmojiArriveAsWritten", testLinesAndEmoji, false},
		{"AMessageIsStoredOnceHoweverOftenSent", testSendIsStoredOnce, false},
		{"LeaveAfterMeetingKeepsTheSeat", testLeaveKeepsSeat, false},
		{"MeetingSealsTheRoom", testMeetingSeals, false},
		{"LeaveBeforeMeetingFreesTheSeat", testLeaveBeforeMeeting, false},
		{"RejoinBeforeMeetingTakesTheSeatBack", testRejoinBeforeMeeting, false},
		{"RejoinWithTheKeyComesBackAsTheSamePerson", testRejoin, false},
		{"AWrongKeyIsAnUnknownRoom", testWrongKey, false},
		{"RejoinTakesOverAConnectionStillOpen", testRejoinTakesOver, false},
		{"ReopenGivesTheKeptSeatToSomeoneNew", testReopen, false},
		{"AGivenAwayKeyIsToldSoUntilTheRoomEnds", testGivenAwayKey, false},
		{"ANewPartnerNeverHasTheAnimalOfTheOneBefore", testNewPartnerAnimal, false},
		{"ConcurrentRejoinsLeaveOneConnectionSeated", testConcurrentRejoins, false},
		{"TypingIsAHintNeverStored", testTyping, false},
		{"DestroyEndsBothAndDeletesEverything", testDestroy, false},
		{"ExpiryEndsBothAtTheDeadline", testExpiry, true},
		{"SlowSeatIsEvictedNotBlocking", testSlowSeatEvicted, false},
		{"AJoinThatEvictsAPartnerWhoFellBehind", testJoinEvictsPartner, false},
		{"CloseEndsSeatsOnceAndStopsEverything", testClose, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := func(t *testing.T) {
				ttl := longLived
				if c.shortLived {
					ttl = h.TTL
				}
				withLeakCheck(t, func() {
					a, b := h.New(t, ttl)
					defer a.Close()
					if b == nil {
						b = a
					} else {
						defer b.Close()
					}
					c.fn(t, h, a, b)
				})
			}
			if h.FakeTime {
				synctest.Test(t, body)
			} else {
				body(t)
			}
		})
	}
	if h.Faults != nil {
		t.Run("Faults", func(t *testing.T) { runFaults(t, h) })
	}
}

// WithoutLeaks runs f, which makes and closes stores, and then fails t if
// any goroutine of this module that f started, directly or not, is still
// running (after a grace for those told to stop). Every case of Run is
// checked so; backends use it for tests of their own.
func WithoutLeaks(t *testing.T, f func()) { withLeakCheck(t, f) }

// withLeakCheck runs f under a label of its own and then fails t if any
// goroutine that f started, directly or not, still runs.
func withLeakCheck(t *testing.T, f func()) {
	t.Helper()
	label := t.Name() + "#" + strconv.FormatUint(rand.Uint64(), 36)
	pprof.Do(context.Background(), pprof.Labels(leakLabel, label), func(context.Context) { f() })
	var left string
	gone := func() bool {
		left = goroutinesLabelled(label)
		return left == ""
	}
	// Goroutines that were told to stop may need a moment to return.
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !gone() {
		select {
		case <-deadline.C:
			t.Fatalf("goroutines still running after the stores were closed:\n%s", left)
		case <-tick.C:
		}
	}
}

// goroutinesLabelled returns the stacks of the goroutines of this module
// that carry label. (A client library's own goroutines, a dial the pool
// makes in the background say, carry it too when a store's call started
// them; they belong to the client, which outlives the store.)
func goroutinesLabelled(label string) string {
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
	want := fmt.Sprintf("%q:%q", leakLabel, label)
	var found []string
	for record := range strings.SplitSeq(buf.String(), "\n\n") {
		if strings.Contains(record, want) && strings.Contains(record, thisModule) {
			found = append(found, record)
		}
	}
	return strings.Join(found, "\n\n")
}

// thisModule prefixes the functions of this module in a stack.
const thisModule = "github.com/ssh-burn/chat/"

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
	if err := seat.Send(ctx(t), store.NewMessageID(), body); err != nil {
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

func testCreateThenJoin(t *testing.T, h Harness, a, b store.Store) {
	before := time.Now()
	room := create(t, a)
	if id, err := store.ParseRoomID(string(room.ID)); err != nil || id != room.ID {
		t.Fatalf("created ID %q does not parse back: %v", room.ID, err)
	}
	if got := room.ExpiresAt.Sub(room.CreatedAt); got != h.TTL {
		t.Errorf("lifetime = %v, want %v", got, h.TTL)
	}
	if room.CreatedAt.Before(before.Add(-time.Second)) || room.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("CreatedAt %v is not now", room.CreatedAt)
	}
	if other := create(t, b); other.ID == room.ID {
		t.Fatalf("two rooms share ID %q", room.ID)
	}

	seat := join(t, b, room.ID)
	snap := seat.Snapshot()
	if snap.Room.ID != room.ID || !snap.Room.ExpiresAt.Equal(room.ExpiresAt) || !snap.Room.CreatedAt.Equal(room.CreatedAt) {
		t.Errorf("snapshot room = %+v, want %+v", snap.Room, room)
	}
	if !strings.HasPrefix(snap.Me.Name, "anonymous-") || snap.Me.ID == "" {
		t.Errorf("member = %+v, want an anonymous name and an ID", snap.Me)
	}
	if len(snap.Others) != 0 || len(snap.History) != 0 {
		t.Errorf("fresh room has others %v and history %v", snap.Others, snap.History)
	}
}

func testJoinUnknownRoom(t *testing.T, _ Harness, a, b store.Store) {
	for _, s := range []store.Store{a, b} {
		if _, err := s.Join(ctx(t), store.NewRoomID()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Join(unknown) = %v, want ErrNotFound", err)
		}
	}
}

func testSecondJoinerSeesFirst(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	if got := bob.Snapshot().Others; len(got) != 1 || got[0] != alice.Snapshot().Me {
		t.Errorf("second joiner sees others %v, want [%v]", got, alice.Snapshot().Me)
	}
	if alice.Snapshot().Me.Name == bob.Snapshot().Me.Name {
		t.Errorf("both members are named %q", alice.Snapshot().Me.Name)
	}
	if got := nextOf[store.JoinedEvent](t, alice).Member; got != bob.Snapshot().Me {
		t.Errorf("first joiner saw %v join, want %v", got, bob.Snapshot().Me)
	}
}

func testThirdJoinerIsRefused(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	join(t, a, room.ID)
	join(t, b, room.ID)
	for _, s := range []store.Store{a, b} {
		if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
			t.Fatalf("third Join = %v, want ErrSealed: the two who met keep the room", err)
		}
	}
}

func testCapUnderConcurrency(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	join(t, a, room.ID)

	const racers = 50
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		seated []store.Seat
		others []error
		full   int
	)
	start := make(chan struct{})
	for i := range racers {
		s := []store.Store{a, b}[i%2]
		wg.Go(func() {
			<-start
			seat, err := s.Join(ctx(t), room.ID)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				seated = append(seated, seat)
			case errors.Is(err, store.ErrFull), errors.Is(err, store.ErrSealed):
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
		t.Fatalf("%d racers for the last seat: %d seated, %d full or sealed, errors %v; want 1 seated, %d refused",
			racers, len(seated), full, others, racers-1)
	}
}

func testBothSeeSameOrder(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)

	const each = 50
	var wg sync.WaitGroup
	for _, seat := range []store.Seat{alice, bob} {
		wg.Go(func() {
			for i := range each {
				if err := seat.Send(ctx(t), store.NewMessageID(), fmt.Sprintf("%s %d", seat.Snapshot().Me.Name, i)); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	seenByA, seenByB := bodies(t, alice, 2*each), bodies(t, bob, 2*each)
	if !slices.Equal(seenByA, seenByB) {
		t.Fatalf("members saw different orders:\nA: %q\nB: %q", seenByA, seenByB)
	}
	// Each sender's own messages keep the order they were sent in.
	for _, seat := range []store.Seat{alice, bob} {
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

func testHistoryThenLive(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)

	// Bob joins (through the other store) while Alice is sending: whatever
	// he gets from history plus his live events must be exactly Alice's
	// sequence, once each and in order. (total stays within a seat's event
	// buffer: nobody reads Alice's stream until the end.)
	const total = 100
	joined := make(chan store.Seat, 1)
	go func() {
		for i := range total {
			if i == total/2 {
				seat, err := b.Join(ctx(t), room.ID)
				if err != nil {
					t.Errorf("Join: %v", err)
					close(joined)
					return
				}
				joined <- seat
			}
			if err := alice.Send(ctx(t), store.NewMessageID(), fmt.Sprintf("m%03d", i)); err != nil {
				t.Errorf("Send: %v", err)
				return
			}
		}
	}()
	bob, ok := <-joined
	if !ok {
		t.FailNow()
	}
	defer bob.Leave(context.Background())

	got := historyBodies(bob)
	got = append(got, bodies(t, bob, total-len(got))...)
	for i, body := range got {
		if want := fmt.Sprintf("m%03d", i); body != want {
			t.Fatalf("joiner's message %d is %q, want %q (history had %d)", i, body, want, len(bob.Snapshot().History))
		}
	}
	// Alice's own stream agrees; Bob's arrival is somewhere in it.
	var own []string
	for len(own) < total {
		switch ev := next(t, alice).(type) {
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

// shortFit is how many short messages ("m0", "m1"...) a history keeps:
// HistoryLimit, or fewer if their bytes run out first.
func shortFit() int { return min(store.HistoryLimit, store.HistoryBytes/store.MessageCost("m0")) }

func testHistoryIsBounded(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	const extra = 10
	fit := shortFit()
	for i := range fit + extra {
		send(t, alice, fmt.Sprintf("m%d", i))
		// Keep Alice's stream drained so she is not evicted as a slow reader.
		nextOf[store.MessageEvent](t, alice)
	}
	bob := join(t, b, room.ID)
	h := historyBodies(bob)
	if len(h) != fit {
		t.Fatalf("history has %d messages, want %d", len(h), fit)
	}
	if h[0] != fmt.Sprintf("m%d", extra) || h[len(h)-1] != fmt.Sprintf("m%d", fit+extra-1) {
		t.Fatalf("history runs %q..%q, want the most recent messages", h[0], h[len(h)-1])
	}
}

// People joining and leaving over and over never push messages out of a
// joiner's history.
func testHistorySurvivesComingAndGoing(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	fit := shortFit()
	for i := range fit {
		send(t, alice, fmt.Sprintf("m%d", i))
		nextOf[store.MessageEvent](t, alice)
	}
	// Alice leaves too, so the churn is quick: nobody has to read it.
	if err := alice.Leave(ctx(t)); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	for i := range store.HistoryLimit {
		s := []store.Store{a, b}[i%2]
		bob, err := s.Join(ctx(t), room.ID)
		if err != nil {
			t.Fatalf("Join: %v", err)
		}
		if err := bob.Leave(ctx(t)); err != nil {
			t.Fatalf("Leave: %v", err)
		}
	}
	h := historyBodies(join(t, b, room.ID))
	if len(h) != fit || h[0] != "m0" || h[len(h)-1] != fmt.Sprintf("m%d", fit-1) {
		t.Fatalf("after %d joins and leaves, history holds %d messages (%q...), want all %d",
			store.HistoryLimit, len(h), h[:min(len(h), 3)], fit)
	}
}

// sized is a message of exactly size bytes that starts with label, filled
// with letters carrying three combining marks each, as the heaviest
// messages are: 7 bytes a character.
func sized(label string, size int) string {
	const unit = "a\u0301\u0302\u0303"
	fill := size - len(label)
	return label + strings.Repeat(unit, fill/len(unit)) + strings.Repeat("a", fill%len(unit))
}

// NewestThatFit is the part of sent (oldest first) a room's history keeps:
// the newest messages that fit store.HistoryLimit and store.HistoryBytes.
func NewestThatFit(sent []string) []string {
	cost, i := 0, len(sent)
	for i > 0 && len(sent)-i < store.HistoryLimit && cost+store.MessageCost(sent[i-1]) <= store.HistoryBytes {
		i--
		cost += store.MessageCost(sent[i])
	}
	return sent[i:]
}

// A joiner gets the newest messages whose costs add up to at most
// store.HistoryBytes: the oldest are trimmed first, whatever their size.
func testHistoryBytes(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	// Twenty of the largest messages, more than the history keeps; then
	// small ones, enough to push out some of the large ones kept.
	big := func(i int) string { return sized(fmt.Sprintf("big%02d ", i), safetext.MaxMessageBytes) }
	var sent []string
	for i := range 20 {
		sent = append(sent, big(i))
	}
	bigsKept := len(NewestThatFit(sent))
	for smalls := 0; len(NewestThatFit(sent))-smalls >= bigsKept || smalls < 3; smalls++ {
		sent = append(sent, fmt.Sprintf("small%d", smalls))
	}
	want := NewestThatFit(sent)
	if bigsKept >= 20 || len(want) >= len(sent) || len(want) >= store.HistoryLimit {
		t.Fatalf("with these costs the case trims nothing by bytes (%d of 20 large kept, %d of %d)", bigsKept, len(want), len(sent))
	}
	for _, body := range sent {
		send(t, alice, body)
		nextOf[store.MessageEvent](t, alice)
	}
	bob := join(t, b, room.ID)
	got := historyBodies(bob)
	if !slices.Equal(got, want) {
		t.Fatalf("joiner's history has %d messages (%.8q...), want the %d newest that fit (%.8q...)", len(got), got, len(want), want)
	}
	// Live messages follow the history, as ever.
	send(t, alice, "after")
	if body := nextOf[store.MessageEvent](t, bob).Message.Body; body != "after" {
		t.Fatalf("after the history came %q, want %q", body, "after")
	}
}

// A message over safetext.MaxMessageBytes once sanitised is refused
// whatever its length in characters, and nothing of it is kept.
func testMessageBytesLimit(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)

	// 700 characters, each with three combining marks: 4900 bytes.
	heavy := strings.Repeat("e\u0301\u0302\u0303", 700)
	if n := safetext.RuneCount(heavy); n >= safetext.MaxMessageRunes {
		t.Fatalf("the heavy message has %d characters, want fewer than %d", n, safetext.MaxMessageRunes)
	}
	for _, body := range []string{heavy, sized("over ", safetext.MaxMessageBytes+1)} {
		if err := alice.Send(ctx(t), store.NewMessageID(), body); !errors.Is(err, store.ErrMessageTooLong) {
			t.Errorf("Send(%d bytes, %d characters) = %v, want ErrMessageTooLong", len(body), safetext.RuneCount(body), err)
		}
	}
	atLimit := sized("limit ", safetext.MaxMessageBytes)
	send(t, alice, atLimit)
	send(t, alice, "after")
	for _, seat := range []store.Seat{alice, bob} {
		if got := bodies(t, seat, 2); got[0] != atLimit || got[1] != "after" {
			t.Fatalf("%s got %d and %q, want the message at the limit and %q: a refused one was kept",
				seat.Snapshot().Me.Name, len(got[0]), got[1], "after")
		}
	}
	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if h := historyBodies(rejoin(t, b, room.ID, bob)); !slices.Equal(h, []string{atLimit, "after"}) {
		t.Fatalf("history has %d messages, want only the two accepted", len(h))
	}
}

func testMessagesSanitised(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)

	id := store.NewMessageID()
	if err := alice.Send(ctx(t), id, "hi \x1b]0;owned\x07there\x1b[2J\u202e!"); err != nil {
		t.Fatal(err)
	}
	for _, seat := range []store.Seat{alice, bob} {
		msg := nextOf[store.MessageEvent](t, seat).Message
		// ESC and BEL are gone, so what is left is harmless text.
		if msg.Body != "hi ]0;ownedthere[2J!" {
			t.Errorf("body = %q, want controls removed", msg.Body)
		}
		if msg.From != alice.Snapshot().Me || msg.ID != id || msg.At.IsZero() {
			t.Errorf("message = %+v, want from %v with ID %q and a time", msg, alice.Snapshot().Me, id)
		}
	}
	if err := alice.Send(ctx(t), store.NewMessageID(), " \x00\x1b\t\n "); !errors.Is(err, store.ErrEmptyMessage) {
		t.Errorf("Send(only controls) = %v, want ErrEmptyMessage", err)
	}
	if err := alice.Send(ctx(t), store.NewMessageID(), strings.Repeat("x", safetext.MaxMessageRunes+1)); !errors.Is(err, store.ErrMessageTooLong) {
		t.Errorf("Send(too long) = %v, want ErrMessageTooLong", err)
	}
	for _, bad := range []store.MessageID{"", "short", store.MessageID(strings.Repeat("x", 4000)), "ABCDEFGHJKMNPQRS", "room:*{}\x1b[2J\x00a"} {
		if err := alice.Send(ctx(t), bad, "hello"); !errors.Is(err, store.ErrBadMessageID) {
			t.Errorf("Send with ID %q = %v, want ErrBadMessageID", bad, err)
		}
	}
	send(t, alice, strings.Repeat("é", safetext.MaxMessageRunes)) // exactly at the limit, multi-byte
	if got := nextOf[store.MessageEvent](t, bob).Message.Body; safetext.RuneCount(got) != safetext.MaxMessageRunes {
		t.Errorf("a message at the limit arrived with %d characters", safetext.RuneCount(got))
	}
}

// A message of several lines, and emoji joined into one (a family, a skin
// tone, a flag), arrive as they were written, live and in the history: a
// store keeps the sanitised body as it is.
func testLinesAndEmoji(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)

	bodies := []string{
		"first line\n    indented\n\nafter a blank line",
		"👨\u200d👩\u200d👧 👍🏽 🇫🇷 ❤\ufe0f 1\ufe0f\u20e3 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
	}
	for _, body := range bodies {
		send(t, alice, body)
	}
	for _, seat := range []store.Seat{alice, bob} {
		for _, want := range bodies {
			if got := nextOf[store.MessageEvent](t, seat).Message.Body; got != want {
				t.Errorf("%s got %q, want %q", seat.Snapshot().Me.Name, got, want)
			}
		}
	}
	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := historyBodies(rejoin(t, b, room.ID, bob)); !slices.Equal(got, bodies) {
		t.Errorf("history = %q, want %q", got, bodies)
	}
}

// A message sent again under its ID (a retry after a timeout, say) is
// stored once: both people see it once, and nothing else is lost.
func testSendIsStoredOnce(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)

	id := store.NewMessageID()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if err := alice.Send(ctx(t), id, "only once"); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	if err := alice.Send(ctx(t), id, "only once"); err != nil {
		t.Fatalf("Send again: %v", err)
	}
	send(t, alice, "after")
	for _, seat := range []store.Seat{alice, bob} {
		first := nextOf[store.MessageEvent](t, seat).Message
		if first.Body != "only once" || first.ID != id {
			t.Fatalf("%s: first message %+v, want %q under %q", seat.Snapshot().Me.Name, first, "only once", id)
		}
		if got := nextOf[store.MessageEvent](t, seat).Message.Body; got != "after" {
			t.Fatalf("%s: after the message came %q, want %q: it was stored twice", seat.Snapshot().Me.Name, got, "after")
		}
	}
	// History holds it once too.
	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if h := historyBodies(rejoin(t, b, room.ID, bob)); !slices.Equal(h, []string{"only once", "after"}) {
		t.Fatalf("history %q, want the message once", h)
	}
}

// rejoin brings back the person of seat, through s, with their key.
func rejoin(t *testing.T, s store.Store, id store.RoomID, seat store.Seat) store.Seat {
	t.Helper()
	back, err := s.Rejoin(ctx(t), id, seat.Snapshot().Key)
	if err != nil {
		t.Fatalf("Rejoin: %v", err)
	}
	t.Cleanup(func() { _ = back.Leave(context.Background()) })
	return back
}

// Once the two have met, a seat given up is kept for its person: the
// other sees them go, and the room ID admits nobody in their place.
func testLeaveKeepsSeat(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob, err := b.Join(ctx(t), room.ID)
	if err != nil {
		t.Fatal(err)
	}
	nextOf[store.JoinedEvent](t, alice)

	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
	closed(t, bob)
	if got := nextOf[store.LeftEvent](t, alice); got.Member != bob.Snapshot().Me || !got.Kept {
		t.Errorf("left = %+v, want %v with the seat kept", got, bob.Snapshot().Me)
	}
	if err := bob.Send(ctx(t), store.NewMessageID(), "still here?"); !errors.Is(err, store.ErrEnded) {
		t.Errorf("Send after Leave = %v, want ErrEnded", err)
	}
	for _, s := range []store.Store{a, b} {
		if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
			t.Errorf("Join of a room whose away seat is kept = %v, want ErrSealed", err)
		}
	}
	// Alice, coming back too, learns who is away.
	if err := alice.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	again := rejoin(t, b, room.ID, alice)
	if snap := again.Snapshot(); !snap.Sealed || len(snap.Others) != 0 || len(snap.Away) != 1 || snap.Away[0] != bob.Snapshot().Me {
		t.Errorf("sealed %v, others %v, away %v; want sealed, nobody here and %v away", snap.Sealed, snap.Others, snap.Away, bob.Snapshot().Me)
	}
}

// The join that brings two people together seals the room, for both of
// them and on every server.
func testMeetingSeals(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	if alice.Snapshot().Sealed || alice.Snapshot().Key.IsZero() {
		t.Errorf("the first person: sealed %v, key zero %v; want unsealed, with a key", alice.Snapshot().Sealed, alice.Snapshot().Key.IsZero())
	}
	bob := join(t, b, room.ID)
	if !bob.Snapshot().Sealed || bob.Snapshot().Key.IsZero() || bob.Snapshot().Key == alice.Snapshot().Key {
		t.Errorf("the second person: sealed %v; want sealed, with a key of their own", bob.Snapshot().Sealed)
	}
	if got := nextOf[store.JoinedEvent](t, alice); got.Member != bob.Snapshot().Me || got.Back {
		t.Errorf("joined = %+v, want %v, new", got, bob.Snapshot().Me)
	}
	for _, s := range []store.Store{b, a} {
		if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
			t.Errorf("third Join = %v, want ErrSealed", err)
		}
	}
}

// A seat given up before anyone met is free for anyone with the room ID;
// once someone else's seat is taken with it, the first person's key opens
// nothing.
func testLeaveBeforeMeeting(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	if err := alice.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	bob := join(t, b, room.ID)
	if snap := bob.Snapshot(); snap.Sealed || len(snap.Others) != 0 || len(snap.Away) != 0 {
		t.Errorf("alone in an unsealed room: %+v", snap)
	}
	carol := join(t, a, room.ID)
	if got := nextOf[store.JoinedEvent](t, bob).Member; got != carol.Snapshot().Me {
		t.Errorf("joined = %v, want %v", got, carol.Snapshot().Me)
	}
	for _, s := range []store.Store{a, b} {
		if _, err := s.Rejoin(ctx(t), room.ID, alice.Snapshot().Key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Rejoin of a seat taken by others = %v, want ErrNotFound", err)
		}
	}
}

// Before anyone met, the person who left can come back to their seat with
// their key, the same person with the history, while it is free; and the
// one who then joins seals the room with them.
func testRejoinBeforeMeeting(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	send(t, alice, "anyone?")
	nextOf[store.MessageEvent](t, alice)
	if err := alice.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	back := rejoin(t, b, room.ID, alice)
	snap := back.Snapshot()
	if snap.Me != alice.Snapshot().Me || snap.Sealed || !slices.Equal(historyBodies(back), []string{"anyone?"}) {
		t.Fatalf("came back as %v (was %v), sealed %v, history %q", snap.Me, alice.Snapshot().Me, snap.Sealed, historyBodies(back))
	}
	if h := back.Snapshot().History; h[0].From != alice.Snapshot().Me {
		t.Errorf("own message from %v, want %v", h[0].From, alice.Snapshot().Me)
	}
	bob := join(t, a, room.ID)
	if got := bob.Snapshot().Others; !bob.Snapshot().Sealed || len(got) != 1 || got[0] != alice.Snapshot().Me {
		t.Errorf("the partner sees %v, sealed %v", got, bob.Snapshot().Sealed)
	}
	nextOf[store.JoinedEvent](t, back)
}

// With the key, a person who left a sealed room comes back as the same
// member (ID, name, key) with the history, through any server; the other
// sees them back.
func testRejoin(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)
	send(t, alice, "see you")
	send(t, bob, "back in a bit")
	bodies(t, alice, 2)

	for i, s := range []store.Store{a, b} {
		if err := bob.Leave(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if got := nextOf[store.LeftEvent](t, alice); got.Member != bob.Snapshot().Me || !got.Kept {
			t.Fatalf("left = %+v, want %v, seat kept", got, bob.Snapshot().Me)
		}
		prev := bob
		bob = rejoin(t, s, room.ID, prev)
		snap := bob.Snapshot()
		if snap.Me != prev.Snapshot().Me || snap.Key != prev.Snapshot().Key || !snap.Sealed || !snap.Back || prev.Snapshot().Back != (i > 0) {
			t.Fatalf("back as %v (was %v), sealed %v", snap.Me, prev.Snapshot().Me, snap.Sealed)
		}
		if len(snap.Others) != 1 || snap.Others[0] != alice.Snapshot().Me || len(snap.Away) != 0 {
			t.Errorf("back: others %v, away %v; want %v here", snap.Others, snap.Away, alice.Snapshot().Me)
		}
		if h := historyBodies(bob); !slices.Equal(h[:2], []string{"see you", "back in a bit"}) || len(h) != 2+i {
			t.Errorf("history %q", h)
		}
		if got := nextOf[store.JoinedEvent](t, alice); got.Member != prev.Snapshot().Me || !got.Back {
			t.Errorf("joined = %+v, want %v back", got, prev.Snapshot().Me)
		}
		send(t, bob, fmt.Sprintf("back %d", i))
		if got := nextOf[store.MessageEvent](t, alice).Message; got.Body != fmt.Sprintf("back %d", i) || got.From != prev.Snapshot().Me {
			t.Errorf("got %+v", got)
		}
		nextOf[store.MessageEvent](t, bob)
	}
}

// A key that opens no seat gets exactly the answer an unknown room gets:
// whoever tries keys learns nothing, not even that the room exists.
func testWrongKey(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	join(t, a, room.ID)
	join(t, b, room.ID)
	_, unknown := b.Rejoin(ctx(t), store.NewRoomID(), store.NewSeatKey(room.ID))
	if !errors.Is(unknown, store.ErrNotFound) {
		t.Fatalf("Rejoin of an unknown room = %v, want ErrNotFound", unknown)
	}
	other := create(t, b)
	for name, key := range map[string]store.SeatKey{
		"a fresh key":             store.NewSeatKey(room.ID),
		"another room's key":      join(t, a, other.ID).Snapshot().Key,
		"no key":                  {},
		"a key for another room ": store.NewSeatKey(other.ID),
	} {
		for _, s := range []store.Store{a, b} {
			_, err := s.Rejoin(ctx(t), room.ID, key)
			if !errors.Is(err, store.ErrNotFound) || err.Error() != unknown.Error() {
				t.Errorf("Rejoin with %s = %v, want %v as for an unknown room", name, err, unknown)
			}
		}
	}
}

// Coming back while the old connection still holds the seat (a connection
// that dropped without anyone noticing yet) takes the seat over: the old
// one ends, and nothing it does any more counts.
func testRejoinTakesOver(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)

	again := rejoin(t, b, room.ID, alice)
	// Whatever the old connection does before it hears of it counts for
	// nothing, and it still learns it was replaced.
	if err := alice.Send(ctx(t), store.NewMessageID(), "stale"); !errors.Is(err, store.ErrEnded) {
		t.Errorf("Send from the old connection = %v, want ErrEnded", err)
	}
	if err := alice.Reopen(ctx(t)); !errors.Is(err, store.ErrEnded) {
		t.Errorf("Reopen from the old connection = %v, want ErrEnded", err)
	}
	if err := alice.Destroy(ctx(t)); !errors.Is(err, store.ErrEnded) {
		t.Errorf("Destroy from the old connection = %v, want ErrEnded", err)
	}
	if got := nextOf[store.EndedEvent](t, alice); got.Reason != store.EndReplaced || !got.RoomLivesOn {
		t.Errorf("the old connection ended with %+v, want replaced, the room living on", got)
	}
	closed(t, alice)
	if got := nextOf[store.JoinedEvent](t, bob); got.Member != alice.Snapshot().Me || !got.Back {
		t.Errorf("joined = %+v, want %v back", got, alice.Snapshot().Me)
	}
	if err := alice.Leave(ctx(t)); err != nil {
		t.Errorf("Leave of the old connection = %v", err)
	}
	send(t, again, "still me")
	// Bob sees no leave: the old connection's Leave did nothing.
	if got := nextOf[store.MessageEvent](t, bob).Message; got.Body != "still me" || got.From != alice.Snapshot().Me {
		t.Errorf("got %+v", got)
	}
	if got := nextOf[store.MessageEvent](t, again).Message.Body; got != "still me" {
		t.Errorf("got %q", got)
	}
}

// The one still present can give up the seat kept for the other (who lost
// their key): the room is open again to the room ID, and the old key
// opens nothing.
func testReopen(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	if err := alice.Reopen(ctx(t)); !errors.Is(err, store.ErrNothingToReopen) {
		t.Errorf("Reopen alone in an unsealed room = %v, want ErrNothingToReopen", err)
	}
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)
	if err := alice.Reopen(ctx(t)); !errors.Is(err, store.ErrNothingToReopen) {
		t.Errorf("Reopen with the partner present = %v, want ErrNothingToReopen", err)
	}
	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	nextOf[store.LeftEvent](t, alice)

	if err := alice.Reopen(ctx(t)); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	if got := nextOf[store.ReopenedEvent](t, alice).Member; got != bob.Snapshot().Me {
		t.Errorf("reopened = %v, want %v", got, bob.Snapshot().Me)
	}
	for _, s := range []store.Store{a, b} {
		if _, err := s.Rejoin(ctx(t), room.ID, bob.Snapshot().Key); !errors.Is(err, store.ErrGivenAway) {
			t.Errorf("Rejoin with the reopened seat's key = %v, want ErrGivenAway", err)
		}
	}
	carol := join(t, b, room.ID)
	if got := carol.Snapshot(); !got.Sealed || len(got.Others) != 1 || got.Others[0] != alice.Snapshot().Me {
		t.Errorf("the newcomer: sealed %v, others %v", got.Sealed, got.Others)
	}
	if _, err := a.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
		t.Errorf("Join after the newcomer = %v, want ErrSealed", err)
	}
	// The one who reopened keeps their own seat and key.
	if err := alice.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	back := rejoin(t, b, room.ID, alice)
	if got := back.Snapshot(); got.Me != alice.Snapshot().Me || len(got.Others) != 1 || got.Others[0] != carol.Snapshot().Me {
		t.Errorf("the reopener back as %v with %v, want %v with %v", got.Me, got.Others, alice.Snapshot().Me, carol.Snapshot().Me)
	}
}

// The key of a seat given away is told so, from every store, while the
// room lives, whoever holds the seat now and however often it changes
// hands; a key that never opened a seat still gets exactly the answer an
// unknown room gets; and once the room ends, the given-away key is an
// unknown room's too.
func testGivenAwayKey(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)
	var given []store.SeatKey
	for range 2 {
		given = append(given, bob.Snapshot().Key)
		bob = giveAway(t, alice, bob, b)
	}
	_, unknown := a.Rejoin(ctx(t), store.NewRoomID(), store.NewSeatKey(room.ID))
	for _, s := range []store.Store{a, b} {
		for i, key := range given {
			if _, err := s.Rejoin(ctx(t), room.ID, key); !errors.Is(err, store.ErrGivenAway) {
				t.Errorf("Rejoin with the key given away %d = %v, want ErrGivenAway", i, err)
			}
		}
		if _, err := s.Rejoin(ctx(t), room.ID, store.NewSeatKey(room.ID)); !errors.Is(err, store.ErrNotFound) || err.Error() != unknown.Error() {
			t.Errorf("Rejoin with a fresh key = %v, want %v as for an unknown room", err, unknown)
		}
	}
	// The seat's holder now is not disturbed by the old key's tries.
	send(t, bob, "still here")
	nextOf[store.MessageEvent](t, alice)
	if err := alice.Destroy(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for _, s := range []store.Store{a, b} {
		if _, err := s.Rejoin(ctx(t), room.ID, given[0]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Rejoin with a given-away key after the room ended = %v, want ErrNotFound", err)
		}
	}
}

// giveAway has partner leave and stayer give their seat away, then seats
// a newcomer through s in it, and returns the newcomer's seat.
func giveAway(t *testing.T, stayer, partner store.Seat, s store.Store) store.Seat {
	t.Helper()
	if err := partner.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	nextOf[store.LeftEvent](t, stayer)
	if err := stayer.Reopen(ctx(t)); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	nextOf[store.ReopenedEvent](t, stayer)
	newcomer := join(t, s, stayer.Snapshot().Room.ID)
	nextOf[store.JoinedEvent](t, stayer)
	return newcomer
}

// Whoever takes a seat given away never has the animal of the one it was
// given away from, so the one who stayed does not take them for the same
// person. Many rounds: by chance alone one in 40 would.
func testNewPartnerAnimal(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)
	for i := range 60 {
		before := bob.Snapshot().Me.Name
		bob = giveAway(t, alice, bob, []store.Store{a, b}[i%2])
		if now := bob.Snapshot().Me.Name; store.Animal(now) == store.Animal(before) {
			t.Fatalf("round %d: %s took the seat of %s", i, now, before)
		}
	}
}

// Two connections coming back to one seat at once (a person who pressed
// Enter in two windows): both get in in turn, the earlier is replaced, and
// exactly one holds the seat.
func testConcurrentRejoins(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)
	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	nextOf[store.LeftEvent](t, alice)

	var seats [2]store.Seat
	var wg sync.WaitGroup
	for i, s := range []store.Store{a, b} {
		wg.Go(func() {
			seat, err := s.Rejoin(ctx(t), room.ID, bob.Snapshot().Key)
			if err != nil {
				t.Errorf("Rejoin %d: %v", i, err)
				return
			}
			t.Cleanup(func() { _ = seat.Leave(context.Background()) })
			seats[i] = seat
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var live store.Seat
	for live == nil {
		select {
		case ev := <-seats[0].Events():
			wantReplaced(t, ev)
			live = seats[1]
		case ev := <-seats[1].Events():
			wantReplaced(t, ev)
			live = seats[0]
		case <-timer.C:
			t.Fatalf("neither connection was replaced within %v", wait)
		}
	}
	send(t, live, "the one")
	if got := nextOf[store.MessageEvent](t, live).Message.Body; got != "the one" {
		t.Fatalf("the one left holding the seat got %q", got)
	}
	for {
		switch ev := next(t, alice).(type) {
		case store.JoinedEvent:
			if ev.Member != bob.Snapshot().Me || !ev.Back {
				t.Fatalf("joined = %+v, want %v back", ev, bob.Snapshot().Me)
			}
			continue
		case store.MessageEvent:
			if ev.Message.Body != "the one" || ev.Message.From != bob.Snapshot().Me {
				t.Fatalf("got %+v", ev.Message)
			}
		default:
			t.Fatalf("unexpected %#v", ev)
		}
		break
	}
	for _, s := range []store.Store{a, b} {
		if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
			t.Errorf("Join = %v, want ErrSealed", err)
		}
	}
}

func wantReplaced(t *testing.T, ev store.Event) {
	t.Helper()
	if e, ok := ev.(store.EndedEvent); !ok || e.Reason != store.EndReplaced || !e.RoomLivesOn {
		t.Fatalf("got %#v, want the end of a replaced connection", ev)
	}
}

// Typing reaches the others present as a hint, never the typist, and is
// never stored: history and the log hold only messages.
func testTyping(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)

	for _, typing := range []bool{true, false} {
		if err := alice.Typing(ctx(t), typing); err != nil {
			t.Fatalf("Typing: %v", err)
		}
		if got := nextOf[store.TypingEvent](t, bob); got.Member != alice.Snapshot().Me || got.Typing != typing {
			t.Errorf("typing = %+v, want %v typing %v", got, alice.Snapshot().Me, typing)
		}
	}
	send(t, alice, "typed")
	// The typist's own stream has the message next: no typing of her own.
	if got := nextOf[store.MessageEvent](t, alice).Message.Body; got != "typed" {
		t.Errorf("got %q", got)
	}
	nextOf[store.MessageEvent](t, bob)
	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	nextOf[store.LeftEvent](t, alice)
	if h := historyBodies(rejoin(t, a, room.ID, bob)); !slices.Equal(h, []string{"typed"}) {
		t.Errorf("history %q, want the message alone", h)
	}
	if err := bob.Typing(ctx(t), true); !errors.Is(err, store.ErrEnded) {
		t.Errorf("Typing after Leave = %v, want ErrEnded", err)
	}
}

func testDestroy(t *testing.T, h Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	send(t, alice, "secret")
	nextOf[store.JoinedEvent](t, alice)

	if err := bob.Destroy(ctx(t)); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	// Deleted by the time Destroy returns, not eventually.
	wantNoResidue(t, h, a, room.ID)
	for _, seat := range []store.Seat{alice, bob} {
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
		if ended.Reason != store.EndDestroyed || ended.By != bob.Snapshot().Me {
			t.Errorf("%s ended with %+v, want destroyed by %v", seat.Snapshot().Me.Name, ended, bob.Snapshot().Me)
		}
		closed(t, seat)
		if err := seat.Send(ctx(t), store.NewMessageID(), "after"); !errors.Is(err, store.ErrEnded) {
			t.Errorf("Send after destroy = %v, want ErrEnded", err)
		}
	}
	for _, s := range []store.Store{a, b} {
		if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Join after destroy = %v, want ErrNotFound", err)
		}
		if _, err := s.Rejoin(ctx(t), room.ID, alice.Snapshot().Key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Rejoin after destroy = %v, want ErrNotFound", err)
		}
	}
	if err := alice.Destroy(ctx(t)); !errors.Is(err, store.ErrEnded) {
		t.Errorf("second Destroy = %v, want ErrEnded", err)
	}
	if err := alice.Leave(ctx(t)); err != nil {
		t.Errorf("Leave after destroy = %v", err)
	}
}

func testExpiry(t *testing.T, h Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)
	// Activity late in the room's life does not extend it.
	halfway := time.NewTimer(time.Until(room.CreatedAt.Add(h.TTL / 2)))
	<-halfway.C
	send(t, alice, "still talking")

	for _, seat := range []store.Seat{alice, bob} {
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
		// The deadline is the promise; the slack is for a loaded machine.
		if late := now.Sub(room.ExpiresAt); late > wait {
			t.Errorf("ended %v after the deadline", late)
		}
		closed(t, seat)
	}
	for _, s := range []store.Store{a, b} {
		if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Join after expiry = %v, want ErrNotFound", err)
		}
		if _, err := s.Rejoin(ctx(t), room.ID, bob.Snapshot().Key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Rejoin after expiry = %v, want ErrNotFound", err)
		}
	}
	wantNoResidue(t, h, a, room.ID)
}

func testSlowSeatEvicted(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID) // never reads its events
	nextOf[store.JoinedEvent](t, alice)

	// Alice keeps talking far past any reasonable buffer; her sends never
	// block and she keeps receiving her own messages.
	const n = 1000
	var left bool
	for i := range n {
		send(t, alice, fmt.Sprintf("m%d", i))
		for {
			ev := next(t, alice)
			if l, ok := ev.(store.LeftEvent); ok && l.Member == bob.Snapshot().Me {
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
		// Across replicas the news of the eviction may trail Alice's
		// messages a little.
		if got := nextOf[store.LeftEvent](t, alice).Member; got != bob.Snapshot().Me {
			t.Fatalf("%v left, want %v", got, bob.Snapshot().Me)
		}
	}
	// Bob's stream ends with the reason, after whatever it had buffered.
	for {
		ev, ok := <-bob.Events()
		if !ok {
			t.Fatal("stream closed without an EndedEvent")
		}
		if e, ok := ev.(store.EndedEvent); ok {
			if e.Reason != store.EndEvicted || !e.RoomLivesOn {
				t.Fatalf("ended with %+v, want evicted, the room living on", e)
			}
			break
		}
	}
	closed(t, bob)
	// The seat is kept for Bob, who can come back to it.
	if _, err := b.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
		t.Fatalf("Join after the eviction = %v, want ErrSealed", err)
	}
	rejoin(t, b, room.ID, bob)
}

// fallBehind has seat send messages it never reads until its queue has
// room for no other event.
func fallBehind(t *testing.T, seat store.Seat) {
	t.Helper()
	for i := range store.EventBuffer - 1 {
		send(t, seat, fmt.Sprintf("unread %d", i))
	}
}

// evicted drains seat's stream, which must end with an eviction.
func evicted(t *testing.T, seat store.Seat) {
	t.Helper()
	for {
		switch ev := next(t, seat).(type) {
		case store.MessageEvent:
		case store.EndedEvent:
			if ev.Reason != store.EndEvicted || !ev.RoomLivesOn {
				t.Fatalf("%s ended with %+v, want evicted, the room living on", seat.Snapshot().Me.Name, ev)
			}
			closed(t, seat)
			return
		default:
			t.Fatalf("%s: unexpected %#v before the eviction", seat.Snapshot().Me.Name, ev)
		}
	}
}

// A join or rejoin whose news overflows the partner's queue evicts the
// partner, and the newcomer is told: the room keeps exactly its two seats
// and both people can still come back to theirs.
func testJoinEvictsPartner(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	fallBehind(t, alice)
	bob := join(t, b, room.ID)
	if snap := bob.Snapshot(); !snap.Sealed || len(snap.Others) != 1 || snap.Others[0] != alice.Snapshot().Me {
		t.Fatalf("the joiner: sealed %v, others %v; want sealed with %v", snap.Sealed, snap.Others, alice.Snapshot().Me)
	}
	// Drained only once the eviction is known: across replicas, reading
	// earlier could make room for the news that was to overflow it.
	if got := nextOf[store.LeftEvent](t, bob); got.Member != alice.Snapshot().Me || !got.Kept {
		t.Fatalf("left = %+v, want %v with the seat kept", got, alice.Snapshot().Me)
	}
	evicted(t, alice)
	for _, s := range []store.Store{a, b} {
		if _, err := s.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
			t.Fatalf("Join after the eviction = %v, want ErrSealed: a third person got in", err)
		}
	}

	// The same, coming back: Alice's return evicts a Bob who fell behind.
	alice = rejoin(t, b, room.ID, alice)
	nextOf[store.JoinedEvent](t, bob)
	if err := alice.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	nextOf[store.LeftEvent](t, bob)
	fallBehind(t, bob)
	alice = rejoin(t, a, room.ID, alice)
	if snap := alice.Snapshot(); len(snap.Others) != 1 || snap.Others[0] != bob.Snapshot().Me {
		t.Fatalf("back: others %v, want %v", snap.Others, bob.Snapshot().Me)
	}
	if got := nextOf[store.LeftEvent](t, alice); got.Member != bob.Snapshot().Me || !got.Kept {
		t.Fatalf("left = %+v, want %v with the seat kept", got, bob.Snapshot().Me)
	}
	evicted(t, bob)
	rejoin(t, a, room.ID, bob)
	if got := nextOf[store.JoinedEvent](t, alice); got.Member != bob.Snapshot().Me || !got.Back {
		t.Errorf("joined = %+v, want %v back", got, bob.Snapshot().Me)
	}
	if _, err := b.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
		t.Errorf("Join = %v, want ErrSealed", err)
	}
}

// Close ends the seats this store handed out, gives them up, and stops: a
// second Close (or three at once) is harmless, Leave still works, and the
// other replica carries on.
func testClose(t *testing.T, _ Harness, a, b store.Store) {
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := a.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	wg.Wait()
	if e := nextOf[store.EndedEvent](t, alice); e.Reason != store.EndShutdown {
		t.Errorf("ended with %v, want shutdown", e.Reason)
	}
	closed(t, alice)
	if err := alice.Leave(ctx(t)); err != nil {
		t.Errorf("Leave after Close = %v", err)
	}
	if err := alice.Send(ctx(t), store.NewMessageID(), "still here?"); !errors.Is(err, store.ErrEnded) {
		t.Errorf("Send after Close = %v, want ErrEnded", err)
	}
	if _, err := a.Create(ctx(t)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Create after Close = %v, want ErrClosed", err)
	}
	if _, err := a.Join(ctx(t), room.ID); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Join after Close = %v, want ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
	if b == a {
		if e := nextOf[store.EndedEvent](t, bob); e.Reason != store.EndShutdown {
			t.Errorf("the partner ended with %v, want shutdown", e.Reason)
		}
		return
	}
	// On another replica the room lives on: Alice's seat was given up.
	if got := nextOf[store.LeftEvent](t, bob).Member; got != alice.Snapshot().Me {
		t.Errorf("the partner saw %v leave, want %v", got, alice.Snapshot().Me)
	}
	send(t, bob, "still here")
	if got := nextOf[store.MessageEvent](t, bob).Message.Body; got != "still here" {
		t.Errorf("got %q", got)
	}
	// Alice's seat waits for her: the server she comes back through takes
	// her in.
	rejoin(t, b, room.ID, alice)
}
