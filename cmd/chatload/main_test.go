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
	cfg.logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	res, err := run(ctx, cfg)
	var table strings.Builder
	writeTable(&table, res)
	t.Log(table.String())
	if err != nil {
		t.Fatal(err)
	}
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
		for _, name := range want[s.Scenario] {
			if _, ok := rr.value(name); !ok {
				t.Errorf("%s: no %s in %+v", s.Scenario, name, rr.Figures)
			}
		}
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
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	res, err := run(ctx, cfg)
	var table strings.Builder
	writeTable(&table, res)
	t.Log(table.String())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"latency": {"sent", "lost", "server_cpu", "redis_cpu"},
		"idle":    {"open", "server_cpu", "redis_cpu", "redis_cpu_per_1000"},
	}
	if len(res.Scenarios) != len(want) {
		t.Fatalf("%d scenarios reported, want %d", len(res.Scenarios), len(want))
	}
	for _, s := range res.Scenarios {
		rr := s.Runs[0]
		for _, name := range want[s.Scenario] {
			if _, ok := rr.value(name); !ok {
				t.Errorf("%s: no %s in %+v", s.Scenario, name, rr.Figures)
			}
		}
		if v, _ := rr.value("lost"); v != 0 {
			t.Errorf("%s: %v messages lost", s.Scenario, v)
		}
	}
}
