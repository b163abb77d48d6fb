// Command chatload measures the chat server under load with real SSH
// sessions: message latency between pairs of people, how fast sessions
// open and what they cost in memory, and what idle sessions cost in CPU.
//
// Every simulated person connects from its own loopback address
// (127.x.y.z, never 127.0.0.1), so the server's per-address limits apply
// to each person and never to the tool. Each session asks for an
// xterm-256color terminal of 80×24 and the shell, as ssh does.
//
// By default the tool builds the server from the module it is run in, and
// for every run starts fresh servers (with CHAT_MAX_SESSIONS=-max-sessions,
// room TTL -room-ttl, by default 1h, but the servers' own 10m for abuse:
// the per-address budget refills over a room's life, and 3m for soak) and,
// with -redis, a fresh redis-server
// (maxmemory -redis-maxmemory, noeviction as deploy/redis.conf), and stops them
// afterwards. -bin runs a given server binary instead (an older build, say),
// and -addr measures servers that are already running.
//
// Scenarios (-scenario, a comma-separated list), each repeated -runs times;
// every run is printed, then the median of each figure:
//
//	latency  -idle idle sessions are opened first and held; then -pairs
//	         pairs, each in its own room, exchange -rate messages a second
//	         (alternating direction, exponentially distributed gaps) for
//	         -duration. Latency is from writing "TOKEN\r" on the sender's
//	         stdin to TOKEN appearing in the receiver's output, escape
//	         sequences stripped. A message not seen within -loss-after is
//	         lost, and any loss makes the exit status non-zero. With
//	         -redis, A is on the first replica and B on the second.
//	         With -typed GAP each message is typed a key at a time, GAP
//	         apart, as a person types, and timed from its Enter: the
//	         servers' CPU then prices a keystroke.
//	connect  -sessions sessions are opened at -connect-rate a second, each
//	         in its own room: the time from the TCP dial to the share
//	         command on screen (first_*; ssh_* is the part until the
//	         server accepted the shell), and the server's RSS per session
//	         (VmRSS after all are open, less before, over -sessions).
//	idle     -sessions sessions are opened and held; the server's CPU over
//	         -window, as % of one core and per 1,000 sessions, and the
//	         tool's own CPU over the same window. With -redis, the sessions
//	         are spread over the replicas, each alone in its room.
//	abuse    -abuse-addrs addresses open -abuse-sessions sessions each, in
//	         pairs of one address (with -redis the pair's two sessions are
//	         on different replicas), and every session pastes the largest
//	         message a room accepts (safetext.MaxMessageBytes bytes, most
//	         letters carrying combining marks) for -duration: the next at
//	         once when one was accepted, -abuse-retry after a refusal. The
//	         first paste of each session is issue 15's (about 16,000
//	         bytes), which must be refused. Every paste's outcome is read
//	         off the screens: accepted when it appears on the partner's,
//	         refused by the status sentence on the sender's (columns by
//	         kind, the sentences in the notes). Reported: Redis's
//	         used_memory (start, peak, end, % of -redis-maxmemory) and the
//	         replicas' RSS, sampled every second (the notes have the
//	         series), RSS and heap in use after a GC (from the replicas'
//	         pprof) per abusive session, sessions the server ended, and a
//	         newcomer pair on addresses of its own that opens a room
//	         halfway through and talks at -rate until the end: whether it
//	         got in, and its latency p50/p99; CPU of the servers, Redis
//	         and the tool over the pasting. -abuse-every paces each
//	         session (one paste every so long at most).
//	slowredis  two replicas on Redis (-redis), the second through a fault
//	         proxy (internal/faultproxy): -pairs pairs (default 100), A on
//	         the first replica and B on the second, send numbered
//	         messages, each once the last arrived (or was given up on
//	         after -loss-after), at -rate a pair: 5 s as usual, then
//	         -duration with every reply to the second replica delayed
//	         -slow-min to -slow-max, then 5 s as usual. Reported: messages
//	         lost (never seen) and late (seen after -loss-after; to the
//	         slow replica and from it),
//	         duplicated (the replicas' deliveries to screens, from their
//	         /metrics, beyond the messages seen), sends that failed in the
//	         store (their /metrics) and "Not sent" statuses seen, sessions
//	         ended by what their screens said, and screens that saw their
//	         partner leave; then one join through the slow replica with its
//	         reply held 8 s: whether the person got in (connecting again
//	         every 2 s when turned away, as told), how long after the hold
//	         ended, after how many attempts, and whether anyone was told the
//	         room is private or full (a ghost took the seat).
//	cluster  the tool starts a Redis Cluster of 3 masters on loopback
//	         (cluster mode, no persistence, redis-cli --cluster create;
//	         it waits until every node says cluster_state:ok) and
//	         -replicas replicas on it (default 4; no -redis needed).
//	         -idle idle sessions are spread over the replicas, then
//	         -pairs pairs talk as in latency, pair i's A on replica i
//	         and B on the next. Reported beside latency, server and tool
//	         CPU: each node's CPU (redisN_cpu, from its /proc/PID/stat),
//	         also per 1,000 messages a second, and its Pub/Sub traffic
//	         over the talk: PUBLISH and SPUBLISH calls (INFO
//	         commandstats), the Pub/Sub messages it sent over the
//	         cluster bus (CLUSTER INFO cluster_stats_messages_publish_sent
//	         and publishshard_sent), bytes written to clients
//	         (total_net_output_bytes), and the classic and sharded
//	         channels with subscribers at the end (PUBSUB CHANNELS,
//	         PUBSUB SHARDCHANNELS).
//	soak     rooms churn for -duration (default 1h) with about -sessions
//	         sessions at once (default 2000, a room a pair) on the
//	         replicas (with -redis: -replicas, default 2), whose rooms
//	         live -room-ttl (default 3m, so that they expire many times).
//	         Rooms open spread over the first TTL; each pair is A on one
//	         replica and B on the next, and takes random steps, -churn a
//	         second over all rooms: talk (a message each way, awaited),
//	         rejoin (one leaves with ctrl+c and comes back through the
//	         other replica with the command their end screen shows),
//	         reopen (one leaves, the other gives their seat up with
//	         ctrl+o and y, a newcomer joins with the room ID), destroy
//	         (ctrl+x and y; both screens must say so), abandon (both
//	         leave; the room expires empty); a room that draws no ending
//	         step expires with both in it, and both screens must say so.
//	         Every 10 s it reads each replica's goroutines (/metrics),
//	         open file descriptors (/proc/PID/fd; those to Redis apart)
//	         and RSS, and Redis's keys (DBSIZE) and used_memory. The
//	         baseline is read before any session but the warm-up, once
//	         Redis holds no more keys than before it; at the end every
//	         session is hung up and the tool waits (up to the TTL and 5
//	         minutes) until every figure is back within its tolerance
//	         (stated in the notes); each replica's live heap after two
//	         GCs (its pprof) is read then and at the baseline. Reported:
//	         baseline, peak and end of each, whether each returned (_ok)
//	         and all did (returns_to_baseline), steps done and failed,
//	         sessions that ended without being asked to (by what their
//	         screens said), messages sent, lost and their latency, and
//	         CPU over the churn. Runs once unless -runs is given; any
//	         failure, loss or figure not back makes the exit status
//	         non-zero.
//
// Sessions are opened at most -concurrency at a time; a failed dial or
// handshake is retried with backoff, and sessions that still fail are
// reported and make the exit status non-zero. Before a run one session on
// every replica opens a room and destroys it (the warm-up); between runs
// every session is closed and the tool waits until the servers hold none.
// With -addr, -pid gives the servers' PIDs for the CPU and memory figures,
// which are otherwise left out. CPU figures are in % of one core:
// server_cpu sums the replicas, redis_cpu the redis-servers this tool
// started (a cluster's nodes also one by one, redisN_cpu), each read from
// its /proc/PID/stat; tool_cpu is this process.
//
// Examples:
//
//	go run ./cmd/chatload -scenario latency -pairs 50 -rate 2 -duration 30s
//	go run ./cmd/chatload -scenario latency -idle 1000
//	go run ./cmd/chatload -scenario latency -redis -replicas 2
//	go run ./cmd/chatload -scenario connect -sessions 1000 -connect-rate 100
//	go run ./cmd/chatload -scenario idle -sessions 1000 -window 10s
//	go run ./cmd/chatload -scenario idle -redis -sessions 10000 -connect-rate 200 -runs 1
//	go run ./cmd/chatload -scenario abuse -duration 2m
//	go run ./cmd/chatload -scenario abuse -redis -redis-maxmemory 64mb -duration 2m
//	go run ./cmd/chatload -scenario slowredis -redis -duration 1m
//	go run ./cmd/chatload -scenario cluster -pairs 10 -rate 2
//	go run ./cmd/chatload -scenario soak -redis -duration 5m
//	go run ./cmd/chatload -bin /tmp/old/chat -scenario latency,connect,idle
//	go run ./cmd/chatload -addr 127.0.0.1:2222 -pid 4242 -scenario idle
//
// Progress goes to stderr, the report to stdout; with -json the report is
// JSON on stdout and the table goes to stderr.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ssh-burn/chat/internal/faultproxy"
	"github.com/ssh-burn/chat/internal/safetext"
)

