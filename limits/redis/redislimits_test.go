package redislimits_test

import (
	"fmt"
	"net/netip"
	"os/exec"
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

// replica stands in for the store of a replica: its ID and who is dead.
type replica struct {
	id   string
	mu   sync.Mutex
	dead []string
}

func (r *replica) ReplicaID() string { return r.id }

func (r *replica) DeadReplicas() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.dead...)
}

func newClient(t *testing.T, addr string) redis.UniversalClient {
	t.Helper()
	client, err := redisstore.NewClient("redis://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// newLimiter is a limiter on its own client to addr, closed at cleanup.
func newLimiter(t *testing.T, addr string, cfg redislimits.Config) *redislimits.Limiter {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = newClient(t, addr)
	}
	if cfg.Replica == nil {
		cfg.Replica = &replica{id: "replica-" + t.Name()}
	}
	if cfg.Limits == (limits.Config{}) {
		cfg.Limits = limitstest.Config()
	}
	l := redislimits.New(cfg)
	t.Cleanup(func() { l.Close() })
	return l
}

var (
	alice = limitstest.Alice
	bob   = limitstest.Bob
)

// Two limiters on one Redis are two replicas.
func TestRedisLimiter(t *testing.T) {
	t.Parallel()
	limitstest.Run(t, func(t *testing.T, cfg limits.Config) (a, b limits.Limiter) {
		// A Redis of its own for each test of the suite, which runs them
		// in parallel on the same addresses.
		srv := redistest.Start(t)
		replica := func(id string) limits.Limiter {
			return redislimits.New(redislimits.Config{Client: newClient(t, srv.Addr), Limits: cfg, Replica: &replica{id: id}})
		}
		return replica("replica-a"), replica("replica-b")
	})
}

// The open chats of a replica found dead stop counting.
func TestOpenChatsOfADeadReplicaLapse(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	doomed := &replica{id: "replica-doomed"}
	survivor := &replica{id: "replica-survivor"}
	a := newLimiter(t, srv.Addr, redislimits.Config{Replica: doomed})
	b := newLimiter(t, srv.Addr, redislimits.Config{Replica: survivor})
	for range 2 {
		if v, _ := a.Admit(t.Context(), alice); v != limits.Admitted {
			t.Fatalf("%v", v)
		}
	}
	if v, _ := b.Admit(t.Context(), alice); v != limits.TooManyOpen {
		t.Fatalf("%v, want TooManyOpen", v)
	}
	survivor.mu.Lock()
	survivor.dead = []string{doomed.id}
	survivor.mu.Unlock()
	if v, _ := b.Admit(t.Context(), alice); v != limits.Admitted {
		t.Fatalf("the dead replica's chats still count: %v", v)
	}
}

// Across a rotation of the secret, the chats already open still count.
func TestOpenChatsCountAcrossARotation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr)
	const rotation = 2 * time.Second
	l := newLimiter(t, srv.Addr, redislimits.Config{Client: client, Rotation: rotation})
	for range 2 {
		if v, _ := l.Admit(t.Context(), alice); v != limits.Admitted {
			t.Fatalf("%v", v)
		}
	}
	secret := func() string { return client.HGet(t.Context(), "chat:v2:lim:secret", "cur").Val() }
	first := secret()
	// The limiter replaces the secret when its time is up.
	waitfor.Condition(t, waitfor.Timeout, "the secret to be replaced", func() bool { return secret() != first })
	later := newLimiter(t, srv.Addr, redislimits.Config{Client: client, Rotation: rotation})
	if v, _ := later.Admit(t.Context(), alice); v != limits.TooManyOpen {
		t.Fatalf("after a rotation the open chats were forgotten: %v", v)
	}
}

// Redis sees neither address: not in a key, a value or a command.
func TestAddressesNeverReachRedisInClear(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr)
	monitor := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strings.Split(srv.Addr, ":")[1], "monitor")
	var traffic lockedBuffer
	monitor.Stdout = &traffic
	if err := monitor.Start(); err != nil {
		t.Fatalf("redis-cli monitor: %v", err)
	}
	t.Cleanup(func() { monitor.Process.Kill(); monitor.Wait() })
	waitfor.Condition(t, waitfor.Timeout, "monitor to start", func() bool { return strings.Contains(traffic.String(), "OK") })

	l := newLimiter(t, srv.Addr, redislimits.Config{Client: client})
	for _, who := range []netip.Prefix{alice, bob} {
		_, release := l.Admit(t.Context(), who)
		l.AllowRoom(t.Context(), who)
		l.FailedJoin(t.Context(), who)
		l.MayTryJoin(t.Context(), who)
		l.Spend(t.Context(), who, 100)
		release()
	}
	client.Ping(t.Context()) // the last command MONITOR must show
	var stored strings.Builder
	iter := client.Scan(t.Context(), 0, "*", 1000).Iterator()
	for iter.Next(t.Context()) {
		key := iter.Val()
		fmt.Fprintln(&stored, key, client.Dump(t.Context(), key).Val())
	}
	waitfor.Condition(t, waitfor.Timeout, "the commands to pass", func() bool { return strings.Contains(traffic.String(), `"ping"`) })
	for _, clear := range []string{"203.0.113.7", "203.0.113", "2001:db8", "2001:0db8"} {
		if strings.Contains(traffic.String(), clear) {
			t.Errorf("MONITOR shows %q", clear)
		}
		if strings.Contains(stored.String(), clear) {
			t.Errorf("Redis holds %q", clear)
		}
	}
	for _, kind := range []string{":new", ":rooms", ":failed", ":bytes"} {
		if !strings.Contains(stored.String(), kind) {
			t.Errorf("no %s key of the limits is in Redis:\n%s", kind, stored.String())
		}
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Without Redis the limits are this replica's own: decisions come after
// a bounded wait, and still hold.
func TestWithoutRedisTheReplicaCountsAlone(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l := newLimiter(t, srv.Addr, redislimits.Config{})
	srv.Stop()
	for range 2 {
		if v, _ := l.Admit(t.Context(), alice); v != limits.Admitted {
			t.Fatalf("%v", v)
		}
	}
	if v, _ := l.Admit(t.Context(), alice); v != limits.TooManyOpen {
		t.Fatalf("the replica's own count: %v, want TooManyOpen", v)
	}
	if v := l.Spend(t.Context(), alice, 10_000); v != limits.Admitted {
		t.Fatalf("a whole budget: %v", v)
	}
	if v := l.Spend(t.Context(), alice, 1); v != limits.OverBudget {
		t.Fatalf("beyond the replica's own budget: %v, want OverBudget", v)
	}
}
