package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redistest"
)

// These tests run several stores on one Redis, each standing in for a
// server replica, and check what the conformance suite cannot: that they
// agree with each other, and what happens when one of them or Redis fails.

// testLease is short so lease expiry runs in real time.
const testLease = time.Second

func join(t *testing.T, s store.Store, id store.RoomID) store.Seat {
	t.Helper()
	seat, err := s.Join(t.Context(), id)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	t.Cleanup(func() { _ = seat.Leave(context.Background()) })
	return seat
}

func create(t *testing.T, s store.Store) store.Room {
	t.Helper()
	room, err := s.Create(t.Context())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return room
}

// await returns the first event of type E on seat within d, skipping others.
func await[E store.Event](t *testing.T, seat store.Seat, d time.Duration) E {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-seat.Events():
			if !ok {
				var want E
				t.Fatalf("%s: stream closed while waiting for %T", seat.Snapshot().Me.Name, want)
			}
			if e, ok := ev.(E); ok {
				return e
			}
		case <-deadline.C:
			var want E
			t.Fatalf("%s: no %T within %v", seat.Snapshot().Me.Name, want, d)
		}
	}
}

func TestRedisCapAcrossReplicas(t *testing.T) {
	t.Parallel()
	client := newRedisClient(t, "redis://"+redistest.Start(t).Addr)
	replicas := []store.Store{
		newRedisStore(t, client, time.Minute, 0), newRedisStore(t, client, time.Minute, 0), newRedisStore(t, client, time.Minute, 0),
	}
	room := create(t, replicas[0])
	join(t, replicas[0], room.ID)

	const racers = 50
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		seated []store.Seat
		full   int
		other  []error
	)
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			<-start
			seat, err := replicas[i%len(replicas)].Join(t.Context(), room.ID)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				seated = append(seated, seat)
			case errors.Is(err, store.ErrFull):
				full++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, seat := range seated {
		seat.Leave(context.Background())
	}
	if len(seated) != 1 || full != racers-1 || len(other) > 0 {
		t.Fatalf("%d racers on 3 replicas: %d seated, %d full, errors %v; want exactly 1 seated", racers, len(seated), full, other)
	}
}

func TestRedisChatAndDestroyAcrossReplicas(t *testing.T) {
	t.Parallel()
	client := newRedisClient(t, "redis://"+redistest.Start(t).Addr)
	replicaA, replicaB := newRedisStore(t, client, time.Minute, 0), newRedisStore(t, client, time.Minute, 0)
	room := create(t, replicaA)
	alice := join(t, replicaA, room.ID)
	bob := join(t, replicaB, room.ID)
	if got := await[store.JoinedEvent](t, alice, time.Second).Member; got != bob.Snapshot().Me {
		t.Fatalf("alice saw %v join, want %v", got, bob.Snapshot().Me)
	}

	// Both type at once, on different replicas: both see one order.
	const each = 30
	var wg sync.WaitGroup
	for _, seat := range []store.Seat{alice, bob} {
		wg.Go(func() {
			for i := range each {
				if err := seat.Send(t.Context(), fmt.Sprintf("%s %d", seat.Snapshot().Me.Name, i)); err != nil {
					t.Errorf("Send: %v", err)
				}
			}
		})
	}
	wg.Wait()
	read := func(seat store.Seat) []string {
		var got []string
		for len(got) < 2*each {
			got = append(got, await[store.MessageEvent](t, seat, 2*time.Second).Message.Body)
		}
		return got
	}
	seenByAlice, seenByBob := read(alice), read(bob)
	if strings.Join(seenByAlice, "|") != strings.Join(seenByBob, "|") {
		t.Fatalf("replicas disagree on order:\nA: %q\nB: %q", seenByAlice, seenByBob)
	}

	destroyed := time.Now()
	if err := bob.Destroy(t.Context()); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if left := residue(t, client, room.ID); len(left) > 0 {
		t.Fatalf("after Destroy returned, Redis still holds %q", left)
	}
	ended := await[store.EndedEvent](t, alice, 500*time.Millisecond)
	if ended.Reason != store.EndDestroyed || ended.By != bob.Snapshot().Me {
		t.Fatalf("alice ended with %+v, want destroyed by %v", ended, bob.Snapshot().Me)
	}
	t.Logf("partner on the other replica heard of the destroy after %v", time.Since(destroyed))
	if _, err := replicaA.Join(t.Context(), room.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Join after destroy = %v, want ErrNotFound", err)
	}
}

