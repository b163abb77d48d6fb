package redisstore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
	"github.com/ssh-burn/chat/store/storetest"
)

// What the conformance suite holds for every store is not repeated here;
// these are promises only a store on a shared Redis makes: what Redis
// sees, what it costs, how replicas that fail alone are treated.

// testLease is short so lease expiry runs in real time.
const testLease = time.Second

func join(t *testing.T, s store.Store, id store.RoomID) store.Seat {
	t.Helper()
	seat, err := s.Join(t.Context(), id)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	t.Cleanup(func() { _ = seat.Leave(context.Background()) })
	return seat
}

func create(t *testing.T, s store.Store) store.Room {
	t.Helper()
	room, err := s.Create(t.Context())
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return room
}

// proxiedPair is a room with Alice on a replica that reaches Redis
// directly and Bob on one that reaches it through a proxy the test
// controls; Alice has seen Bob join.
type proxiedPair struct {
	proxy           *redistest.Proxy
	healthy, behind *redisstore.Store
	room            store.Room
	alice, bob      store.Seat
}

// pairAcrossAProxy seats a proxiedPair on a fresh redis-server, both
// replicas with lease and rooms of a minute.
func pairAcrossAProxy(t *testing.T, lease time.Duration) proxiedPair {
	t.Helper()
	srv := redistest.Start(t)
	p := proxiedPair{proxy: redistest.StartProxy(t, srv.Addr)}
	cfg := redisstore.Config{TTL: time.Minute, Lease: lease}
	p.healthy = newStore(t, newClient(t, "redis://"+srv.Addr), cfg)
	p.behind = newStore(t, newClient(t, "redis://"+p.proxy.Addr), cfg)
	p.room = create(t, p.healthy)
	p.alice = join(t, p.healthy, p.room.ID)
	p.bob = join(t, p.behind, p.room.ID)
	await[store.JoinedEvent](t, p.alice, waitfor.Timeout)
	return p
}

func send(t *testing.T, seat store.Seat, body string) {
	t.Helper()
	if err := seat.Send(t.Context(), store.NewMessageID(), body); err != nil {
		t.Fatalf("Send(%q): %v", body, err)
	}
}

// await returns the first event of type E on seat within d, skipping others.
func await[E store.Event](t *testing.T, seat store.Seat, d time.Duration) E {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-seat.Events():
			if !ok {
				var want E
				t.Fatalf("%s: stream closed while waiting for %T", seat.Snapshot().Me.Name, want)
			}
			if e, ok := ev.(E); ok {
				return e
			}
		case <-deadline.C:
			var want E
			t.Fatalf("%s: no %T within %v", seat.Snapshot().Me.Name, want, d)
		}
	}
}

func TestEveryKeyCarriesTheDeadline(t *testing.T) {
	t.Parallel()
	client := newClient(t, "redis://"+redistest.Start(t).Addr)
	s := newStore(t, client, redisstore.Config{TTL: time.Minute})
	room := create(t, s)
	keys, _ := redisstore.RoomKeys(room.ID)
	// Each write re-applies the same deadline: check after every kind.
	wantDeadline := func(after string, keys []string) {
		t.Helper()
		for _, key := range keys {
			at, err := client.PExpireTime(t.Context(), key).Result()
			if err != nil {
				t.Fatal(err)
			}
			if at.Milliseconds() != room.ExpiresAt.UnixMilli() {
				t.Errorf("after %s, %s expires at %v, want the room's deadline %v (-1: never, -2: missing)",
					after, key, at.Milliseconds(), room.ExpiresAt.UnixMilli())
			}
		}
	}
	wantDeadline("create", keys[:1])
	a, b := join(t, s, room.ID), join(t, s, room.ID)
	send(t, a, "hello")
	wantDeadline("join and send", keys) // every key of the room exists now
	if err := b.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantDeadline("leave", keys)
}

