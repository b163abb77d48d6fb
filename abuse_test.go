package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	gossh "golang.org/x/crypto/ssh"

	"github.com/ssh-burn/chat/internal/abusetext"
	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redistest"
)

// The abuse of issue 15, as a test: abuseAddrs addresses with
// abuseSessions sessions each (the most one address may open) paste the
// largest message a room accepts for abuseFor, the next at once when one
// was accepted and a second after a refusal.
const (
	abuseAddrs    = 10
	abuseSessions = 8
	abuseFor      = time.Minute
	abuseRetry    = time.Second
	// abuseMaxmemory is the Redis of the test: a quarter of the shipped
	// deploy/redis.conf's, so that what a few addresses could fill shows
	// sooner.
	abuseMaxmemory = 64 << 20
)

// keptFactor bounds what Redis holds of an address's rooms against the
// address's budget: the costs it is charged (store.RoomCost, JoinCost,
// MessageCost) are at least what Redis really spends, so what it holds
// stays within the budget itself (about two thirds of it, measured with
// MEMORY USAGE).
const keptFactor = 1

// maxHeapPerSession bounds what an abusive session may cost a replica:
// the Go heap in use after a collection, per session open.
const maxHeapPerSession = 1 << 20

// A few addresses at the most their limits allow cannot fill Redis or a
// replica: with two replicas on one redis-server (the shipped config,
// maxmemory 64mb), 80 sessions from 10 addresses pasting the largest
// message for a minute leave Redis below 85 % of its memory, keep within
// each address's byte budget (what is accepted, as the screens show it,
// and what Redis holds, within keptFactor), cost each replica at most
// maxHeapPerSession a session, and a newcomer pair on other addresses
// opens a room and talks meanwhile. Each client dials from a loopback
// address of its own, so the per-address limits apply as in production.
func TestAbuseLeavesRoomForNewcomers(t *testing.T) {
	t.Parallel()
	redisServer := redistest.StartWithConfig(t, "deploy/redis.conf")
	rdb := redis.NewClient(&redis.Options{Addr: redisServer.Addr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "maxmemory", strconv.Itoa(abuseMaxmemory)).Err(); err != nil {
		t.Fatal(err)
	}
	flags := []string{"-redis", "redis://" + redisServer.Addr, "-http", "127.0.0.1:0", "-pprof", "true"}
	replicas := [2]replicaAddrs{startReplicaWithOps(t, flags...), startReplicaWithOps(t, flags...)}
	// What a replica sets up on its first session does not count.
	for _, r := range replicas {
		warm := dialFrom(t, r.ssh, "warm-up", net.IPv4(127, 77, 0, 1))
		warm.waitFor(t, "share command", roomIDOnScreen)
		warm.close()
	}
	heapBefore := replicasHeap(t, replicas)

	// Budgets refill from an address's first spend: from here on.
	firstSpend := time.Now()
	// Every address opens abuseSessions/2 rooms on the first replica and
	// joins each from the second: every message crosses Redis.
	var abusers []*abuserSession
	for a := range abuseAddrs {
		from := net.IPv4(127, 77, 1, byte(1+a))
		for range abuseSessions / 2 {
			creator := dialFrom(t, replicas[0].ssh, "abuser", from)
			id := creator.waitFor(t, "share command", roomIDOnScreen)
			joiner := dialFrom(t, replicas[1].ssh, id, from)
			joiner.waitFor(t, "join notice", literal("you joined"))
			abusers = append(abusers,
				&abuserSession{addr: a, me: creator, partner: joiner},
				&abuserSession{addr: a, me: joiner, partner: creator})
		}
	}

	var (
		peak   int64
		stop   = make(chan struct{})
		polled = make(chan error, 1)
	)
	go func() { polled <- pollUsedMemory(rdb, stop, &peak) }()
	stopPolling := sync.OnceFunc(func() { close(stop) })
	defer stopPolling()
	start := time.Now()
	until := start.Add(abuseFor)
	var wg sync.WaitGroup
	for i, a := range abusers {
		wg.Go(func() { a.run(i, until) })
	}
	// Once every abusive address has been refused (its budget spent), or
	// halfway through at the latest, two people on addresses of their own
	// meet.
	spent := func() bool {
		refused := map[int]bool{}
		for _, a := range abusers {
			if a.refusedOnce.Load() {
				refused[a.addr] = true
			}
		}
		return len(refused) == abuseAddrs
	}
	if !waitfor.Within(abuseFor/2, spent) {
		t.Log("not every abusive address was refused within half the time")
	}
	newcomersTalk(t, replicas, net.IPv4(127, 77, 2, 1), net.IPv4(127, 77, 2, 2))
	wg.Wait()
	elapsed := time.Since(start)
	stopPolling()
	if err := <-polled; err != nil {
		t.Fatal(err)
	}

	open := 0
	accepted := make([]int, abuseAddrs)
	refusals := map[string]int{}
	for _, a := range abusers {
		if a.err != nil {
			t.Errorf("abuser from address %d: %v", a.addr, a.err)
		}
		if !a.me.ended() {
			open++
		}
		accepted[a.addr] += a.accepted
		for text, n := range a.refused {
			refusals[text] += n
		}
	}
	heapAfter := replicasHeap(t, replicas)
	t.Logf("%d sessions pasted for %v: accepted per address %v; refusals %v", len(abusers), elapsed.Round(time.Second), accepted, refusals)

	// Redis kept its headroom.
	t.Logf("Redis used_memory peaked at %.1f MiB of %d MiB", float64(peak)/(1<<20), abuseMaxmemory>>20)
	if limit := int64(abuseMaxmemory) * 85 / 100; peak > limit {
		t.Errorf("Redis used %d bytes at its peak, more than 85%% of maxmemory (%d)", peak, limit)
	}

	// Each address stayed within its budget: what the screens showed as
	// accepted (rooms and seats included) ...
	// The replicas run with the default budget and room TTL, its window.
	budgetLimits := limits.DefaultConfig()
	budget := budgetLimits.BudgetBurst + int(budgetLimits.BudgetPerSecond()*time.Since(firstSpend).Seconds())
	charged := abuseSessions/2*store.RoomCost + abuseSessions*store.JoinCost
	// A decision Redis did not answer in time (a loaded machine) is made
	// on the replica's own counts, as designed: then an address may have
	// spent its budget with each replica besides the shared one.
	bound := budget
	for i, r := range replicas {
		if strings.Contains(r.logs.String(), "per-address limits use this replica's own counts") {
			t.Logf("replica %d decided on its own counts at least once: each replica's budget counts too", i)
			bound += budget
		}
	}
	for a, n := range accepted {
		if spent := charged + n*store.MessageCost(abusetext.Largest("t")); spent > bound {
			t.Errorf("address %d had %d messages accepted: %d bytes with its rooms and seats, over its budget of %d (%d with the replicas' own)", a, n, spent, budget, bound)
		}
	}
	// ... and what Redis holds of the rooms, shared out over the addresses
	// (each did the same; the newcomers' room counts against them).
	kept := roomBytes(t, rdb)
	t.Logf("Redis holds %d bytes of rooms: %d an address, for a budget of %d", kept, kept/abuseAddrs, budget)
	if perAddr := kept / abuseAddrs; perAddr > keptFactor*int64(budget) {
		t.Errorf("Redis holds %d bytes of rooms an address, more than its budget of %d (× %d)", perAddr, budget, keptFactor)
	}

	// A replica's memory per abusive session stays bounded.
	if open == 0 {
		t.Fatal("no abusive session was still open at the end")
	}
	perSession := (heapAfter - heapBefore) / int64(open)
	t.Logf("the replicas' heap in use after GC grew %.1f MiB for %d sessions: %.0f KiB each", float64(heapAfter-heapBefore)/(1<<20), open, float64(perSession)/(1<<10))
	if perSession > maxHeapPerSession {
		t.Errorf("an abusive session costs the replicas %d bytes of heap, more than %d", perSession, maxHeapPerSession)
	}
}

// newcomersTalk opens a room from one address on the first replica, joins
// it from another on the second, and has each person say something the
// other sees. A failure is reported, and the test goes on to its other
// findings.
func newcomersTalk(t *testing.T, replicas [2]replicaAddrs, fromA, fromB net.IP) {
	t.Helper()
	alice := dialFrom(t, replicas[0].ssh, "newcomer", fromA)
	defer alice.close()
	id, ok := alice.await(0, roomIDOnScreen)
	if !ok {
		t.Errorf("a newcomer could not open a room; the screen ends with %q", alice.tail(400))
		return
	}
	bob := dialFrom(t, replicas[1].ssh, id, fromB)
	defer bob.close()
	for _, step := range []struct {
		who     *sshScreen
		types   string
		sees    string
		whoSees *sshScreen
	}{
		{nil, "", "you joined", bob},
		{nil, "", "joined", alice},
		{alice, "hello from a newcomer", "hello from a newcomer", bob},
		{bob, "and back", "and back", alice},
	} {
		var mark int64 // a join notice: anywhere on the screen
		if step.who != nil {
			mark = step.whoSees.mark()
			step.who.say(t, step.types)
		}
		if _, ok := step.whoSees.await(mark, literal(step.sees)); !ok {
			t.Errorf("newcomers: %q never appeared; the screen ends with %q", step.sees, step.whoSees.tail(400))
			return
		}
	}
}

// abuserSession is one abusive session and the session its messages go
// to (its partner in the room, from the same address).
type abuserSession struct {
	addr        int
	me, partner *sshScreen

	refusedOnce atomic.Bool // a paste of it was refused

	// Written by run only, read after it returned.
	accepted int
	refused  map[string]int // by the status sentence on the screen
	err      error
}

// refusalStatus finds why a send was refused, as the sender's screen says
// it: the status sentence up to its full stop.
var refusalStatus = regexp.MustCompile(`(?:Not sent|Slow down)[^.…\r\n\x1b]*[.…]`)

// run pastes the largest message into an emptied input until until: at
// once after one was accepted (it appears on the partner's screen),
// abuseRetry after a refusal (a status on the sender's). A "Not sent yet"
// status is no outcome: the screen sends the message again by itself.
func (a *abuserSession) run(id int, until time.Time) {
	a.refused = map[string]int{}
	for seq := 0; time.Now().Before(until) && !a.me.ended(); seq++ {
		token := fmt.Sprintf("z%dx%dq", id, seq)
		mark := a.me.mark()
		if _, err := io.WriteString(a.me.keys, "\x15\x1b[200~"+abusetext.Largest(token)+"\x1b[201~"); err != nil {
			a.err = err
			return
		}
		// The input shows the end of what was pasted: the token.
		if _, ok := a.me.await(mark, literal(token)); !ok {
			if !a.me.ended() {
				a.err = fmt.Errorf("a paste did not show in the input within %v; the screen ends with %q", waitLimit, a.me.tail(300))
			}
			return
		}
		mark, partnerMark := a.me.mark(), a.partner.mark()
		if _, err := io.WriteString(a.me.keys, "\r"); err != nil {
			a.err = err
			return
		}
		outcome := a.outcome(mark, partnerMark, token)
		switch {
		case outcome == "accepted":
			a.accepted++
			continue
		case outcome == "":
			if !a.me.ended() {
				a.err = fmt.Errorf("no outcome within %v of a paste; the screen ends with %q", waitLimit, a.me.tail(300))
			}
			return
		}
		a.refused[outcome]++
		a.refusedOnce.Store(true)
		// The abuse's own pace, as a person pressing enter again.
		time.Sleep(abuseRetry)
	}
}

// outcome waits for the token on the partner's screen or a final status
// on the sender's, after their marks.
func (a *abuserSession) outcome(mark, partnerMark int64, token string) string {
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) && !a.me.ended() {
		if a.partner.seenSince(partnerMark, token) {
			return "accepted"
		}
		if status := a.me.findSince(mark, refusalStatus); status != "" && !strings.HasPrefix(status, "Not sent yet") {
			return status
		}
		a.me.waitChange(a.partner, time.Until(deadline))
	}
	if a.partner.seenSince(partnerMark, token) {
		return "accepted"
	}
	return ""
}

