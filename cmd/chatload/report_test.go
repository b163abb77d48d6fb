package main

import (
	"strings"
	"testing"
	"time"
)

// TestFlagsGiveSoakAndClusterTheirOwnDefaults: the soak runs an hour once
// with 2,000 sessions and 3-minute rooms unless told otherwise, whatever
// the other scenarios' defaults; the cluster scenario starts 4 replicas
// unless -replicas says otherwise, and needs no -redis.
func TestFlagsGiveSoakAndClusterTheirOwnDefaults(t *testing.T) {
	var out strings.Builder
	cfg, _, err := parseFlags([]string{"-scenario", "soak,cluster", "-redis"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.soakDuration != time.Hour || cfg.soakSessions != 2000 || cfg.soakRuns != 1 || cfg.soakTTL != 3*time.Minute {
		t.Errorf("soak defaults: %v, %d sessions, %d runs, TTL %v", cfg.soakDuration, cfg.soakSessions, cfg.soakRuns, cfg.soakTTL)
	}
	if cfg.clusterReplicas != 4 || cfg.replicas != 2 {
		t.Errorf("replicas: cluster %d, others %d; want 4 and 2", cfg.clusterReplicas, cfg.replicas)
	}
	if ttl := cfg.scenarioTTL("soak"); ttl != "3m0s" {
		t.Errorf("soak servers' TTL %q", ttl)
	}

	cfg, _, err = parseFlags([]string{"-scenario", "soak", "-duration", "5m", "-sessions", "40", "-runs", "2", "-room-ttl", "40s"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.soakDuration != 5*time.Minute || cfg.soakSessions != 40 || cfg.soakRuns != 2 || cfg.soakTTL != 40*time.Second {
		t.Errorf("soak as given: %v, %d sessions, %d runs, TTL %v", cfg.soakDuration, cfg.soakSessions, cfg.soakRuns, cfg.soakTTL)
	}

	cfg, _, err = parseFlags([]string{"-scenario", "cluster", "-replicas", "2"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.clusterReplicas != 2 {
		t.Errorf("cluster with -replicas 2 starts %d", cfg.clusterReplicas)
	}
	if _, _, err := parseFlags([]string{"-scenario", "latency", "-replicas", "2"}, &out); err == nil {
		t.Error("-replicas 2 without Redis accepted for latency")
	}
}

// TestRejoinCommandIsReadOffTheEndScreen: the command a person leaves
// with is found in the end screen's plain text, with or without a port;
// the room's own command (four groups) is not taken for it.
func TestRejoinCommandIsReadOffTheEndScreen(t *testing.T) {
	const name = "k7m2-q9xw-4p3f-h8n2-a1b2-c3d4-e5f6-g7h8"
	for _, screen := range []string{
		"You left the room. Your seat is kept for you until it self-destructs in 2:31.\r\nTo return as yourself, run:\r\nssh -p 40123 " + name + "@127.0.0.1\r\n",
		"To return as yourself, run:\nssh " + name + "@chat.example.com\nTo invite someone, share:\nssh k7m2-q9xw-4p3f-h8n2@chat.example.com",
	} {
		m := rejoinCommand.FindAllStringSubmatch(screen, -1)
		if len(m) != 1 || m[0][1] != name {
			t.Errorf("found %q in %q", m, screen)
		}
	}
	if m := rejoinCommand.FindString("ssh -p 2222 k7m2-q9xw-4p3f-h8n2@localhost"); m != "" {
		t.Errorf("the room's command read as a rejoin command: %q", m)
	}
}

// TestBaselineVerdicts: each figure is judged by its stated tolerance.
func TestBaselineVerdicts(t *testing.T) {
	const mb = 1 << 20
	sample := func(goroutines, fds, redisConns, rss, keys, mem int64) soakSample {
		return soakSample{replicas: []replicaSample{{goroutines, fds, redisConns, rss}}, redisKeys: keys, redisMem: mem}
	}
	base := sample(16, 15, 4, 20*mb, 3, 2*mb)
	peakOf := func(peak soakSample) func(func(soakSample) int64) int64 {
		return func(f func(soakSample) int64) int64 { return max(f(base), f(peak)) }
	}
	high := sample(10000, 1000, 20, 300*mb, 8000, 12*mb)
	verdicts := func(end soakSample, baseHeap, endHeap int64) map[string]bool {
		out := map[string]bool{}
		for _, c := range checkBaseline(base, end, peakOf(high), []heapReading{{live: baseHeap, spans: 4 * mb}}, []heapReading{{live: endHeap, spans: 30 * mb}}) {
			if !c.informational {
				out[c.name] = c.ok
			}
		}
		return out
	}
	// Back: a few goroutines and fds more (beside 16 more to Redis: the
	// pool grew), RSS below half its rise, the live heap within 4 MiB and
	// the descriptors of the peak's goroutines (its spans are not
	// judged), the same keys.
	back := verdicts(sample(21, 33, 20, 150*mb, 3, 2*mb+mb/2), 3*mb, 11*mb)
	for name, ok := range back {
		if !ok {
			t.Errorf("%s judged not back", name)
		}
	}
	if len(back) != 6 {
		t.Errorf("verdicts %v; want goroutines, fds, rss, heap, redis_keys, redis_mem", back)
	}
	for name, end := range map[string]soakSample{
		"goroutines": sample(22, 15, 4, 20*mb, 3, 2*mb),
		"fds":        sample(16, 19, 4, 20*mb, 3, 2*mb),
		"rss":        sample(16, 15, 4, 170*mb, 3, 2*mb),
		"redis_keys": sample(16, 15, 4, 20*mb, 4, 2*mb),
		"redis_mem":  sample(16, 15, 4, 20*mb, 3, 3*mb+1),
	} {
		if verdicts(end, 3*mb, 3*mb)[name] {
			t.Errorf("%s judged back at %+v", name, end)
		}
	}
	// 10,000 goroutines at the peak: 4 MiB and 5,000,000 bytes.
	if verdicts(base, 3*mb, 12*mb)["heap"] {
		t.Error("live heap 9 MiB above baseline judged back")
	}
}

// TestWideResultsPrintARowAFigure: a run with more figures than
// wideTable prints one figure a row, the runs and their median as
// columns; fewer keep a row a run.
func TestWideResultsPrintARowAFigure(t *testing.T) {
	wide := func(v float64) runResult {
		var rr runResult
		for i := range wideTable + 1 {
			rr.add("f"+string(rune('a'+i)), "", v)
		}
		rr.add("lat", "ms", v)
		return rr
	}
	runs := []runResult{wide(1), wide(3), wide(2)}
	for i := range runs {
		runs[i].Run = i + 1
	}
	var b strings.Builder
	writeTable(&b, &results{Scenarios: []scenarioResult{{Scenario: "soak", Setup: "s", Runs: runs, Median: medians(runs)}}})
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if got := strings.Fields(lines[1]); strings.Join(got, " ") != "figure run 1 run 2 run 3 median" {
		t.Errorf("header %q", lines[1])
	}
	if got := strings.Fields(lines[len(lines)-1]); strings.Join(got, " ") != "lat ms 1.0 3.0 2.0 2.0" {
		t.Errorf("last row %q", lines[len(lines)-1])
	}

	var narrow runResult
	narrow.add("p50", "ms", 1)
	b.Reset()
	writeTable(&b, &results{Scenarios: []scenarioResult{{Scenario: "latency", Runs: []runResult{narrow}}}})
	if !strings.Contains(b.String(), "run  p50 ms") {
		t.Errorf("narrow table:\n%s", b.String())
	}
}

// TestPubSubCountersAreReadFromInfo: INFO's commandstats and CLUSTER
// INFO's fields are read by name; a command never called counts zero.
func TestPubSubCountersAreReadFromInfo(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_publish:calls=120,usec=300,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n" +
		"# Stats\r\ntotal_net_output_bytes:98765\r\npubsub_channels:20\r\n"
	f := infoFields(info)
	if n := commandCalls(f["cmdstat_publish"]); n != 120 {
		t.Errorf("publish calls %d", n)
	}
	if n := commandCalls(f["cmdstat_spublish"]); n != 0 {
		t.Errorf("spublish calls %d", n)
	}
	if f["total_net_output_bytes"] != "98765" || f["pubsub_channels"] != "20" {
		t.Errorf("fields %v", f)
	}
}

// TestHeapProfileIsSummedBySite: a debug=1 heap profile's in-use bytes
// are summed by the first frame outside the runtime, largest first.
func TestHeapProfileIsSummedBySite(t *testing.T) {
	profile := "heap profile: 4: 3145728 [9: 4194304] @ heap/1048576\n" +
		"1: 1048576 [2: 2097152] @ 0x1 0x2\n" +
		"#\t0x4a5b6c\tgithub.com/x/y.(*Cache).Put+0x12\t/y/cache.go:12\n" +
		"#\t0x4a5b6d\tmain.main+0x1\t/main.go:1\n\n" +
		"2: 2097152 [6: 2097152] @ 0x3 0x4\n" +
		"#\t0x4a5b6e\truntime.malg+0x1\t/proc.go:9\n" +
		"#\t0x4a5b6f\tgithub.com/x/y.(*Cache).Put+0x40\t/y/cache.go:14\n\n" +
		"1: 524288 [1: 524288] @ 0x5\n" +
		"#\t0x4a5b70\tgithub.com/x/z.New+0x9\t/z/z.go:3\n\n" +
		"# runtime.MemStats\n# HeapInuse = 4000000\n"
	got := summariseHeap(profile, 5)
	if want := "github.com/x/y.(*Cache).Put 3.0 MiB, github.com/x/z.New 0.5 MiB"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
