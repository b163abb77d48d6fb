package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redistest"
	"github.com/ssh-burn/chat/store/storetest"
)

// redisTTL is short so the expiry cases run in real time.
const redisTTL = 2 * time.Second

func newRedisStore(t testing.TB, client redis.UniversalClient, ttl, lease time.Duration) *store.Redis {
	t.Helper()
	s, err := store.NewRedis(t.Context(), store.RedisConfig{Client: client, TTL: ttl, Lease: lease})
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newRedisClient(t testing.TB, url string) redis.UniversalClient {
	t.Helper()
	client, err := store.NewRedisClient(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// residue lists every key of room id that still exists on any node, found
// by SCAN as an operator would look for it.
func residue(t *testing.T, client redis.UniversalClient, id store.RoomID) []string {
	keys, _ := store.RoomKeys(id)
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

func TestRedisConformance(t *testing.T) {
	t.Parallel()
	client := newRedisClient(t, "redis://"+redistest.Start(t).Addr)
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, ttl time.Duration) store.Store { return newRedisStore(t, client, ttl, 0) },
		TTL: redisTTL,
		Residue: func(t *testing.T, _ store.Store, id store.RoomID) []string {
			return residue(t, client, id)
		},
	})
}

func TestRedisClusterConformance(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	client := newRedisClient(t, cluster.URL())
	if _, ok := client.(*redis.ClusterClient); !ok {
		t.Fatalf("%s made a %T, want a cluster client", cluster.URL(), client)
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T, ttl time.Duration) store.Store { return newRedisStore(t, client, ttl, 0) },
		TTL: redisTTL,
		Residue: func(t *testing.T, _ store.Store, id store.RoomID) []string {
			return residue(t, client, id)
		},
	})
}
