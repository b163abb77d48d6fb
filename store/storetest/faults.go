package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssh-burn/chat/store"
)

// Settings of the fault cases: a short lease, so that an outage outlasts
// it several times over, and a tolerance well beyond the outages that must
// cost nothing.
const (
	faultLease     = time.Second
	faultTolerance = 30 * time.Second
	// outage is how long the backend stays paused: three leases, so any
	// seat that a lost heartbeat could cost would be lost.
	outage = 3 * faultLease
	// retryEvery paces sends repeated until the backend is back.
	retryEvery = 100 * time.Millisecond
)

func runFaults(t *testing.T, h Harness) {
	for _, c := range []struct {
		name string
		fn   func(t *testing.T, f *Faulty)
	}{
		{"PauseLosesNothing", testPause},
		{"RestartKeepingDataLosesNothing", testRestartKeepingData},
		{"RestartLosingDataEndsRooms", testRestartLosingData},
		{"FullRefusesNewRoomsAndMessagesButKeepsPeople", testFull},
		{"OutageBeyondToleranceEndsSeatsAndFreesThem", testBeyondTolerance},
		{"SlowIsNotDead", testSlowIsNotDead},
		{"ADepartedReplicaIsDeadAndItsSeatsFreed", testDepartedReplicaReaped},
		{"AJoinWhoseAnswerWasLostIsRetriedAsItself", testJoinRetried},
		{"AnAbandonedJoinLeavesNoGhost", testJoinAbandoned},
		{"ARejoinWhoseAnswerWasLostOrNeverCameLeavesOneSeat", testRejoinRetriedOrAbandoned},
		{"ASeatAttachedDuringAReadMissesNothing", testAttachDuringRead},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			withLeakCheck(t, func() {
				f := *h.Faults(t)
				// Every store the case opens is closed before the check.
				var opened []store.Store
				var lines []*Line
				defer func() {
					for _, s := range opened {
						// A case that loses requests may leave a Close
						// unable to give up a seat: that is its point.
						if err := s.Close(); err != nil && !errors.Is(err, store.ErrUnavailable) {
							t.Errorf("Close: %v", err)
						}
					}
					for _, l := range lines {
						l.Close()
					}
				}()
				newStore, newBehind := f.New, f.NewBehind
				f.New = func(t *testing.T, ttl, lease, tolerance time.Duration) store.Store {
					s := newStore(t, ttl, lease, tolerance)
					opened = append(opened, s)
					return s
				}
				f.NewBehind = func(t *testing.T, ttl, lease, tolerance time.Duration) (store.Store, *Line) {
					if newBehind == nil {
						t.Fatal("the backend offers no line to degrade (Faulty.NewBehind)")
					}
					s, line := newBehind(t, ttl, lease, tolerance)
					opened = append(opened, s)
					lines = append(lines, line)
					return s, line
				}
				c.fn(t, &f)
			})
		})
	}
}

// replicas returns two stores on f's backend (closed when the case ends).
func replicas(t *testing.T, f *Faulty, lease, tolerance time.Duration) (store.Store, store.Store) {
	return f.New(t, longLived, lease, tolerance), f.New(t, longLived, lease, tolerance)
}

// aPair seats Alice on a and Bob on b in a fresh room, and has them say
// hello, so both streams are known to flow.
func aPair(t *testing.T, a, b store.Store) (store.Room, store.Seat, store.Seat) {
	t.Helper()
	room := create(t, a)
	alice := join(t, a, room.ID)
	bob := join(t, b, room.ID)
	nextOf[store.JoinedEvent](t, alice)
	send(t, alice, "hello")
	for _, seat := range []store.Seat{alice, bob} {
		if got := nextOf[store.MessageEvent](t, seat).Message.Body; got != "hello" {
			t.Fatalf("got %q", got)
		}
	}
	return room, alice, bob
}

// sendUntilStored sends the message under id until the store takes it,
// as the screen does after an unknown outcome; any error but
// ErrUnavailable fails t.
func sendUntilStored(t *testing.T, seat store.Seat, id store.MessageID, body string) {
	t.Helper()
	sendTrying(t, seat, id, body, time.Second)
}

