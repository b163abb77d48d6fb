package redisstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ssh-burn/chat/internal/latency"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
)

// benchWait bounds every wait for an event in the latency benchmarks: a
// lost message fails the benchmark instead of hanging it.
const benchWait = 10 * time.Second

// BenchmarkDeliveryLatency measures how long one message takes from A's
// Seat.Send until the MessageEvent is read from B's Events, one message at
// a time. Each sample is recorded; p50, p99 and max are reported next to
// ns/op, which is the whole round: the send, B's delivery and reading A's
// own copy of the message (so A is never evicted as a slow reader).
func BenchmarkDeliveryLatency(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		s := memstore.New(time.Hour)
		b.Cleanup(func() { s.Close() })
		benchDelivery(b, s, s)
	})
	b.Run("redis", func(b *testing.B) {
		// One redis-server for both cases; every run gets fresh stores.
		addr := redistest.Start(b).Addr
		b.Run("same-replica", func(b *testing.B) {
			s := newBenchRedis(b, addr)
			benchDelivery(b, s, s)
		})
		b.Run("cross-replica", func(b *testing.B) {
			benchDelivery(b, newBenchRedis(b, addr), newBenchRedis(b, addr))
		})
	})
	b.Run("cluster", func(b *testing.B) {
		// A 3-master cluster; each run's room lands in a slot of any node.
		url := redistest.StartCluster(b, 3).URL()
		b.Run("cross-replica", func(b *testing.B) {
			cfg := redisstore.Config{TTL: time.Hour}
			benchDelivery(b, newStore(b, newClient(b, url), cfg), newStore(b, newClient(b, url), cfg))
		})
	})
}

// newBenchRedis is a Redis store with its own client, as a replica has.
func newBenchRedis(b *testing.B, addr string) *redisstore.Store {
	b.Helper()
	return newStore(b, newClient(b, "redis://"+addr), redisstore.Config{TTL: time.Hour})
}

// benchDelivery seats A on storeA and B on storeB in a fresh room and
// times A's messages until B reads them.
func benchDelivery(b *testing.B, storeA, storeB store.Store) {
	ctx := b.Context()
	room, err := storeA.Create(ctx)
	if err != nil {
		b.Fatalf("Create: %v", err)
	}
	a := benchJoin(b, storeA, room.ID)
	bob := benchJoin(b, storeB, room.ID)
	if _, ok := benchNext(b, a, "").(store.JoinedEvent); !ok {
		b.Fatal("A did not see B join first")
	}

	// Unique bodies: a per-run tag and a fixed-width counter.
	tag := fmt.Sprintf("%08x", rand.Uint32())
	i := 0
	send := func() time.Duration {
		body := fmt.Sprintf("lat-%s-%07d", tag, i)
		i++
		start := time.Now()
		if err := a.Send(ctx, store.NewMessageID(), body); err != nil {
			b.Fatalf("Send: %v", err)
		}
		benchNext(b, bob, body)
		took := time.Since(start)
		benchNext(b, a, body)
		return took
	}
	// Warm the connection pools and the scripts' cache before timing.
	for range 10 {
		send()
	}

	var samples []time.Duration
	for b.Loop() {
		samples = append(samples, send())
	}
	latency.Report(b, samples, time.Microsecond, "µs")
}

func benchJoin(b *testing.B, s store.Store, id store.RoomID) store.Seat {
	b.Helper()
	seat, err := s.Join(b.Context(), id)
	if err != nil {
		b.Fatalf("Join: %v", err)
	}
	b.Cleanup(func() { _ = seat.Leave(context.Background()) })
	return seat
}

// benchNext returns seat's next event. With a body, that must be the
// MessageEvent carrying it: messages are sent one at a time, so anything
// else arriving first is a bug, not noise.
func benchNext(b *testing.B, seat store.Seat, body string) store.Event {
	b.Helper()
	timer := time.NewTimer(benchWait)
	defer timer.Stop()
	select {
	case ev, ok := <-seat.Events():
		if !ok {
			b.Fatalf("%s: event stream closed", seat.Snapshot().Me.Name)
		}
		if body != "" {
			if m, ok := ev.(store.MessageEvent); !ok || m.Message.Body != body {
				b.Fatalf("%s: got %#v, want the message %q", seat.Snapshot().Me.Name, ev, body)
			}
		}
		return ev
	case <-timer.C:
		b.Fatalf("%s: no event within %v", seat.Snapshot().Me.Name, benchWait)
	}
	return nil
}