// A replica cut off from Redis on its own (a partition; from the other
// replicas' side it looks like a crash) loses its seats once the lease
// runs out: the partner sees its person leave, their seat kept for them,
// and they can come back to it through another replica. The cut-off seat
// waits, within the outage tolerance, and learns on return that it was
// given up.
func TestReplicaCutOffAloneLosesItsSeatsAfterTheLease(t *testing.T) {
	t.Parallel()
	p := pairAcrossAProxy(t, testLease)
	proxy, healthy, cutOff, room, alice, bob := p.proxy, p.healthy, p.behind, p.room, p.alice, p.bob

	proxy.Cut()
	cut := time.Now()
	await[store.ReconnectingEvent](t, bob, waitfor.Timeout)
	if left := await[store.LeftEvent](t, alice, waitfor.Timeout); left.Member != bob.Snapshot().Me || !left.Kept {
		t.Fatalf("partner saw %+v leave, want %v, seat kept", left, bob.Snapshot().Me)
	}
	t.Logf("the partner saw the cut-off member leave %v after the cut (lease %v)", time.Since(cut).Round(time.Millisecond), testLease)
	if _, err := healthy.Join(t.Context(), room.ID); !errors.Is(err, store.ErrSealed) {
		t.Fatalf("Join of the room = %v, want ErrSealed", err)
	}

	proxy.Restore()
	if ended := await[store.EndedEvent](t, bob, waitfor.Timeout); ended.Reason != store.EndLeaseLost || !ended.RoomLivesOn {
		t.Fatalf("cut-off seat ended with %+v, want lease lost", ended)
	}
	if err := bob.Send(t.Context(), store.NewMessageID(), "am I here?"); !errors.Is(err, store.ErrEnded) {
		t.Fatalf("Send after the lease was lost = %v, want ErrEnded", err)
	}
	// Bob comes back through the healthy replica, as himself.
	back, err := healthy.Rejoin(t.Context(), room.ID, bob.Snapshot().Key)
	if err != nil {
		t.Fatalf("Rejoin: %v", err)
	}
	t.Cleanup(func() { _ = back.Leave(context.Background()) })
	if back.Snapshot().Me != bob.Snapshot().Me {
		t.Errorf("back as %v, want %v", back.Snapshot().Me, bob.Snapshot().Me)
	}
	if got := await[store.JoinedEvent](t, alice, waitfor.Timeout); got.Member != bob.Snapshot().Me || !got.Back {
		t.Errorf("joined = %+v, want %v back", got, bob.Snapshot().Me)
	}
	// Back on the network, the replica works again.
	dave := join(t, cutOff, create(t, cutOff).ID)
	send(t, dave, "back")
	await[store.MessageEvent](t, dave, waitfor.Timeout)
}

