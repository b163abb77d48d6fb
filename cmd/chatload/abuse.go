package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ssh-burn/chat/internal/abusetext"
	"github.com/ssh-burn/chat/store"
)

// Keys an abuser types: ctrl+u empties the input (what a refusal put
// back), the paste is bracketed as a terminal sends one.
const (
	clearInput = "\x15"
	pasteStart = "\x1b[200~"
	pasteEnd   = "\x1b[201~"
)

// statusLine finds a send's outcome on the sender's screen: the status
// sentence, up to its first full stop.
var statusLine = regexp.MustCompile(`(?:Not sent|Slow down)[^.…\r\n]*[.…]`)

// refusalName names a status sentence for the report's columns; the
// sentences themselves go to the notes.
func refusalName(status string) string {
	s := strings.ToLower(status)
	switch {
	case strings.HasPrefix(s, "not sent yet"):
		return "waiting"
	case strings.Contains(s, "address"), strings.Contains(s, "too much"), strings.Contains(s, "budget"):
		return "refused_over_budget"
	case strings.Contains(s, "full"):
		return "refused_service_full"
	case strings.HasPrefix(s, "slow down"):
		return "refused_too_fast"
	case strings.Contains(s, "too long"), strings.Contains(s, "at most"):
		return "refused_too_long"
	case strings.Contains(s, "went wrong"):
		return "refused_error"
	}
	return "refused_other"
}

// digits are left out of a status sentence when refusals are counted by
// their text ("3 messages are still on their way").
var digits = regexp.MustCompile(`[0-9]+`)

// endings finds why a session ended in the last text of its screen.
var endings = []struct{ name, text string }{
	{"seat_lost", "lost touch with the room"},
	{"fell_behind", "connection fell behind"},
	{"replaced", "from another connection"},
	{"shutdown", "shutting down"},
	{"room_gone", "no longer exists"},
	{"unavailable", "cannot reach its room store"},
	{"service_full", "service is full"},
	{"private", "This room is private"},
	{"room_full", "This room is full"},
	{"expired", "Room expired"},
	{"destroyed", "Room destroyed"},
	{"left", "You left the room"},
	{"idle", "You typed nothing for"},
	{"max_session", "Sessions last at most"},
}

// endingName names why a session ended, from what its screen said last.
func endingName(screen string) string {
	for _, e := range endings {
		if strings.Contains(screen, e.text) {
			return e.name
		}
	}
	return "other"
}

// abuseStats counts what the abusive sessions' screens showed.
type abuseStats struct {
	mu        sync.Mutex
	attempts  int
	accepted  int
	byName    map[string]int // refusals (and "waiting") by column name
	byText    map[string]int // refusals by the screen's sentence
	noAnswer  int            // neither the message nor a status within screenTimeout
	ended     map[string]int // sessions the server ended, by what their screens said
	oversize  map[string]int // the paste: accepted, or the refusal's name
	firstFail error
}

func newAbuseStats() *abuseStats {
	return &abuseStats{byName: map[string]int{}, byText: map[string]int{}, ended: map[string]int{}, oversize: map[string]int{}}
}

func (st *abuseStats) refused(status string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.byName[refusalName(status)]++
	st.byText[digits.ReplaceAllString(status, "N")]++
}

func (st *abuseStats) endedWith(screen string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ended[endingName(screen)]++
}

// abuser is one abusive session and the session its messages go to (its
// partner, from the same address).
type abuser struct {
	id    int
	s, to *session
	// every is the least time from one paste to the next; retry the
	// least after a refusal.
	every, retry time.Duration
	stats        *abuseStats
	pasteOK      bool // the paste has been tried
}

// errSessionEnded stops an abuser whose session the server ended.
var errSessionEnded = errors.New("session ended")

// run pastes the message once, then the largest message that
// fits again and again until until: a.every after the last paste began,
// and a.retry after a refusal.
func (a *abuser) run(ctx context.Context, until time.Time) {
	for seq := 0; time.Now().Before(until) && ctx.Err() == nil; seq++ {
		began := time.Now()
		token := fmt.Sprintf("a%dx%dq%04x", a.id, seq, rand.N(0x10000))
		msg, oversize := abusetext.Largest(token), !a.pasteOK
		if oversize {
			msg, a.pasteOK = abusetext.Oversize(token), true
		}
		outcome, err := a.attempt(ctx, token, msg)
		if errors.Is(err, errSessionEnded) {
			a.stats.endedWith(a.s.out.recentText())
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				a.stats.mu.Lock()
				if a.stats.firstFail == nil {
					a.stats.firstFail = err
				}
				a.stats.mu.Unlock()
			}
			return
		}
		if oversize {
			a.stats.mu.Lock()
			a.stats.oversize[outcome]++
			a.stats.mu.Unlock()
		}
		next := time.Until(began.Add(a.every))
		if outcome != "accepted" {
			next = max(next, a.retry)
		}
		if pause(ctx, next) != nil {
			return
		}
	}
}

