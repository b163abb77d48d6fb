package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssh-burn/chat/internal/faultproxy"
)

// The slow-Redis scenario's faults: how late the slow replica's Redis
// answers, what it talks through before and after, and how long one
// join's reply is held.
const (
	slowSettle = 5 * time.Second // normal talk before the delay and after it
	joinHold   = 8 * time.Second
	// rejoinWithin bounds how long after the hold ends the joiner keeps
	// connecting again, as a person told to try again would.
	rejoinWithin = 30 * time.Second
	rejoinEvery  = 2 * time.Second
)

// slowLink puts a fault proxy between every replica but the first and
// Redis (with two: the slow replica), and leaves it in made, for the
// servers' stop to close.
func slowLink(made **faultproxy.Proxy) func(int, string) (string, error) {
	return func(replica int, redisAddr string) (string, error) {
		if replica == 0 {
			return redisAddr, nil
		}
		p, err := faultproxy.Start(redisAddr)
		if err != nil {
			return "", err
		}
		*made = p
		return p.Addr(), nil
	}
}

// numbered is one direction of a pair: its sender sends numbered messages,
// each once the one before has arrived or was given up on after
// lossAfter, so that a message is never typed behind another into the
// input. A message given up on is still awaited: if it comes later, it is
// late, not lost.
type numbered struct {
	from, to  *session
	sent      int
	notSent   int // sends whose screen said "Not sent" (yet, or at all)
	latencies []time.Duration

	mu      sync.Mutex
	overdue int // given up on, not (yet) arrived
	late    int // arrived after they were given up on
}

// talk sends numbered messages with gaps averaging 1/rate until until.
func (n *numbered) talk(ctx context.Context, pairID, dir int, rate float64, until time.Time, lossAfter time.Duration) {
	for seq := 0; ; seq++ {
		gap := time.Duration(rand.ExpFloat64() / rate * float64(time.Second))
		if time.Now().Add(gap).After(until) || pause(ctx, gap) != nil {
			return
		}
		token := fmt.Sprintf("s%dx%dx%dq", pairID, dir, seq)
		arrived := make(chan time.Duration, 1)
		var givenUp bool // guarded by n.mu
		n.to.out.expect(token, time.Now(), func(sent, at time.Time) {
			n.mu.Lock()
			defer n.mu.Unlock()
			if givenUp {
				n.overdue--
				n.late++
				return
			}
			arrived <- at.Sub(sent)
		})
		status, cancelStatus := n.from.out.awaitMatch(statusLine)
		n.sent++
		if _, err := n.from.stdin.Write([]byte(token + "\r")); err != nil {
			cancelStatus()
			return
		}
		timeout := time.NewTimer(lossAfter)
	wait:
		for {
			select {
			case d := <-arrived:
				n.latencies = append(n.latencies, d)
				break wait
			case <-status:
				n.notSent++
				status, cancelStatus = n.from.out.awaitMatch(statusLine)
			case <-timeout.C:
				n.mu.Lock()
				select {
				case d := <-arrived: // just in time
					n.latencies = append(n.latencies, d)
				default:
					givenUp = true
					n.overdue++
				}
				n.mu.Unlock()
				break wait
			case <-ctx.Done():
				break wait
			}
		}
		timeout.Stop()
		cancelStatus()
		if ctx.Err() != nil {
			return
		}
	}
}

