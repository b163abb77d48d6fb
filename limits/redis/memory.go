package redislimits

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultMemoryEvery is how often Redis's memory is looked at: often
// enough that the reserve follows a flood within a second or two, and an
// INFO a second costs Redis nothing worth counting.
const DefaultMemoryEvery = time.Second

// The headroom rule: as Redis's memory use (used_memory over maxmemory,
// the fullest master's on a cluster) goes from reserveFrom to reserveFull,
// the part of its byte budget that an address must keep after a spend
// grows from nothing to the whole burst. So the addresses that spent most
// of their budget are refused first, while a fresh address (a newcomer
// creating a room, a light talker) still gets its share of what is left.
//
// Below 60% nobody is held back: an ordinary day never gets there with the
// shipped maxmemory. At 90% and above every spend is refused: the last
// tenth is left for what no budget charges (seat leases, heartbeats, the
// rooms' own bookkeeping, Pub/Sub buffers, fragmentation) and for what is
// spent between two looks at the memory, so that Redis's noeviction
// refusals, which would stop everyone at once, never come.
const (
	reserveFrom = 0.60
	reserveFull = 0.90
)

// reserveAt is the reserve at pressure (used over maximum memory) for a
// budget of burst bytes.
func reserveAt(pressure float64, burst int) int {
	f := (pressure - reserveFrom) / (reserveFull - reserveFrom)
	return int(math.Round(float64(burst) * min(max(f, 0), 1)))
}

// Pressure is Redis's memory use as last seen: used_memory over maxmemory
// (the fullest master's on a cluster), 0 while maxmemory is unlimited or
// before the first look.
func (l *Limiter) Pressure() float64 { return math.Float64frombits(l.pressure.Load()) }

// watchMemory looks at Redis's memory every interval until ctx ends. When
// Redis does not answer, the last pressure seen stands.
func (l *Limiter) watchMemory(ctx context.Context, every time.Duration) {
	defer l.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	pressed := false
	for {
		callCtx, cancel := context.WithTimeout(ctx, CallTimeout)
		p, err := memoryPressure(callCtx, l.rdb)
		cancel()
		if err == nil {
			l.pressure.Store(math.Float64bits(p))
			// Said once each way: operators see when the headroom rule
			// starts and stops refusing.
			switch {
			case p >= reserveFrom && !pressed:
				pressed = true
				l.log.Warn("Redis is filling: the per-address byte budgets keep headroom for newcomers", "memory_used", fmt.Sprintf("%.0f%%", p*100))
			case p < reserveFrom && pressed:
				pressed = false
				l.log.Info("Redis has room again: the per-address byte budgets keep no headroom", "memory_used", fmt.Sprintf("%.0f%%", p*100))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// memoryPressure is used over maximum memory of the fullest master.
func memoryPressure(ctx context.Context, rdb redis.UniversalClient) (float64, error) {
	cluster, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return nodePressure(ctx, rdb)
	}
	var (
		mu      sync.Mutex
		fullest float64
	)
	err := cluster.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		p, err := nodePressure(ctx, node)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		fullest = max(fullest, p)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return fullest, nil
}

// nodePressure asks one Redis for its memory.
func nodePressure(ctx context.Context, node redis.Cmdable) (float64, error) {
	info, err := node.Info(ctx, "memory").Result()
	if err != nil {
		return 0, fmt.Errorf("redis memory: %w", err)
	}
	return parsePressure(info)
}

// parsePressure reads used_memory and maxmemory from INFO memory.
func parsePressure(info string) (float64, error) {
	var used, maxMemory float64
	var seenUsed, seenMax bool
	lines := bufio.NewScanner(strings.NewReader(info))
	for lines.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(lines.Text()), ":")
		if !ok {
			continue
		}
		switch key {
		case "used_memory":
			used, seenUsed = parseBytes(value)
		case "maxmemory":
			maxMemory, seenMax = parseBytes(value)
		}
	}
	if !seenUsed || !seenMax {
		return 0, fmt.Errorf("redis memory: INFO lacks used_memory or maxmemory")
	}
	if maxMemory <= 0 {
		return 0, nil // unlimited: no pressure
	}
	return used / maxMemory, nil
}

func parseBytes(s string) (float64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	return float64(n), err == nil
}