// attempt pastes msg into a cleared input, waits until the input shows
// it, presses enter and waits for the outcome: the message on the
// partner's screen ("accepted"), or a refusal on the sender's (its
// column name). A "Not sent yet" status is not an outcome: the screen
// sends the message again by itself.
func (a *abuser) attempt(ctx context.Context, token, msg string) (string, error) {
	typed, cancelTyped := a.s.out.awaitCancel(token)
	defer cancelTyped()
	if _, err := io.WriteString(a.s.stdin, clearInput+pasteStart+msg+pasteEnd); err != nil {
		return "", fmt.Errorf("paste: %w", err)
	}
	if err := a.wait(ctx, typed); err != nil {
		return "", err
	}
	arrived, cancelArrived := a.to.out.awaitCancel(token)
	defer cancelArrived()
	a.stats.mu.Lock()
	a.stats.attempts++
	a.stats.mu.Unlock()
	for first := true; ; first = false {
		status, cancelStatus := a.s.out.awaitMatch(statusLine)
		if first {
			if _, err := io.WriteString(a.s.stdin, "\r"); err != nil {
				cancelStatus()
				return "", fmt.Errorf("send: %w", err)
			}
		}
		timeout := time.NewTimer(screenTimeout)
		select {
		case <-arrived:
			cancelStatus()
			timeout.Stop()
			a.stats.mu.Lock()
			a.stats.accepted++
			a.stats.mu.Unlock()
			return "accepted", nil
		case text := <-status:
			timeout.Stop()
			a.stats.refused(text)
			if name := refusalName(text); name != "waiting" {
				return name, nil
			}
		case <-timeout.C:
			cancelStatus()
			a.stats.mu.Lock()
			a.stats.noAnswer++
			a.stats.mu.Unlock()
			return "no_answer", nil
		case <-a.s.ended:
			cancelStatus()
			timeout.Stop()
			return "", errSessionEnded
		case <-ctx.Done():
			cancelStatus()
			timeout.Stop()
			return "", ctx.Err()
		}
	}
}

// wait waits for signal, the session's end or screenTimeout.
func (a *abuser) wait(ctx context.Context, signal <-chan struct{}) error {
	timeout := time.NewTimer(screenTimeout)
	defer timeout.Stop()
	select {
	case <-signal:
		return nil
	case <-a.s.ended:
		return errSessionEnded
	case <-timeout.C:
		return fmt.Errorf("the paste did not show in the input within %v; the screen ends with %q", screenTimeout, a.s.out.recentText())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// openAbusers opens cfg.abuseSessions sessions from each of
// cfg.abuseAddrs addresses, in pairs of one address: one creates a room
// on one replica, the other joins it from the next replica, so with
// Redis every message crosses from one replica to the other.
func openAbusers(ctx context.Context, cfg config, srv *servers, stats *abuseStats) ([]*abuser, error) {
	var (
		mu       sync.Mutex
		abusers  []*abuser
		firstErr error
	)
	cfg.logf("opening %d abusive sessions: %d addresses × %d", cfg.abuseAddrs*cfg.abuseSessions, cfg.abuseAddrs, cfg.abuseSessions)
	openMany(ctx, cfg.abuseAddrs, cfg.connectRate, cfg.concurrency, func(ctx context.Context, i int) {
		from := newSourceAddr()
		for k := range cfg.abuseSessions / 2 {
			p, err := openPairFrom(ctx, srv.addrs[k%len(srv.addrs)], srv.addrs[(k+1)%len(srv.addrs)], from, from)
			mu.Lock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("address %d, pair %d: %w", i, k, err)
				}
				mu.Unlock()
				return
			}
			n := len(abusers)
			abusers = append(abusers,
				&abuser{id: n, s: p.a, to: p.b, every: cfg.abuseEvery, retry: cfg.abuseRetry, stats: stats},
				&abuser{id: n + 1, s: p.b, to: p.a, every: cfg.abuseEvery, retry: cfg.abuseRetry, stats: stats})
			mu.Unlock()
		}
	})
	if err := errors.Join(firstErr, ctx.Err()); err != nil {
		for _, a := range abusers {
			a.s.close()
		}
		return nil, err
	}
	return abusers, nil
}

// heapProfile is a replica's heap profile in its text form (debug=1),
// taken right after a garbage collection, from its operations listener.
func heapProfile(ctx context.Context, httpAddr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/debug/pprof/heap?gc=1&debug=1", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("heap profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("heap profile: %s", resp.Status)
	}
	return string(body), nil
}

