package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
)

// clusterPair is a room on a 3-master cluster with Alice and Bob on two
// replicas, each with a client of its own; Alice has seen Bob join.
type clusterPair struct {
	cluster    *redistest.Cluster
	a, b       *redisstore.Store
	channel    string
	slot       int
	alice, bob store.Seat
	// heard collects what each of them receives.
	heardA, heardB *collector
}

func newClusterPair(t *testing.T, cluster *redistest.Cluster) clusterPair {
	t.Helper()
	cfg := redisstore.Config{TTL: time.Minute}
	a := newStore(t, newClient(t, cluster.URL()), cfg)
	b := newStore(t, newClient(t, cluster.URL()), cfg)
	room := create(t, a)
	_, channel := redisstore.RoomKeys(room.ID)
	p := clusterPair{cluster: cluster, a: a, b: b, channel: channel, slot: redisstore.SlotOf(channel)}
	p.alice = join(t, a, room.ID)
	p.bob = join(t, b, room.ID)
	await[store.JoinedEvent](t, p.alice, waitfor.Timeout)
	p.heardA, p.heardB = collect(t, p.alice), collect(t, p.bob)
	return p
}

// collector drains a seat's events, so that it never falls behind while
// the test does something else, and keeps the messages and typing hints.
type collector struct {
	mu       sync.Mutex
	messages []string
	typing   int
}

func collect(t *testing.T, seat store.Seat) *collector {
	c := &collector{}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case ev, ok := <-seat.Events():
				if !ok {
					return
				}
				c.mu.Lock()
				switch ev := ev.(type) {
				case store.MessageEvent:
					c.messages = append(c.messages, ev.Message.Body)
				case store.TypingEvent:
					c.typing++
				}
				c.mu.Unlock()
			}
		}
	}()
	// Registered after the seat's Leave, so it runs before it.
	t.Cleanup(func() { close(stop); <-done })
	return c
}

func (c *collector) heard() (messages []string, typing int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.messages), c.typing
}

// talk sends n numbered messages from seat, paced, each under one ID
// however often it is tried: a send that finds Redis unavailable (a slot
// on the move, a node restarting) is tried again, and stored once.
// progress counts the messages stored.
func talk(ctx context.Context, t *testing.T, seat store.Seat, n int, progress *int64mu) {
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	for i := 1; i <= n; i++ {
		id, body := store.NewMessageID(), fmt.Sprintf("m%04d", i)
		for {
			select {
			case <-ctx.Done():
				t.Errorf("message %d of %d not stored before the deadline", i, n)
				return
			case <-pace.C:
			}
			err := seat.Send(ctx, id, body)
			if err == nil {
				break
			}
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("Send(%s): %v", body, err)
				return
			}
		}
		progress.set(int64(i))
	}
}

type int64mu struct {
	mu sync.Mutex
	n  int64
}

func (v *int64mu) set(n int64) {
	v.mu.Lock()
	v.n = n
	v.mu.Unlock()
}

func (v *int64mu) get() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.n
}

// numbered is what talk sends: m0001 … mNNNN.
func numbered(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("m%04d", i+1)
	}
	return out
}

// talkThrough has Alice send n messages while disrupt runs (once she has
// sent some), then checks that both of them got every message once, in
// order, and that a typing hint still reaches Bob.
func (p clusterPair) talkThrough(t *testing.T, n int, disrupt func(sent func() int)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*waitfor.Timeout)
	defer cancel()
	var sent int64mu
	done := make(chan struct{})
	go func() {
		defer close(done)
		talk(ctx, t, p.alice, n, &sent)
	}()
	waitfor.Condition(t, waitfor.Timeout, "Alice to send a few messages", func() bool { return sent.get() >= int64(n/4) })
	disrupt(func() int { return int(sent.get()) })
	<-done
	// A last message: whatever was delivered twice would come before it.
	if err := p.alice.Send(t.Context(), store.NewMessageID(), "last"); err != nil {
		t.Fatalf("Send(last): %v", err)
	}
	want := append(numbered(n), "last")
	for name, c := range map[string]*collector{"Alice": p.heardA, "Bob": p.heardB} {
		waitfor.Condition(t, waitfor.Timeout, name+" to receive the last message", func() bool {
			got, _ := c.heard()
			return len(got) > 0 && got[len(got)-1] == "last"
		})
		if got, _ := c.heard(); !slices.Equal(got, want) {
			t.Errorf("%s received %d messages, want %d each once in order; first difference at %d", name, len(got), len(want), firstDifference(got, want))
		}
	}
	p.awaitSubscribers(t)
	if err := p.alice.Typing(t.Context(), true); err != nil {
		t.Fatalf("Typing: %v", err)
	}
	waitfor.Condition(t, waitfor.Timeout, "Bob to see Alice typing", func() bool {
		_, typing := p.heardB.heard()
		return typing > 0
	})
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// awaitSubscribers waits until both replicas are subscribed to the room's
// channel on the master that owns its slot, and checks that no node has a
// classic channel or the room's channel anywhere else.
func (p clusterPair) awaitSubscribers(t *testing.T) {
	t.Helper()
	owner := p.cluster.SlotOwner(t, p.slot)
	node := p.cluster.Node(t, owner)
	if !waitfor.Within(waitfor.Timeout, func() bool {
		n, err := node.PubSubShardNumSub(t.Context(), p.channel).Result()
		return err == nil && n[p.channel] == 2
	}) {
		var where []string
		for i := range p.cluster.Addrs {
			n, err := p.cluster.Node(t, i).PubSubShardNumSub(t.Context(), p.channel).Result()
			where = append(where, fmt.Sprintf("node %d: %d %v", i, n[p.channel], err))
		}
		t.Fatalf("timed out waiting for both replicas to subscribe on the slot's owner, node %d; subscribers by node: %s", owner, strings.Join(where, ", "))
	}
	for i := range p.cluster.Addrs {
		classic, sharded, err := subscribedChannels(t.Context(), p.cluster.Node(t, i))
		if err != nil {
			t.Fatal(err)
		}
		if len(classic) != 0 {
			t.Errorf("node %d has %d classic channels, want none", i, len(classic))
		}
		if has := slices.Contains(sharded, p.channel); has != (i == owner) {
			t.Errorf("node %d (owner %d) has the room's sharded channel: %v", i, owner, has)
		}
	}
}