// sendTrying is sendUntilStored waiting perTry at most for each try.
func sendTrying(t *testing.T, seat store.Seat, id store.MessageID, body string, perTry time.Duration) {
	t.Helper()
	deadline := time.NewTimer(faultTolerance)
	defer deadline.Stop()
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(t.Context(), perTry)
		err := seat.Send(ctx, id, body)
		cancel()
		switch {
		case err == nil:
			return
		case !errors.Is(err, store.ErrUnavailable):
			t.Fatalf("Send(%q) = %v, want it stored or ErrUnavailable", body, err)
		}
		select {
		case <-deadline.C:
			t.Fatalf("Send(%q) still failing after %v: %v", body, faultTolerance, err)
		case <-tick.C:
		}
	}
}

// story is what a seat went through, read from its stream.
type story struct {
	messages     []string
	reconnecting bool
	// reconnected is set only for a ReconnectedEvent after a
	// ReconnectingEvent.
	reconnected bool
}

// readUntil reads seat's events until done says the story is complete,
// failing on the end of the seat or at the deadline. s is the story so
// far.
func readUntil(t *testing.T, seat store.Seat, s story, done func(story) bool) story {
	t.Helper()
	deadline := time.NewTimer(faultTolerance)
	defer deadline.Stop()
	for !done(s) {
		select {
		case ev, ok := <-seat.Events():
			if !ok {
				t.Fatalf("%s: stream closed; so far %+v", seat.Snapshot().Me.Name, s)
			}
			switch ev := ev.(type) {
			case store.MessageEvent:
				s.messages = append(s.messages, ev.Message.Body)
			case store.ReconnectingEvent:
				s.reconnecting, s.reconnected = true, false
			case store.ReconnectedEvent:
				if !s.reconnecting {
					t.Fatalf("%s: reconnected without reconnecting", seat.Snapshot().Me.Name)
				}
				s.reconnected = true
			default:
				t.Fatalf("%s: %#v; so far %+v", seat.Snapshot().Me.Name, ev, s)
			}
		case <-deadline.C:
			t.Fatalf("%s: story incomplete after %v: %+v", seat.Snapshot().Me.Name, faultTolerance, s)
		}
	}
	return s
}

// settled reports whether the story holds every one of bodies and, if
// the link was lost, its return.
func settled(bodies ...string) func(story) bool {
	return func(s story) bool {
		for _, b := range bodies {
			if !slices.Contains(s.messages, b) {
				return false
			}
		}
		return !s.reconnecting || s.reconnected
	}
}

// hasAll reports whether the story holds every one of bodies and the
// return of the link.
func hasAll(bodies ...string) func(story) bool {
	return func(s story) bool {
		for _, b := range bodies {
			if !slices.Contains(s.messages, b) {
				return false
			}
		}
		return s.reconnected
	}
}

// wantOnceEach fails unless every message in s appears once.
func wantOnceEach(t *testing.T, s story, seat store.Seat) {
	t.Helper()
	seen := map[string]int{}
	for _, m := range s.messages {
		if seen[m]++; seen[m] > 1 {
			t.Errorf("%s saw %q twice: %q", seat.Snapshot().Me.Name, m, s.messages)
		}
	}
}

// An outage of the backend itself, longer than a lease but within the
// tolerance, costs nothing: both people are told, keep their seats, and
// get every message once, including one whose first sending hung in the
// outage and was sent again.
func testPause(t *testing.T, f *Faulty) {
	a, b := replicas(t, f, faultLease, faultTolerance)
	room, alice, bob := aPair(t, a, b)

	resume := f.Pause(t)
	stuck := store.NewMessageID()
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	err := alice.Send(ctx, stuck, "typed during the outage")
	cancel()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Send during the outage = %v, want ErrUnavailable", err)
	}
	for _, seat := range []store.Seat{alice, bob} {
		if _, ok := next(t, seat).(store.ReconnectingEvent); !ok {
			t.Fatalf("%s was not told the link is down", seat.Snapshot().Me.Name)
		}
	}
	// The outage itself: it has to last, so that leases would run out.
	<-time.After(outage)
	resume()

	sendUntilStored(t, alice, stuck, "typed during the outage")
	sendUntilStored(t, bob, store.NewMessageID(), "and after it")
	for _, seat := range []store.Seat{alice, bob} {
		s := readUntil(t, seat, story{reconnecting: true}, hasAll("typed during the outage", "and after it"))
		wantOnceEach(t, s, seat)
	}
	wantKeptAndOnce(t, a, room, alice, bob)
}

