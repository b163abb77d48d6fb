package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// soakSampleEvery is how often the soak reads the servers.
	soakSampleEvery = 10 * time.Second
	// soakSettleEvery is how often it looks, at the end, whether they
	// are back at their baseline.
	soakSettleEvery = 5 * time.Second
	// soakExpiryMargin: no step starts this close to the room's expiry
	// (as the tool estimates it), so that a step never races it.
	soakExpiryMargin = 15 * time.Second
	// soakExpiryWait bounds the wait for a room's end past its expiry.
	soakExpiryWait = 30 * time.Second
)

// Keys a soak person presses.
const (
	keyLeave   = "\x03" // ctrl+c
	keyDestroy = "\x18" // ctrl+x
	keyReopen  = "\x0f" // ctrl+o
	keyYes     = "y"
)

// readPause is how long a person waits after a question appears before
// answering it: the screen ignores a yes that comes faster than anyone
// reads (ui's readingTime, 250 ms), as it would a paste.
const readPause = 400 * time.Millisecond

// rejoinCommand is a person's own command back into a room, as the end
// screen shows it after they left: the room ID and four more groups.
var rejoinCommand = regexp.MustCompile(`ssh (?:-p \d+ )?([0-9a-z]{4}(?:-[0-9a-z]{4}){7})@`)

// The tolerances of "returns to baseline", as the report states them.
const (
	goroutineSlack = 5        // goroutines of a replica, either way
	fdSlack        = 3        // file descriptors of a replica other than its Redis connections
	rssSlackMin    = 32 << 20 // bytes: RSS may stay this far above, or half its rise to the peak
	heapSlack      = 4 << 20  // bytes: live heap after GCs, beyond goroutine descriptors
	// gDescriptor is what the Go runtime keeps of every goroutine it
	// ever had at once (its descriptor, for reuse; about 490 bytes in
	// Go 1.26): the live heap stays this much per goroutine of the peak
	// above its baseline, however long the run.
	gDescriptor    = 512
	redisMemSlack  = 1 << 20 // bytes: Redis's used_memory
	soakTolerances = "goroutines within 5 of baseline; file descriptors other than Redis connections within 3 (those to Redis are the client's pools, which keep idle ones up to 30 minutes: shown, not judged); " +
		"RSS at most the larger of 32 MiB and half its rise to the peak above baseline (Go keeps freed heap a while); live heap (HeapAlloc after two GCs) within 4 MiB " +
		"and 512 bytes a goroutine of the peak (Go keeps every goroutine descriptor it made, for reuse) " +
		"(HeapInuse, heap_spans, is shown, not judged: it keeps spans a few live objects hold); " +
		"Redis keys at most baseline, used_memory within 1 MiB"
)

// The soak's steps, as the report counts them.
const (
	stepOpen    = "open"    // a new room: A creates it, B joins from another replica
	stepTalk    = "talk"    // a message each way, each awaited on the other screen
	stepRejoin  = "rejoin"  // one leaves (ctrl+c) and comes back with the command their end screen shows
	stepReopen  = "reopen"  // one leaves, the other gives their seat up (ctrl+o, y), a newcomer joins with the room ID
	stepDestroy = "destroy" // one destroys the room (ctrl+x, y); both screens say so
	stepAbandon = "abandon" // both leave; the room stays until it expires with nobody in it
	stepExpire  = "expire"  // the room reaches its TTL with both in it; both screens say so
)

// soakWeights say how often each step is drawn; rooms that draw no ending
// step expire.
var soakWeights = []struct {
	step   string
	weight int
}{{stepTalk, 40}, {stepRejoin, 25}, {stepReopen, 15}, {stepDestroy, 12}, {stepAbandon, 8}}

func drawStep() string {
	total := 0
	for _, w := range soakWeights {
		total += w.weight
	}
	n := rand.N(total)
	for _, w := range soakWeights {
		if n < w.weight {
			return w.step
		}
		n -= w.weight
	}
	return stepTalk
}