func TestRedisExpiryAcrossReplicas(t *testing.T) {
	t.Parallel()
	client := newRedisClient(t, "redis://"+redistest.Start(t).Addr)
	replicaA, replicaB := newRedisStore(t, client, redisTTL, 0), newRedisStore(t, client, redisTTL, 0)
	room := create(t, replicaA)
	alice, bob := join(t, replicaA, room.ID), join(t, replicaB, room.ID)
	for _, seat := range []store.Seat{alice, bob} {
		ended := await[store.EndedEvent](t, seat, redisTTL+2*time.Second)
		if ended.Reason != store.EndExpired {
			t.Fatalf("ended with %v, want expired", ended.Reason)
		}
		if late := time.Since(room.ExpiresAt); late < 0 || late > time.Second {
			t.Fatalf("ended %v from the deadline", late)
		}
	}
	if left := residue(t, client, room.ID); len(left) > 0 {
		t.Fatalf("after expiry Redis still holds %q", left)
	}
	// Every key carried the deadline; nothing can bring the room back.
	keys, _ := store.RoomKeys(room.ID)
	if n := client.Exists(t.Context(), keys...).Val(); n != 0 {
		t.Fatalf("%d keys of the expired room exist", n)
	}
}

func TestRedisEveryKeyCarriesTheDeadline(t *testing.T) {
	t.Parallel()
	client := newRedisClient(t, "redis://"+redistest.Start(t).Addr)
	s := newRedisStore(t, client, time.Minute, 0)
	room := create(t, s)
	keys, _ := store.RoomKeys(room.ID)
	// Each write re-applies the same deadline: check after every kind.
	wantDeadline := func(after string, keys []string) {
		t.Helper()
		for _, key := range keys {
			at, err := client.PExpireTime(t.Context(), key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if at.Milliseconds() != room.ExpiresAt.UnixMilli() {
				t.Errorf("after %s, %s expires at %v, want the room's deadline %v (-1: never, -2: missing)",
					after, key, at.Milliseconds(), room.ExpiresAt.UnixMilli())
			}
		}
	}
	wantDeadline("create", keys[:1])
	a, b := join(t, s, room.ID), join(t, s, room.ID)
	if err := a.Send(t.Context(), "hello"); err != nil {
		t.Fatal(err)
	}
	wantDeadline("join and send", keys) // every key of the room exists now
	if err := b.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantDeadline("leave", keys)
}

// A replica cut off from Redis (a partition, or a crash: from Redis's side
// they look the same) loses its seats once the lease runs out: the partner
// sees it leave and the seat can be taken again, while the cut-off seat ends
// with a clear reason and can no longer post.
func TestRedisLeaseLostWhenCutOff(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newRedisClient(t, "redis://"+srv.Addr)
	proxy := redistest.StartProxy(t, srv.Addr)
	cutOffClient := newRedisClient(t, "redis://"+proxy.Addr)

	healthy, cutOff := newRedisStore(t, client, time.Minute, testLease), newRedisStore(t, cutOffClient, time.Minute, testLease)
	room := create(t, healthy)
	alice := join(t, healthy, room.ID)
	bob := join(t, cutOff, room.ID)
	await[store.JoinedEvent](t, alice, time.Second)

	proxy.Cut()
	await[store.ReconnectingEvent](t, bob, 2*testLease)
	if ended := await[store.EndedEvent](t, bob, 3*testLease); ended.Reason != store.EndLeaseLost || !ended.RoomLivesOn {
		t.Fatalf("cut-off seat ended with %+v, want lease lost", ended)
	}
	if err := bob.Send(t.Context(), "am I here?"); !errors.Is(err, store.ErrEnded) {
		t.Fatalf("Send after the lease was lost = %v, want ErrEnded", err)
	}
	if left := await[store.LeftEvent](t, alice, 3*testLease); left.Member != bob.Snapshot().Me {
		t.Fatalf("partner saw %v leave, want %v", left.Member, bob.Snapshot().Me)
	}
	carol := join(t, healthy, room.ID)
	if got := carol.Snapshot().Others; len(got) != 1 || got[0] != alice.Snapshot().Me {
		t.Fatalf("new joiner sees %v, want only alice", got)
	}

	// Back on the network, the replica works again.
	proxy.Restore()
	dave := join(t, cutOff, create(t, cutOff).ID)
	if err := dave.Send(t.Context(), "back"); err != nil {
		t.Fatalf("Send after reconnecting: %v", err)
	}
	await[store.MessageEvent](t, dave, 2*time.Second)
}

// A short partition (shorter than the lease) costs nothing: the seat
// hears it is reconnecting, then gets every message it missed, once.
func TestRedisBriefOutageLosesNothing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newRedisClient(t, "redis://"+srv.Addr)
	proxy := redistest.StartProxy(t, srv.Addr)
	flakyClient := newRedisClient(t, "redis://"+proxy.Addr)

	healthy, flaky := newRedisStore(t, client, time.Minute, 5*time.Second), newRedisStore(t, flakyClient, time.Minute, 5*time.Second)
	room := create(t, healthy)
	alice := join(t, healthy, room.ID)
	bob := join(t, flaky, room.ID)
	await[store.JoinedEvent](t, alice, time.Second)

	proxy.Cut()
	await[store.ReconnectingEvent](t, bob, 5*time.Second)
	for i := range 5 {
		if err := alice.Send(t.Context(), fmt.Sprintf("while you were away %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	proxy.Restore()
	var got []string
	deadline := time.After(10 * time.Second)
	for reconnected := false; !reconnected || len(got) < 5; {
		select {
		case ev, ok := <-bob.Events():
			if !ok {
				t.Fatalf("stream closed after %q", got)
			}
			switch ev := ev.(type) {
			case store.MessageEvent:
				got = append(got, ev.Message.Body)
			case store.ReconnectedEvent:
				reconnected = true
			case store.ReconnectingEvent:
			default:
				t.Fatalf("unexpected %#v", ev)
			}
		case <-deadline:
			t.Fatalf("after the outage bob has %q (reconnected: %v)", got, reconnected)
		}
	}
	for i, body := range got {
		if want := fmt.Sprintf("while you were away %d", i); body != want {
			t.Fatalf("message %d is %q, want %q (all: %q)", i, body, want, got)
		}
	}
}

// Redis restarted without persistence has forgotten every room: both sides
// hear that their link dropped, then that the room vanished; the stores
// keep working for new rooms and goroutines return to their baseline.
func TestRedisRestartEndsRoomsCleanly(t *testing.T) {
	srv := redistest.Start(t)
	client := newRedisClient(t, "redis://"+srv.Addr)
	replicaA, replicaB := newRedisStore(t, client, time.Minute, 0), newRedisStore(t, client, time.Minute, 0)
	// A warm-up room, so lazily started client goroutines count as baseline.
	warm := create(t, replicaA)
	join(t, replicaA, warm.ID).Leave(t.Context())
	join(t, replicaB, warm.ID).Leave(t.Context())
	baseline := runtime.NumGoroutine()

	room := create(t, replicaA)
	alice, bob := join(t, replicaA, room.ID), join(t, replicaB, room.ID)
	srv.Restart()
	for _, seat := range []store.Seat{alice, bob} {
		if ended := await[store.EndedEvent](t, seat, 10*time.Second); ended.Reason != store.EndVanished {
			t.Fatalf("ended with %v, want vanished", ended.Reason)
		}
	}
	next := create(t, replicaB)
	carol := join(t, replicaB, next.ID)
	dave := join(t, replicaA, next.ID)
	if err := dave.Send(t.Context(), "after the restart"); err != nil {
		t.Fatal(err)
	}
	if got := await[store.MessageEvent](t, carol, 2*time.Second).Message.Body; got != "after the restart" {
		t.Fatalf("got %q", got)
	}
	// Connections too are back to one subscriber per store, none leaked.
	waitFor(t, func() bool { return pubsubClients(t, client) == 2 }, "one Pub/Sub connection per store")
	carol.Leave(t.Context())
	dave.Leave(t.Context())

	waitFor(t, func() bool { return runtime.NumGoroutine() <= baseline },
		fmt.Sprintf("goroutines to return to their baseline of %d", baseline))
}

// Nothing Redis sees, stored or in transit, contains a room ID, a name or
// a message in clear.
func TestRedisSeesNoSecrets(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newRedisClient(t, "redis://"+srv.Addr)

	monitor := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strings.Split(srv.Addr, ":")[1], "monitor")
	var traffic lockedBuffer
	monitor.Stdout = &traffic
	if err := monitor.Start(); err != nil {
		t.Fatalf("redis-cli monitor: %v", err)
	}
	t.Cleanup(func() { monitor.Process.Kill(); monitor.Wait() })
	waitFor(t, func() bool { return strings.Contains(traffic.String(), "OK") }, "monitor to start")

	s := newRedisStore(t, client, time.Minute, 0)
	room := create(t, s)
	alice, bob := join(t, s, room.ID), join(t, s, room.ID)
	const secret = "canary-7f3a9c-the-eagle-lands"
	if err := alice.Send(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	await[store.MessageEvent](t, bob, time.Second)
	waitFor(t, func() bool { return strings.Contains(traffic.String(), "XADD") }, "the message to pass")

	// Everything stored, as a dump or a backup would hold it.
	var stored bytes.Buffer
	keys, _ := store.RoomKeys(room.ID)
	for _, key := range keys {
		stored.WriteString(client.Dump(t.Context(), key).Val())
		fmt.Fprint(&stored, client.HGetAll(t.Context(), key).Val(), client.XRange(t.Context(), key, "-", "+").Val())
	}
	id := string(room.ID)
	for _, clear := range []string{secret, id, strings.ReplaceAll(id, "-", ""), alice.Snapshot().Me.Name, bob.Snapshot().Me.Name} {
		if strings.Contains(traffic.String(), clear) {
			t.Errorf("MONITOR shows %q in clear", clear)
		}
		if strings.Contains(stored.String(), clear) {
			t.Errorf("stored data holds %q in clear", clear)
		}
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until a deadline: what it watches (another process,
// the runtime) offers nothing to block on.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// pubsubClients counts the Pub/Sub connections Redis sees.
func pubsubClients(t *testing.T, client redis.UniversalClient) int {
	t.Helper()
	list, err := client.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(list) {
		if strings.Contains(line, " flags=P ") {
			n++
		}
	}
	return n
}

// Redis connections grow with replicas, not with sessions.
func TestRedisOneSubscriptionPerProcess(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newRedisClient(t, "redis://"+srv.Addr)
	replicaA, replicaB := newRedisStore(t, client, time.Minute, 0), newRedisStore(t, client, time.Minute, 0)
	const rooms = 15
	for range rooms {
		room := create(t, replicaA)
		a, b := join(t, replicaA, room.ID), join(t, replicaB, room.ID)
		if err := a.Send(t.Context(), "hi"); err != nil {
			t.Fatal(err)
		}
		await[store.MessageEvent](t, b, time.Second)
	}
	// Each store shares the test's client pool, so its connections are
	// bounded by the pool, and each has exactly one subscriber connection.
	waitFor(t, func() bool { return pubsubClients(t, client) == 2 }, "one Pub/Sub connection per store")
	channels, err := client.PubSubChannels(t.Context(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(channels) != rooms {
		t.Errorf("%d channels subscribed for %d rooms", len(channels), rooms)
	}
}