// The room's slot moves to another master while messages flow: every
// message arrives once, in order, and the replicas follow the slot.
func TestClusterSlotMigration(t *testing.T) {
	t.Parallel()
	p := newClusterPair(t, redistest.StartCluster(t, 3))
	checkSlotOf(t, p.cluster.Node(t, 0))
	p.awaitSubscribers(t)
	from := p.cluster.SlotOwner(t, p.slot)
	p.talkThrough(t, 200, func(sent func() int) {
		// Held half-way for a while: the keys are on the target, which
		// serves the scripts (ASK), while the subscribers are still on
		// the source, which publishes nothing any more.
		m := p.cluster.BeginMigration(t, p.slot, (from+1)%3)
		waitfor.Condition(t, waitfor.Timeout, "Bob to fall behind while the slot is half-moved", func() bool {
			got, _ := p.heardB.heard()
			return sent()-len(got) >= 10
		})
		m.Finish()
	})
	if owner := p.cluster.SlotOwner(t, p.slot); owner == from {
		t.Fatalf("slot %d still on node %d", p.slot, owner)
	}
}

// The master that owns the room restarts, keeping its data and cluster
// configuration, while messages flow: the subscriptions come back and
// every message arrives once, in order. Other rooms, in other slots of
// every node, come back too: each channel subscribed on its own (one
// SSUBSCRIBE of channels across slots is refused), one connection per
// replica and node.
func TestClusterNodeRestart(t *testing.T) {
	t.Parallel()
	p := newClusterPair(t, redistest.StartCluster(t, 3))
	channels := []string{p.channel}
	perNode := make([]int, len(p.cluster.Addrs))
	for slices.Min(perNode) < 3 {
		room := create(t, p.a)
		join(t, p.a, room.ID)
		join(t, p.b, room.ID)
		_, channel := redisstore.RoomKeys(room.ID)
		channels = append(channels, channel)
		perNode[p.cluster.SlotOwner(t, redisstore.SlotOf(channel))]++
	}
	p.awaitSubscribers(t)
	awaitAllSubscribed(t, p.cluster, channels)
	owner := p.cluster.SlotOwner(t, p.slot)
	p.talkThrough(t, 150, func(func() int) { p.cluster.RestartNode(t, owner) })
	awaitAllSubscribed(t, p.cluster, channels)
}

// The room's master hands over to its replica (CLUSTER FAILOVER) while
// messages flow: the replicas follow the slot to its new master, and every
// message arrives once, in order. The old master, which as a replica
// would take their subscriptions too, has none left.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	p := newClusterPair(t, redistest.StartClusterWithReplicas(t, 3))
	p.awaitSubscribers(t)
	from := p.cluster.SlotOwner(t, p.slot)
	p.talkThrough(t, 150, func(func() int) {
		if to := p.cluster.Failover(t, p.slot); to == from {
			t.Fatalf("slot %d still on node %d after a failover", p.slot, from)
		}
	})
}

// awaitAllSubscribed waits until the nodes have, between them, exactly
// the channels subscribed, each on the node that owns its slot, by two
// replicas with one Pub/Sub connection each to every node.
func awaitAllSubscribed(t *testing.T, cluster *redistest.Cluster, channels []string) {
	t.Helper()
	nodes := make([]*redis.Client, len(cluster.Addrs))
	want := make([][]string, len(nodes))
	for i := range nodes {
		nodes[i] = cluster.Node(t, i)
	}
	for _, ch := range channels {
		owner := cluster.SlotOwner(t, redisstore.SlotOf(ch))
		want[owner] = append(want[owner], ch)
	}
	for i, node := range nodes {
		slices.Sort(want[i])
		waitfor.Condition(t, waitfor.Timeout, fmt.Sprintf("node %d to have its %d channels subscribed by both replicas", i, len(want[i])), func() bool {
			classic, sharded, err := subscribedChannels(t.Context(), node)
			if err != nil || len(classic) != 0 {
				return false
			}
			slices.Sort(sharded)
			if !slices.Equal(sharded, want[i]) {
				return false
			}
			counts, err := node.PubSubShardNumSub(t.Context(), want[i]...).Result()
			if err != nil {
				return false
			}
			for _, ch := range want[i] {
				if counts[ch] != 2 {
					return false
				}
			}
			return pubsubClients(t, node) == 2
		})
	}
}

// checkSlotOf checks the store's slot of a key against the cluster's.
func checkSlotOf(t *testing.T, node *redis.Client) {
	t.Helper()
	for _, key := range []string{"chat:v5:{abc}", "plain", "{}x", "a{b}c{d}", "{", "x{}{y}", "chat:v5:{" + store.NewMemberID() + "}"} {
		want, err := node.ClusterKeySlot(t.Context(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := redisstore.SlotOf(key); int64(got) != want {
			t.Errorf("SlotOf(%q) = %d, Redis says %d", key, got, want)
		}
	}
}
