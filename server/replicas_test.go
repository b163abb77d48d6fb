package server_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
)

// Several servers on one real Redis, each with its own store, stand in for
// replicas behind a load balancer; real SSH clients pick replicas by hand.

func startReplicas(t testing.TB, redisAddr string, n int, ttl time.Duration) []*testServer {
	t.Helper()
	replicas := make([]*testServer, n)
	for i := range replicas {
		client, err := redisstore.NewClient("redis://" + redisAddr)
		if err != nil {
			t.Fatal(err)
		}
		rooms, err := redisstore.New(t.Context(), redisstore.Config{Client: client, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() }) // after the server's cleanup closed the store
		replicas[i] = startServerOn(t, rooms)
	}
	return replicas
}

func scanAll(t *testing.T, addr string) []string {
	t.Helper()
	client, err := redisstore.NewClient("redis://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var keys []string
	iter := client.Scan(t.Context(), 0, "chat:v2:{*", 1000).Iterator()
	for iter.Next(t.Context()) {
		if key := iter.Val(); !strings.Contains(key, "{live}") {
			keys = append(keys, key)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestReplicasChatAndDestroyAcrossServers(t *testing.T) {
	t.Parallel()
	redisServer := redistest.Start(t)
	replicas := startReplicas(t, redisServer.Addr, 2, 10*time.Minute)

	alice := replicas[0].dial(t, "alice")
	id := alice.roomID()
	bob := replicas[1].dial(t, id)
	bob.waitFor("you joined; anonymous-")
	alice.waitFor("joined")

	alice.say("hello from replica zero")
	bob.waitFor("hello from replica zero")
	bob.say("and back from replica one")
	alice.waitFor("you: hello from replica zero", "and back from replica one")

	bob.typeText("\x18y")
	destroyed := time.Now()
	alice.waitFor("Room destroyed by your partner")
	// The bound is the product's promise, with room to spare on a loaded
	// machine: typically it takes a few milliseconds.
	if took := time.Since(destroyed); took > 500*time.Millisecond {
		t.Errorf("the partner's screen said so %v after the destroy key, want within 500ms", took)
	}
	// This Redis held only this room: nothing of it may remain.
	if keys := scanAll(t, redisServer.Addr); len(keys) > 0 {
		t.Errorf("after the destroy Redis still holds %q", keys)
	}
	bob.waitFor("Room destroyed by you")
	for _, c := range []*client{alice, bob} {
		if code := c.exitCode(); code != 0 {
			t.Errorf("%s exited %d", c.name, code)
		}
	}
	bob3 := replicas[0].dial(t, id)
	bob3.waitFor("No such room")
}

func TestReplicasCapHoldsForFiftyRacers(t *testing.T) {
	t.Parallel()
	redisServer := redistest.Start(t)
	replicas := startReplicas(t, redisServer.Addr, 3, 10*time.Minute)
	creator := replicas[0].dial(t, "creator")
	id := creator.roomID()

	const racers = 50
	clients := make([]*client, racers)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { clients[i] = replicas[i%len(replicas)].dial(t, id) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var inside, full []*client
	for _, c := range clients {
		s := c.screen.waitUntil(t, c.name, func(s string) bool {
			return strings.Contains(s, "you joined") || strings.Contains(s, "room is full")
		}, "joined or refused")
		if strings.Contains(s, "room is full") {
			full = append(full, c)
		} else {
			inside = append(inside, c)
		}
	}
	if len(inside) != 1 || len(full) != racers-1 {
		t.Fatalf("%d racers over 3 replicas: %d got in, %d were told it is full", racers, len(inside), len(full))
	}
	for _, c := range full {
		if code := c.exitCode(); code == 0 {
			t.Fatalf("a refused client exited 0")
		}
	}
	creator.waitFor("joined")
}

func TestReplicasExpireTogether(t *testing.T) {
	t.Parallel()
	redisServer := redistest.Start(t)
	const roomTTL = 3 * time.Second
	replicas := startReplicas(t, redisServer.Addr, 2, roomTTL)
	dialed := time.Now()
	alice := replicas[0].dial(t, "alice")
	bob := replicas[1].dial(t, alice.roomID())
	created := time.Now()
	bob.waitFor("you joined")
	for _, c := range []*client{alice, bob} {
		c.waitFor("Room expired")
		// The room was created between dialed and created.
		if early := time.Until(dialed.Add(roomTTL)); early > 0 {
			t.Errorf("%s: expired %v before the deadline", c.name, early)
		}
		if late := time.Since(created.Add(roomTTL)); late > 3*time.Second {
			t.Errorf("%s: expired %v after the deadline", c.name, late)
		}
		if code := c.exitCode(); code != 0 {
			t.Errorf("%s exited %d", c.name, code)
		}
	}
	if keys := scanAll(t, redisServer.Addr); len(keys) > 0 {
		t.Errorf("after the expiry Redis still holds %q", keys)
	}
}

func TestReplicasSurviveARedisRestart(t *testing.T) {
	t.Parallel()
	redisServer := redistest.Start(t)
	replicas := startReplicas(t, redisServer.Addr, 2, 10*time.Minute)
	alice := replicas[0].dial(t, "alice")
	bob := replicas[1].dial(t, alice.roomID())
	bob.waitFor("you joined")

	redisServer.Stop()
	alice.waitFor("Reconnecting to the room")
	bob.waitFor("Reconnecting to the room")
	refused := replicas[1].dial(t, "carol")
	refused.waitFor("cannot reach its room store")
	if code := refused.exitCode(); code == 0 {
		t.Error("a refused client exited 0")
	}

	// Without persistence Redis comes back empty: the room is gone, and
	// both people are told so instead of chatting into the void.
	redisServer.Restart()
	for _, c := range []*client{alice, bob} {
		c.waitFor("The room no longer exists")
		c.exitCode()
	}
	dave := replicas[1].dial(t, "dave")
	erin := replicas[0].dial(t, dave.roomID())
	erin.say("working again")
	dave.waitFor("working again")
}
