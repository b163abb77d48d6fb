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

// redisClients talk to each redis-server this tool started (a cluster's
// nodes one by one), for what they report about themselves.
type redisClients []*redis.Client

func newRedisClients(srv *servers) redisClients {
	var out redisClients
	for _, addr := range srv.redisAddrs() {
		out = append(out, newRedisClient(addr))
	}
	return out
}

func (c redisClients) close() {
	for _, rdb := range c {
		rdb.Close()
	}
}

// sum adds f over the nodes.
func (c redisClients) sum(ctx context.Context, f func(context.Context, *redis.Client) (int64, error)) (int64, error) {
	var total int64
	for _, rdb := range c {
		v, err := f(ctx, rdb)
		if err != nil {
			return 0, err
		}
		total += v
	}
	return total, nil
}

// memSample is Redis's used memory and the replicas' RSS at one moment.
type memSample struct {
	at         time.Duration // since the sampler started
	redis, rss int64         // bytes; -1 when not measured
}

// sampler calls read every so often until stopped and keeps what it
// returns: the one way a scenario follows the servers over time.
type sampler[T any] struct {
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []T
}

// startSampler reads one sample now and then one every every, until
// finish. read gets the time since the start.
func startSampler[T any](ctx context.Context, every time.Duration, read func(ctx context.Context, at time.Duration) T) *sampler[T] {
	ctx, stop := context.WithCancel(ctx)
	m := &sampler[T]{stop: stop, done: make(chan struct{})}
	start := time.Now()
	sample := func() {
		s := read(ctx, time.Since(start))
		m.mu.Lock()
		defer m.mu.Unlock()
		m.samples = append(m.samples, s)
	}
	sample()
	go func() {
		defer close(m.done)
		tick := time.NewTicker(every)
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

// finish stops the sampler and returns every sample.
func (m *sampler[T]) finish() []T {
	m.stop()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.samples
}

// memSampler reads Redis's memory and the replicas' RSS every second.
type memSampler struct {
	*sampler[memSample]
	nodes redisClients
	mu    sync.Mutex
	err   error
}

// startMemSampler starts sampling the servers (those of them it can
// read: Redis if this tool started one, RSS if their PIDs are known).
func startMemSampler(ctx context.Context, srv *servers) *memSampler {
	m := &memSampler{nodes: newRedisClients(srv)}
	m.sampler = startSampler(ctx, time.Second, func(ctx context.Context, at time.Duration) memSample {
		s := memSample{at: at, redis: -1, rss: -1}
		var err error
		if len(m.nodes) > 0 {
			if s.redis, err = m.nodes.sum(ctx, usedMemory); err != nil {
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
		return s
	})
	return m
}

// finish stops the sampler and returns every sample.
func (m *memSampler) finish() ([]memSample, error) {
	samples := m.sampler.finish()
	m.nodes.close()
	m.mu.Lock()
	defer m.mu.Unlock()
	return samples, m.err
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

// thinned is the first of samples in each step of time (at says when a
// sample was taken), for a series in the notes.
func thinned[T any](samples []T, at func(T) time.Duration, step time.Duration) []T {
	var out []T
	next := time.Duration(0)
	for _, s := range samples {
		if at(s) < next {
			continue
		}
		next = at(s).Truncate(step) + step
		out = append(out, s)
	}
	return out
}

// memSeries is the samples every step, as a line for the report's notes.
func memSeries(samples []memSample, step time.Duration) string {
	var b strings.Builder
	for _, s := range thinned(samples, func(s memSample) time.Duration { return s.at }, step) {
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