// soakStats counts what the soak did.
type soakStats struct {
	mu         sync.Mutex
	done       map[string]int // steps completed
	failed     map[string]int // steps that failed
	unexpected map[string]int // sessions the tool did not end, by what their screens said
	sent, lost int
	latencies  []time.Duration
	firstErr   error
}

func newSoakStats() *soakStats {
	return &soakStats{done: map[string]int{}, failed: map[string]int{}, unexpected: map[string]int{}}
}

func (st *soakStats) did(step string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.done[step]++
}

// soakRoom is one room of the soak and the two people in it.
type soakRoom struct {
	cfg  config
	srv  *servers
	st   *soakStats
	slot int
	seq  int
	id   string
	// expires is when the room ends by itself, as this tool estimates
	// it: the creator's first screen and the TTL (a little after the
	// server's own clock).
	expires time.Time
	people  [2]soakPerson
}

type soakPerson struct {
	s       *session
	replica int
}

// close hangs up whoever is still connected.
func (r *soakRoom) close() {
	for _, p := range r.people {
		if p.s != nil {
			p.s.close()
		}
	}
}

// runSoakSlot keeps a room going in one slot until until: it opens one,
// lets it live through random steps until it ends, and opens the next.
func runSoakSlot(ctx context.Context, cfg config, srv *servers, st *soakStats, slot int, ttl, meanGap time.Duration, until time.Time) {
	for ctx.Err() == nil && time.Now().Before(until) {
		r := &soakRoom{cfg: cfg, srv: srv, st: st, slot: slot}
		if err := r.open(ctx, ttl); err != nil {
			r.fail(ctx, stepOpen, err)
			r.close()
			if pause(ctx, rejoinEvery) != nil {
				return
			}
			continue
		}
		r.live(ctx, meanGap, until)
		r.close()
	}
}

// open creates a room on a replica and joins it from the next one.
func (r *soakRoom) open(ctx context.Context, ttl time.Duration) error {
	n := len(r.srv.addrs)
	ra := rand.N(n)
	rb := (ra + 1) % n
	p, err := openPair(ctx, r.srv.addrs[ra], r.srv.addrs[rb])
	if err != nil {
		return err
	}
	at, id := p.a.out.firstScreen()
	r.id, r.expires = id, at.Add(ttl)
	r.people = [2]soakPerson{{p.a, ra}, {p.b, rb}}
	r.st.did(stepOpen)
	// The creator types at once: its idle timer started before the room
	// did, and must not end it before the room expires.
	return r.step(ctx, stepTalk)
}

// live runs random steps, on average meanGap apart, until the room ends
// (an ending step, or its expiry) or until passes.
func (r *soakRoom) live(ctx context.Context, meanGap time.Duration, until time.Time) {
	for {
		gap := time.Duration(rand.ExpFloat64() * float64(meanGap))
		next := time.Now().Add(gap)
		if next.After(r.expires.Add(-soakExpiryMargin)) {
			if err := r.awaitExpiry(ctx, until); err != nil {
				r.fail(ctx, stepExpire, err)
			}
			return
		}
		if next.After(until) {
			_ = pause(ctx, time.Until(until))
			return
		}
		if pause(ctx, gap) != nil {
			return
		}
		if r.endedUnasked() {
			return
		}
		step := drawStep()
		if err := r.step(ctx, step); err != nil {
			r.fail(ctx, step, err)
			return
		}
		if step == stepDestroy || step == stepAbandon {
			return
		}
	}
}

// step does one step and counts it.
func (r *soakRoom) step(ctx context.Context, step string) error {
	var err error
	switch step {
	case stepTalk:
		err = r.talk(ctx)
	case stepRejoin:
		err = r.leaveAndRejoin(ctx)
	case stepReopen:
		err = r.reopen(ctx)
	case stepDestroy:
		err = r.destroy(ctx)
	case stepAbandon:
		err = r.abandon(ctx)
	}
	if err == nil {
		r.st.did(step)
	}
	return err
}