func main() {
	cfg, asJSON, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(2)
	}
	cfg.logf = func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	table := io.Writer(os.Stdout)
	if asJSON {
		table = os.Stderr
	}
	writeTable(table, res)
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if jsonErr := enc.Encode(res); jsonErr != nil && err == nil {
			err = jsonErr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(1)
	}
}

// config is what to measure and how.
type config struct {
	addrs    []string // running servers; empty: start them
	pids     []int    // their PIDs, for CPU and memory; may be empty
	bin      string   // server binary to start; empty: build one
	src      string   // a directory in the module to build
	redis    bool
	replicas int
	// clusterReplicas is the replicas of the cluster scenario: -replicas
	// if given, else clusterReplicas.
	clusterReplicas int
	maxSessions     int
	// maxmemory is the maxmemory of the redis-server started ("64mb");
	// empty: none, as before.
	maxmemory string

	scenarios []string
	runs      int

	pairs     int
	rate      float64 // messages a second per pair
	duration  time.Duration
	idle      int // idle sessions held during latency runs
	lossAfter time.Duration
	// typed, if not zero, is the gap between the keys of a message typed
	// one at a time, as a person types (latency, cluster).
	typed time.Duration

	// abuseAddrs addresses with abuseSessions sessions each paste, in
	// the abuse scenario, at most one paste a session every abuseEvery;
	// after a refusal, the next try comes abuseRetry later.
	abuseAddrs, abuseSessions int
	abuseEvery, abuseRetry    time.Duration

	// slowPairs pairs talk in the slowredis scenario while the slow
	// replica's Redis replies slowMin–slowMax late.
	slowPairs        int
	slowMin, slowMax time.Duration

	// roomTTL is the servers' room TTL; zero: each scenario's own (see
	// scenarioTTL).
	roomTTL time.Duration

	// The soak keeps about soakSessions sessions churning for
	// soakDuration, churn steps a second over all its rooms, on servers
	// whose rooms live soakTTL.
	soakSessions int
	soakRuns     int
	soakDuration time.Duration
	soakTTL      time.Duration
	churn        float64

	sessions    int // for connect and idle
	connectRate float64
	concurrency int // sessions being opened at once
	window      time.Duration
	// settle is how long the servers get, after the warm-up and once
	// every session has shown its first screen, before memory or CPU is
	// read: the burst of opening must not count as the steady state.
	settle time.Duration

	// logf reports progress.
	logf func(format string, args ...any)
}

