package redisstore

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// minVersion is the oldest Redis the store runs on: sharded Pub/Sub
// (SPUBLISH, SSUBSCRIBE) and script flags came with 7.0.
var minVersion = [2]int{7, 0}

// checkVersion fails, saying what to do, if a Redis the store would use
// (every master of a cluster) says it is older than minVersion: otherwise
// every script would fail at its first call, each with an error about Lua.
func checkVersion(ctx context.Context, rdb redis.UniversalClient) error {
	check := func(ctx context.Context, node redis.Cmdable) error {
		// A Redis that does not say (INFO denied by its ACL, unreachable:
		// the first heartbeat tells that) is left to the scripts.
		info, err := node.Info(ctx, "server").Result()
		if err != nil {
			return nil
		}
		version, ok := infoField(info, "redis_version")
		if !ok {
			return nil
		}
		if !atLeast(version, minVersion) {
			return fmt.Errorf("redis %s is too old: the store needs Redis %d.%d or newer (sharded Pub/Sub)", version, minVersion[0], minVersion[1])
		}
		return nil
	}
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return check(ctx, rdb)
	}
	var (
		mu    sync.Mutex
		first error
	)
	err := cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		if err := check(ctx, node); err != nil {
			mu.Lock()
			first = cmp.Or(first, err)
			mu.Unlock()
		}
		return nil
	})
	return cmp.Or(first, err)
}

// infoField reads one field of an INFO reply.
func infoField(info, name string) (string, bool) {
	for line := range strings.Lines(info) {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return value, true
		}
	}
	return "", false
}

// atLeast reports whether version ("major.minor.patch") is least or
// newer; a version it cannot read counts as new enough.
func atLeast(version string, least [2]int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return true
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return major > least[0] || (major == least[0] && minor >= least[1])
}
