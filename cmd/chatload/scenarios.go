package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"
)

const (
	// drainTimeout bounds the wait for the server to let go of every
	// session after the tool has hung up.
	drainTimeout = 60 * time.Second
	// progressEvery is how often opening many sessions reports progress.
	progressEvery = 2000
)

// crowd is a set of idle sessions, each alone in the room it created.
type crowd struct {
	sessions    []*session
	firstScreen []time.Duration // from the first dial to the share command
	sshUp       []time.Duration // from the first dial to the shell's acceptance
	failed      int
	retries     int
	firstErr    error
}

func (c *crowd) close() {
	for _, s := range c.sessions {
		s.close()
	}
}

// openCrowd opens n sessions on the servers' replicas in turn, at most
// rate a second and concurrency at once, and waits for each one's first
// screen. Sessions that fail are counted, not fatal.
func openCrowd(ctx context.Context, cfg config, srv *servers, n int) *crowd {
	c := &crowd{}
	if n == 0 {
		return c
	}
	cfg.logf("opening %d idle sessions at %g/s", n, cfg.connectRate)
	var mu sync.Mutex
	openMany(ctx, n, cfg.connectRate, cfg.concurrency, func(ctx context.Context, i int) {
		w := newWatcher(false)
		s, err := openSession(ctx, srv.addrs[i%len(srv.addrs)], "load", w)
		if err == nil {
			if err = s.waitScreen(ctx, w.first, "share command"); err != nil {
				s.close()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			c.failed++
			if c.firstErr == nil {
				c.firstErr = err
			}
			return
		}
		at, _ := w.firstScreen()
		c.sessions = append(c.sessions, s)
		c.firstScreen = append(c.firstScreen, at.Sub(s.dialed))
		c.sshUp = append(c.sshUp, s.shellUp.Sub(s.dialed))
		c.retries += s.retries
		if done := len(c.sessions) + c.failed; done%progressEvery == 0 && done < n {
			cfg.logf("  %d of %d open", done, n)
		}
	})
	cfg.logf("  %d open, %d failed, %d retried dials", len(c.sessions), c.failed, c.retries)
	if c.firstErr != nil {
		cfg.logf("  first failure: %v", c.firstErr)
	}
	return c
}

// openMany calls open for 0..n-1, starting at most rate calls a second
// (paced by a ticker) with at most concurrency running at once, and waits
// for them.
func openMany(ctx context.Context, n int, rate float64, concurrency int, open func(ctx context.Context, i int)) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	slots := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range n {
		if i > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			open(ctx, i)
		})
	}
}

// pair is two people in one room: a created it, b joined with its ID.
type pair struct{ a, b *session }

// openPair opens a room on addrA and joins it from addrB, each person from
// a fresh address, and waits until both screens show the other person.
func openPair(ctx context.Context, addrA, addrB string) (*pair, error) {
	return openPairFrom(ctx, addrA, addrB, newSourceAddr(), newSourceAddr())
}

// openPairFrom is openPair with the people on the given addresses.
func openPairFrom(ctx context.Context, addrA, addrB string, fromA, fromB net.IP) (*pair, error) {
	a, err := openSessionFrom(ctx, addrA, "load-a", fromA, newWatcher(true))
	if err != nil {
		return nil, err
	}
	if err := a.waitScreen(ctx, a.out.first, "share command"); err != nil {
		a.close()
		return nil, err
	}
	_, id := a.out.firstScreen()
	aSees := a.out.await(" joined")
	bOut := newWatcher(true)
	bSees := bOut.await("you joined")
	b, err := openSessionFrom(ctx, addrB, id, fromB, bOut)
	if err != nil {
		a.close()
		return nil, err
	}
	p := &pair{a, b}
	if err := errors.Join(b.waitScreen(ctx, bSees, "join notice"), a.waitScreen(ctx, aSees, "partner's join")); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *pair) close() {
	p.a.close()
	p.b.close()
}

// openPairs opens n pairs, pair i's A on the replica at where(i)'s first
// address and B on its second, at cfg's pace; if one fails, it closes the
// others.
func openPairs(ctx context.Context, cfg config, n int, where func(i int) (addrA, addrB string)) ([]*pair, error) {
	pairs := make([]*pair, n)
	var mu sync.Mutex
	var pairErr error
	openMany(ctx, n, cfg.connectRate, cfg.concurrency, func(ctx context.Context, i int) {
		addrA, addrB := where(i)
		p, err := openPair(ctx, addrA, addrB)
		mu.Lock()
		defer mu.Unlock()
		pairs[i] = p
		if err != nil && pairErr == nil {
			pairErr = fmt.Errorf("open pair %d: %w", i, err)
		}
	})
	if err := errors.Join(pairErr, ctx.Err()); err != nil {
		closePairs(pairs)
		return nil, err
	}
	return pairs, nil
}