// defaultConfig is the configuration without flags.
func defaultConfig() config {
	return config{
		src: ".", maxSessions: 20000,
		scenarios: []string{"latency"}, runs: 3,
		pairs: 50, rate: 2, duration: 30 * time.Second, lossAfter: 10 * time.Second,
		abuseAddrs: 10, abuseSessions: 8, abuseRetry: time.Second,
		slowPairs: 100, slowMin: 2 * time.Second, slowMax: 4 * time.Second,
		soakSessions: 2000, soakRuns: 1, soakDuration: time.Hour, soakTTL: 3 * time.Minute, churn: 10,
		sessions: 1000, connectRate: 100, concurrency: 64, window: 10 * time.Second,
		settle: 2 * time.Second,
		logf:   func(string, ...any) {},
	}
}

var scenarios = map[string]func(context.Context, config, *servers) (runResult, error){
	"latency":   runLatency,
	"connect":   runConnect,
	"idle":      runIdle,
	"abuse":     runAbuse,
	"slowredis": runSlowRedis,
	"soak":      runSoak,
	"cluster":   runCluster,
}

// scenarioNames lists the scenarios for messages.
const scenarioNames = "latency, connect, idle, abuse, slowredis, soak, cluster"

func parseFlags(args []string, out io.Writer) (config, bool, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("chatload", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		addrs     = fs.String("addr", "", "`host:port[,host:port]` of running servers to measure instead of starting them")
		pids      = fs.String("pid", "", "`PID[,PID]` of the -addr servers, for CPU and memory readings (skipped without)")
		scenario  = fs.String("scenario", "latency", "`list` of scenarios to run, comma-separated: "+scenarioNames)
		asJSON    = fs.Bool("json", false, "print the results as JSON on stdout (the table goes to stderr)")
		replicas  = fs.Int("replicas", 0, "`number` of replicas to start on one Redis (with -redis; default 2), or on the cluster (default 4)")
		maxSess   = fs.Int("max-sessions", cfg.maxSessions, "CHAT_MAX_SESSIONS for the servers started")
		lossAfter = fs.Duration("loss-after", cfg.lossAfter, "a message not seen by then is lost")
	)
	fs.StringVar(&cfg.bin, "bin", "", "`path` of a server binary to start instead of building one from the module")
	fs.StringVar(&cfg.src, "src", cfg.src, "a `directory` in the module to build the server from")
	fs.BoolVar(&cfg.redis, "redis", false, "start redis-server and -replicas servers on it")
	fs.StringVar(&cfg.maxmemory, "redis-maxmemory", "", "maxmemory of the redis-server started (`size`, e.g. 64mb; noeviction as deploy/redis.conf); empty: none")
	fs.IntVar(&cfg.abuseAddrs, "abuse-addrs", cfg.abuseAddrs, "abuse: `number` of abusive addresses")
	fs.IntVar(&cfg.abuseSessions, "abuse-sessions", cfg.abuseSessions, "abuse: `number` of sessions from each abusive address (pairs: even)")
	fs.DurationVar(&cfg.abuseRetry, "abuse-retry", cfg.abuseRetry, "abuse: wait after a refused paste before the next")
	fs.DurationVar(&cfg.abuseEvery, "abuse-every", 0, "abuse: the least `time` from one paste of a session to its next (0: as fast as the limits allow)")
	fs.IntVar(&cfg.runs, "runs", cfg.runs, "runs of each scenario (soak: 1 unless given)")
	fs.IntVar(&cfg.pairs, "pairs", cfg.pairs, "latency, cluster: pairs of people talking (slowredis: 100 unless given)")
	fs.DurationVar(&cfg.slowMin, "slow-min", cfg.slowMin, "slowredis: the least delay of a reply to the slow replica")
	fs.DurationVar(&cfg.slowMax, "slow-max", cfg.slowMax, "slowredis: the most delay of a reply to the slow replica")
	fs.Float64Var(&cfg.rate, "rate", cfg.rate, "latency, cluster, slowredis: messages a second per pair")
	fs.DurationVar(&cfg.duration, "duration", cfg.duration, "latency, abuse: how long the pairs talk, the abusers paste; slowredis: how long replies are late; soak: how long it churns, 1h unless given")
	fs.DurationVar(&cfg.typed, "typed", 0, "latency, cluster: type each message a key at a time, this `gap` apart, as a person does, its latency timed from the Enter (0: the text and Enter in one write, as a paste)")
	fs.IntVar(&cfg.idle, "idle", 0, "latency, cluster: idle sessions, each alone in its room, held while the pairs talk")
	fs.IntVar(&cfg.sessions, "sessions", cfg.sessions, "connect, idle: sessions to open; soak: sessions at once, 2000 unless given")
	fs.Float64Var(&cfg.connectRate, "connect-rate", cfg.connectRate, "sessions opened a second (idle sessions and pairs too)")
	fs.IntVar(&cfg.concurrency, "concurrency", cfg.concurrency, "sessions being opened at once, at most")
	fs.DurationVar(&cfg.window, "window", cfg.window, "idle: CPU measurement window")
	fs.DurationVar(&cfg.roomTTL, "room-ttl", 0, "the started servers' room `TTL` (default: soak 3m, abuse the servers' own 10m, others 1h)")
	fs.Float64Var(&cfg.churn, "churn", cfg.churn, "soak: steps a second over all rooms (talk, leave and rejoin, reopen, destroy, abandon)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chatload [flags]\n\nMeasures the chat server with real SSH sessions, each from its own loopback address.\nSee the package documentation (go doc ./cmd/chatload) for the scenarios.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.lossAfter, cfg.maxSessions, cfg.replicas = *lossAfter, *maxSess, *replicas
	// Flags a scenario with defaults of its own takes only when given.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "pairs":
			cfg.slowPairs = cfg.pairs
		case "sessions":
			cfg.soakSessions = cfg.sessions
		case "runs":
			cfg.soakRuns = cfg.runs
		case "duration":
			cfg.soakDuration = cfg.duration
		case "room-ttl":
			cfg.soakTTL = cfg.roomTTL
		}
	})
	cfg.scenarios = splitList(*scenario)
	cfg.addrs = splitList(*addrs)
	for _, p := range splitList(*pids) {
		pid, err := strconv.Atoi(p)
		if err != nil {
			return cfg, false, fmt.Errorf("-pid %q: want a process ID", p)
		}
		cfg.pids = append(cfg.pids, pid)
	}
	return cfg, *asJSON, cfg.check()
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// check validates cfg and fills in what depends on other settings.
func (cfg *config) check() error {
	if len(cfg.scenarios) == 0 {
		return errors.New("-scenario: name at least one of " + scenarioNames)
	}
	for _, s := range cfg.scenarios {
		if scenarios[s] == nil {
			return fmt.Errorf("-scenario %q: want one of %s", s, scenarioNames)
		}
	}
	if len(cfg.addrs) > 0 {
		if cfg.redis || cfg.bin != "" {
			return errors.New("-addr measures running servers: it cannot be combined with -redis or -bin")
		}
		if len(cfg.pids) > 0 && len(cfg.pids) != len(cfg.addrs) {
			return errors.New("-pid: give one PID for each -addr")
		}
	} else if len(cfg.pids) > 0 {
		return errors.New("-pid goes with -addr")
	}
	onlyCluster := !slices.ContainsFunc(cfg.scenarios, func(s string) bool { return s != "cluster" })
	if cfg.clusterReplicas == 0 {
		cfg.clusterReplicas = cmp.Or(cfg.replicas, clusterReplicas)
	}
	switch {
	case cfg.replicas == 0 && cfg.redis:
		cfg.replicas = 2
	case cfg.replicas == 0:
		cfg.replicas = 1
	case cfg.replicas > 1 && !cfg.redis && !onlyCluster:
		return errors.New("-replicas: several replicas share rooms only through Redis; add -redis")
	}
	switch {
	case cfg.runs < 1:
		return errors.New("-runs: at least 1")
	case cfg.pairs < 1:
		return errors.New("-pairs: at least 1")
	case cfg.rate <= 0:
		return errors.New("-rate: must be positive")
	case cfg.duration <= 0 || cfg.window <= 0 || cfg.lossAfter <= 0:
		return errors.New("-duration, -window and -loss-after must be positive")
	case cfg.idle < 0 || cfg.sessions < 1:
		return errors.New("-idle: at least 0; -sessions: at least 1")
	case cfg.connectRate <= 0 || cfg.concurrency < 1:
		return errors.New("-connect-rate must be positive and -concurrency at least 1")
	case cfg.maxSessions < 1:
		return errors.New("-max-sessions: at least 1")
	case cfg.abuseAddrs < 1 || cfg.abuseSessions < 2 || cfg.abuseSessions%2 != 0:
		return errors.New("-abuse-addrs: at least 1; -abuse-sessions: an even number, at least 2")
	case cfg.abuseRetry <= 0 || cfg.abuseEvery < 0:
		return errors.New("-abuse-retry must be positive, -abuse-every at least 0")
	case cfg.maxmemory != "" && !cfg.redis:
		return errors.New("-redis-maxmemory goes with -redis")
	case cfg.slowPairs < 1 || cfg.slowMin < 0 || cfg.slowMax < cfg.slowMin:
		return errors.New("-pairs: at least 1; -slow-min and -slow-max: 0 <= min <= max")
	case slices.Contains(cfg.scenarios, "slowredis") && (!cfg.redis || cfg.replicas != 2 || len(cfg.addrs) > 0):
		return errors.New("slowredis: it starts two replicas on Redis itself (-redis -replicas 2, no -addr)")
	case cfg.roomTTL < 0 || cfg.soakTTL <= 0:
		return errors.New("-room-ttl must be positive")
	case slices.Contains(cfg.scenarios, "cluster") && len(cfg.addrs) > 0:
		return errors.New("cluster: it starts the Redis Cluster and the replicas itself (no -addr)")
	case slices.Contains(cfg.scenarios, "soak") && len(cfg.addrs) > 0:
		return errors.New("soak: it reads the servers it starts (no -addr)")
	case cfg.soakSessions < 2 || cfg.soakRuns < 1 || cfg.soakDuration <= 0 || cfg.churn <= 0:
		return errors.New("soak: -sessions at least 2, -duration and -churn positive")
	}
	return nil
}

