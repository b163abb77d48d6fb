package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the tool's own code end to end, small: it builds the
// server from this module, starts it, and runs each scenario once (three
// pairs talking beside twenty idle sessions; twenty sessions opened, held
// and measured). Every message must arrive and every figure must be there;
// the values themselves are speed, which belongs to the tool's runs.
func TestSmoke(t *testing.T) {
	cfg := defaultConfig()
	cfg.scenarios = []string{"latency", "connect", "idle"}
	cfg.runs = 1
	cfg.pairs, cfg.rate, cfg.duration, cfg.idle = 3, 2, 3*time.Second, 20
	cfg.sessions, cfg.window, cfg.settle = 20, time.Second, 200*time.Millisecond
	// Typed a key at a time: every key reaches the server on its own, and
	// the message still arrives whole. (The other smoke tests paste.)
	cfg.typed = 20 * time.Millisecond
	cfg.logf = t.Logf
	res := runSmall(t, cfg, 3*time.Minute)
	want := map[string][]string{
		"latency": {"sent", "lost", "p50", "p90", "p99", "max", "server_cpu", "tool_cpu"},
		"connect": {"open", "failed", "first_p50", "first_p99", "first_max", "rss_before", "rss_after", "rss_per_session"},
		"idle":    {"open", "failed", "server_cpu", "server_cpu_per_1000", "tool_cpu", "tool_cpu_per_1000"},
	}
	if len(res.Scenarios) != len(want) {
		t.Fatalf("%d scenarios reported, want %d", len(res.Scenarios), len(want))
	}
	for _, s := range res.Scenarios {
		if len(s.Runs) != 1 {
			t.Fatalf("%s: %d runs reported, want 1", s.Scenario, len(s.Runs))
		}
		rr := s.Runs[0]
		wantFigures(t, s.Scenario, rr, want[s.Scenario])
		count := func(name string) float64 { v, _ := rr.value(name); return v }
		switch s.Scenario {
		case "latency":
			if count("sent") == 0 || count("lost") != 0 {
				t.Errorf("latency: %v sent, %v lost; want some sent and none lost", count("sent"), count("lost"))
			}
		default:
			if count("open") != float64(cfg.sessions) || count("failed") != 0 {
				t.Errorf("%s: %v open, %v failed; want %d open", s.Scenario, count("open"), count("failed"), cfg.sessions)
			}
		}
	}
}

// TestSmokeRedis runs the latency and idle scenarios on two replicas and a
// redis-server the tool starts, small: every message must arrive, and
// Redis's CPU is reported beside the servers'.
func TestSmokeRedis(t *testing.T) {
	cfg := defaultConfig()
	cfg.scenarios = []string{"latency", "idle"}
	cfg.redis, cfg.runs = true, 1
	cfg.pairs, cfg.rate, cfg.duration, cfg.idle = 2, 2, 2*time.Second, 10
	cfg.sessions, cfg.window, cfg.settle = 10, time.Second, 200*time.Millisecond
	cfg.logf = t.Logf
	res := runSmall(t, cfg, 3*time.Minute)
	want := map[string][]string{
		"latency": {"sent", "lost", "server_cpu", "redis_cpu"},
		"idle":    {"open", "server_cpu", "redis_cpu", "redis_cpu_per_1000"},
	}
	if len(res.Scenarios) != len(want) {
		t.Fatalf("%d scenarios reported, want %d", len(res.Scenarios), len(want))
	}
	for _, s := range res.Scenarios {
		rr := s.Runs[0]
		wantFigures(t, s.Scenario, rr, want[s.Scenario])
		if v, _ := rr.value("lost"); v != 0 {
			t.Errorf("%s: %v messages lost", s.Scenario, v)
		}
	}
}

