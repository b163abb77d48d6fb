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
// (each subscribed to the room's channel). store.RoomCost,
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
		seats := make([]store.Seat, rooms)
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
			go func() {
				for range seat.Events() {
				}
			}()
			seats[r] = seat
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

// memJoin takes a seat, left to the store's Close, and reads its events
// until then, so that no seat is evicted as a slow reader.
func memJoin(b *testing.B, s store.Store, id store.RoomID) store.Seat {
	b.Helper()
	seat, err := s.Join(b.Context(), id)
	if err != nil {
		b.Fatalf("Join: %v", err)
	}
	go func() {
		for range seat.Events() {
		}
	}()
	return seat
}

// memPairs makes n rooms with a person from each replica, and returns one
// seat of each room.
func memPairs(b *testing.B, a, c store.Store, n int) []store.Seat {
	seats := make([]store.Seat, n)
	for i := range seats {
		id := memCreate(b, a)
		seats[i] = memJoin(b, a, id)
		memJoin(b, c, id)
	}
	return seats
}

func memSend(b *testing.B, seat store.Seat, body string) {
	b.Helper()
	if err := seat.Send(b.Context(), store.NewMessageID(), body); err != nil {
		b.Fatalf("Send: %v", err)
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