// pollUsedMemory records Redis's highest used_memory in peak until stop
// is closed.
func pollUsedMemory(rdb *redis.Client, stop <-chan struct{}, peak *int64) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := rdb.Info(context.Background(), "memory").Result()
		if err != nil {
			return fmt.Errorf("redis info: %w", err)
		}
		used, err := infoField(info, "used_memory")
		if err != nil {
			return err
		}
		*peak = max(*peak, used)
		select {
		case <-stop:
			return nil
		case <-tick.C:
		}
	}
}

func infoField(info, name string) (int64, error) {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in redis info", name)
}

// roomBytes is what Redis holds of every room (MEMORY USAGE of each of
// their keys, exactly), leaving out the replicas' own keys and the
// per-address limits.
func roomBytes(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	ctx := context.Background()
	var total int64
	iter := rdb.Scan(ctx, 0, "chat:v*:{*}:*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		if strings.Contains(key, "{live}") || strings.Contains(key, ":lim:") {
			continue
		}
		n, err := rdb.MemoryUsage(ctx, key, 0).Result()
		if err != nil && err != redis.Nil {
			t.Fatalf("memory usage: %v", err)
		}
		total += n
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// replicaAddrs are where a replica process listens: SSH, and its
// operations listener.
type replicaAddrs struct {
	ssh, http string
	logs      *lockedBuffer
}

// startReplicaWithOps starts a replica process with its operations
// listener (the flags must give one) and returns both addresses.
func startReplicaWithOps(t *testing.T, args ...string) replicaAddrs {
	t.Helper()
	line, _, logs := startReplicaListening(t, nil, args...)
	m := regexp.MustCompile(`msg=listening addr=(\S+) http=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no addresses in %q", line)
	}
	return replicaAddrs{ssh: m[1], http: m[2], logs: logs}
}

// replicasHeap is the replicas' heap in use right after a collection
// (their heap profile runs one first).
func replicasHeap(t *testing.T, replicas [2]replicaAddrs) int64 {
	t.Helper()
	var total int64
	for _, r := range replicas {
		resp, err := http.Get("http://" + r.http + "/debug/pprof/heap?gc=1&debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`# HeapInuse = (\d+)`).FindSubmatch(body)
		if m == nil {
			t.Fatalf("no HeapInuse in the heap profile of %s (%s)", r.http, resp.Status)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		total += n
	}
	return total
}

// sshScreen is a session from a loopback address of its own, keeping the
// last screenKeep bytes of what its terminal receives: enough for any
// frame, and a bound on a test of 80 sessions.
type sshScreen struct {
	conn *gossh.Client
	keys io.Writer
	done chan struct{} // closed when the session ends

	mu      sync.Mutex
	buf     []byte // the last bytes received
	total   int64  // bytes received in all
	changed chan struct{}
}

const screenKeep = 64 << 10

// dialFrom connects like `ssh -t user@addr` from the local address from.
func dialFrom(t *testing.T, addr, user string, from net.IP) *sshScreen {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: waitLimit}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, chans, reqs, err := gossh.NewClientConn(raw, addr, &gossh.ClientConfig{User: user, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		raw.Close()
		t.Fatal(err)
	}
	s := &sshScreen{conn: gossh.NewClient(c, chans, reqs), done: make(chan struct{}), changed: make(chan struct{})}
	t.Cleanup(s.close)
	session, err := s.conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	session.Stdout, session.Stderr = s, s
	if s.keys, err = session.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := session.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := session.Shell(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = session.Wait()
		close(s.done)
		s.poke()
	}()
	return s
}

func (s *sshScreen) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf = append(s.buf, p...)
	if len(s.buf) > 2*screenKeep {
		s.buf = append(s.buf[:0], s.buf[len(s.buf)-screenKeep:]...)
	}
	s.total += int64(len(p))
	s.mu.Unlock()
	s.poke()
	return len(p), nil
}

// poke wakes whoever waits for this screen to change.
func (s *sshScreen) poke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *sshScreen) close() { s.conn.Close() }

