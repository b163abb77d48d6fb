package redislimits_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/limits/limitstest"
	redislimits "github.com/ssh-burn/chat/limits/redis"
	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
)

// fillTo sets the Redis's maxmemory to maxMemory bytes and writes values
// until it uses at least fraction of it.
func fillTo(t *testing.T, client redis.UniversalClient, maxMemory int64, fraction float64) {
	t.Helper()
	ctx := t.Context()
	if err := client.ConfigSet(ctx, "maxmemory", strconv.FormatInt(maxMemory, 10)).Err(); err != nil {
		t.Fatalf("set maxmemory: %v", err)
	}
	value := strings.Repeat("x", 32<<10)
	for i := 0; ; i++ {
		used, err := usedMemory(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		if float64(used) >= fraction*float64(maxMemory) {
			return
		}
		if err := client.Set(ctx, fmt.Sprintf("fill:%d", i), value, 0).Err(); err != nil {
			t.Fatalf("fill Redis to %.0f%%: %v", fraction*100, err)
		}
	}
}

func usedMemory(ctx context.Context, client redis.Cmdable) (int64, error) {
	info, err := client.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory has no used_memory")
}

// As Redis fills, the addresses that spent most of their budget are
// refused first, while fresh ones still get in; near full nobody spends;
// with maxmemory unlimited there is no pressure. Both replicas see it.
func TestHeavyWritersAreRefusedFirstAsRedisFills(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr)
	var logs lockedBuffer
	a := newLimiter(t, srv.Addr, redislimits.Config{MemoryEvery: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	logged := func(text string) {
		t.Helper()
		waitfor.Condition(t, waitfor.Timeout, "the log to say "+text, func() bool { return strings.Contains(logs.String(), text) })
	}
	b := newLimiter(t, srv.Addr, redislimits.Config{MemoryEvery: 20 * time.Millisecond})
	heavy, fresh, newcomer := limitstest.Alice, limitstest.Bob, limitstest.Bystander
	spend := func(l limits.Limiter, who netip.Prefix, cost int, want limits.Verdict) {
		t.Helper()
		if v := l.Spend(t.Context(), who, cost); v != want {
			t.Fatalf("spend %d at pressure %.2f: %v, want %v", cost, l.(*redislimits.Limiter).Pressure(), v, want)
		}
	}
	pressureAtLeast := func(p float64) {
		t.Helper()
		waitfor.Condition(t, waitfor.Timeout, fmt.Sprintf("both replicas to see %.0f%% of maxmemory used", p*100), func() bool {
			return a.Pressure() >= p && b.Pressure() >= p
		})
	}

	// The budget is 10,000 bytes (limitstest.Config), practically without
	// refill. Unpressed, the heavy writer spends most of it.
	spend(a, heavy, 8000, limits.Admitted)

	// At 75% (70-80%), the reserve is 3,333-6,667 bytes.
	const maxMemory = 32 << 20
	fillTo(t, client, maxMemory, 0.75)
	pressureAtLeast(0.70)
	if p := a.Pressure(); p > 0.85 {
		t.Fatalf("filled beyond the aim: %.2f", p)
	}
	logged("Redis is filling")
	spend(b, heavy, 500, limits.Headroom) // it would keep 1,500
	spend(a, heavy, 2500, limits.OverBudget)
	spend(b, fresh, 500, limits.Admitted) // it keeps 9,500
	spend(a, fresh, 2000, limits.Admitted)
	spend(a, fresh, 5000, limits.Headroom) // it would keep 2,500

	// At 90% and beyond nobody spends, not even a newcomer.
	fillTo(t, client, maxMemory, 0.92)
	pressureAtLeast(0.90)
	spend(a, newcomer, 1, limits.Headroom)
	spend(b, fresh, 1, limits.Headroom)

	// Full (past maxmemory, so Redis refuses whatever adds data): the
	// decisions still come from Redis, shared, with their true reason;
	// a replica's own counts would let the newcomer spend.
	if err := client.ConfigSet(t.Context(), "maxmemory", "1").Err(); err != nil {
		t.Fatal(err)
	}
	pressureAtLeast(1)
	spend(a, newcomer, 1, limits.Headroom)
	if strings.Contains(logs.String(), "did not answer") {
		t.Errorf("at a full Redis the limits fell back to the replica's counts:\n%s", logs.String())
	}

	// Unlimited memory: no pressure, only the budgets.
	if err := client.ConfigSet(t.Context(), "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, waitfor.Timeout, "both replicas to see no pressure", func() bool {
		return a.Pressure() == 0 && b.Pressure() == 0
	})
	logged("Redis has room again")
	spend(a, heavy, 2000, limits.Admitted)
	spend(b, heavy, 1, limits.OverBudget)
	spend(b, newcomer, 10_000, limits.Admitted)
}

// On a cluster the pressure is the fullest master's.
func TestPressureOfAClusterIsItsFullestMaster(t *testing.T) {
	t.Parallel()
	cluster := redistest.StartCluster(t, 3)
	client, err := redisstore.NewClient(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	l := newLimiter(t, "", redislimits.Config{Client: client, MemoryEvery: 20 * time.Millisecond})
	// One master at about half its maxmemory; the others unlimited.
	node := redis.NewClient(&redis.Options{Addr: cluster.Addrs[1]})
	defer node.Close()
	used, err := usedMemory(t.Context(), node)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.ConfigSet(t.Context(), "maxmemory", strconv.FormatInt(2*used, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, waitfor.Timeout, "the fullest master's pressure", func() bool {
		p := l.Pressure()
		return p > 0.3 && p < 0.8
	})
}

// A Redis that does not answer holds no decision beyond its own call
// timeout: decisions do not queue behind one another (nor behind the
// lookup of the shared secret), whether the secret was known before Redis
// fell silent or not.
func TestDecisionsDoNotQueueBehindASilentRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	for _, known := range []bool{true, false} {
		t.Run(fmt.Sprintf("secret known %v", known), func(t *testing.T) {
			proxy := redistest.StartProxy(t, srv.Addr)
			if !known {
				proxy.Cut() // before the limiter's first lookup
			}
			l := newLimiter(t, "", redislimits.Config{Client: newClient(t, proxy.Addr)})
			if known {
				if v, release := l.Admit(t.Context(), limitstest.Bystander); v != limits.Admitted {
					t.Fatalf("admit while Redis answers: %v", v)
				} else {
					release()
				}
				proxy.Cut()
			}
			// A queue of decisions, each waiting out the call
			// timeout of the one before, would take 16 of them.
			const decisions = 16
			bound := redislimits.CallTimeout + 2*time.Second
			took := make(chan time.Duration, decisions)
			var wg sync.WaitGroup
			for i := range decisions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					who := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32)
					start := time.Now()
					v, release := l.Admit(t.Context(), who)
					took <- time.Since(start)
					if v != limits.Admitted {
						t.Errorf("admit on this replica's own counts: %v", v)
					}
					release()
				}()
			}
			wg.Wait()
			close(took)
			slowest := time.Duration(0)
			for d := range took {
				slowest = max(slowest, d)
				if d > bound {
					t.Errorf("a decision took %v with Redis silent, want at most %v", d, bound)
				}
			}
			t.Logf("the slowest of %d decisions at once took %v", decisions, slowest)
		})
	}
}