// runSlowRedis runs P pairs across the two replicas, B of each on the slow
// replica, sending numbered messages: slowSettle of normal talk, then
// cfg.duration with every reply of the slow replica's Redis link delayed
// cfg.slowMin–cfg.slowMax, then slowSettle of normal talk again. It
// reports sessions ended (by what their screens said), partners seen to
// leave, messages lost and duplicated, sends failed, and latency. Then
// one join through the slow replica has its reply held joinHold: does the
// person get in (connecting again as told), how long after the hold, and
// is anyone told the room is private (a ghost took the seat)?
func runSlowRedis(ctx context.Context, cfg config, srv *servers) (runResult, error) {
	var rr runResult
	if srv.fault == nil || len(srv.addrs) != 2 {
		return rr, errors.New("slowredis needs the two replicas this tool starts on Redis, the second through its proxy")
	}
	before, err := readMetrics(ctx, srv)
	if err != nil {
		return rr, err
	}
	cfg.logf("opening %d pairs (A on %s, B on the slow replica %s)", cfg.slowPairs, srv.addrs[0], srv.addrs[1])
	pairs, err := openPairs(ctx, cfg, cfg.slowPairs, func(int) (string, string) { return srv.addrs[0], srv.addrs[1] })
	if err != nil {
		return rr, err
	}
	defer closePairs(pairs)

	// Every screen is watched for its partner leaving, and when.
	var leftMu sync.Mutex
	var leftAt []time.Time
	for _, p := range pairs {
		for _, s := range []*session{p.a, p.b} {
			s.out.expect("left; their seat", time.Now(), func(_, at time.Time) {
				leftMu.Lock()
				defer leftMu.Unlock()
				leftAt = append(leftAt, at)
			})
		}
	}

	start := time.Now()
	until := start.Add(2*slowSettle + cfg.duration)
	cfg.logf("talking: %d pairs at %g msg/s each; replies to the slow replica %v–%v late from %v for %v",
		cfg.slowPairs, cfg.rate, cfg.slowMin, cfg.slowMax, slowSettle, cfg.duration)
	directions := make([]*numbered, 0, 2*len(pairs))
	var wg sync.WaitGroup
	for i, p := range pairs {
		for dir, n := range []*numbered{{from: p.a, to: p.b}, {from: p.b, to: p.a}} {
			directions = append(directions, n)
			// Each direction at half the pair's rate.
			wg.Go(func() { n.talk(ctx, i, dir, cfg.rate/2, until, cfg.lossAfter) })
		}
	}
	slowFrom := start.Add(slowSettle)
	wg.Go(func() {
		if pause(ctx, time.Until(slowFrom)) != nil {
			return
		}
		cfg.logf("  delaying every reply to the slow replica by %v–%v", cfg.slowMin, cfg.slowMax)
		srv.fault.DelayReplies(cfg.slowMin, cfg.slowMax)
		if pause(ctx, cfg.duration) != nil {
			return
		}
		srv.fault.DelayReplies(0, 0)
		cfg.logf("  replies on time again")
	})
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rr, err
	}
	// Messages given up on may still come.
	if err := pause(ctx, cfg.lossAfter); err != nil {
		return rr, err
	}
	after, err := readMetrics(ctx, srv)
	if err != nil {
		return rr, err
	}

	ended := map[string]int{}
	for _, p := range pairs {
		for _, s := range []*session{p.a, p.b} {
			select {
			case <-s.ended:
				ended[endingName(s.out.recentText())]++
			default:
			}
		}
	}
	var sent, arrived, lost, notSent int
	var late [2]int // to the slow replica, from it
	var samples, toSlow []time.Duration
	for i, n := range directions {
		n.mu.Lock()
		sent, lost, notSent = sent+n.sent, lost+n.overdue, notSent+n.notSent
		late[i%2] += n.late
		n.mu.Unlock()
		samples = append(samples, n.latencies...)
		if i%2 == 0 {
			toSlow = append(toSlow, n.latencies...)
		}
	}
	arrived = len(samples) + late[0] + late[1]
	delivered := after.delivered - before.delivered
	rr.add("sent", "", float64(sent))
	rr.add("lost", "", float64(lost))
	rr.add("late_to_slow", "", float64(late[0]))
	rr.add("late_from_slow", "", float64(late[1]))
	// Every message arrived once on its screen; what the replicas handed
	// to screens beyond that is shown twice.
	rr.add("duplicated", "", max(delivered-float64(arrived), 0))
	rr.add("send_errors", "", after.sendErrors-before.sendErrors)
	rr.add("not_sent_shown", "", float64(notSent))
	ends := 0
	for _, name := range slices.Sorted(maps.Keys(ended)) {
		rr.add("ended_"+name, "", float64(ended[name]))
		ends += ended[name]
	}
	if ends == 0 {
		rr.add("ended", "", 0)
	}
	leftMu.Lock()
	rr.add("partner_left", "", float64(len(leftAt)))
	if len(leftAt) > 0 {
		// From the first late reply: how soon the healthy side gave the
		// slow side's seats up.
		slices.SortFunc(leftAt, time.Time.Compare)
		rr.add("left_first", "s", leftAt[0].Sub(slowFrom).Seconds())
		rr.add("left_last", "s", leftAt[len(leftAt)-1].Sub(slowFrom).Seconds())
	}
	leftMu.Unlock()
	addPercentiles(&rr, "", samples)
	if len(toSlow) > 0 {
		rr.add("to_slow_p50", "ms", ms(percentile(slices.Sorted(slices.Values(toSlow)), 0.5)))
	}
	rr.lost = lost
	if delivered < float64(arrived) {
		rr.Notes = append(rr.Notes, fmt.Sprintf("the replicas counted %v deliveries for %d messages seen", delivered, arrived))
	}

	hold, err := holdOneJoin(ctx, cfg, srv)
	if err != nil {
		return rr, err
	}
	hold.addTo(&rr)
	if len(hold.refused) > 0 {
		rr.Notes = append(rr.Notes, fmt.Sprintf("hold: attempts turned away, by what the screen said: %v", hold.refused))
	}
	if hold.attempts > 0 && !hold.seen {
		rr.Notes = append(rr.Notes, "hold: no join request was seen to hold")
	}
	return rr, nil
}