// wantKeptAndOnce checks that both seats are still taken and that nothing
// more arrives than a message sent now.
func wantKeptAndOnce(t *testing.T, a store.Store, room store.Room, alice, bob store.Seat) {
	t.Helper()
	if _, err := a.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
		t.Errorf("a third Join after the outage = %v, want ErrSealed: both seats are kept", err)
	}
	send(t, alice, "nothing in between")
	for _, seat := range []store.Seat{alice, bob} {
		for {
			ev := next(t, seat)
			if _, ok := ev.(store.ReconnectedEvent); ok {
				continue // a second blip of the link while it settles
			}
			if _, ok := ev.(store.ReconnectingEvent); ok {
				continue
			}
			m, ok := ev.(store.MessageEvent)
			if !ok || m.Message.Body != "nothing in between" {
				t.Fatalf("%s: %#v before the next message: repeated or lost something", seat.Snapshot().Me.Name, ev)
			}
			break
		}
	}
}

// A restart that keeps the data (a persisting Redis, a failover) costs
// nothing either.
func testRestartKeepingData(t *testing.T, f *Faulty) {
	a, b := replicas(t, f, faultLease, faultTolerance)
	room, alice, bob := aPair(t, a, b)
	send(t, bob, "before the restart")

	f.Restart(t, true)
	sendUntilStored(t, alice, store.NewMessageID(), "after the restart")
	for _, seat := range []store.Seat{alice, bob} {
		s := readUntil(t, seat, story{}, hasAll("before the restart", "after the restart"))
		wantOnceEach(t, s, seat)
	}
	wantKeptAndOnce(t, a, room, alice, bob)
	// Coming back now brings the whole conversation.
	if err := bob.Leave(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if h := historyBodies(rejoin(t, b, room.ID, bob)); !slices.Equal(h, []string{"hello", "before the restart", "after the restart", "nothing in between"}) {
		t.Errorf("history after the restart: %q", h)
	}
}

// A backend that comes back empty has forgotten every room: both people
// are told the room no longer exists, and new rooms work at once.
func testRestartLosingData(t *testing.T, f *Faulty) {
	a, b := replicas(t, f, faultLease, faultTolerance)
	room, alice, bob := aPair(t, a, b)

	f.Restart(t, false)
	for _, seat := range []store.Seat{alice, bob} {
		var ended store.EndedEvent
		for ended.Reason == 0 {
			switch ev := nextWithin(t, seat, faultTolerance).(type) {
			case store.EndedEvent:
				ended = ev
			case store.ReconnectingEvent, store.ReconnectedEvent:
			default:
				t.Fatalf("%#v before the end", ev)
			}
		}
		if ended.Reason != store.EndVanished {
			t.Errorf("%s ended with %v, want vanished", seat.Snapshot().Me.Name, ended.Reason)
		}
		closed(t, seat)
	}
	if _, err := b.Join(ctx(t), room.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Join of the forgotten room = %v, want ErrNotFound", err)
	}
	aPair(t, b, a)
}

// A full backend refuses new rooms, seats and messages with
// ErrServiceFull, keeps everyone seated however long it lasts, lets people
// leave, and takes everything again once it has room.
func testFull(t *testing.T, f *Faulty) {
	a, b := replicas(t, f, faultLease, faultTolerance)
	room, alice, bob := aPair(t, a, b)

	free := f.Fill(t)
	if _, err := a.Create(ctx(t)); !errors.Is(err, store.ErrServiceFull) {
		t.Errorf("Create while full = %v, want ErrServiceFull", err)
	}
	if err := alice.Send(ctx(t), store.NewMessageID(), "no room for me"); !errors.Is(err, store.ErrServiceFull) {
		t.Errorf("Send while full = %v, want ErrServiceFull", err)
	}
	// Full for several leases: nobody loses a seat to it.
	<-time.After(outage)
	for _, seat := range []store.Seat{alice, bob} {
		select {
		case ev := <-seat.Events():
			t.Fatalf("%s got %#v while the store was full", seat.Snapshot().Me.Name, ev)
		default:
		}
	}
	if err := bob.Leave(ctx(t)); err != nil {
		t.Errorf("Leave while full = %v", err)
	}
	if got := nextOf[store.LeftEvent](t, alice).Member; got != bob.Snapshot().Me {
		t.Errorf("%v left, want %v", got, bob.Snapshot().Me)
	}
	if _, err := b.Rejoin(ctx(t), room.ID, bob.Snapshot().Key); !errors.Is(err, store.ErrServiceFull) {
		t.Errorf("Rejoin while full = %v, want ErrServiceFull", err)
	}

	free()
	send(t, alice, "room again")
	if got := nextOf[store.MessageEvent](t, alice).Message.Body; got != "room again" {
		t.Errorf("got %q", got)
	}
	rejoin(t, b, room.ID, bob)
	aPair(t, a, b)
}

// An outage longer than the tolerance ends the seats (the people are told
// and the room lives on), and once the backend is back the seats, kept
// for their people, take them back.
func testBeyondTolerance(t *testing.T, f *Faulty) {
	const tolerance = 2 * time.Second
	a, b := replicas(t, f, faultLease, tolerance)
	room, alice, bob := aPair(t, a, b)

	resume := f.Pause(t)
	for _, seat := range []store.Seat{alice, bob} {
		var ended store.EndedEvent
		for ended.Reason == 0 {
			switch ev := nextWithin(t, seat, faultTolerance).(type) {
			case store.EndedEvent:
				ended = ev
			case store.ReconnectingEvent:
			default:
				t.Fatalf("%#v before the end", ev)
			}
		}
		if ended.Reason != store.EndLeaseLost || !ended.RoomLivesOn {
			t.Errorf("%s ended with %+v, want the seat given up and the room living on", seat.Snapshot().Me.Name, ended)
		}
	}
	resume()
	waiting := []store.Seat{alice, bob}
	deadline := time.NewTimer(faultTolerance)
	defer deadline.Stop()
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	for len(waiting) > 0 {
		seat, err := a.Rejoin(ctx(t), room.ID, waiting[0].Snapshot().Key)
		switch {
		case err == nil:
			t.Cleanup(func() { _ = seat.Leave(context.Background()) })
			if seat.Snapshot().Me != waiting[0].Snapshot().Me {
				t.Errorf("came back as %v, want %v", seat.Snapshot().Me, waiting[0].Snapshot().Me)
			}
			waiting = waiting[1:]
			continue
		case !errors.Is(err, store.ErrUnavailable):
			t.Fatalf("Rejoin after the outage = %v", err)
		}
		select {
		case <-deadline.C:
			t.Fatalf("after the outage %d people could not come back: %v", len(waiting), err)
		case <-tick.C:
		}
	}
	if _, err := b.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
		t.Errorf("Join after the outage = %v, want ErrSealed", err)
	}
}