// sessionsNeeded is the most sessions one run holds open at once.
func (cfg config) sessionsNeeded() int {
	n := 0
	for _, s := range cfg.scenarios {
		switch s {
		case "latency", "cluster":
			n = max(n, cfg.idle+2*cfg.pairs)
		case "abuse":
			n = max(n, cfg.abuseAddrs*cfg.abuseSessions+2)
		case "slowredis":
			n = max(n, 2*cfg.slowPairs+2)
		case "soak":
			n = max(n, cfg.soakSessions+2)
		default:
			n = max(n, cfg.sessions)
		}
	}
	return n
}

// setup describes a scenario's parameters for the report.
func (cfg config) setup(scenario, bin string) string {
	var what string
	switch scenario {
	case "latency":
		what = fmt.Sprintf("%d pairs × %g msg/s × %v, %d idle sessions", cfg.pairs, cfg.rate, cfg.duration, cfg.idle)
	case "connect":
		what = fmt.Sprintf("%d sessions at %g/s", cfg.sessions, cfg.connectRate)
	case "idle":
		what = fmt.Sprintf("%d idle sessions, CPU over %v", cfg.sessions, cfg.window)
	case "abuse":
		pace := "as fast as the limits allow"
		if cfg.abuseEvery > 0 {
			pace = fmt.Sprintf("one every %v a session", cfg.abuseEvery)
		}
		what = fmt.Sprintf("%d addresses × %d sessions paste %d-byte messages for %v, %s (retry %v after a refusal); newcomers talk at %g msg/s from halfway",
			cfg.abuseAddrs, cfg.abuseSessions, safetext.MaxMessageBytes, cfg.duration, pace, cfg.abuseRetry, cfg.rate)
	case "slowredis":
		what = fmt.Sprintf("%d pairs × %g msg/s (each message after the last arrived); the second replica's Redis replies %v–%v late for %v between %v of normal talk; then one join's reply held %v",
			cfg.slowPairs, cfg.rate, cfg.slowMin, cfg.slowMax, cfg.duration, slowSettle, joinHold)
	case "cluster":
		what = fmt.Sprintf("%d pairs × %g msg/s × %v across replicas, %d idle sessions; %d replicas on a %d-master Redis Cluster",
			cfg.pairs, cfg.rate, cfg.duration, cfg.idle, cfg.clusterReplicas, clusterMasters)
	case "soak":
		what = fmt.Sprintf("about %d sessions (%d rooms) churning for %v at %g steps/s, room TTL %v",
			cfg.soakSessions/2*2, cfg.soakSessions/2, cfg.soakDuration, cfg.churn, cfg.soakTTL)
	}
	where := fmt.Sprintf("running servers %s", strings.Join(cfg.addrs, ", "))
	if len(cfg.addrs) == 0 {
		store := "memory store"
		switch {
		case scenario == "cluster":
			store = "the cluster"
		case cfg.redis:
			store = fmt.Sprintf("%d replicas on Redis", cfg.replicas)
			if cfg.maxmemory != "" {
				store += " (maxmemory " + cfg.maxmemory + ")"
			}
		}
		where = fmt.Sprintf("%s, %s, fresh for each run", bin, store)
	}
	return what + "; " + where
}