// closePairs hangs up every pair opened.
func closePairs(pairs []*pair) {
	for _, p := range pairs {
		if p != nil {
			p.close()
		}
	}
}

// talk sends messages between a and b, alternating direction, with
// exponentially distributed gaps averaging 1/rate (a Poisson process: no
// send can phase-lock with a server timer), until until.
func (p *pair) talk(ctx context.Context, id int, rate float64, typed time.Duration, until time.Time, rec *recorder) error {
	for seq := 0; ; seq++ {
		gap := time.Duration(rand.ExpFloat64() / rate * float64(time.Second))
		if time.Now().Add(gap).After(until) {
			return nil
		}
		if err := pause(ctx, gap); err != nil {
			return err
		}
		from, to := p.a, p.b
		if seq%2 == 1 {
			from, to = p.b, p.a
		}
		// Unique within the run, short enough never to wrap, and no
		// token is a part of another ("q" ends the sequence number).
		token := fmt.Sprintf("m%dx%dq%04x", id, seq, rand.N(0x10000))
		rec.sending(token, to.out)
		if err := from.send(ctx, token, typed, to.out, func(sent, at time.Time) { rec.arrived(token, sent, at) }); err != nil {
			return fmt.Errorf("pair %d: %w", id, err)
		}
	}
}

// recorder collects message latencies as they arrive.
type recorder struct {
	lossAfter time.Duration

	mu          sync.Mutex
	samples     []time.Duration
	sent, late  int
	outstanding map[string]*watcher // token -> the receiver's output
	changed     chan struct{}
}