// memStat is the runtime.MemStats field name ("HeapInuse") as a heap
// profile's text form gives it.
func memStat(profile, name string) (int64, error) {
	for line := range strings.Lines(profile) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "# "+name+" = "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("heap profile: no %s", name)
}

// heapInuse is a replica's HeapInuse right after a garbage collection.
func heapInuse(ctx context.Context, httpAddr string) (int64, error) {
	profile, err := heapProfile(ctx, httpAddr)
	if err != nil {
		return 0, err
	}
	return memStat(profile, "HeapInuse")
}

// heapRecord is a record's header in a debug=1 heap profile: in-use
// objects and bytes, then allocated ones since the start.
var heapRecord = regexp.MustCompile(`^\d+: (\d+) \[\d+: \d+\] @`)

// summariseHeap sums a debug=1 heap profile's in-use bytes by the first
// frame of each record outside the runtime, and lists the n largest.
func summariseHeap(profile string, n int) string {
	bySite := map[string]int64{}
	var inuse int64
	site := ""
	flush := func() {
		if inuse > 0 {
			bySite[cmp.Or(site, "runtime")] += inuse
		}
		inuse, site = 0, ""
	}
	for line := range strings.Lines(profile) {
		line = strings.TrimSpace(line)
		if m := heapRecord.FindStringSubmatch(line); m != nil {
			flush()
			inuse, _ = strconv.ParseInt(m[1], 10, 64)
			continue
		}
		// "#	0x4a5b6c	pkg.Func+0x12	/path/file.go:123"
		if f := strings.Fields(line); site == "" && len(f) >= 3 && f[0] == "#" && strings.HasPrefix(f[1], "0x") &&
			!strings.HasPrefix(f[2], "runtime.") {
			site = f[2]
			if i := strings.LastIndexByte(site, '+'); i > 0 {
				site = site[:i]
			}
		}
		if strings.HasPrefix(line, "# runtime.MemStats") {
			break
		}
	}
	flush()
	sites := slices.SortedFunc(maps.Keys(bySite), func(a, b string) int { return cmp.Compare(bySite[b], bySite[a]) })
	var parts []string
	for _, s := range sites[:min(n, len(sites))] {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", s, mib(bySite[s])))
	}
	return strings.Join(parts, ", ")
}