// scenarioTTL is the room TTL of the servers started for scenario, as
// their -room-ttl; empty: their own default.
func (cfg config) scenarioTTL(scenario string) string {
	switch {
	case scenario == "soak":
		// Rooms must expire many times over the run.
		return cfg.soakTTL.String()
	case cfg.roomTTL > 0:
		return cfg.roomTTL.String()
	case scenario == "abuse":
		// The budgets refill over a room's life: measure them as
		// shipped.
		return ""
	}
	// Nothing expires while it is measured.
	return "1h"
}

// raiseFileLimit lifts the soft limit on open files to the hard one and
// checks that n sessions fit.
func raiseFileLimit(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("file limit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raise file limit: %w", err)
		}
	}
	// A session is one socket; leave room for everything else.
	if need := uint64(n) + 256; lim.Cur < need {
		return fmt.Errorf("%d sessions need about %d open files; the limit is %d", n, need, lim.Cur)
	}
	return nil
}

// run measures every scenario cfg.runs times. It returns what was measured
// even with an error, which it returns also for lost messages and sessions
// that failed to open.
func run(ctx context.Context, cfg config) (*results, error) {
	res := &results{}
	if err := cfg.check(); err != nil {
		return res, err
	}
	if err := raiseFileLimit(cfg.sessionsNeeded()); err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "chatload-")
	if err != nil {
		return res, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	bin := cfg.bin
	if len(cfg.addrs) == 0 && bin == "" {
		cfg.logf("building the server from %s", cfg.src)
		if bin, err = buildServer(ctx, cfg.src, dir); err != nil {
			return res, err
		}
	}
	for _, name := range cfg.scenarios {
		sr := scenarioResult{Scenario: name, Setup: cfg.setup(name, bin)}
		runs := cfg.runs
		if name == "soak" {
			runs = cfg.soakRuns
		}
		for i := 1; i <= runs; i++ {
			cfg.logf("%s: run %d of %d", name, i, runs)
			rr, err := runOnce(ctx, cfg, name, bin, dir)
			rr.Run = i
			if err != nil {
				res.Scenarios = append(res.Scenarios, sr)
				return res, fmt.Errorf("%s run %d: %w", name, i, err)
			}
			sr.Runs = append(sr.Runs, rr)
		}
		sr.Median = medians(sr.Runs)
		res.Scenarios = append(res.Scenarios, sr)
	}
	return res, res.problems()
}

