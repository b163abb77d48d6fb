package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/internal/faultproxy"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
	"github.com/ssh-burn/chat/store/storetest"
)

// redisTTL is short so the expiry cases run in real time.
const redisTTL = 2 * time.Second

// newStore is a store on client, closed at cleanup.
func newStore(t testing.TB, client redis.UniversalClient, cfg redisstore.Config) *redisstore.Store {
	t.Helper()
	cfg.Client = client
	s, err := redisstore.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		// A test that breaks Redis may leave Close unable to give up a
		// seat, which the other replicas free: not an error of the test.
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newClient is a client as a replica makes it, closed at cleanup (after
// the stores made on it, whose cleanups were registered later).
func newClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	client, err := redisstore.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// residue lists every key of room id that still exists on any node, found
// by SCAN as an operator would look for it.
func residue(t *testing.T, client redis.UniversalClient, id store.RoomID) []string {
	keys, _ := redisstore.RoomKeys(id)
	tag := keys[0][strings.Index(keys[0], "{") : strings.Index(keys[0], "}")+1]
	var found []string
	scan := func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, "*"+tag+"*", 100).Iterator()
		for iter.Next(ctx) {
			found = append(found, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cluster, ok := client.(*redis.ClusterClient); ok {
		err = cluster.ForEachMaster(t.Context(), scan)
	} else {
		err = scan(t.Context(), client.(*redis.Client))
	}
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return found
}

// harness runs the suite on the Redis (or cluster) at url: every case gets
// two replicas, each with a client of its own, as two servers have.
func harness(url string) storetest.Harness {
	return storetest.Harness{
		New: func(t *testing.T, ttl time.Duration) (store.Store, store.Store) {
			cfg := redisstore.Config{TTL: ttl}
			return newStore(t, newClient(t, url), cfg), newStore(t, newClient(t, url), cfg)
		},
		TTL: redisTTL,
		Residue: func(t *testing.T, _ store.Store, id store.RoomID) []string {
			return residue(t, newClient(t, url), id)
		},
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	h := harness("redis://" + redistest.Start(t).Addr)
	h.Faults = func(t *testing.T) *storetest.Faulty {
		srv := redistest.Start(t)
		return &storetest.Faulty{
			New: func(t *testing.T, ttl, lease, tolerance time.Duration) store.Store {
				return newStore(t, newClient(t, "redis://"+srv.Addr), redisstore.Config{TTL: ttl, Lease: lease, OutageTolerance: tolerance})
			},
			NewBehind: func(t *testing.T, ttl, lease, tolerance time.Duration) (store.Store, *storetest.Line) {
				proxy := redistest.StartProxy(t, srv.Addr)
				s := newStore(t, newClient(t, "redis://"+proxy.Addr), redisstore.Config{TTL: ttl, Lease: lease, OutageTolerance: tolerance})
				return s, line(proxy.Proxy)
			},
			Pause:   func(*testing.T) func() { return srv.Pause() },
			Restart: func(_ *testing.T, keepData bool) { srv.RestartWith(keepData) },
			Fill:    func(*testing.T) func() { return srv.Fill() },
		}
	}
	storetest.Run(t, h)
}

func TestClusterConformance(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	if client := newClient(t, cluster.URL()); func() bool { _, ok := client.(*redis.ClusterClient); return !ok }() {
		t.Fatalf("%s made a %T, want a cluster client", cluster.URL(), client)
	}
	storetest.Run(t, harness(cluster.URL()))
}

// line degrades a replica's way to Redis through the fault proxy p.
func line(p *faultproxy.Proxy) *storetest.Line {
	match := func(op storetest.Op) func([]byte) bool {
		if op == "" {
			return nil
		}
		return redisstore.MatchScript(string(op))
	}
	return &storetest.Line{
		Delay: p.DelayReplies,
		Hold: func(op storetest.Op, d time.Duration, times int) {
			m := match(op)
			if m == nil {
				p.HoldReplies(nil, 0)
				return
			}
			var mu sync.Mutex
			left := times
			p.HoldReplies(func(req []byte) bool {
				if !m(req) {
					return false
				}
				mu.Lock()
				defer mu.Unlock()
				if times == 0 {
					return true // every one
				}
				left--
				return left >= 0
			}, d)
		},
		Lose: func(op storetest.Op) { p.LoseRequests(match(op)) },
		Close: func() {
			if err := p.Close(); err != nil {
				panic(err)
			}
		},
	}
}