// fail counts a failed step, and the sessions that ended without the
// tool asking.
func (r *soakRoom) fail(ctx context.Context, step string, err error) {
	if ctx.Err() != nil {
		return
	}
	r.endedUnasked()
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	r.st.failed[step]++
	if r.st.firstErr == nil {
		r.st.firstErr = fmt.Errorf("%s: %w", step, err)
	}
}

// endedUnasked counts the sessions of the room that ended though the
// tool asked for no end, by what their screens said, and reports whether
// there were any.
func (r *soakRoom) endedUnasked() bool {
	ended := false
	for i, p := range r.people {
		if p.s == nil {
			continue
		}
		select {
		case <-p.s.ended:
		default:
			continue
		}
		ended = true
		r.st.mu.Lock()
		r.st.unexpected[endingName(p.s.out.recentText()+string(p.s.errOut.bytes()))]++
		r.st.mu.Unlock()
		p.s.close()
		r.people[i].s = nil
	}
	return ended
}

// talk sends a message each way and waits for both on the other screen.
func (r *soakRoom) talk(ctx context.Context) error {
	arrived := make(chan time.Duration, 2)
	var cancels []func()
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i, from := range r.people {
		to := r.people[1-i]
		token := fmt.Sprintf("k%dx%dq%04x", r.slot, r.seq, rand.N(0x10000))
		r.seq++
		cancels = append(cancels, to.s.out.expectCancel(token, time.Now(), func(sent, at time.Time) { arrived <- at.Sub(sent) }))
		r.st.mu.Lock()
		r.st.sent++
		r.st.mu.Unlock()
		if _, err := from.s.stdin.Write([]byte(token + "\r")); err != nil {
			r.lose(2 - i)
			return fmt.Errorf("type: %w", err)
		}
	}
	timeout := time.NewTimer(r.cfg.lossAfter)
	defer timeout.Stop()
	for got := 0; got < 2; got++ {
		select {
		case d := <-arrived:
			r.st.mu.Lock()
			r.st.latencies = append(r.st.latencies, d)
			r.st.mu.Unlock()
		case <-timeout.C:
			r.lose(2 - got)
			return fmt.Errorf("%d of 2 messages not seen within %v", 2-got, r.cfg.lossAfter)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *soakRoom) lose(n int) {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	r.st.lost += n
}

// leave presses ctrl+c on person i and waits until the partner's screen
// says they left with their seat kept; it returns what the leaver's end
// screen said.
func (r *soakRoom) leave(ctx context.Context, i int) (string, error) {
	x, partner := r.people[i].s, r.people[1-i].s
	left := partner.out.await(" left; their seat")
	if _, err := x.stdin.Write([]byte(keyLeave)); err != nil {
		return "", fmt.Errorf("leave: %w", err)
	}
	if err := waitEnded(ctx, x); err != nil {
		return "", err
	}
	screen := x.out.recentText()
	x.close()
	r.people[i].s = nil
	if err := partner.waitScreen(ctx, left, "partner left"); err != nil {
		return screen, err
	}
	return screen, nil
}

// leaveAndRejoin: one person leaves, reads their own command off the end
// screen, and comes back with it through the other replica.
func (r *soakRoom) leaveAndRejoin(ctx context.Context) error {
	i := rand.N(2)
	screen, err := r.leave(ctx, i)
	if err != nil {
		return err
	}
	m := rejoinCommand.FindAllStringSubmatch(screen, -1)
	if m == nil {
		return fmt.Errorf("no command to return with on the end screen, which ends with %q", screen[max(len(screen)-300, 0):])
	}
	name := m[len(m)-1][1]
	if err := pause(ctx, time.Duration(500+rand.N(2500))*time.Millisecond); err != nil {
		return err
	}
	return r.arrive(ctx, i, (r.people[i].replica+1)%len(r.srv.addrs), name, "you are back", " is back")
}

// arrive connects person i to replica as user, and waits until their
// screen shows mine and the partner's theirs.
func (r *soakRoom) arrive(ctx context.Context, i, replica int, user, mine, theirs string) error {
	partner := r.people[1-i].s
	out := newWatcher(true)
	in := out.await(mine)
	seen := partner.out.await(theirs)
	s, err := openSession(ctx, r.srv.addrs[replica], user, out)
	if err != nil {
		return err
	}
	r.people[i] = soakPerson{s, replica}
	return errors.Join(s.waitScreen(ctx, in, strconv.Quote(mine)), partner.waitScreen(ctx, seen, strconv.Quote(theirs)))
}

// reopen: one person leaves, the other gives their seat up, and a
// newcomer joins with the room ID.
func (r *soakRoom) reopen(ctx context.Context) error {
	i := rand.N(2)
	if _, err := r.leave(ctx, i); err != nil {
		return err
	}
	stayer := r.people[1-i].s
	if err := stayer.confirm(ctx, keyReopen, "Whoever", "you gave"); err != nil {
		return err
	}
	return r.arrive(ctx, i, rand.N(len(r.srv.addrs)), r.id, "you joined", " joined.")
}

// destroy: one person destroys the room; both screens must say so.
func (r *soakRoom) destroy(ctx context.Context) error {
	i := rand.N(2)
	x, other := r.people[i].s, r.people[1-i].s
	theirs := other.out.await("Room destroyed by your partner")
	err := x.destroyRoom(ctx)
	if err == nil {
		err = other.waitScreen(ctx, theirs, "destroyed by the partner")
	}
	r.hangUp()
	return err
}

// destroyRoom presses ctrl+x, answers the question with y and waits
// until the screen says the room is destroyed.
func (s *session) destroyRoom(ctx context.Context) error {
	return s.confirm(ctx, keyDestroy, "Destroy this room", "Room destroyed by you")
}

// confirm presses key, waits for its question, answers y once it could
// have been read, and waits for the outcome on the screen.
func (s *session) confirm(ctx context.Context, key, question, outcome string) error {
	asked := s.out.await(question)
	if _, err := s.stdin.Write([]byte(key)); err != nil {
		return fmt.Errorf("press %q: %w", key, err)
	}
	if err := s.waitScreen(ctx, asked, "question "+strconv.Quote(question)); err != nil {
		return err
	}
	if err := pause(ctx, readPause); err != nil {
		return err
	}
	done := s.out.await(outcome)
	if _, err := s.stdin.Write([]byte(keyYes)); err != nil {
		return fmt.Errorf("confirm: %w", err)
	}
	return s.waitScreen(ctx, done, strconv.Quote(outcome))
}

// abandon: both leave; the room stays until it expires.
func (r *soakRoom) abandon(ctx context.Context) error {
	if _, err := r.leave(ctx, 0); err != nil {
		return err
	}
	s := r.people[1].s
	if _, err := s.stdin.Write([]byte(keyLeave)); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	err := waitEnded(ctx, s)
	r.hangUp()
	return err
}

// awaitExpiry waits until the room expires and both screens say so, or
// until until (then it hangs up).
func (r *soakRoom) awaitExpiry(ctx context.Context, until time.Time) error {
	var seen []<-chan struct{}
	for _, p := range r.people {
		seen = append(seen, p.s.out.await("Room expired"))
	}
	deadline := time.NewTimer(time.Until(r.expires.Add(soakExpiryWait)))
	defer deadline.Stop()
	end := time.NewTimer(time.Until(until))
	defer end.Stop()
	for i, c := range seen {
		select {
		case <-c:
		case <-end.C:
			return nil
		case <-deadline.C:
			return fmt.Errorf("no expiry notice within %v of the room's TTL; the screen ends with %q", soakExpiryWait, r.people[i].s.out.recentText())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, p := range r.people {
		if err := waitEnded(ctx, p.s); err != nil {
			return err
		}
	}
	r.hangUp()
	r.st.did(stepExpire)
	return nil
}

// hangUp closes both sessions: the room is over for them.
func (r *soakRoom) hangUp() {
	r.close()
	r.people = [2]soakPerson{}
}

// waitEnded waits until the server ends s, within screenTimeout.
func waitEnded(ctx context.Context, s *session) error {
	timeout := time.NewTimer(screenTimeout)
	defer timeout.Stop()
	select {
	case <-s.ended:
		return nil
	case <-timeout.C:
		return fmt.Errorf("session not ended within %v; the screen ends with %q", screenTimeout, s.out.recentText())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// replicaSample is what one replica holds at one moment; -1: not read.
type replicaSample struct {
	goroutines int64
	fds        int64 // every open file descriptor
	redisConns int64 // of them, TCP connections to Redis
	rss        int64
}

// soakSample is the servers at one moment.
type soakSample struct {
	at                  time.Duration
	replicas            []replicaSample
	redisKeys, redisMem int64 // -1 without Redis
	sessions            int
	err                 error
}

// soakReader reads the servers for the soak.
type soakReader struct {
	srv   *servers
	nodes redisClients
}

func newSoakReader(srv *servers) *soakReader {
	return &soakReader{srv: srv, nodes: newRedisClients(srv)}
}

func (r *soakReader) close() { r.nodes.close() }

func (r *soakReader) read(ctx context.Context, at time.Duration) soakSample {
	s := soakSample{at: at, redisKeys: -1, redisMem: -1, sessions: r.srv.sessionsOpen()}
	redisAddrs := r.srv.redisAddrs()
	var errs []error
	for i, pid := range r.srv.pids {
		rs := replicaSample{goroutines: -1}
		total, toRedis, err := openFiles(pid, redisAddrs)
		errs = append(errs, err)
		rs.fds, rs.redisConns = int64(total), int64(toRedis)
		rs.rss, err = rss(pid)
		errs = append(errs, err)
		if i < len(r.srv.https) {
			m, err := scrapeMetrics(ctx, r.srv.https[i])
			errs = append(errs, err)
			if v, ok := m["go_goroutines"]; ok {
				rs.goroutines = int64(v)
			}
		}
		s.replicas = append(s.replicas, rs)
	}
	if len(r.nodes) > 0 {
		var err error
		s.redisKeys, err = r.nodes.sum(ctx, func(ctx context.Context, rdb *redis.Client) (int64, error) {
			return rdb.DBSize(ctx).Result()
		})
		errs = append(errs, err)
		s.redisMem, err = r.nodes.sum(ctx, usedMemory)
		errs = append(errs, err)
	}
	s.err = errors.Join(errs...)
	return s
}

// baselineCheck is one figure's "returns to baseline" verdict.
type baselineCheck struct {
	name            string
	base, peak, end int64
	ok              bool
	unit            string // "MiB" for bytes; "" for counts
	replica         int    // -1: not a replica's
	// informational figures are reported without a verdict.
	informational bool
}

// checkBaseline compares the end with the baseline under the stated
// tolerances.
func checkBaseline(base, end soakSample, peak func(func(soakSample) int64) int64, baseHeap, endHeap []heapReading) []baselineCheck {
	var out []baselineCheck
	for i := range base.replicas {
		if i >= len(end.replicas) {
			break
		}
		b, e := base.replicas[i], end.replicas[i]
		get := func(f func(replicaSample) int64) func(soakSample) int64 {
			return func(s soakSample) int64 {
				if i < len(s.replicas) {
					return f(s.replicas[i])
				}
				return -1
			}
		}
		goroutinePeak := peak(get(func(r replicaSample) int64 { return r.goroutines }))
		if b.goroutines >= 0 {
			out = append(out, baselineCheck{name: "goroutines", base: b.goroutines, end: e.goroutines, replica: i,
				peak: goroutinePeak, ok: abs(e.goroutines-b.goroutines) <= goroutineSlack})
		}
		other := func(r replicaSample) int64 { return r.fds - r.redisConns }
		out = append(out, baselineCheck{name: "fds", base: other(b), end: other(e), replica: i,
			peak: peak(get(other)), ok: abs(other(e)-other(b)) <= fdSlack})
		// The Redis client's pools keep idle connections up to 30
		// minutes: shown, not judged.
		out = append(out, baselineCheck{name: "redis_conns", base: b.redisConns, end: e.redisConns, replica: i,
			peak: peak(get(func(r replicaSample) int64 { return r.redisConns })), ok: true, informational: true})
		rssPeak := peak(get(func(r replicaSample) int64 { return r.rss }))
		out = append(out, baselineCheck{name: "rss", unit: "MiB", base: b.rss, end: e.rss, replica: i, peak: rssPeak,
			ok: e.rss-b.rss <= max(rssSlackMin, (rssPeak-b.rss)/2)})
		if i < len(baseHeap) && i < len(endHeap) {
			hb, he := baseHeap[i], endHeap[i]
			out = append(out, baselineCheck{name: "heap", unit: "MiB", base: hb.live, end: he.live, peak: -1, replica: i,
				ok: he.live-hb.live <= heapSlack+gDescriptor*max(goroutinePeak-b.goroutines, 0)})
			out = append(out, baselineCheck{name: "heap_spans", unit: "MiB", base: hb.spans, end: he.spans, peak: -1, replica: i,
				ok: true, informational: true})
		}
	}
	if base.redisKeys >= 0 && end.redisKeys >= 0 {
		out = append(out, baselineCheck{name: "redis_keys", base: base.redisKeys, end: end.redisKeys, replica: -1,
			peak: peak(func(s soakSample) int64 { return s.redisKeys }), ok: end.redisKeys <= base.redisKeys})
		out = append(out, baselineCheck{name: "redis_mem", unit: "MiB", base: base.redisMem, end: end.redisMem, replica: -1,
			peak: peak(func(s soakSample) int64 { return s.redisMem }), ok: end.redisMem-base.redisMem <= redisMemSlack})
	}
	return out
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// notBack names the checks that failed.
func notBack(checks []baselineCheck) []string {
	var out []string
	for _, c := range checks {
		if !c.ok {
			name := c.name
			if c.replica >= 0 {
				name = fmt.Sprintf("r%d_%s", c.replica, c.name)
			}
			out = append(out, name)
		}
	}
	return out
}

// allOK reports whether every check passed.
func allOK(checks []baselineCheck) bool {
	for _, c := range checks {
		if !c.ok {
			return false
		}
	}
	return true
}

// addTo adds the check's baseline, peak and end, and its verdict.
func (c baselineCheck) addTo(rr *runResult) {
	name := c.name
	if c.replica >= 0 {
		name = fmt.Sprintf("r%d_%s", c.replica, c.name)
	}
	value := func(v int64) float64 {
		if c.unit == "MiB" {
			return mib(v)
		}
		return float64(v)
	}
	rr.add(name+"_base", c.unit, value(c.base))
	if c.peak >= 0 {
		rr.add(name+"_peak", c.unit, value(c.peak))
	}
	rr.add(name+"_end", c.unit, value(c.end))
	if c.informational {
		return
	}
	ok := 0.0
	if c.ok {
		ok = 1
	}
	rr.add(name+"_ok", "", ok)
}

// heapReading is a replica's heap after two garbage collections (what
// sync.Pools keep survives the first): the live objects (HeapAlloc), the
// spans that hold them (HeapInuse: also the free room in spans a live
// object keeps), and where the live ones were allocated.
type heapReading struct {
	live, spans int64
	profile     string
}

// heaps reads every replica's heap.
func heaps(ctx context.Context, srv *servers) ([]heapReading, error) {
	var out []heapReading
	for _, h := range srv.https {
		if _, err := heapProfile(ctx, h); err != nil {
			return nil, err
		}
		profile, err := heapProfile(ctx, h)
		if err != nil {
			return nil, err
		}
		live, err1 := memStat(profile, "HeapAlloc")
		spans, err2 := memStat(profile, "HeapInuse")
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		out = append(out, heapReading{live, spans, profile})
	}
	return out, nil
}

// runSoak churns rooms for cfg.soakDuration with about cfg.soakSessions
// sessions at once (a room a pair of them), reading the servers every
// soakSampleEvery; then it hangs up, waits until the servers are back at
// their baseline (or a deadline), and reports baseline, peak and end of
// each figure with a verdict, and what the churn did.
func runSoak(ctx context.Context, cfg config, srv *servers) (runResult, error) {
	var rr runResult
	if len(srv.https) != len(srv.pids) {
		return rr, errors.New("soak needs the replicas this tool starts (their PIDs and operations listeners)")
	}
	reader := newSoakReader(srv)
	defer reader.close()
	// Redis's keys before any session: what the replicas keep of their
	// own. The warm-up's traces (its addresses' limits) must be gone
	// before the baseline is read.
	fresh := reader.read(ctx, 0)
	if fresh.err != nil {
		return rr, fmt.Errorf("before the warm-up: %w", fresh.err)
	}
	if err := warmUp(ctx, srv); err != nil {
		return rr, err
	}
	var base soakSample
	err := waitFor(ctx, cfg.soakTTL+time.Minute, func() bool {
		base = reader.read(ctx, 0)
		return base.err != nil || (base.redisKeys <= fresh.redisKeys && srv.sessionsOpen() == 0)
	})
	if base.err != nil {
		return rr, fmt.Errorf("baseline: %w", base.err)
	}
	if err != nil {
		return rr, fmt.Errorf("redis holds %d keys after the warm-up, %d before: %w", base.redisKeys, fresh.redisKeys, err)
	}
	if err := pause(ctx, cfg.settle); err != nil {
		return rr, err
	}
	base = reader.read(ctx, 0)
	baseHeap, err := heaps(ctx, srv)
	if err != nil {
		return rr, err
	}
	cfg.logf("soak baseline: %s", base.brief())
	rooms := max(cfg.soakSessions/2, 1)
	ttl := cfg.soakTTL
	// Rooms start spread over a TTL (or half the run, if shorter), so
	// that they do not all expire at once.
	ramp := min(ttl, cfg.soakDuration/2)
	meanGap := time.Duration(float64(rooms) / cfg.churn * float64(time.Second))
	cfg.logf("soak: %d rooms (%d sessions) on %d replicas for %v, room TTL %v, %g steps/s (a room's every %v on average), opened over %v",
		rooms, 2*rooms, len(srv.addrs), cfg.soakDuration, ttl, cfg.churn, meanGap.Round(time.Second), ramp)

	st := newSoakStats()
	meter, err := startMeter(srv)
	if err != nil {
		return rr, err
	}
	start := time.Now()
	until := start.Add(cfg.soakDuration)
	samples := startSampler(ctx, soakSampleEvery, func(ctx context.Context, at time.Duration) soakSample {
		s := reader.read(ctx, at)
		if at/time.Minute != (at-soakSampleEvery)/time.Minute {
			st.mu.Lock()
			cfg.logf("  %v: %d sessions; %s; %d steps done, %d failed, %d lost", at.Round(time.Second), s.sessions, s.brief(),
				sum(st.done), sum(st.failed), st.lost)
			st.mu.Unlock()
		}
		return s
	})
	var wg sync.WaitGroup
	for i := range rooms {
		wg.Go(func() {
			if pause(ctx, time.Duration(i)*ramp/time.Duration(rooms)) != nil {
				return
			}
			runSoakSlot(ctx, cfg, srv, st, i, ttl, meanGap, until)
		})
	}
	wg.Wait()
	during := samples.finish()
	if err := ctx.Err(); err != nil {
		return rr, err
	}
	usage, err := meter.read()
	if err != nil {
		return rr, err
	}

	// A per-address count of open chats lapses the longest session and
	// 2 minutes after it was taken, should its release have failed.
	settleWithin := ttl + 5*time.Minute
	cfg.logf("soak over; waiting up to %v for the servers to return to their baseline", settleWithin)
	peak := func(f func(soakSample) int64) int64 {
		p := int64(-1)
		for _, s := range during {
			p = max(p, f(s))
		}
		return p
	}
	var end soakSample
	var checks []baselineCheck
	settleBy := time.Now().Add(settleWithin)
	for n := 0; ; n++ {
		end = reader.read(ctx, time.Since(start))
		checks = checkBaseline(base, end, peak, nil, nil)
		if (end.err == nil && allOK(checks)) || !time.Now().Before(settleBy) {
			break
		}
		if n%12 == 11 {
			cfg.logf("  not yet back: %s; %s", strings.Join(notBack(checks), ", "), end.brief())
		}
		if err := pause(ctx, soakSettleEvery); err != nil {
			return rr, err
		}
	}
	settled := time.Since(until)
	endHeap, err := heaps(ctx, srv)
	if err != nil {
		return rr, err
	}
	checks = checkBaseline(base, end, peak, baseHeap, endHeap)

	st.mu.Lock()
	defer st.mu.Unlock()
	maxSessions := 0
	for _, s := range during {
		maxSessions = max(maxSessions, s.sessions)
	}
	rr.add("sessions_peak", "", float64(maxSessions))
	for _, step := range []string{stepOpen, stepTalk, stepRejoin, stepReopen, stepDestroy, stepAbandon, stepExpire} {
		rr.add(step, "", float64(st.done[step]))
	}
	failed := 0
	for _, step := range slices.Sorted(maps.Keys(st.failed)) {
		rr.add("failed_"+step, "", float64(st.failed[step]))
		failed += st.failed[step]
	}
	rr.add("failed", "", float64(failed))
	unexpected := 0
	for _, name := range slices.Sorted(maps.Keys(st.unexpected)) {
		rr.add("ended_"+name, "", float64(st.unexpected[name]))
		unexpected += st.unexpected[name]
	}
	rr.add("ended_unasked", "", float64(unexpected))
	rr.add("sent", "", float64(st.sent))
	rr.add("lost", "", float64(st.lost))
	addPercentiles(&rr, "", st.latencies)
	for _, c := range checks {
		c.addTo(&rr)
	}
	back := 0.0
	if allOK(checks) {
		back = 1
	}
	rr.add("returns_to_baseline", "", back)
	usage.addTo(&rr)
	rr.add("settled_after", "s", settled.Seconds())
	rr.lost = st.lost
	rr.failures = failed + unexpected
	if back == 0 {
		rr.leaks = 1
	}
	rr.Notes = append(rr.Notes, "returns to baseline when: "+soakTolerances)
	if st.firstErr != nil {
		rr.Notes = append(rr.Notes, "first failure: "+st.firstErr.Error())
	}
	if end.err != nil {
		rr.Notes = append(rr.Notes, "reading the servers at the end: "+end.err.Error())
	}
	for _, c := range checks {
		if c.name == "heap" && !c.ok {
			rr.Notes = append(rr.Notes, fmt.Sprintf("replica %d's live heap at the end, by where it was allocated: %s",
				c.replica, summariseHeap(endHeap[c.replica].profile, 8)))
		}
	}
	rr.Notes = append(rr.Notes, soakSeries(append(during, end), time.Minute))
	return rr, nil
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// brief is a sample summed over the replicas, for progress lines and the
// series.
func (s soakSample) brief() string {
	var g, fds, conns, r int64
	for _, rs := range s.replicas {
		g, fds, conns, r = g+rs.goroutines, fds+rs.fds, conns+rs.redisConns, r+rs.rss
	}
	out := fmt.Sprintf("goroutines %d, fds %d (%d to Redis), rss %.0f MiB", g, fds, conns, mib(r))
	if s.redisKeys >= 0 {
		out += fmt.Sprintf(", redis %d keys %.1f MiB", s.redisKeys, mib(s.redisMem))
	}
	return out
}

// soakSeries is the samples every step, as a line for the notes.
func soakSeries(samples []soakSample, step time.Duration) string {
	var b strings.Builder
	for _, s := range thinned(samples, func(s soakSample) time.Duration { return s.at }, step) {
		fmt.Fprintf(&b, "\n  %5ds: %5d sessions; %s", int(s.at.Round(time.Second).Seconds()), s.sessions, s.brief())
	}
	return "over time (summed over the replicas):" + b.String()
}