// runOnce runs one scenario once: on fresh servers unless they were
// given, after a warm-up, and waiting at the end until the servers have
// let go of every session, so that runs do not disturb each other.
func runOnce(ctx context.Context, cfg config, scenario, bin, dir string) (rr runResult, err error) {
	srv := &servers{addrs: cfg.addrs, pids: cfg.pids}
	if len(cfg.addrs) == 0 {
		var runDir string
		if runDir, err = os.MkdirTemp(dir, scenario+"-"); err != nil {
			return rr, fmt.Errorf("temporary directory: %w", err)
		}
		opts := serverOptions{
			bin: bin, dir: runDir, replicas: cfg.replicas, redis: cfg.redis, maxSessions: cfg.maxSessions,
			maxmemory: cfg.maxmemory, http: scenario == "abuse" || scenario == "slowredis" || scenario == "soak",
			roomTTL: cfg.scenarioTTL(scenario),
		}
		if scenario == "cluster" {
			opts.replicas, opts.redis, opts.cluster, opts.maxmemory = cfg.clusterReplicas, true, clusterMasters, ""
		}
		var fault *faultproxy.Proxy
		if scenario == "slowredis" {
			opts.link = slowLink(&fault)
		}
		if srv, err = startServers(ctx, opts); err != nil {
			if fault != nil {
				fault.Close()
			}
			return rr, err
		}
		srv.fault = fault
		defer func() {
			if err != nil && ctx.Err() == nil {
				err = fmt.Errorf("%w%s", err, srv.logTails())
			}
			if stopErr := srv.stop(); stopErr != nil && err == nil {
				err = stopErr
			}
		}()
	}
	base, err := serverConns(srv.addrs)
	if err != nil {
		return rr, err
	}
	// The soak warms up by itself: its baseline comes before.
	if scenario != "soak" {
		if err := warmUp(ctx, srv); err != nil {
			return rr, err
		}
	}
	if err := waitDrained(ctx, srv, base); err != nil {
		return rr, fmt.Errorf("after the warm-up: %w", err)
	}
	if err := pause(ctx, cfg.settle); err != nil {
		return rr, err
	}
	if rr, err = scenarios[scenario](ctx, cfg, srv); err != nil {
		return rr, err
	}
	cfg.logf("waiting for the servers to let go of every session")
	if err := waitDrained(ctx, srv, base); err != nil {
		return rr, err
	}
	if warnings, errs, first := srv.serverLogSummary(); warnings+errs > 0 {
		rr.Notes = append(rr.Notes, fmt.Sprintf("the servers logged %d warnings and %d errors, first: %s", warnings, errs, strings.Join(first, " | ")))
	}
	return rr, nil
}