// longerThanAWait is longer than a store waits for one answer of its
// backend (redisstore: 3 s), so a reply held this long is one its caller
// gave up on.
const longerThanAWait = 5 * time.Second

// A backend that answers one replica late, 2 to 4 s late (beyond what a
// call waits, too), for several leases, ends no session and has no
// replica declared dead; nothing is lost or doubled: a send whose answer
// came too late is sent again under its ID, as the screen does.
func testSlowIsNotDead(t *testing.T, f *Faulty) {
	// The lease is the production one in proportion: longer than the
	// latest reply, so a beat that waited for replies would be late.
	const lease = 6 * time.Second
	a := f.New(t, longLived, lease, faultTolerance)
	b, line := f.NewBehind(t, longLived, lease, faultTolerance)
	room, alice, bob := aPair(t, a, b)

	line.Delay(2*time.Second, 4*time.Second)
	// Two leases: a replica whose beats waited behind late replies
	// would be found dead well within them.
	slow := time.NewTimer(2 * lease)
	defer slow.Stop()
	var sent []string
	for i := 0; ; i++ {
		for _, seat := range []store.Seat{alice, bob} {
			body := fmt.Sprintf("%s, slowly, %d", seat.Snapshot().Me.Name, i)
			sendTrying(t, seat, store.NewMessageID(), body, faultTolerance)
			sent = append(sent, body)
		}
		select {
		case <-slow.C:
		default:
			continue
		}
		break
	}
	line.Delay(0, 0)
	for _, seat := range []store.Seat{alice, bob} {
		s := readUntil(t, seat, story{}, settled(sent...))
		wantOnceEach(t, s, seat)
	}
	wantKeptAndOnce(t, a, room, alice, bob)
}

