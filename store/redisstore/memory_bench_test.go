package redisstore_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
)

// BenchmarkRedisMemory reports what Redis really spends, as the growth of
// INFO used_memory on a redis-server of its own: per empty room, per first
// and second join (the first makes the keys seats live in), per leave and
// rejoin (what coming and going adds to the log), per room's
// first message (which makes the keys messages live in) and per further
// message of each size class, with two replicas seated as in production
// (each subscribed to the room's channel); and what a room that was sent
// far more of the largest messages than it keeps costs. store.RoomCost,
// JoinCost and MessageCost are set from these figures. Counts are large so
// that Redis's own noise (client buffers) averages out:
//
//	go test -run '^$' -bench RedisMemory -benchtime 2000x ./store/redisstore
func BenchmarkRedisMemory(b *testing.B) {
	srv := redistest.Start(b)
	url := "redis://" + srv.Addr
	probe := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { probe.Close() })

	b.Run("room", func(b *testing.B) {
		a, _ := memReplicas(b, url)
		before := usedMemory(b, probe)
		for range b.N {
			memCreate(b, a)
		}
		reportBytes(b, probe, before, b.N, "bytes/room")
	})
	b.Run("join-first", func(b *testing.B) {
		a, _ := memReplicas(b, url)
		rooms := make([]store.RoomID, b.N)
		for i := range rooms {
			rooms[i] = memCreate(b, a)
		}
		before := usedMemory(b, probe)
		for _, id := range rooms {
			memJoin(b, a, id)
		}
		reportBytes(b, probe, before, b.N, "bytes/join")
	})
	b.Run("join-second", func(b *testing.B) {
		a, c := memReplicas(b, url)
		rooms := make([]store.RoomID, b.N)
		for i := range rooms {
			rooms[i] = memCreate(b, a)
			memJoin(b, a, rooms[i])
		}
		before := usedMemory(b, probe)
		for _, id := range rooms {
			memJoin(b, c, id) // from the other replica, as a partner usually is
		}
		reportBytes(b, probe, before, b.N, "bytes/join")
	})
	b.Run("leave-and-rejoin", func(b *testing.B) {
		// Coming and going adds to the log, which keeps its newest
		// entries: rooms are kept below that, so nothing is trimmed.
		const perRoom = 100
		a, c := memReplicas(b, url)
		rooms := (b.N + perRoom - 1) / perRoom
		ids := make([]store.RoomID, rooms)
		seats := make([]*memSeat, rooms)
		for i := range ids {
			ids[i] = memCreate(b, a)
			memJoin(b, a, ids[i])
			seats[i] = memJoin(b, c, ids[i])
		}
		before := usedMemory(b, probe)
		for i := range b.N {
			r := i / perRoom
			if err := seats[r].Leave(b.Context()); err != nil {
				b.Fatalf("Leave: %v", err)
			}
			seat, err := c.Rejoin(b.Context(), ids[r], seats[r].Snapshot().Key)
			if err != nil {
				b.Fatalf("Rejoin: %v", err)
			}
			seats[r] = &memSeat{Seat: seat}
			go func() {
				for range seat.Events() {
				}
			}()
		}
		reportBytes(b, probe, before, b.N, "bytes/join")
	})
	b.Run("message-first", func(b *testing.B) {
		a, c := memReplicas(b, url)
		seats := memPairs(b, a, c, b.N)
		before := usedMemory(b, probe)
		for _, seat := range seats {
			memSend(b, seat, memBody(64))
		}
		reportBytes(b, probe, before, b.N, "bytes/message")
	})
	for _, size := range []int{64, 256, 1024, 2048, 4096} {
		b.Run(fmt.Sprintf("message-%d", size), func(b *testing.B) {
			// Rooms filled to what their history keeps, so that Redis's
			// allocation of whole stream nodes is spread as it is in a
			// busy room, but nothing is trimmed yet.
			perRoom := min(store.HistoryLimit, store.HistoryBytes/store.MessageCost(memBody(size))) - 1
			a, c := memReplicas(b, url)
			seats := memPairs(b, a, c, (b.N+perRoom-1)/perRoom)
			for _, seat := range seats {
				memSend(b, seat, memBody(size)) // the room's first message
			}
			before := usedMemory(b, probe)
			for i := range b.N {
				memSend(b, seats[i/perRoom], memBody(size))
			}
			reportBytes(b, probe, before, b.N, "bytes/message")
		})
	}
	b.Run("room-talked-full", func(b *testing.B) {
		// What a room costs at most once its history is full: b.N of the
		// largest messages, 40 to a room (three times what its history
		// keeps), reported per room.
		const perRoom = 40
		a, c := memReplicas(b, url)
		before := usedMemory(b, probe)
		seats := memPairs(b, a, c, (b.N+perRoom-1)/perRoom)
		for i := range b.N {
			memSend(b, seats[i/perRoom], memBody(4096))
		}
		reportBytes(b, probe, before, len(seats), "bytes/room")
	})
}