// figure is one measured number.
type figure struct {
	Name  string  `json:"name"`
	Unit  string  `json:"unit,omitempty"` // empty for counts
	Value float64 `json:"value"`
}

// runResult is what one run of a scenario measured.
type runResult struct {
	Run     int      `json:"run"`
	Figures []figure `json:"figures"`
	Notes   []string `json:"notes,omitempty"`

	lost     int // messages
	failures int // sessions that did not open, or steps that failed
	leaks    int // figures that did not return to their baseline
}

func (rr *runResult) add(name, unit string, value float64) {
	rr.Figures = append(rr.Figures, figure{name, unit, value})
}

// value returns the figure called name.
func (rr runResult) value(name string) (float64, bool) {
	for _, f := range rr.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// scenarioResult is every run of one scenario and the medians.
type scenarioResult struct {
	Scenario string      `json:"scenario"`
	Setup    string      `json:"setup"`
	Runs     []runResult `json:"runs"`
	Median   []figure    `json:"median"`
}

// results is everything measured.
type results struct {
	Scenarios []scenarioResult `json:"scenarios"`
}

// problems is an error for messages lost and sessions that failed.
func (r *results) problems() error {
	lost, failed, leaks := 0, 0, 0
	for _, s := range r.Scenarios {
		for _, rr := range s.Runs {
			lost, failed, leaks = lost+rr.lost, failed+rr.failures, leaks+rr.leaks
		}
	}
	switch {
	case lost+failed+leaks == 0:
		return nil
	case leaks > 0:
		return fmt.Errorf("%d messages lost, %d sessions or steps failed, %d runs did not return to their baseline", lost, failed, leaks)
	}
	return fmt.Errorf("%d messages lost, %d sessions or steps failed", lost, failed)
}

// columns is every figure any of runs has, in the order they first
// appear: a run may have figures another has not (a kind of refusal).
func columns(runs []runResult) []figure {
	var out []figure
	seen := map[string]bool{}
	for _, rr := range runs {
		for _, f := range rr.Figures {
			if !seen[f.Name] {
				seen[f.Name] = true
				out = append(out, f)
			}
		}
	}
	return out
}

// medians is the median of each figure over the runs that have it, in
// the order of columns.
func medians(runs []runResult) []figure {
	if len(runs) == 0 {
		return nil
	}
	var out []figure
	for _, f := range columns(runs) {
		var values []float64
		for _, rr := range runs {
			if v, ok := rr.value(f.Name); ok {
				values = append(values, v)
			}
		}
		slices.Sort(values)
		m := values[len(values)/2]
		if len(values)%2 == 0 {
			m = (values[len(values)/2-1] + m) / 2
		}
		out = append(out, figure{f.Name, f.Unit, m})
	}
	return out
}

// wideTable is the most figures a scenario's table has a column each
// for; beyond it (the soak's), every figure is a row and every run a
// column.
const wideTable = 16

// writeTable prints every scenario as a table: a row a run, then the
// medians; or, with more than wideTable figures, a row a figure.
func writeTable(w io.Writer, res *results) {
	for _, s := range res.Scenarios {
		fmt.Fprintf(w, "\n%s: %s\n", s.Scenario, s.Setup)
		if len(s.Runs) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		cols := columns(s.Runs)
		name := func(f figure) string {
			if f.Unit != "" {
				return f.Name + " " + f.Unit
			}
			return f.Name
		}
		cell := func(f figure, figures []figure) string {
			for _, g := range figures {
				if g.Name == f.Name {
					return g.format()
				}
			}
			return "-"
		}
		line := func(cells []string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
		if len(cols) > wideTable {
			header := []string{"figure"}
			for _, rr := range s.Runs {
				header = append(header, "run "+strconv.Itoa(rr.Run))
			}
			if len(s.Runs) > 1 {
				header = append(header, "median")
			}
			line(header)
			for _, f := range cols {
				cells := []string{name(f)}
				for _, rr := range s.Runs {
					cells = append(cells, cell(f, rr.Figures))
				}
				if len(s.Runs) > 1 {
					cells = append(cells, cell(f, s.Median))
				}
				line(cells)
			}
		} else {
			header := []string{"run"}
			for _, f := range cols {
				header = append(header, name(f))
			}
			line(header)
			row := func(label string, figures []figure) {
				cells := []string{label}
				for _, f := range cols {
					cells = append(cells, cell(f, figures))
				}
				line(cells)
			}
			for _, rr := range s.Runs {
				row(strconv.Itoa(rr.Run), rr.Figures)
			}
			if len(s.Runs) > 1 {
				row("median", s.Median)
			}
		}
		tw.Flush()
		for _, rr := range s.Runs {
			for _, n := range rr.Notes {
				fmt.Fprintf(w, "run %d: %s\n", rr.Run, n)
			}
		}
	}
}

func (f figure) format() string {
	switch f.Unit {
	case "":
		return strconv.FormatFloat(f.Value, 'f', -1, 64)
	case "ms", "MiB", "s", "/s":
		return fmt.Sprintf("%.1f", f.Value)
	case "%core":
		return fmt.Sprintf("%.2f", f.Value)
	case "%":
		return fmt.Sprintf("%.1f", f.Value)
	}
	return fmt.Sprintf("%.0f", f.Value)
}