// Idle seats cost Redis nothing: with twenty times the seats held and
// nobody talking, Redis does the same work (each replica's heartbeat and
// Pub/Sub ping), where a lease renewed per seat would multiply it.
func TestIdleSeatsCostRedisNothing(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	url := "redis://" + srv.Addr
	cfg := redisstore.Config{TTL: time.Hour, Lease: testLease}
	replicas := []store.Store{newStore(t, newClient(t, url), cfg), newStore(t, newClient(t, url), cfg)}
	seat := func(rooms int) {
		for i := range rooms {
			room := create(t, replicas[i%2])
			join(t, replicas[0], room.ID)
			join(t, replicas[1], room.ID)
		}
	}
	stats := newClient(t, url)
	// calls counts what clients asked Redis to do (a script is one call,
	// however many commands it runs).
	calls := func() int64 {
		info, err := stats.Info(t.Context(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for line := range strings.Lines(info) {
			name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
			if !ok || name == "info" {
				continue
			}
			count, err := strconv.ParseInt(strings.Split(rest, ",")[0], 10, 64)
			if err != nil {
				t.Fatalf("commandstats line %q: %v", line, err)
			}
			// Commands run by scripts are counted too: count the
			// scripts, and the commands clients send themselves.
			switch name {
			case "evalsha", "eval", "evalsha_ro", "eval_ro", "ping", "subscribe", "unsubscribe", "publish":
				n += count
			}
		}
		return n
	}
	// window counts the calls over three leases of idleness, once the
	// joins' notifications have settled.
	window := func() int64 {
		<-time.After(testLease)
		before := calls()
		<-time.After(3 * testLease)
		return calls() - before
	}
	seat(10)
	few := window()
	seat(190)
	many := window()
	t.Logf("calls in %v of idleness: %d with 20 seats, %d with 400", 3*testLease, few, many)
	// A lease renewed per seat every third of a lease would add 380 seats
	// × 9 renewals.
	if many > few*3/2+20 {
		t.Errorf("Redis served %d calls for 400 idle seats, %d for 20: idle work grows with the seats", many, few)
	}
}

// Nothing Redis sees, stored or in transit, contains a room ID, a seat
// key, a name or a message in clear: of a key it holds only a digest.
func TestRedisSeesNoSecrets(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, "redis://"+srv.Addr)

	monitor := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strings.Split(srv.Addr, ":")[1], "monitor")
	var traffic lockedBuffer
	monitor.Stdout = &traffic
	if err := monitor.Start(); err != nil {
		t.Fatalf("redis-cli monitor: %v", err)
	}
	t.Cleanup(func() { monitor.Process.Kill(); monitor.Wait() })
	waitfor.Condition(t, waitfor.Timeout, "monitor to start", func() bool { return strings.Contains(traffic.String(), "OK") })

	s := newStore(t, client, redisstore.Config{TTL: time.Minute})
	room := create(t, s)
	alice, bob := join(t, s, room.ID), join(t, s, room.ID)
	const secret = "canary-7f3a9c-the-eagle-lands"
	send(t, alice, secret)
	await[store.MessageEvent](t, bob, waitfor.Timeout)
	if err := alice.Typing(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	await[store.TypingEvent](t, bob, waitfor.Timeout)
	// Bob leaves and comes back with his key.
	if err := bob.Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	back, err := s.Rejoin(t.Context(), room.ID, bob.Snapshot().Key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = back.Leave(context.Background()) })
	waitfor.Condition(t, waitfor.Timeout, "the message to pass", func() bool { return strings.Contains(traffic.String(), "XADD") })

	// Everything stored, as a dump or a backup would hold it.
	var stored bytes.Buffer
	keys, _ := redisstore.RoomKeys(room.ID)
	for _, key := range append(keys, redisstore.LiveKeys...) {
		stored.WriteString(client.Dump(t.Context(), key).Val())
		fmt.Fprint(&stored, client.HGetAll(t.Context(), key).Val(), client.XRange(t.Context(), key, "-", "+").Val())
	}
	id := string(room.ID)
	clears := []string{secret, id, strings.ReplaceAll(id, "-", ""), alice.Snapshot().Me.Name, bob.Snapshot().Me.Name}
	for _, seat := range []store.Seat{alice, bob} {
		key := store.RejoinName(room.ID, seat.Snapshot().Key)[len(id)+1:]
		clears = append(clears, key, strings.ReplaceAll(key, "-", ""))
	}
	for _, clear := range clears {
		if strings.Contains(traffic.String(), clear) {
			t.Errorf("MONITOR shows %q in clear", clear)
		}
		if strings.Contains(stored.String(), clear) {
			t.Errorf("stored data holds %q in clear", clear)
		}
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
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

// pubsubClients counts the Pub/Sub connections Redis sees.
func pubsubClients(t *testing.T, client redis.UniversalClient) int {
	t.Helper()
	list, err := client.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(list) {
		if strings.Contains(line, " flags=P ") {
			n++
		}
	}
	return n
}

// Redis connections grow with replicas, not with sessions; and a restart
// of Redis leaves one subscriber per replica, not two.
func TestOneSubscriptionPerReplica(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	url := "redis://" + srv.Addr
	client := newClient(t, url)
	replicaA := newStore(t, newClient(t, url), redisstore.Config{TTL: time.Minute})
	replicaB := newStore(t, newClient(t, url), redisstore.Config{TTL: time.Minute})
	const rooms = 15
	for range rooms {
		room := create(t, replicaA)
		a, b := join(t, replicaA, room.ID), join(t, replicaB, room.ID)
		send(t, a, "hi")
		await[store.MessageEvent](t, b, waitfor.Timeout)
	}
	waitfor.Condition(t, waitfor.Timeout, "one Pub/Sub connection per replica", func() bool { return pubsubClients(t, client) == 2 })
	if classic, sharded, err := subscribedChannels(t.Context(), client); err != nil {
		t.Fatal(err)
	} else if len(classic) != 0 || len(sharded) != rooms {
		t.Errorf("%d classic and %d sharded channels subscribed for %d rooms, want 0 and %d", len(classic), len(sharded), rooms, rooms)
	}
	srv.RestartWith(true)
	waitfor.Condition(t, waitfor.Timeout, "each replica to subscribe again", func() bool {
		classic, sharded, err := subscribedChannels(t.Context(), client)
		return err == nil && len(classic) == 0 && len(sharded) == rooms && pubsubClients(t, client) == 2
	})
}

// subscribedChannels lists the classic and the sharded channels that one
// Redis (or cluster node) has subscribers for.
func subscribedChannels(ctx context.Context, node redis.UniversalClient) (classic, sharded []string, err error) {
	if classic, err = node.PubSubChannels(ctx, "*").Result(); err != nil {
		return nil, nil, err
	}
	sharded, err = node.PubSubShardChannels(ctx, "*").Result()
	return classic, sharded, err
}

// Closing a replica while Redis does not answer (and its Pub/Sub
// connection is being replaced) returns within a bound, and leaves nothing
// running: no reconnection, timer or goroutine.
func TestCloseWhileRedisIsAwayStopsEverything(t *testing.T) {
	srv := redistest.Start(t)
	storetest.WithoutLeaks(t, func() {
		client := newClient(t, "redis://"+srv.Addr)
		s, err := redisstore.New(t.Context(), redisstore.Config{Client: client, TTL: time.Minute, Lease: testLease})
		if err != nil {
			t.Fatal(err)
		}
		room := create(t, s)
		alice := join(t, s, room.ID)
		resume := srv.Pause()
		defer resume()
		await[store.ReconnectingEvent](t, alice, waitfor.Timeout)
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		select {
		case err := <-closed:
			if err == nil {
				t.Log("Close gave up the seats although Redis was paused")
			}
		case <-time.After(waitfor.Timeout):
			t.Fatal("Close did not return while Redis was paused")
		}
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("second Close = %v", err)
		}
	})
}

// A full Redis is logged at most once a second, with how many refusals
// each line stands for, and its recovery once.
func TestFullRedisIsLoggedSparingly(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	var logs lockedBuffer
	s := newStore(t, newClient(t, "redis://"+srv.Addr), redisstore.Config{
		TTL: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	room := create(t, s)
	alice := join(t, s, room.ID)
	free := srv.Fill()
	start := time.Now()
	const attempts = 200
	for range attempts {
		if err := alice.Send(t.Context(), store.NewMessageID(), "no room"); !errors.Is(err, store.ErrServiceFull) {
			t.Fatalf("Send = %v, want ErrServiceFull", err)
		}
	}
	took := time.Since(start)
	free()
	send(t, alice, "room again")
	waitfor.Condition(t, waitfor.Timeout, "the recovery to be logged", func() bool { return strings.Contains(logs.String(), "redis has room again") })

	// The recovery line counts every refusal of the outage.
	recovery := regexp.MustCompile(`msg="redis has room again" refused=(\d+)`).FindStringSubmatch(logs.String())
	if recovery == nil || recovery[1] != strconv.Itoa(attempts) {
		t.Errorf("the recovery line counts %v refusals, want %d:\n%s", recovery, attempts, logs.String())
	}
	// The lines while full: one at once, then at most one a second.
	lines := 0
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "redis is full") {
			lines++
			if !strings.Contains(line, " refused=") {
				t.Errorf("no count in %q", line)
			}
		}
	}
	if limit := 2 + int(took/time.Second); lines < 1 || lines > limit {
		t.Errorf("%d lines for %d refusals over %v, want 1 to %d", lines, attempts, took, limit)
	}
}

// Replies that do not have the shape their script returns are errors, not
// panics: Redis is trusted to run the scripts, not to be right.
func TestMalformedRepliesAreErrors(t *testing.T) {
	t.Parallel()
	fake := startFakeRedis(t)
	client := newClient(t, "redis://"+fake.addr)
	// The heartbeat is well formed, so the store starts.
	fake.reply("heartbeat", "*2\r\n*1\r\n$3\r\nabc\r\n*0\r\n")
	fake.reply("depart", ":1\r\n")
	s := newStore(t, client, redisstore.Config{TTL: time.Minute})
	for _, bad := range []string{":42\r\n", "*1\r\n:1\r\n", "*2\r\n$3\r\nabc\r\n:1\r\n", "*-1\r\n"} {
		fake.reply("create", bad)
		if _, err := s.Create(t.Context()); err == nil {
			t.Errorf("Create with the reply %q succeeded", bad)
		}
	}
	for _, bad := range []string{
		":1\r\n", "*0\r\n", "*1\r\n:7\r\n", "*2\r\n+full\r\n:1\r\n",
		"*7\r\n+ok\r\n:1\r\n:2\r\n$3\r\nbad\r\n*0\r\n*0\r\n*0\r\n",
		"*7\r\n+ok\r\n$1\r\nx\r\n:2\r\n$3\r\n1-0\r\n*0\r\n*0\r\n*0\r\n",
		"*7\r\n+ok\r\n:1\r\n:2\r\n$3\r\n1-0\r\n*1\r\n$1\r\nm\r\n*0\r\n*0\r\n",
		"*7\r\n+ok\r\n:1\r\n:2\r\n$3\r\n1-0\r\n*0\r\n*0\r\n*1\r\n*2\r\n$3\r\n1-0\r\n:5\r\n",
	} {
		fake.reply("join", bad)
		if _, err := s.Join(t.Context(), store.NewRoomID()); err == nil {
			t.Errorf("Join with the reply %q succeeded", bad)
		}
	}
	for _, bad := range []string{
		"*1\r\n+ok\r\n",
		"*8\r\n+ok\r\n:1\r\n:2\r\n$3\r\n1-0\r\n*0\r\n*0\r\n*0\r\n$1\r\n1\r\n",
		"*9\r\n+ok\r\n:1\r\n:2\r\n$3\r\n1-0\r\n*0\r\n*0\r\n*0\r\n:1\r\n:7\r\n",
	} {
		fake.reply("rejoin", bad)
		id := store.NewRoomID()
		if _, err := s.Rejoin(t.Context(), id, store.NewSeatKey(id)); err == nil {
			t.Errorf("Rejoin with the reply %q succeeded", bad)
		}
	}
}

// fakeRedis speaks just enough RESP to answer a store's scripts with
// replies chosen by the test.
type fakeRedis struct {
	addr string
	mu   sync.Mutex
	// replies by the name of the script, found by its SHA.
	replies map[string]string
	names   map[string]string
}

func startFakeRedis(t *testing.T) *fakeRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{addr: ln.Addr().String(), replies: map[string]string{}, names: redisstore.ScriptNames()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { conn.Close() })
			wg.Go(func() { f.serve(conn) })
		}
	})
	return f
}

