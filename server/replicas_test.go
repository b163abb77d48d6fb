package server_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	redislimits "github.com/ssh-burn/chat/limits/redis"
	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
	"github.com/ssh-burn/chat/ui"
)

// Several servers on one real Redis, each with its own store and client,
// stand in for replicas behind a load balancer; real SSH clients pick
// replicas by hand.

type replicaOptions struct {
	ttl    time.Duration
	lease  time.Duration // zero: the default
	limits testLimits    // zero: generous
}

func startReplicas(t testing.TB, redisAddr string, n int, ttl time.Duration) []*testServer {
	t.Helper()
	return startReplicasWith(t, redisAddr, n, replicaOptions{ttl: ttl})
}

// startReplicasWith starts n replicas on the Redis at redisAddr, sharing
// the per-address limits through it.
func startReplicasWith(t testing.TB, redisAddr string, n int, opts replicaOptions) []*testServer {
	t.Helper()
	if opts.limits == (testLimits{}) {
		opts.limits = generousLimits()
	}
	replicas := make([]*testServer, n)
	for i := range replicas {
		client, err := redisstore.NewClient("redis://" + redisAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() }) // after the server's cleanup closed the store
		rooms, err := redisstore.New(t.Context(), redisstore.Config{Client: client, TTL: opts.ttl, Lease: opts.lease})
		if err != nil {
			t.Fatal(err)
		}
		addrs := redislimits.New(redislimits.Config{Client: client, Limits: opts.limits.addr, Replica: rooms})
		t.Cleanup(func() { addrs.Close() })
		replicas[i] = startServerShared(t, rooms, opts.limits.Limits, addrs)
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
	// Every key of the store's, whatever its layout version, but the
	// replicas' liveness and the per-address limits, which are no room's.
	iter := client.Scan(t.Context(), 0, "chat:*", 1000).Iterator()
	for iter.Next(t.Context()) {
		if key := iter.Val(); !strings.Contains(key, "{live}") && !strings.Contains(key, ":lim:") {
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

	if keys := scanAll(t, redisServer.Addr); len(keys) == 0 {
		t.Fatal("the scan finds none of a live room's keys: it would find none after the destroy either")
	}
	// How fast the partner hears of it is measured by the latency
	// benchmarks; here it must happen, and leave nothing behind.
	bob.destroyRoom()
	alice.waitFor("Room destroyed by your partner")
	// This Redis held only this room: nothing of it may remain.
	if keys := scanAll(t, redisServer.Addr); len(keys) > 0 {
		t.Errorf("after the destroy Redis still holds %q", keys)
	}
	bob.waitFor("Room destroyed by you")
	for c, want := range map[*client]int{alice: ui.ExitDestroyedByOther, bob: ui.ExitDestroyedBySelf} {
		if code := c.exitCode(); code != want {
			t.Errorf("%s exited %d, want %d", c.name, code, want)
		}
	}
	bob3 := replicas[0].dial(t, id)
	bob3.waitFor("No such room")
}

// Sealing and coming back hold across replicas: the room ID admits nobody
// on any replica, and the rejoin command works through another one than
// the seat was taken on, even while the old connection still holds it.
func TestReplicasRejoinThroughAnotherServer(t *testing.T) {
	t.Parallel()
	redisServer := redistest.Start(t)
	replicas := startReplicas(t, redisServer.Addr, 2, 10*time.Minute)

	alice := replicas[0].dial(t, "alice")
	id := alice.roomID()
	bob := replicas[1].dial(t, id)
	bob.waitFor("you joined")
	alice.say("said before")
	bob.waitFor("said before")
	for _, r := range replicas {
		r.dial(t, id).waitFor("This room is private to the two people who met in it.")
	}

	bob.typeText("\x03")
	user := bob.rejoinName()
	alice.waitFor("left; their seat is kept for them")
	back := replicas[0].dial(t, user)
	back.waitFor("you are back; ", "said before")
	alice.waitFor("is back")
	back.say("back through replica zero")
	alice.waitFor("back through replica zero")

	// Again from replica one while replica zero's connection holds the
	// seat: the newer connection wins.
	again := replicas[1].dial(t, user)
	again.waitFor("you are back")
	back.waitFor("You came back to this room from another connection")
	again.say("and through replica one")
	alice.waitFor("and through replica one")
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
			return strings.Contains(s, "you joined") || strings.Contains(s, "room is private")
		}, "joined or refused")
		if strings.Contains(s, "room is private") {
			full = append(full, c)
		} else {
			inside = append(inside, c)
		}
	}
	if len(inside) != 1 || len(full) != racers-1 {
		t.Fatalf("%d racers over 3 replicas: %d got in, %d were told it is private", racers, len(inside), len(full))
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
	bob.waitFor("you joined")
	for _, c := range []*client{alice, bob} {
		c.waitFor("Room expired")
		// The room was created after dialed: it cannot have ended sooner.
		if early := time.Until(dialed.Add(roomTTL)); early > 0 {
			t.Errorf("%s: expired %v before the deadline", c.name, early)
		}
		if code := c.exitCode(); code != ui.ExitExpired {
			t.Errorf("%s exited %d, want %d", c.name, code, ui.ExitExpired)
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

// A pause of Redis longer than a seat's lease (a slow fork, a failover)
// ends no session: both screens say they are reconnecting, a message typed
// meanwhile leaves the input, arrives once when Redis is back, and only
// then does the screen say nothing was lost.
func TestReplicasRideOutARedisPause(t *testing.T) {
	t.Parallel()
	redisServer := redistest.Start(t)
	const lease = time.Second
	replicas := startReplicasWith(t, redisServer.Addr, 2, replicaOptions{ttl: 10 * time.Minute, lease: lease})
	alice := replicas[0].dial(t, "alice")
	bob := replicas[1].dial(t, alice.roomID())
	bob.waitFor("you joined")
	alice.say("before")
	bob.waitFor("before")

	resume := redisServer.Pause()
	alice.say("typed during the pause")
	alice.waitFor("Reconnecting to the room")
	bob.waitFor("Reconnecting to the room")
	// The pause itself, several leases long.
	<-time.After(3 * lease)
	resume()
	for _, c := range []*client{alice, bob} {
		c.waitFor("typed during the pause", "Reconnected. Nothing was lost.")
	}
	bob.say("after")
	alice.waitFor(": after")
	for _, c := range []*client{alice, bob} {
		if n := strings.Count(c.screen.String(), "typed during the pause"); n != 1 {
			t.Errorf("%s's screen shows the message %d times:\n%s", c.name, n, c.screen)
		}
		if strings.Contains(c.screen.String(), "Not sent") {
			t.Errorf("%s's screen says a message was not sent:\n%s", c.name, c.screen)
		}
	}
	if line := inputLine(alice.screen.String()); strings.Contains(line, "typed during") {
		t.Errorf("the delivered message is back in the input: %q", line)
	}
}

// With Redis, the per-address limits hold across replicas: chats open on
// one replica count on the others, and so do rooms created.
func TestReplicasSharePerAddressLimits(t *testing.T) {
	t.Parallel()
	redisServer := redistest.Start(t)
	limits := generousLimits()
	limits.addr.ConnsPerAddr, limits.addr.RoomsPerMinute = 3, 4
	replicas := startReplicasWith(t, redisServer.Addr, 2, replicaOptions{ttl: 10 * time.Minute, limits: limits})
	const from = "127.0.0.7"

	var open []*client
	for i := range limits.addr.ConnsPerAddr {
		c := replicas[i%2].dialWith(t, "alice", dialOptions{from: from})
		c.roomID()
		open = append(open, c)
	}
	for _, r := range replicas {
		over := r.dialWith(t, "alice", dialOptions{from: from})
		over.waitFor("Too many connections from your address")
		if code := over.exitCode(); code == 0 {
			t.Error("a refused client exited 0")
		}
	}
	// Another address is not affected.
	replicas[1].dialWith(t, "bob", dialOptions{from: "127.0.0.8"}).roomID()

	// Closing one frees its place, on whichever replica it was.
	open[0].typeText("\x03")
	open[0].exitCode()
	open[0].conn.Close()
	var again *client
	waitUntil(t, "a chat from the address is allowed again", func() bool {
		c := replicas[1].dialWith(t, "alice", dialOptions{from: from})
		s := c.screen.waitUntil(t, c.name, func(s string) bool {
			return shareCommand.MatchString(s) || strings.Contains(s, "Too many connections")
		}, "a room or a refusal")
		again = c
		return shareCommand.MatchString(s)
	})
	// Four rooms were created from the address, on both replicas: the
	// budget of a minute is spent everywhere.
	for _, c := range append(open[1:], again) {
		c.typeText("\x03")
		c.exitCode()
		c.conn.Close()
	}
	for _, r := range replicas {
		waitUntil(t, "a new room to be refused for the address's budget", func() bool {
			c := r.dialWith(t, "alice", dialOptions{from: from})
			s := c.screen.waitUntil(t, c.name, func(s string) bool {
				return strings.Contains(s, "too many rooms") || strings.Contains(s, "Too many connections") || shareCommand.MatchString(s)
			}, "a refusal")
			if shareCommand.MatchString(s) {
				t.Fatalf("a fifth room was created from the address:\n%s", s)
			}
			return strings.Contains(s, "too many rooms in the last minute")
		})
	}
}