func (s *sshScreen) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// mark is the position of the next byte to arrive.
func (s *sshScreen) mark() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// since is what arrived from mark on (as much as is kept), with a few
// bytes before it, where a text split across writes began.
func (s *sshScreen) since(mark int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := len(s.buf) - int(s.total-mark) - 64
	return bytes.Clone(s.buf[max(from, 0):])
}

func (s *sshScreen) seenSince(mark int64, text string) bool {
	return bytes.Contains(s.since(mark), []byte(text))
}

func (s *sshScreen) findSince(mark int64, re *regexp.Regexp) string {
	return string(re.Find(s.since(mark)))
}

// tail is the last n bytes received, for messages.
func (s *sshScreen) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.buf[max(len(s.buf)-n, 0):])
}

// waitChange waits until this screen or other changes, or d passes.
func (s *sshScreen) waitChange(other *sshScreen, d time.Duration) {
	s.mu.Lock()
	mine := s.changed
	s.mu.Unlock()
	other.mu.Lock()
	theirs := other.changed
	other.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-mine:
	case <-theirs:
	case <-timer.C:
	}
}

// await waits, from mark on, until match finds something; false if the
// session ended or waitLimit passed first.
func (s *sshScreen) await(mark int64, match func(string) string) (string, bool) {
	deadline := time.Now().Add(waitLimit)
	for {
		if m := match(string(s.since(mark))); m != "" {
			return m, true
		}
		if s.ended() || time.Now().After(deadline) {
			return "", false
		}
		s.waitChange(s, time.Until(deadline))
	}
}

// waitFor waits until match finds something in what arrived so far.
func (s *sshScreen) waitFor(t *testing.T, what string, match func(string) string) string {
	t.Helper()
	m, ok := s.await(0, match)
	if !ok {
		t.Fatalf("no %s on the screen; it ends with %q", what, s.tail(400))
	}
	return m
}

func (s *sshScreen) say(t *testing.T, text string) {
	t.Helper()
	if _, err := io.WriteString(s.keys, text+"\r"); err != nil {
		t.Fatal(err)
	}
}

// literal matches text itself.
func literal(text string) func(string) string { return contains(text) }