// TestSmokeAbuseAndSlowRedis runs the abuse scenario (one replica, and two
// on a Redis with a maxmemory) and the slow-Redis one, small: every
// figure must be there. What they measure is for the tool's runs.
func TestSmokeAbuseAndSlowRedis(t *testing.T) {
	small := func(cfg config) config {
		cfg.runs, cfg.duration, cfg.settle, cfg.logf = 1, 3*time.Second, 200*time.Millisecond, t.Logf
		cfg.abuseAddrs, cfg.abuseSessions = 2, 2
		return cfg
	}
	memory := small(defaultConfig())
	memory.scenarios = []string{"abuse"}
	shared := small(defaultConfig())
	shared.scenarios, shared.redis, shared.maxmemory = []string{"abuse", "slowredis"}, true, "64mb"
	shared.slowPairs, shared.slowMin, shared.slowMax = 2, 200*time.Millisecond, 500*time.Millisecond
	want := map[string][]string{
		"abuse": {"sessions", "attempts", "accepted", "oversize_accepted", "rss_start", "rss_peak", "rss_end",
			"rss_per_session", "heap_per_session", "server_cpu", "tool_cpu", "newcomer_in", "newcomer_sent", "newcomer_lost"},
		"slowredis": {"sent", "lost", "late_to_slow", "late_from_slow", "duplicated", "send_errors", "partner_left", "p50", "p99",
			"hold_in", "hold_attempts", "hold_ghost"},
	}
	for _, cfg := range []config{memory, shared} {
		res := runSmall(t, cfg, 5*time.Minute)
		for _, s := range res.Scenarios {
			rr := s.Runs[0]
			names := want[s.Scenario]
			if s.Scenario == "abuse" && cfg.redis {
				names = append(names, "redis_start", "redis_peak", "redis_end", "redis_peak_pct")
			}
			wantFigures(t, s.Scenario, rr, names)
			if v, _ := rr.value("oversize_accepted"); v != 0 {
				t.Errorf("%s: the issue's paste was accepted %v times; a message over the byte limit must be refused", s.Scenario, v)
			}
		}
	}
}

// TestSmokeClusterAndSoak runs the cluster scenario (a real 3-master
// Redis Cluster the tool starts, four replicas) and a short soak (rooms
// of 20 s on two replicas on Redis), small: every message must arrive,
// every step succeed, every figure be there, and the servers return to
// their baseline once the soak hangs up.
func TestSmokeClusterAndSoak(t *testing.T) {
	cfg := defaultConfig()
	cfg.scenarios, cfg.redis, cfg.runs = []string{"cluster", "soak"}, true, 1
	cfg.pairs, cfg.rate, cfg.duration, cfg.idle = 4, 2, 3*time.Second, 8
	cfg.soakSessions, cfg.soakDuration, cfg.soakTTL, cfg.churn = 8, 40*time.Second, 20*time.Second, 2
	cfg.settle, cfg.logf = 200*time.Millisecond, t.Logf
	res := runSmall(t, cfg, 8*time.Minute)
	want := map[string][]string{
		"cluster": {"sent", "lost", "p50", "p99", "server_cpu", "redis_cpu", "redis0_cpu", "redis2_cpu", "redis0_cpu_per_1k_msgs",
			"redis0_publish", "redis0_spublish", "redis0_bus_publish", "redis0_net_out", "redis0_channels", "redis0_shardchannels",
			"channels", "shardchannels"},
		"soak": {"open", "talk", "expire", "failed", "ended_unasked", "sent", "lost", "r0_goroutines_base", "r1_fds_end",
			"r0_rss_peak", "r1_heap_end", "redis_keys_base", "redis_keys_peak", "redis_keys_end", "redis_mem_ok", "returns_to_baseline"},
	}
	for _, s := range res.Scenarios {
		rr := s.Runs[0]
		wantFigures(t, s.Scenario, rr, want[s.Scenario])
		count := func(name string) float64 { v, _ := rr.value(name); return v }
		if count("sent") == 0 || count("lost") != 0 {
			t.Errorf("%s: %v sent, %v lost; want some sent and none lost", s.Scenario, count("sent"), count("lost"))
		}
		if s.Scenario == "cluster" && count("channels")+count("shardchannels") == 0 {
			t.Errorf("cluster: no channel with subscribers while %d rooms were open", cfg.pairs+cfg.idle)
		}
		if s.Scenario == "soak" && (count("open") < float64(cfg.soakSessions/2) || count("returns_to_baseline") != 1) {
			t.Errorf("soak: %v rooms opened (want at least %d), returned to baseline: %v", count("open"), cfg.soakSessions/2, count("returns_to_baseline"))
		}
	}
}

// runSmall checks cfg, runs it within timeout, logs the table and fails
// the test on any error.
func runSmall(t *testing.T, cfg config, timeout time.Duration) *results {
	t.Helper()
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := run(ctx, cfg)
	var table strings.Builder
	writeTable(&table, res)
	t.Log(table.String())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// wantFigures fails the test for each of names that rr does not have.
func wantFigures(t *testing.T, scenario string, rr runResult, names []string) {
	t.Helper()
	for _, name := range names {
		if _, ok := rr.value(name); !ok {
			t.Errorf("%s: no %s in %+v", scenario, name, rr.Figures)
		}
	}
}