// memReplicas are two replicas with rooms that outlive the benchmark.
func memReplicas(b *testing.B, url string) (store.Store, store.Store) {
	cfg := redisstore.Config{TTL: time.Hour}
	return newStore(b, newClient(b, url), cfg), newStore(b, newClient(b, url), cfg)
}

func memCreate(b *testing.B, s store.Store) store.RoomID {
	b.Helper()
	room, err := s.Create(b.Context())
	if err != nil {
		b.Fatalf("Create: %v", err)
	}
	return room.ID
}

// memSeat is a seat whose events are read until the store's Close (so
// that it is never evicted as a slow reader); msgs says when a message
// arrived.
type memSeat struct {
	store.Seat
	msgs chan struct{}
}

// memJoin takes a seat, left to the store's Close.
func memJoin(b *testing.B, s store.Store, id store.RoomID) *memSeat {
	b.Helper()
	seat, err := s.Join(b.Context(), id)
	if err != nil {
		b.Fatalf("Join: %v", err)
	}
	m := &memSeat{Seat: seat, msgs: make(chan struct{}, store.EventBuffer)}
	go func() {
		for ev := range seat.Events() {
			if _, ok := ev.(store.MessageEvent); ok {
				m.msgs <- struct{}{}
			}
		}
	}()
	return m
}

// memPair is a room with a person from each replica.
type memPair struct{ a, c *memSeat }

func memPairs(b *testing.B, a, c store.Store, n int) []memPair {
	pairs := make([]memPair, n)
	for i := range pairs {
		id := memCreate(b, a)
		pairs[i] = memPair{memJoin(b, a, id), memJoin(b, c, id)}
	}
	return pairs
}

// memSend sends from the first of the pair and waits until both have the
// message, as people talk: one message after another, each one read.
func memSend(b *testing.B, p memPair, body string) {
	b.Helper()
	if err := p.a.Send(b.Context(), store.NewMessageID(), body); err != nil {
		b.Fatalf("Send: %v", err)
	}
	timer := time.NewTimer(benchWait)
	defer timer.Stop()
	for _, seat := range []*memSeat{p.a, p.c} {
		select {
		case <-seat.msgs:
		case <-timer.C:
			b.Fatalf("a message was not delivered within %v", benchWait)
		}
	}
}

// memBody is a message of exactly size bytes within the character limit:
// letters carrying three combining marks each, as the largest messages do.
func memBody(size int) string {
	const unit = "a\u0301\u0302\u0303"
	return strings.Repeat(unit, size/len(unit)) + strings.Repeat("a", size%len(unit))
}

func usedMemory(b *testing.B, probe *redis.Client) int64 {
	b.Helper()
	info, err := probe.Info(b.Context(), "memory").Result()
	if err != nil {
		b.Fatalf("INFO memory: %v", err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("used_memory %q: %v", v, err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

// reportBytes reports the growth of used_memory since before, per op.
func reportBytes(b *testing.B, probe *redis.Client, before int64, ops int, unit string) {
	b.Helper()
	b.ReportMetric(float64(usedMemory(b, probe)-before)/float64(ops), unit)
}
