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
	"github.com/ssh-burn/chat/server"
	"github.com/ssh-burn/chat/server/redislimits"
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

func limits() server.Limits {
	l := server.DefaultLimits()
	l.ConnsPerAddr, l.NewConnsPerSecond, l.NewConnsBurst = 2, 1000, 1000
	l.RoomsPerMinute, l.FailedJoins = 3, 3
	return l
}

var (
	alice = netip.MustParsePrefix("203.0.113.7/32")
	bob   = netip.MustParsePrefix("2001:db8:1:2::/64")
)

// Open chats count across replicas, whichever replica serves them, and a
// released one frees its place everywhere.
func TestOpenChatsCountAcrossReplicas(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a := redislimits.New(redislimits.Config{Client: newClient(t, srv.Addr), Limits: limits(), Replica: &replica{id: "replica-a"}})
	b := redislimits.New(redislimits.Config{Client: newClient(t, srv.Addr), Limits: limits(), Replica: &replica{id: "replica-b"}})

	v1, release1 := a.Admit(t.Context(), alice)
	v2, _ := b.Admit(t.Context(), alice)
	if v1 != server.Admitted || v2 != server.Admitted {
		t.Fatalf("the first two chats: %v, %v", v1, v2)
	}
	for _, l := range []*redislimits.Limiter{a, b} {
		if v, _ := l.Admit(t.Context(), alice); v != server.TooManyOpen {
			t.Fatalf("a third chat from the address: %v, want TooManyOpen", v)
		}
	}
	if v, _ := a.Admit(t.Context(), bob); v != server.Admitted {
		t.Fatalf("another address: %v", v)
	}
	release1()
	release1() // idempotent
	if v, _ := b.Admit(t.Context(), alice); v != server.Admitted {
		t.Fatalf("after a release: %v, want Admitted", v)
	}

	// Rooms and failed joins: one budget for all replicas.
	for i, l := range []*redislimits.Limiter{a, b, a} {
		if !l.AllowRoom(t.Context(), alice) {
			t.Fatalf("room %d refused", i)
		}
	}
	if b.AllowRoom(t.Context(), alice) || a.AllowRoom(t.Context(), alice) {
		t.Fatal("a fourth room in the minute was allowed")
	}
	for range 3 {
		if !b.MayTryJoin(t.Context(), bob) {
			t.Fatal("a join was refused before any failed")
		}
		a.FailedJoin(t.Context(), bob)
	}
	if b.MayTryJoin(t.Context(), bob) {
		t.Fatal("joins allowed after the failures of a minute were spent on the other replica")
	}
}

// The open chats of a replica found dead stop counting.
func TestOpenChatsOfADeadReplicaLapse(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	doomed := &replica{id: "replica-doomed"}
	survivor := &replica{id: "replica-survivor"}
	a := redislimits.New(redislimits.Config{Client: newClient(t, srv.Addr), Limits: limits(), Replica: doomed})
	b := redislimits.New(redislimits.Config{Client: newClient(t, srv.Addr), Limits: limits(), Replica: survivor})
	for range 2 {
		if v, _ := a.Admit(t.Context(), alice); v != server.Admitted {
			t.Fatalf("%v", v)
		}
	}
	if v, _ := b.Admit(t.Context(), alice); v != server.TooManyOpen {
		t.Fatalf("%v, want TooManyOpen", v)
	}
	survivor.mu.Lock()
	survivor.dead = []string{doomed.id}
	survivor.mu.Unlock()
	if v, _ := b.Admit(t.Context(), alice); v != server.Admitted {
		t.Fatalf("the dead replica's chats still count: %v", v)
	}
}

// Across a rotation of the secret, the chats already open still count.
func TestOpenChatsCountAcrossARotation(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, srv.Addr)
	const rotation = time.Second
	l := redislimits.New(redislimits.Config{Client: client, Limits: limits(), Replica: &replica{id: "r"}, Rotation: rotation})
	for range 2 {
		if v, _ := l.Admit(t.Context(), alice); v != server.Admitted {
			t.Fatalf("%v", v)
		}
	}
	secret := func() string { return client.HGet(t.Context(), "chat:v2:lim:secret", "cur").Val() }
	first := secret()
	// A fresh limiter asks Redis for the secret on its first decision.
	waitfor.Condition(t, waitfor.Timeout, "the secret to be replaced", func() bool {
		fresh := redislimits.New(redislimits.Config{Client: client, Limits: limits(), Replica: &replica{id: "x"}, Rotation: rotation})
		fresh.MayTryJoin(t.Context(), bob)
		return secret() != first
	})
	later := redislimits.New(redislimits.Config{Client: client, Limits: limits(), Replica: &replica{id: "r2"}, Rotation: rotation})
	if v, _ := later.Admit(t.Context(), alice); v != server.TooManyOpen {
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

	l := redislimits.New(redislimits.Config{Client: client, Limits: limits(), Replica: &replica{id: "r"}})
	for _, who := range []netip.Prefix{alice, bob} {
		_, release := l.Admit(t.Context(), who)
		l.AllowRoom(t.Context(), who)
		l.FailedJoin(t.Context(), who)
		l.MayTryJoin(t.Context(), who)
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
	if !strings.Contains(stored.String(), "chat:v2:lim:") {
		t.Errorf("nothing of the limits is in Redis:\n%s", stored.String())
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
	l := redislimits.New(redislimits.Config{Client: newClient(t, srv.Addr), Limits: limits(), Replica: &replica{id: "r"}})
	srv.Stop()
	for range 2 {
		if v, _ := l.Admit(t.Context(), alice); v != server.Admitted {
			t.Fatalf("%v", v)
		}
	}
	if v, _ := l.Admit(t.Context(), alice); v != server.TooManyOpen {
		t.Fatalf("the replica's own count: %v, want TooManyOpen", v)
	}
}