// A replica that closes is dead from then on: should its Close fail to
// give up a seat (the request lost on the way), the partner's replica
// frees it, as it would a crashed replica's, rather than keep it for
// nobody.
func testDepartedReplicaReaped(t *testing.T, f *Faulty) {
	a := f.New(t, longLived, faultLease, faultTolerance)
	b, line := f.NewBehind(t, longLived, faultLease, faultTolerance)
	_, alice, bob := aPair(t, a, b)

	line.Lose(OpLeave)
	if err := b.Close(); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Close with its leave lost = %v, want ErrUnavailable: a seat it could not give up", err)
	}
	if ended := nextOf[store.EndedEvent](t, bob); ended.Reason != store.EndShutdown {
		t.Errorf("the closed replica's seat ended with %v", ended.Reason)
	}
	left := nextOf[store.LeftEvent](t, alice)
	if left.Member != bob.Snapshot().Me || !left.Kept {
		t.Errorf("partner saw %+v, want %v leave with the seat kept", left, bob.Snapshot().Me)
	}
}

// A join whose answer is lost is tried again as the same request: the
// person gets the one seat it took, with the room as it was when it did,
// and the partner sees them come once.
func testJoinRetried(t *testing.T, f *Faulty) {
	a := f.New(t, longLived, faultLease, faultTolerance)
	b, line := f.NewBehind(t, longLived, faultLease, faultTolerance)
	room := create(t, a)
	alice := join(t, a, room.ID)
	send(t, alice, "before bob")
	nextOf[store.MessageEvent](t, alice)

	line.Hold(OpJoin, longerThanAWait, 1)
	bob := join(t, b, room.ID)
	if h := historyBodies(bob); !slices.Equal(h, []string{"before bob"}) {
		t.Errorf("history %q, want the message before the join", h)
	}
	if o := bob.Snapshot().Others; len(o) != 1 || o[0] != alice.Snapshot().Me {
		t.Errorf("others %v, want %v", o, alice.Snapshot().Me)
	}
	if got := nextOf[store.JoinedEvent](t, alice).Member; got != bob.Snapshot().Me {
		t.Errorf("partner saw %v join, want %v", got, bob.Snapshot().Me)
	}
	send(t, bob, "one seat")
	for _, seat := range []store.Seat{alice, bob} {
		if got := nextOf[store.MessageEvent](t, seat).Message.Body; got != "one seat" {
			t.Errorf("%s got %q", seat.Snapshot().Me.Name, got)
		}
	}
	if _, err := a.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
		t.Errorf("a third Join = %v, want ErrSealed", err)
	}
}

// A join whose answer never comes and that its caller gives up on (the
// person hung up) leaves no ghost: once the backend answers again the
// seat it took is withdrawn, and the room it sealed unsealed, so the
// person, trying again, is let in within seconds.
func testJoinAbandoned(t *testing.T, f *Faulty) {
	a := f.New(t, longLived, faultLease, faultTolerance)
	b, line := f.NewBehind(t, longLived, faultLease, faultTolerance)
	room := create(t, a)
	alice := join(t, a, room.ID)

	line.Hold(OpJoin, 8*time.Second, 0)
	jctx, cancel := context.WithTimeout(ctx(t), 4*time.Second)
	_, err := b.Join(jctx, room.ID)
	cancel()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Join whose answers are held = %v, want ErrUnavailable", err)
	}
	line.Hold("", 0, 0)
	answering := time.Now()

	// The person tries again, as they would, until let in.
	var bob store.Seat
	deadline := time.NewTimer(faultTolerance)
	defer deadline.Stop()
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	for bob == nil {
		jctx, cancel := context.WithTimeout(ctx(t), longerThanAWait)
		seat, err := b.Join(jctx, room.ID)
		cancel()
		switch {
		case err == nil:
			bob = seat
			t.Cleanup(func() { _ = seat.Leave(context.Background()) })
			continue
		case !errors.Is(err, store.ErrSealed) && !errors.Is(err, store.ErrFull) && !errors.Is(err, store.ErrUnavailable):
			t.Fatalf("Join after the held one = %v", err)
		}
		select {
		case <-deadline.C:
			t.Fatalf("the person could not get into the room after %v: %v (a ghost keeps the seat)", faultTolerance, err)
		case <-tick.C:
		}
	}
	t.Logf("let in %v after the backend answered again", time.Since(answering).Round(time.Millisecond))
	// The partner may see the ghost come and go; then the person.
	for {
		ev := next(t, alice)
		if e, ok := ev.(store.EndedEvent); ok {
			t.Fatalf("the partner's seat ended: %+v", e)
		}
		if e, ok := ev.(store.JoinedEvent); ok && e.Member == bob.Snapshot().Me {
			break
		}
	}
	if _, err := a.Join(ctx(t), room.ID); !errors.Is(err, store.ErrSealed) {
		t.Errorf("a third Join = %v, want ErrSealed: the two are in", err)
	}
	send(t, bob, "in at last")
	if got := nextOf[store.MessageEvent](t, alice).Message.Body; got != "in at last" {
		t.Errorf("partner got %q", got)
	}
}

