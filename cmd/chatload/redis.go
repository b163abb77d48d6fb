package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// newRedisClient talks to the redis-server this tool started, for what
// it reports about itself; never to what the chat keeps in it.
func newRedisClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 5 * time.Second})
}

// redisMaxmemory is the maxmemory setting of the Redis at addr, in bytes.
func redisMaxmemory(ctx context.Context, addr string) (int64, error) {
	rdb := newRedisClient(addr)
	defer rdb.Close()
	v, err := rdb.ConfigGet(ctx, "maxmemory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis maxmemory: %w", err)
	}
	n, err := strconv.ParseInt(v["maxmemory"], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis maxmemory %q: %w", v["maxmemory"], err)
	}
	return n, nil
}

// usedMemory is Redis's used_memory (INFO memory), in bytes.
func usedMemory(ctx context.Context, rdb *redis.Client) (int64, error) {
	info, err := rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis info: %w", err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("redis info: no used_memory")
}

// memSample is Redis's used memory and the replicas' RSS at one moment.
type memSample struct {
	at         time.Duration // since the sampler started
	redis, rss int64         // bytes; -1 when not measured
}

// memSampler reads Redis's memory and the replicas' RSS every second
// until stopped.
type memSampler struct {
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []memSample
	err     error
}

// startMemSampler starts sampling the servers (those of them it can
// read: Redis if this tool started one, RSS if their PIDs are known).
func startMemSampler(ctx context.Context, srv *servers) *memSampler {
	ctx, stop := context.WithCancel(ctx)
	m := &memSampler{stop: stop, done: make(chan struct{})}
	var rdb *redis.Client
	if srv.redisAddr != "" {
		rdb = newRedisClient(srv.redisAddr)
	}
	start := time.Now()
	sample := func() {
		s := memSample{at: time.Since(start), redis: -1, rss: -1}
		var err error
		if rdb != nil {
			if s.redis, err = usedMemory(ctx, rdb); err != nil {
				s.redis = -1
			}
		}
		if len(srv.pids) > 0 {
			if s.rss, err = sumOver(srv.pids, rss); err != nil {
				s.rss = -1
			}
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if err != nil && m.err == nil && ctx.Err() == nil {
			m.err = err
		}
		m.samples = append(m.samples, s)
	}
	sample()
	go func() {
		defer close(m.done)
		if rdb != nil {
			defer rdb.Close()
		}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				sample()
			case <-ctx.Done():
				return
			}
		}
	}()
	return m
}

// finish takes a last sample, stops the sampler and returns every sample.
func (m *memSampler) finish() ([]memSample, error) {
	m.stop()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.samples, m.err
}

// memFigures adds the first, highest and last value of one series of
// samples, in MiB, and the highest as a share of limit if there is one.
func memFigures(rr *runResult, prefix string, samples []memSample, value func(memSample) int64, limit int64) (first, peak, last int64) {
	first, peak, last = -1, -1, -1
	for _, s := range samples {
		v := value(s)
		if v < 0 {
			continue
		}
		if first < 0 {
			first = v
		}
		peak, last = max(peak, v), v
	}
	if first < 0 {
		return first, peak, last
	}
	rr.add(prefix+"start", "MiB", mib(first))
	rr.add(prefix+"peak", "MiB", mib(peak))
	rr.add(prefix+"end", "MiB", mib(last))
	if limit > 0 {
		rr.add(prefix+"peak_pct", "%", 100*float64(peak)/float64(limit))
	}
	return first, peak, last
}

// memSeries is the samples every step, as a line for the report's notes.
func memSeries(samples []memSample, step time.Duration) string {
	var b strings.Builder
	next := time.Duration(0)
	for _, s := range samples {
		if s.at < next {
			continue
		}
		next = s.at.Truncate(step) + step
		fmt.Fprintf(&b, " %ds:", int(s.at.Round(time.Second).Seconds()))
		if s.redis >= 0 {
			fmt.Fprintf(&b, " redis %.1f", mib(s.redis))
		}
		if s.rss >= 0 {
			fmt.Fprintf(&b, " rss %.1f", mib(s.rss))
		}
		b.WriteString(";")
	}
	return "MiB over time:" + strings.TrimSuffix(b.String(), ";")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