func newRecorder(lossAfter time.Duration) *recorder {
	return &recorder{lossAfter: lossAfter, outstanding: map[string]*watcher{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) sending(token string, to *watcher) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	r.outstanding[token] = to
}

func (r *recorder) arrived(token string, sent, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.outstanding, token)
	if d := at.Sub(sent); d <= r.lossAfter {
		r.samples = append(r.samples, d)
	} else {
		r.late++
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// wait waits until every message sent has arrived, or until deadline.
func (r *recorder) wait(ctx context.Context, deadline time.Time) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		r.mu.Lock()
		left := len(r.outstanding)
		r.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-r.changed:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runLatency opens cfg.idle idle sessions, then cfg.pairs pairs (A on the
// first replica, B on the second when there are several), lets every
// pair talk for cfg.duration and times each message from the sender's
// keystrokes to the receiver's screen.
func runLatency(ctx context.Context, cfg config, srv *servers) (runResult, error) {
	var rr runResult
	idle := openCrowd(ctx, cfg, srv, cfg.idle)
	defer idle.close()
	if err := ctx.Err(); err != nil {
		return rr, err
	}
	addrA, addrB := srv.addrs[0], srv.addrs[min(1, len(srv.addrs)-1)]
	cfg.logf("opening %d pairs (A on %s, B on %s)", cfg.pairs, addrA, addrB)
	pairs, err := openPairs(ctx, cfg, cfg.pairs, func(int) (string, string) { return addrA, addrB })
	if err != nil {
		return rr, err
	}
	defer closePairs(pairs)
	if rr, err = measureTalk(ctx, cfg, srv, pairs); err != nil {
		return rr, err
	}
	if idle.failed > 0 {
		rr.add("idle_failed", "", float64(idle.failed))
	}
	rr.failures = idle.failed
	return rr, nil
}

// measureTalk lets every pair talk at cfg.rate for cfg.duration and
// reports messages sent and lost, their latency and the CPU used.
func measureTalk(ctx context.Context, cfg config, srv *servers, pairs []*pair) (runResult, error) {
	var rr runResult
	cfg.logf("talking: %d pairs, %g messages/s each, for %v", len(pairs), cfg.rate, cfg.duration)
	rec := newRecorder(cfg.lossAfter)
	meter, err := startMeter(srv)
	if err != nil {
		return rr, err
	}
	until := time.Now().Add(cfg.duration)
	errs := make(chan error, len(pairs))
	for i, p := range pairs {
		go func() { errs <- p.talk(ctx, i, cfg.rate, cfg.typed, until, rec) }()
	}
	var talkErrs []error
	for range pairs {
		talkErrs = append(talkErrs, <-errs)
	}
	if err := ctx.Err(); err != nil {
		return rr, err
	}
	if err := errors.Join(talkErrs...); err != nil {
		return rr, err
	}
	usage, err := meter.read()
	if err != nil {
		return rr, err
	}
	if err := rec.wait(ctx, until.Add(cfg.lossAfter)); err != nil {
		return rr, err
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	lost := rec.late + len(rec.outstanding)
	for token, to := range rec.outstanding {
		cfg.logf("lost %s; the receiver's screen ends with %q", token, to.recentText())
		break
	}
	rr.add("sent", "", float64(rec.sent))
	rr.add("lost", "", float64(lost))
	addPercentiles(&rr, "", rec.samples)
	usage.addTo(&rr)
	rr.lost = lost
	return rr, nil
}

// runConnect opens cfg.sessions idle sessions and reports how long each
// took to show its first screen, and what they cost the server in memory.
func runConnect(ctx context.Context, cfg config, srv *servers) (runResult, error) {
	var rr runResult
	var before int64
	if len(srv.pids) > 0 {
		var err error
		if before, err = sumOver(srv.pids, rss); err != nil {
			return rr, err
		}
	}
	c := openCrowd(ctx, cfg, srv, cfg.sessions)
	defer c.close()
	if err := ctx.Err(); err != nil {
		return rr, err
	}
	if len(c.sessions) == 0 {
		return rr, fmt.Errorf("no session opened: %w", c.firstErr)
	}
	rr.add("open", "", float64(len(c.sessions)))
	rr.add("failed", "", float64(c.failed))
	rr.add("retries", "", float64(c.retries))
	addPercentiles(&rr, "first_", c.firstScreen)
	// The part of the first screen's time that SSH itself takes (TCP,
	// handshake, session, terminal and shell requests).
	sshUp := slices.Sorted(slices.Values(c.sshUp))
	rr.add("ssh_p50", "ms", ms(percentile(sshUp, 0.50)))
	rr.add("ssh_p99", "ms", ms(percentile(sshUp, 0.99)))
	rr.failures = c.failed
	if len(srv.pids) == 0 {
		rr.Notes = append(rr.Notes, "no server PIDs (-pid): memory not measured")
		return rr, nil
	}
	if err := pause(ctx, cfg.settle); err != nil {
		return rr, err
	}
	after, err := sumOver(srv.pids, rss)
	if err != nil {
		return rr, err
	}
	rr.add("rss_before", "MiB", float64(before)/(1<<20))
	rr.add("rss_after", "MiB", float64(after)/(1<<20))
	rr.add("rss_per_session", "KiB", float64(after-before)/float64(len(c.sessions))/(1<<10))
	return rr, nil
}

// runIdle opens cfg.sessions idle sessions and measures the CPU the server
// spends on them over cfg.window, and what this tool spends.
func runIdle(ctx context.Context, cfg config, srv *servers) (runResult, error) {
	var rr runResult
	c := openCrowd(ctx, cfg, srv, cfg.sessions)
	defer c.close()
	if err := ctx.Err(); err != nil {
		return rr, err
	}
	if len(c.sessions) == 0 {
		return rr, fmt.Errorf("no session opened: %w", c.firstErr)
	}
	rr.add("open", "", float64(len(c.sessions)))
	rr.add("failed", "", float64(c.failed))
	rr.failures = c.failed
	if err := pause(ctx, cfg.settle); err != nil {
		return rr, err
	}
	cfg.logf("measuring CPU over %v", cfg.window)
	meter, err := startMeter(srv)
	if err != nil {
		return rr, err
	}
	if err := pause(ctx, cfg.window); err != nil {
		return rr, err
	}
	usage, err := meter.read()
	if err != nil {
		return rr, err
	}
	usage.addTo(&rr)
	usage.addPer1000(&rr, len(c.sessions))
	if len(srv.pids) == 0 {
		rr.Notes = append(rr.Notes, "no server PIDs (-pid): server CPU not measured")
	}
	return rr, nil
}

// meter measures CPU use of the servers (when their PIDs are known), of
// the redis-servers this tool started (if any), and of this process over a
// window.
type meter struct {
	pids         []int
	redisPIDs    []int
	start        time.Time
	server, self time.Duration
	redis        []time.Duration // a node's
}

func startMeter(srv *servers) (*meter, error) {
	m := &meter{pids: srv.pids, start: time.Now()}
	for _, n := range srv.redis {
		m.redisPIDs = append(m.redisPIDs, n.pid)
	}
	var err error
	if m.server, err = sumOver(m.pids, cpuTime); err != nil {
		return nil, err
	}
	if m.redis, err = m.redisCPU(); err != nil {
		return nil, err
	}
	if m.self, err = selfCPU(); err != nil {
		return nil, err
	}
	return m, nil
}

// usage is CPU used over a window, as percentages of one core.
type usage struct {
	server, redis, self float64
	// redisNodes is each node's share of redis when there are several.
	redisNodes          []float64
	hasServer, hasRedis bool
}

// redisCPU is the CPU time of each redis-server this tool started.
func (m *meter) redisCPU() ([]time.Duration, error) {
	var out []time.Duration
	for _, pid := range m.redisPIDs {
		d, err := cpuTime(pid)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

func (m *meter) read() (usage, error) {
	wall := time.Since(m.start)
	server, err := sumOver(m.pids, cpuTime)
	if err != nil {
		return usage{}, err
	}
	redis, err := m.redisCPU()
	if err != nil {
		return usage{}, err
	}
	self, err := selfCPU()
	if err != nil {
		return usage{}, err
	}
	pct := func(d time.Duration) float64 { return 100 * d.Seconds() / wall.Seconds() }
	u := usage{
		server: pct(server - m.server), self: pct(self - m.self),
		hasServer: len(m.pids) > 0, hasRedis: len(m.redisPIDs) > 0,
	}
	for i := range redis {
		node := pct(redis[i] - m.redis[i])
		u.redis += node
		if len(redis) > 1 {
			u.redisNodes = append(u.redisNodes, node)
		}
	}
	return u, nil
}

func (u usage) addTo(rr *runResult) {
	if u.hasServer {
		rr.add("server_cpu", "%core", u.server)
	}
	if u.hasRedis {
		rr.add("redis_cpu", "%core", u.redis)
	}
	for i, node := range u.redisNodes {
		rr.add(fmt.Sprintf("redis%d_cpu", i), "%core", node)
	}
	rr.add("tool_cpu", "%core", u.self)
}

// addPer1000 scales CPU to 1,000 sessions.
func (u usage) addPer1000(rr *runResult, sessions int) {
	per := 1000 / float64(sessions)
	if u.hasServer {
		rr.add("server_cpu_per_1000", "%core", u.server*per)
	}
	if u.hasRedis {
		rr.add("redis_cpu_per_1000", "%core", u.redis*per)
	}
	rr.add("tool_cpu_per_1000", "%core", u.self*per)
}

// selfCPU is the user and system CPU time this process has used.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("own cpu time: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// addPercentiles adds the nearest-rank p50, p90, p99 and the max of samples
// in milliseconds.
func addPercentiles(rr *runResult, prefix string, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	sorted := slices.Sorted(slices.Values(samples))
	rr.add(prefix+"p50", "ms", ms(percentile(sorted, 0.50)))
	rr.add(prefix+"p90", "ms", ms(percentile(sorted, 0.90)))
	rr.add(prefix+"p99", "ms", ms(percentile(sorted, 0.99)))
	rr.add(prefix+"max", "ms", ms(sorted[len(sorted)-1]))
}

// percentile is the nearest-rank percentile p (0–1) of sorted: the
// smallest sample that at least p of them do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// warmUp opens a session on every replica and destroys its room, so that
// what a server initialises on its first session does not count, and
// nothing of the warm-up stays behind in the store.
func warmUp(ctx context.Context, srv *servers) error {
	for _, addr := range srv.addrs {
		w := newWatcher(true)
		s, err := openSession(ctx, addr, "warm-up", w)
		if err != nil {
			return fmt.Errorf("warm up %s: %w", addr, err)
		}
		err = s.waitScreen(ctx, w.first, "share command")
		if err == nil {
			err = s.destroyRoom(ctx)
		}
		s.close()
		if err != nil {
			return fmt.Errorf("warm up %s: %w", addr, err)
		}
	}
	return nil
}

// drained reports whether the servers hold no more connections than base
// and, for servers this tool started, no chat session.
func drained(srv *servers, base int) (bool, error) {
	n, err := serverConns(srv.addrs)
	if err != nil {
		return false, err
	}
	return n <= base && srv.sessionsOpen() == 0, nil
}

// waitDrained waits until the servers have let go of every session.
func waitDrained(ctx context.Context, srv *servers, base int) error {
	var readErr error
	err := waitFor(ctx, drainTimeout, func() bool {
		ok, err := drained(srv, base)
		readErr = err
		return ok || err != nil
	})
	if readErr != nil {
		return readErr
	}
	if err != nil {
		n, _ := serverConns(srv.addrs)
		return fmt.Errorf("servers still hold %d connections (%d before) and %d sessions after the tool hung up: %w", n, base, srv.sessionsOpen(), err)
	}
	return nil
}