// A seat that joins while the replica is reading the room's log for the
// seats it has there gets every entry after its join, though that read
// began past it.
func testAttachDuringRead(t *testing.T, f *Faulty) {
	b, line := f.NewBehind(t, longLived, faultLease, faultTolerance)
	room := create(t, b)
	alice := join(t, b, room.ID)

	// Bob's join runs at once; its answer comes a second late.
	line.Hold(OpJoin, time.Second, 1)
	type joined struct {
		seat store.Seat
		err  error
	}
	bobs := make(chan joined, 1)
	go func() {
		seat, err := b.Join(ctx(t), room.ID)
		bobs <- joined{seat, err}
	}()
	nextOf[store.JoinedEvent](t, alice)
	send(t, alice, "one")
	send(t, alice, "two")
	for _, want := range []string{"one", "two"} {
		if got := nextOf[store.MessageEvent](t, alice).Message.Body; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// The next read, past "two", is answered late: Bob's seat attaches
	// while it is in flight.
	line.Hold(OpRead, 2500*time.Millisecond, 1)
	send(t, alice, "three")
	j := <-bobs
	if j.err != nil {
		t.Fatalf("Join: %v", j.err)
	}
	bob := j.seat
	t.Cleanup(func() { _ = bob.Leave(context.Background()) })
	if got := bodies(t, bob, 3); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("the seat that joined got %q, want every message after its join", got)
	}
}

// A rejoin is as safe to repeat as a join: one whose answer is lost is
// tried again and brings the person back once; one whose answer never
// comes and is given up leaves their seat kept for them, not held by a
// connection nobody has, and they come back with their key.
func testRejoinRetriedOrAbandoned(t *testing.T, f *Faulty) {
	a := f.New(t, longLived, faultLease, faultTolerance)
	b, line := f.NewBehind(t, longLived, faultLease, faultTolerance)
	room, alice, bob := aPair(t, a, b)
	leave := func(seat store.Seat) {
		t.Helper()
		if err := seat.Leave(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if left := nextOf[store.LeftEvent](t, alice); left.Member != bob.Snapshot().Me || !left.Kept {
			t.Fatalf("partner saw %+v, want %v leave with the seat kept", left, bob.Snapshot().Me)
		}
	}
	leave(bob)

	line.Hold(OpRejoin, longerThanAWait, 1)
	back := rejoin(t, b, room.ID, bob)
	if got := nextOf[store.JoinedEvent](t, alice); got.Member != bob.Snapshot().Me || !got.Back {
		t.Errorf("partner saw %+v, want %v back", got, bob.Snapshot().Me)
	}
	send(t, back, "back once")
	if got := nextOf[store.MessageEvent](t, alice).Message.Body; got != "back once" {
		t.Errorf("partner got %q", got)
	}
	nextOf[store.MessageEvent](t, back)
	leave(back)

	line.Hold(OpRejoin, 8*time.Second, 0)
	rctx, cancel := context.WithTimeout(ctx(t), 4*time.Second)
	_, err := b.Rejoin(rctx, room.ID, bob.Snapshot().Key)
	cancel()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Rejoin whose answers are held = %v, want ErrUnavailable", err)
	}
	line.Hold("", 0, 0)
	// The partner sees the given-up rejoin come and go, and the seat kept.
	for {
		ev := next(t, alice)
		if left, ok := ev.(store.LeftEvent); ok {
			if left.Member != bob.Snapshot().Me || !left.Kept {
				t.Fatalf("partner saw %+v", left)
			}
			break
		}
		if _, ok := ev.(store.JoinedEvent); !ok {
			t.Fatalf("partner got %#v", ev)
		}
	}
	again := rejoin(t, a, room.ID, bob)
	if got := nextOf[store.JoinedEvent](t, alice); got.Member != bob.Snapshot().Me || !got.Back {
		t.Errorf("partner saw %+v, want %v back", got, bob.Snapshot().Me)
	}
	send(t, again, "back for good")
	if got := nextOf[store.MessageEvent](t, alice).Message.Body; got != "back for good" {
		t.Errorf("partner got %q", got)
	}
}