// holdResult is what one join whose reply was held did.
type holdResult struct {
	in        bool
	afterHold time.Duration // from the hold's end to the joiner in the room
	attempts  int
	seen      bool           // the proxy saw the join and held its reply
	ghost     bool           // someone was told the room is private or full
	refused   map[string]int // attempts turned away, by what the screen said
}

func (h holdResult) addTo(rr *runResult) {
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	rr.add("hold_in", "", b(h.in))
	if h.in {
		rr.add("hold_in_after", "ms", ms(h.afterHold))
	}
	rr.add("hold_attempts", "", float64(h.attempts))
	rr.add("hold_ghost", "", b(h.ghost))
}

// holdOneJoin opens a room on the healthy replica and joins it through the
// slow one while the proxy holds the reply to the join (the first script
// on a room's keys it sees) for joinHold. A joiner who is turned away
// connects again every rejoinEvery, as a person told to try again would,
// for up to rejoinWithin after the hold.
func holdOneJoin(ctx context.Context, cfg config, srv *servers) (holdResult, error) {
	h := holdResult{refused: map[string]int{}}
	creator, err := openSession(ctx, srv.addrs[0], "hold-a", newWatcher(true))
	if err != nil {
		return h, err
	}
	defer creator.close()
	if err := creator.waitScreen(ctx, creator.out.first, "share command"); err != nil {
		return h, err
	}
	_, id := creator.out.firstScreen()

	var heldAt atomic.Int64 // unix nanoseconds; zero until the join is seen
	srv.fault.HoldReplies(func(req []byte) bool {
		// go-redis sends a script as evalsha with its keys; a room's keys
		// end in their part's name (the replicas' own are under {live}).
		if !bytes.Contains(req, []byte("}:meta")) || bytes.Contains(req, []byte("{live}")) ||
			!bytes.Contains(bytes.ToLower(req), []byte("evalsha")) {
			return false
		}
		return heldAt.CompareAndSwap(0, time.Now().UnixNano())
	}, joinHold)
	defer srv.fault.HoldReplies(nil, 0)
	cfg.logf("joining through the slow replica, the join's reply held %v", joinHold)
	holdEnds := func() time.Time {
		if at := heldAt.Load(); at != 0 {
			return time.Unix(0, at).Add(joinHold)
		}
		return time.Time{}
	}
	for {
		h.attempts++
		out := newWatcher(true)
		joined := out.await("you joined")
		s, err := openSession(ctx, srv.addrs[1], id, out)
		if err != nil {
			return h, err
		}
		select {
		case <-joined:
			h.in = true
		case <-s.ended:
			select {
			case <-joined:
				h.in = true
			default:
			}
		case <-time.After(screenTimeout):
		case <-ctx.Done():
			s.close()
			return h, ctx.Err()
		}
		screen := out.recentText() + string(s.errOut.bytes())
		s.close()
		if h.in {
			h.afterHold = time.Since(holdEnds())
			break
		}
		name := endingName(screen)
		h.refused[name]++
		if name == "private" || name == "room_full" {
			h.ghost = true
		}
		if ends := holdEnds(); ends.IsZero() || time.Since(ends) > rejoinWithin {
			break
		}
		if pause(ctx, rejoinEvery) != nil {
			return h, ctx.Err()
		}
	}
	h.seen = heldAt.Load() != 0
	return h, nil
}

// replicaCounts are counters summed over the replicas' /metrics.
type replicaCounts struct {
	delivered  float64 // messages handed to a partner's screen
	sendErrors float64 // sends that failed in the store
}

// readMetrics reads the counters the slow-Redis scenario reports.
func readMetrics(ctx context.Context, srv *servers) (replicaCounts, error) {
	var c replicaCounts
	for _, h := range srv.https {
		m, err := scrapeMetrics(ctx, h)
		if err != nil {
			return c, err
		}
		c.delivered += m["chat_message_delivery_seconds_count"]
		c.sendErrors += m[`chat_store_errors_total{op="send"}`]
	}
	return c, nil
}

// scrapeMetrics reads a replica's /metrics from its operations listener:
// every sample, by its name with labels as written.
func scrapeMetrics(ctx context.Context, httpAddr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		name, value, ok := strings.Cut(lines.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] = v
		}
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return out, nil
}
