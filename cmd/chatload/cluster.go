package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// clusterMasters is the size of the Redis Cluster the cluster
	// scenario starts.
	clusterMasters = 3
	// clusterReplicas is the replicas it starts on it unless -replicas
	// says otherwise.
	clusterReplicas = 4
)

// nodePubSub is what one Redis node reports about Pub/Sub.
type nodePubSub struct {
	publish, spublish int64 // calls of PUBLISH and SPUBLISH from clients
	netOut            int64 // bytes written to clients (total_net_output_bytes)
	// busPublish and busShard are the PUBLISH and SPUBLISH messages
	// this node sent over the cluster bus to other nodes.
	busPublish, busShard int64
}

// infoFields reads the "name:value" lines of an INFO or CLUSTER INFO
// reply.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	for line := range strings.Lines(info) {
		if name, value, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && !strings.HasPrefix(name, "#") {
			out[name] = value
		}
	}
	return out
}

// commandCalls is the calls= of one cmdstat_ line's value
// ("calls=12,usec=…"); zero when the command was never called.
func commandCalls(stat string) int64 {
	for field := range strings.SplitSeq(stat, ",") {
		if v, ok := strings.CutPrefix(field, "calls="); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// readPubSub reads each node's Pub/Sub counters.
func readPubSub(ctx context.Context, nodes redisClients) ([]nodePubSub, error) {
	var out []nodePubSub
	for _, rdb := range nodes {
		info, err := rdb.Info(ctx, "commandstats", "stats").Result()
		if err != nil {
			return nil, fmt.Errorf("redis info: %w", err)
		}
		cluster, err := rdb.ClusterInfo(ctx).Result()
		if err != nil {
			return nil, fmt.Errorf("redis cluster info: %w", err)
		}
		f, c := infoFields(info), infoFields(cluster)
		number := func(m map[string]string, name string) int64 {
			n, _ := strconv.ParseInt(m[name], 10, 64)
			return n
		}
		out = append(out, nodePubSub{
			publish: commandCalls(f["cmdstat_publish"]), spublish: commandCalls(f["cmdstat_spublish"]),
			netOut:     number(f, "total_net_output_bytes"),
			busPublish: number(c, "cluster_stats_messages_publish_sent"), busShard: number(c, "cluster_stats_messages_publishshard_sent"),
		})
	}
	return out, nil
}

// channelCounts is how many classic and sharded channels have
// subscribers on each node (PUBSUB CHANNELS, PUBSUB SHARDCHANNELS).
func channelCounts(ctx context.Context, nodes redisClients) (classic, sharded []int, err error) {
	for _, rdb := range nodes {
		c, err := rdb.PubSubChannels(ctx, "*").Result()
		if err != nil {
			return nil, nil, fmt.Errorf("pubsub channels: %w", err)
		}
		s, err := rdb.PubSubShardChannels(ctx, "*").Result()
		if err != nil && !isUnknownCommand(err) {
			return nil, nil, fmt.Errorf("pubsub shardchannels: %w", err)
		}
		classic, sharded = append(classic, len(c)), append(sharded, len(s))
	}
	return classic, sharded, nil
}

// isUnknownCommand reports whether Redis did not know the command (a
// Redis before 7 has no sharded Pub/Sub).
func isUnknownCommand(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr) && strings.Contains(strings.ToLower(rerr.Error()), "unknown subcommand")
}

// runCluster runs on a Redis Cluster this tool started: cfg.idle idle
// sessions spread over the replicas, then cfg.pairs pairs with A and B on
// different replicas (pair i on replicas i and i+1), talking for
// cfg.duration. Beside latency and CPU it reports each node's CPU (also
// per 1,000 messages a second) and its Pub/Sub traffic over the talk:
// PUBLISH and SPUBLISH calls, bytes written to clients, Pub/Sub messages
// sent over the cluster bus, and the classic and sharded channels with
// subscribers at the end.
func runCluster(ctx context.Context, cfg config, srv *servers) (runResult, error) {
	var rr runResult
	if len(srv.redis) < 2 {
		return rr, errors.New("cluster needs the Redis Cluster this tool starts")
	}
	idle := openCrowd(ctx, cfg, srv, cfg.idle)
	defer idle.close()
	if err := ctx.Err(); err != nil {
		return rr, err
	}
	n := len(srv.addrs)
	cfg.logf("opening %d pairs across %d replicas", cfg.pairs, n)
	pairs, err := openPairs(ctx, cfg, cfg.pairs, func(i int) (string, string) { return srv.addrs[i%n], srv.addrs[(i+1)%n] })
	if err != nil {
		return rr, err
	}
	defer closePairs(pairs)
	nodes := newRedisClients(srv)
	defer nodes.close()
	before, err := readPubSub(ctx, nodes)
	if err != nil {
		return rr, err
	}
	start := time.Now()
	if rr, err = measureTalk(ctx, cfg, srv, pairs); err != nil {
		return rr, err
	}
	window := time.Since(start).Seconds()
	after, err := readPubSub(ctx, nodes)
	if err != nil {
		return rr, err
	}
	classic, sharded, err := channelCounts(ctx, nodes)
	if err != nil {
		return rr, err
	}

	sent, _ := rr.value("sent")
	perSecond := sent / cfg.duration.Seconds()
	rr.add("messages", "/s", perSecond)
	if cpu, ok := rr.value("redis_cpu"); ok && perSecond > 0 {
		rr.add("redis_cpu_per_1k_msgs", "%core", cpu*1000/perSecond)
	}
	var totalClassic, totalSharded int
	for i := range nodes {
		prefix := fmt.Sprintf("redis%d_", i)
		if cpu, ok := rr.value(prefix + "cpu"); ok && perSecond > 0 {
			rr.add(prefix+"cpu_per_1k_msgs", "%core", cpu*1000/perSecond)
		}
		b, a := before[i], after[i]
		rr.add(prefix+"publish", "", float64(a.publish-b.publish))
		rr.add(prefix+"spublish", "", float64(a.spublish-b.spublish))
		rr.add(prefix+"bus_publish", "", float64(a.busPublish-b.busPublish))
		rr.add(prefix+"bus_spublish", "", float64(a.busShard-b.busShard))
		rr.add(prefix+"net_out", "KiB/s", float64(a.netOut-b.netOut)/window/(1<<10))
		rr.add(prefix+"channels", "", float64(classic[i]))
		rr.add(prefix+"shardchannels", "", float64(sharded[i]))
		totalClassic, totalSharded = totalClassic+classic[i], totalSharded+sharded[i]
	}
	rr.add("channels", "", float64(totalClassic))
	rr.add("shardchannels", "", float64(totalSharded))
	if idle.failed > 0 {
		rr.add("idle_failed", "", float64(idle.failed))
	}
	rr.failures = idle.failed
	return rr, nil
}