// sumHeap is heapInuse summed over the replicas; -1 without their
// operations listeners.
func sumHeap(ctx context.Context, srv *servers) (int64, error) {
	if len(srv.https) == 0 {
		return -1, nil
	}
	var total int64
	for _, h := range srv.https {
		n, err := heapInuse(ctx, h)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// runAbuse lets cfg.abuseAddrs addresses with cfg.abuseSessions sessions
// each paste the largest message as fast as the limits let them for
// cfg.duration, while a newcomer pair from other addresses opens a room
// halfway through and talks. It reports what Redis and the replicas hold
// over time, the outcome of every paste as the screens show it, and
// whether (and how fast) the newcomers could talk.
func runAbuse(ctx context.Context, cfg config, srv *servers) (runResult, error) {
	var rr runResult
	heapBefore, err := sumHeap(ctx, srv)
	if err != nil {
		return rr, err
	}
	sampler := startMemSampler(ctx, srv)
	stats := newAbuseStats()
	abusers, err := openAbusers(ctx, cfg, srv, stats)
	if err != nil {
		sampler.finish()
		return rr, err
	}
	defer func() {
		for _, a := range abusers {
			a.s.close()
		}
	}()

	cfg.logf("pasting: %d sessions for %v", len(abusers), cfg.duration)
	meter, err := startMeter(srv)
	if err != nil {
		sampler.finish()
		return rr, err
	}
	start := time.Now()
	until := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for _, a := range abusers {
		wg.Go(func() { a.run(ctx, until) })
	}
	newcomer := make(chan newcomerResult, 1)
	wg.Go(func() { newcomer <- runNewcomer(ctx, cfg, srv, start.Add(cfg.duration/2), until) })
	wg.Wait()
	if err := ctx.Err(); err != nil {
		sampler.finish()
		return rr, err
	}
	usage, usageErr := meter.read()
	// Memory while every abusive session is still open.
	heapAfter, heapErr := sumHeap(ctx, srv)
	samples, sampleErr := sampler.finish()
	if err := errors.Join(usageErr, heapErr, sampleErr); err != nil {
		return rr, err
	}

	open := 0
	for _, a := range abusers {
		select {
		case <-a.s.ended:
		default:
			open++
		}
	}
	stats.mu.Lock()
	defer stats.mu.Unlock()
	rr.add("sessions", "", float64(len(abusers)))
	rr.add("attempts", "", float64(stats.attempts))
	rr.add("accepted", "", float64(stats.accepted))
	for _, name := range slices.Sorted(maps.Keys(stats.byName)) {
		rr.add(name, "", float64(stats.byName[name]))
	}
	if stats.noAnswer > 0 {
		rr.add("no_answer", "", float64(stats.noAnswer))
	}
	rr.add("oversize_accepted", "", float64(stats.oversize["accepted"]))
	for _, name := range slices.Sorted(maps.Keys(stats.ended)) {
		rr.add("ended_"+name, "", float64(stats.ended[name]))
	}
	// What the budgets charged an address (every address does the same),
	// and what Redis grew by for each.
	rooms := cfg.abuseSessions / 2
	charged := rooms*(store.RoomCost+store.JoinCost) + rooms*store.JoinCost +
		stats.accepted/cfg.abuseAddrs*store.MessageCost(abusetext.Largest("a0x0q0000"))
	rr.add("charged_per_addr", "KiB", float64(charged)/(1<<10))
	redisStart, _, redisEnd := memFigures(&rr, "redis_", samples, func(s memSample) int64 { return s.redis }, srv.maxmemory)
	if redisStart >= 0 {
		rr.add("redis_per_addr", "KiB", float64(redisEnd-redisStart)/float64(cfg.abuseAddrs)/(1<<10))
	}
	rssStart, _, rssEnd := memFigures(&rr, "rss_", samples, func(s memSample) int64 { return s.rss }, 0)
	if rssStart >= 0 && open > 0 {
		rr.add("rss_per_session", "KiB", float64(rssEnd-rssStart)/float64(open)/(1<<10))
	}
	if heapBefore >= 0 && open > 0 {
		rr.add("heap_per_session", "KiB", float64(heapAfter-heapBefore)/float64(open)/(1<<10))
	}
	usage.addTo(&rr)
	nc := <-newcomer
	nc.addTo(&rr)
	rr.lost = nc.lost
	if !nc.in {
		rr.failures++
	}

	var texts []string
	for _, t := range slices.Sorted(maps.Keys(stats.byText)) {
		texts = append(texts, fmt.Sprintf("%d × %q", stats.byText[t], t))
	}
	if len(texts) > 0 {
		rr.Notes = append(rr.Notes, "refusals as the screens said them: "+strings.Join(texts, ", "))
	}
	if n := stats.oversize; len(n) > 0 {
		rr.Notes = append(rr.Notes, fmt.Sprintf("the issue's paste (%d bytes): %v", len(abusetext.Oversize("a0x0q0000")), n))
	}
	rr.Notes = append(rr.Notes, memSeries(samples, 10*time.Second))
	if nc.err != nil {
		rr.Notes = append(rr.Notes, "newcomers: "+nc.err.Error())
	}
	if stats.firstFail != nil {
		rr.Notes = append(rr.Notes, "first abuser failure: "+stats.firstFail.Error())
	}
	return rr, nil
}

// newcomerResult is what a pair of people new to the service, from
// addresses of their own, could do while the abuse went on.
type newcomerResult struct {
	in         bool // they opened a room and both were in it
	sent, lost int
	samples    []time.Duration
	err        error
}

func (n newcomerResult) addTo(rr *runResult) {
	in := 0.0
	if n.in {
		in = 1
	}
	rr.add("newcomer_in", "", in)
	rr.add("newcomer_sent", "", float64(n.sent))
	rr.add("newcomer_lost", "", float64(n.lost))
	if len(n.samples) > 0 {
		sorted := slices.Sorted(slices.Values(n.samples))
		rr.add("newcomer_p50", "ms", ms(percentile(sorted, 0.50)))
		rr.add("newcomer_p99", "ms", ms(percentile(sorted, 0.99)))
	}
}

// runNewcomer opens a pair at at (A on the first replica, B on the last),
// lets it talk at cfg.rate until until, and waits cfg.lossAfter for what
// is on its way.
func runNewcomer(ctx context.Context, cfg config, srv *servers, at, until time.Time) (n newcomerResult) {
	if err := pause(ctx, time.Until(at)); err != nil {
		return newcomerResult{err: err}
	}
	cfg.logf("a newcomer pair opens a room")
	p, err := openPair(ctx, srv.addrs[0], srv.addrs[len(srv.addrs)-1])
	if err != nil {
		return newcomerResult{err: fmt.Errorf("open a room: %w", err)}
	}
	defer p.close()
	n.in = true
	rec := newRecorder(cfg.lossAfter)
	if err := p.talk(ctx, 0, cfg.rate, 0, until, rec); err != nil {
		n.err = err
	}
	if err := rec.wait(ctx, time.Now().Add(cfg.lossAfter)); err != nil && n.err == nil {
		n.err = err
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n.sent, n.lost, n.samples = rec.sent, rec.late+len(rec.outstanding), rec.samples
	for _, to := range rec.outstanding {
		n.err = errors.Join(n.err, fmt.Errorf("a message was lost; the receiver's screen ends with %q", to.recentText()))
		break
	}
	return n
}