// limiterGoroutines counts the goroutines running this package's code.
func limiterGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "chat/limits/redis.(*Limiter)") {
			count++
		}
	}
	return count
}

// Close stops everything the limiter started, whether Redis answers or
// not, and may be called again.
func TestCloseLeavesNoGoroutinesBehind(t *testing.T) {
	// Not parallel: it counts goroutines of every limiter in the process.
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr)
	answering := redislimits.New(redislimits.Config{Client: newClient(t, srv.Addr), Replica: &replica{id: "r1"}})
	silent := redislimits.New(redislimits.Config{Client: newClient(t, proxy.Addr), Replica: &replica{id: "r2"}})
	answering.Spend(t.Context(), limitstest.Alice, 1)
	proxy.Cut()
	silent.Spend(t.Context(), limitstest.Alice, 1)
	if n := limiterGoroutines(); n < 6 {
		t.Fatalf("%d goroutines of the limiters found before Close, want their 6", n)
	}
	for _, l := range []*redislimits.Limiter{answering, silent, answering} {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := limiterGoroutines(); n != 0 {
		t.Fatalf("%d goroutines of the limiters left after Close", n)
	}
}

// Chats end in bursts (a replica draining, a network blip): their counts
// are given back even when Redis answers later than a decision waits, or
// the addresses would stay a chat short until the hold lapses.
func TestEndedChatsAreGivenBackToASlowRedis(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr)
	l := newLimiter(t, "", redislimits.Config{Client: newClient(t, proxy.Addr)})
	const chats = 300
	var releases []func()
	for i := range chats {
		who := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), 32)
		v, release := l.Admit(t.Context(), who)
		if v != limits.Admitted {
			t.Fatalf("admit %d: %v", i, v)
		}
		releases = append(releases, release)
	}
	direct := newClient(t, srv.Addr)
	open := func() int {
		keys, err := direct.Keys(t.Context(), "*:open").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n := open(); n != chats {
		t.Fatalf("%d addresses count open chats, want %d", n, chats)
	}
	proxy.DelayReplies(redislimits.CallTimeout+200*time.Millisecond, redislimits.CallTimeout+400*time.Millisecond)
	// Each ends in its own connection's goroutine, as on a server.
	var wg sync.WaitGroup
	for _, release := range releases {
		wg.Go(release)
	}
	wg.Wait()
	waitfor.Condition(t, waitfor.Timeout, "every ended chat given back", func() bool { return open() == 0 })
}