func (f *fakeRedis) reply(script, resp string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[script] = resp
}

func (f *fakeRedis) serve(conn net.Conn) {
	defer conn.Close()
	in := bufio.NewReader(conn)
	for {
		args, err := readCommand(in)
		if err != nil {
			return
		}
		answer := "-ERR unknown command\r\n"
		switch strings.ToUpper(args[0]) {
		case "PING":
			answer = "+PONG\r\n"
		case "EVALSHA", "EVALSHA_RO":
			f.mu.Lock()
			if r, ok := f.replies[f.names[args[1]]]; ok {
				answer = r
			}
			f.mu.Unlock()
		case "EVAL", "EVAL_RO":
			answer = "-ERR scripts run here by SHA only\r\n"
		}
		if _, err := conn.Write([]byte(answer)); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(in *bufio.Reader) ([]string, error) {
	line, err := in.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad command %q", line)
	}
	args := make([]string, n)
	for i := range args {
		if line, err = in.ReadString('\n'); err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(in, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

// A replica that falls behind what its room keeps (cut off while the
// partner talks past the history's bytes) does not go on as if nothing
// were missing: on its return its seat is evicted, the partner sees it
// leave with the seat kept, and its person comes back with the history,
// the newest messages that fit.
func TestAReaderBehindWhatTheRoomKeepsIsEvicted(t *testing.T) {
	t.Parallel()
	// A long lease: the cut-off replica is slow, not dead, for the test.
	p := pairAcrossAProxy(t, time.Minute)
	proxy, behind, room, alice, bob := p.proxy, p.behind, p.room, p.alice, p.bob

	proxy.Cut()
	await[store.ReconnectingEvent](t, bob, waitfor.Timeout)
	// Twenty of the largest messages, more than the history keeps.
	var sent []string
	for i := range 20 {
		body := fmt.Sprintf("%02d ", i) + strings.Repeat("e\u0301\u0302\u0303", (safetext.MaxMessageBytes-3)/7)
		sent = append(sent, body)
		send(t, alice, body)
		await[store.MessageEvent](t, alice, waitfor.Timeout)
	}
	// The notifications, which carry the messages, are lost with the
	// connections the cut held them on: only the log could tell Bob's
	// replica what was said, and it keeps less than that.
	proxy.DropConnections()
	proxy.Restore()

	// Nothing of what Alice said reaches Bob's stream before it ends: a
	// part of it would be a silent gap.
	switch ev := nextEvent(t, bob).(type) {
	case store.EndedEvent:
		if ev.Reason != store.EndEvicted || !ev.RoomLivesOn {
			t.Fatalf("the seat behind ended with %+v, want evicted, the room living on", ev)
		}
	default:
		t.Fatalf("the seat behind got %#v, want its end (evicted)", ev)
	}
	if left := await[store.LeftEvent](t, alice, waitfor.Timeout); left.Member != bob.Snapshot().Me || !left.Kept {
		t.Fatalf("partner saw %+v leave, want %v, seat kept", left, bob.Snapshot().Me)
	}
	back, err := behind.Rejoin(t.Context(), room.ID, bob.Snapshot().Key)
	if err != nil {
		t.Fatalf("Rejoin: %v", err)
	}
	t.Cleanup(func() { _ = back.Leave(context.Background()) })
	var history []string
	for _, m := range back.Snapshot().History {
		history = append(history, m.Body)
	}
	if want := storetest.NewestThatFit(sent); len(want) == len(sent) || !slices.Equal(history, want) {
		t.Fatalf("back, the history has %d messages, want the newest %d", len(history), len(want))
	}
}

// nextEvent is seat's next event, within waitfor.Timeout.
func nextEvent(t *testing.T, seat store.Seat) store.Event {
	t.Helper()
	timer := time.NewTimer(waitfor.Timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-seat.Events():
		if !ok {
			t.Fatalf("%s: stream closed", seat.Snapshot().Me.Name)
		}
		return ev
	case <-timer.C:
		t.Fatalf("%s: no event within %v", seat.Snapshot().Me.Name, waitfor.Timeout)
	}
	return nil
}

// A room ends by Redis's clock, not the replica's: a replica whose clock
// runs ahead of Redis's, told at its own deadline that the room has time
// left, waits for it rather than end the room early for its people only.
func TestExpiryFollowsRedisClock(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := newClient(t, "redis://"+srv.Addr)
	// Long enough to move the deadline before it passes on a loaded machine.
	s := newStore(t, newClient(t, "redis://"+srv.Addr), redisstore.Config{TTL: 4 * time.Second})
	room := create(t, s)
	alice := join(t, s, room.ID)
	// Redis's deadline moves 2 s past the one the replica was told, as if
	// the replica's clock ran 2 s ahead.
	const skew = 2 * time.Second
	later := room.ExpiresAt.Add(skew)
	keys, _ := redisstore.RoomKeys(room.ID)
	if err := client.HSet(t.Context(), keys[0], "deadline", later.UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		if err := client.PExpireAt(t.Context(), key, later).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ended := await[store.EndedEvent](t, alice, waitfor.Timeout)
	if ended.Reason != store.EndExpired {
		t.Errorf("ended with %v, want expired", ended.Reason)
	}
	if now := time.Now(); now.Before(later) {
		t.Errorf("ended %v before Redis's deadline", later.Sub(now).Round(time.Millisecond))
	}
}

// A replica that closes stays dead, whatever its heartbeat was doing: a
// beat that reaches Redis after the replica said it was gone (sent while
// Close waited for a slow Redis to answer that, or sent before it and
// held up on the way) is no sign of life, or the seats its Close could
// not give up would stay taken for another lease.
func TestDepartedReplicaStaysDeadWhateverItsBeats(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	direct := newClient(t, "redis://"+srv.Addr)
	const lease = 2 * time.Second
	for range 3 {
		proxy := redistest.StartProxy(t, srv.Addr)
		s, err := redisstore.New(t.Context(), redisstore.Config{Client: newClient(t, "redis://"+proxy.Addr), TTL: time.Minute, Lease: lease})
		if err != nil {
			t.Fatal(err)
		}
		// Replies slower than a heartbeat period (lease/4, give or take a
		// tenth): beats go out while Close waits for its depart's answer.
		proxy.DelayReplies(lease/4+lease/10, lease/4+lease/5)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		beat, err := direct.ZScore(t.Context(), redisstore.LiveKeys[0], s.ReplicaID()).Result()
		if err != nil {
			t.Fatalf("the departed replica is not known: %v", err)
		}
		now, err := direct.Time(t.Context()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if since := time.Duration(now.UnixMilli()-int64(beat)) * time.Millisecond; since < lease {
			t.Fatalf("after Close, Redis has the replica's last beat %v ago, within the lease (%v): alive", since, lease)
		}
	}
}

// A replica whose Redis answers later than a call waits (3 s), but
// answers, still reads its rooms: a late reply to a read of the log is as
// good as any, since nobody waits on it but the room. Were each one
// thrown away, the replica would read nothing for as long as Redis stays
// that slow, and its people would fall behind what the room keeps and be
// evicted, though Redis was never down.
func TestReadsTakeLateReplies(t *testing.T) {
	t.Parallel()
	p := pairAcrossAProxy(t, time.Minute)
	proxy, alice, bob := p.proxy, p.alice, p.bob

	proxy.DelayReplies(3200*time.Millisecond, 3600*time.Millisecond)
	// Each message reaches bob after two late replies at least (the
	// Pub/Sub notice, the read): a deadline of its own, generous.
	deadline := time.NewTimer(4 * waitfor.Timeout)
	defer deadline.Stop()
	for i := range 2 {
		body := fmt.Sprintf("late %d", i)
		send(t, alice, body)
		for got := false; !got; {
			select {
			case ev, ok := <-bob.Events():
				switch ev := ev.(type) {
				case store.MessageEvent:
					if ev.Message.Body != body {
						t.Fatalf("bob got %q, want %q", ev.Message.Body, body)
					}
					got = true
				case store.EndedEvent:
					t.Fatalf("bob's seat ended: %+v", ev)
				}
				if !ok {
					t.Fatal("bob's stream closed")
				}
			case <-deadline.C:
				t.Fatalf("bob never read %q: every late reply to his replica's reads was thrown away", body)
			}
		}
	}
}

// A join through a replica whose Redis answers later than a call waits
// (3 s), but answers, gets its seat: the request is repeated while no
// answer comes, and the seat that any of its tries took is the answer.
// Were every late answer thrown away, nobody could join through that
// replica for as long as Redis stays that slow.
func TestJoinTakesALateAnswer(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	proxy := redistest.StartProxy(t, srv.Addr)
	cfg := redisstore.Config{TTL: time.Minute, Lease: time.Minute}
	healthy := newStore(t, newClient(t, "redis://"+srv.Addr), cfg)
	slow := newStore(t, newClient(t, "redis://"+proxy.Addr), cfg)
	room := create(t, healthy)
	alice := join(t, healthy, room.ID)
	// The slow replica has a connection open, as a serving one has: a new
	// one's handshake would wait for Redis's late replies too.
	create(t, slow)

	proxy.DelayReplies(3200*time.Millisecond, 3600*time.Millisecond)
	bob, err := slow.Join(t.Context(), room.ID)
	if err != nil {
		t.Fatalf("Join through a replica whose Redis answers 3.2-3.6 s late: %v", err)
	}
	t.Cleanup(func() { _ = bob.Leave(context.Background()) })
	if joined := await[store.JoinedEvent](t, alice, waitfor.Timeout); joined.Member != bob.Snapshot().Me {
		t.Fatalf("alice saw %+v join, want %v", joined.Member, bob.Snapshot().Me)
	}
	keys, _ := redisstore.RoomKeys(room.ID)
	if seats := newClient(t, "redis://"+srv.Addr).HLen(t.Context(), keys[1]).Val(); seats != 2 {
		t.Fatalf("the room holds %d seats, want 2", seats)
	}
}

// A message reaches the replicas in its room with its notification, so in
// a conversation nobody reads the log: a read costs Redis more than the
// send. With every read of the log lost on the way, both people still see
// every message, in order.
func TestMessagesArriveWithTheirNotification(t *testing.T) {
	t.Parallel()
	p := pairAcrossAProxy(t, time.Minute)
	p.proxy.LoseRequests(redisstore.MatchScript("read"))
	next := func(seat store.Seat) store.Message {
		t.Helper()
		return await[store.MessageEvent](t, seat, waitfor.Timeout).Message
	}
	for i := range 3 {
		fromAlice, fromBob := fmt.Sprintf("from alice %d", i), fmt.Sprintf("from bob %d", i)
		send(t, p.alice, fromAlice)
		if got := next(p.bob).Body; got != fromAlice {
			t.Fatalf("bob got %q, want %q", got, fromAlice)
		}
		send(t, p.bob, fromBob)
		// Bob's own message is shown to him from his send's reply, and
		// to Alice from its notification.
		for _, seat := range []store.Seat{p.bob, p.alice} {
			for got := next(seat); got.Body != fromBob; got = next(seat) {
				if got.Body != fromAlice {
					t.Fatalf("%s got %q, want %q", seat.Snapshot().Me.Name, got.Body, fromBob)
				}
			}
		}
	}
}
