// Command chat serves private, self-destructing two-person chat rooms that
// people reach with nothing but ssh.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	// Time zones sent by clients (TZ) must resolve even in a container
	// without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/pires/go-proxyproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/limits/local"
	redislimits "github.com/ssh-burn/chat/limits/redis"
	"github.com/ssh-burn/chat/server"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
	"github.com/ssh-burn/chat/store/redisstore"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		if err := healthcheck(context.Background(), os.Args[2:], os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "chat healthcheck:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "chat:", err)
			os.Exit(1)
		}
	}
}

// healthcheck asks this machine's server, on the operations listener it is
// configured with (-http or CHAT_HTTP_LISTEN, as the server reads them),
// whether it serves: the image's HEALTHCHECK, where there is no shell.
func healthcheck(ctx context.Context, args []string, getenv func(string) string) error {
	fs := flag.NewFlagSet("chat healthcheck", flag.ContinueOnError)
	httpListen := fs.String("http", getenv("CHAT_HTTP_LISTEN"), "`address` of the server's operations listener (env CHAT_HTTP_LISTEN)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *httpListen == "" {
		return errors.New("no operations listener is configured (-http or CHAT_HTTP_LISTEN)")
	}
	return ops.Healthcheck(ctx, *httpListen)
}

type config struct {
	listen string
	// publicAddr is zero when not configured: it is then derived from the
	// address actually listened on (see derivePublicAddr).
	publicAddr server.PublicAddr
	hostKey    string
	roomTTL    time.Duration
	redisURL   string
	seatLease  time.Duration
	// outageTolerance is how long a Redis outage may last before the
	// seats of this replica are given up.
	outageTolerance time.Duration
	// maxSessions caps open chat sessions on this replica.
	maxSessions int
	// addressBudget is the per-address byte budget's burst, in bytes.
	addressBudget int
	// trustedProxies are load balancers whose PROXY protocol header names
	// the real client, which the per-address limits need.
	trustedProxies []netip.Prefix
	// httpListen is the operations listener's address; empty: none.
	httpListen string
	pprof      bool
	logFormat  string // text or json
	logLevel   slog.Level
	// drainTimeout bounds the shutdown, from the signal to the exit.
	drainTimeout time.Duration
}

// parseConfig reads flags, falling back to environment variables for flags
// not given, and validates everything before anything starts.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(out)
	var (
		listen   = fs.String("listen", ":2222", "`address` to listen on for SSH (env CHAT_LISTEN)")
		public   = fs.String("public-addr", "", "`host[:port]` people ssh to, shown in the command to share (env CHAT_PUBLIC_ADDR; default: derived from -listen)")
		hostKey  = fs.String("host-key", ".ssh/id_ed25519", "`path` of the SSH host key, created (ed25519, mode 0600) if missing (env CHAT_HOST_KEY)")
		roomTTL  = fs.String("room-ttl", "10m", "`duration` a room lives after it is created (env CHAT_ROOM_TTL)")
		redisURL = fs.String("redis", "", "Redis `URL` shared by several replicas: redis://[user:pass@]host:port[/db], rediss://… for TLS,\nor a cluster as redis://host1:port?addr=host2:port&addr=host3:port; empty keeps rooms in this process's memory (env CHAT_REDIS_URL)")
		lease    = fs.String("seat-lease", redisstore.DefaultLease.String(), "with -redis, `duration` a seat outlives a replica that died holding it (1s-1m; env CHAT_SEAT_LEASE)")
		outage   = fs.String("redis-outage-tolerance", redisstore.DefaultOutageTolerance.String(), "with -redis, `duration` an outage of Redis may last before the seats on this replica are given up;\nshorter outages (a pause, a restart that keeps the data, a failover) end no session (1s-1h; env CHAT_REDIS_OUTAGE_TOLERANCE)")
		sessions = fs.String("max-sessions", strconv.Itoa(server.DefaultLimits().MaxSessions), "`number` of chat sessions this replica serves at once (5,000 per CPU within the open-files limit,\nunless set); beyond it people are told the server is busy (env CHAT_MAX_SESSIONS)")
		budget   = fs.String("address-budget", strconv.Itoa(limits.DefaultBudgetBurst>>10), "`KiB` one client address may make the service keep at once (rooms, seats, messages, at their padded\nsizes); twice that comes back per room TTL (8-65536; env CHAT_ADDRESS_BUDGET)")
		proxies  = fs.String("trusted-proxies", "", "comma-separated `CIDRs` of load balancers that send the PROXY protocol header (v1 or v2);\nconnections from them must carry it, and per-address limits apply to the client it names (env CHAT_TRUSTED_PROXIES)")
		httpAddr = fs.String("http", "", "`address` of the operations listener (/healthz, /readyz, /metrics), e.g. :9090; never the SSH port;\nempty: none (env CHAT_HTTP_LISTEN)")
		pprof    = fs.String("pprof", "false", "serve Go's profiles under /debug/pprof/ on the operations listener too, if `true` (env CHAT_PPROF)")
		logFmt   = fs.String("log-format", "text", "`format` of the logs on stderr: text or json (env CHAT_LOG_FORMAT)")
		logLevel = fs.String("log-level", "info", "least `level` logged: debug, info, warn or error (env CHAT_LOG_LEVEL)")
		drain    = fs.String("drain-timeout", "10s", "`duration` a shutdown may take, from SIGTERM to exit: sessions are told and leave (env CHAT_DRAIN_TIMEOUT)")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: chat [flags]\n\nServes private, self-destructing two-person chat rooms over SSH.\nEvery flag can also be set with the environment variable named in its description.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		if strings.ContainsAny(fs.Arg(0), "@:") {
			// A URL or a user:password given without its flag: not to be
			// echoed into logs.
			return config{}, errors.New("unexpected argument (see -h; a Redis URL goes after -redis)")
		}
		return config{}, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	// setting names where a value came from, so an error points at the
	// flag or the environment variable that was actually set.
	fromEnv := map[string]string{}
	setting := func(flag string) string {
		if env, ok := fromEnv[flag]; ok {
			return env
		}
		return "-" + flag
	}
	for name, env := range map[string]string{
		"listen": "CHAT_LISTEN", "public-addr": "CHAT_PUBLIC_ADDR", "host-key": "CHAT_HOST_KEY",
		"room-ttl": "CHAT_ROOM_TTL", "redis": "CHAT_REDIS_URL", "seat-lease": "CHAT_SEAT_LEASE", "trusted-proxies": "CHAT_TRUSTED_PROXIES",
		"max-sessions": "CHAT_MAX_SESSIONS", "redis-outage-tolerance": "CHAT_REDIS_OUTAGE_TOLERANCE", "address-budget": "CHAT_ADDRESS_BUDGET",
		"http": "CHAT_HTTP_LISTEN", "pprof": "CHAT_PPROF", "log-format": "CHAT_LOG_FORMAT", "log-level": "CHAT_LOG_LEVEL",
		"drain-timeout": "CHAT_DRAIN_TIMEOUT",
	} {
		if v := getenv(env); v != "" && !given[name] {
			fromEnv[name] = env
			// Every flag is a string, so Set cannot fail; values are
			// checked below.
			_ = fs.Set(name, v)
		}
	}

	cfg := config{listen: *listen, hostKey: *hostKey, redisURL: *redisURL}
	_, listenPort, err := net.SplitHostPort(cfg.listen)
	if err != nil {
		return config{}, fmt.Errorf("%s %q: want host:port or :port", setting("listen"), cfg.listen)
	}
	if p, err := strconv.Atoi(listenPort); err != nil || p < 0 || p > 65535 {
		return config{}, fmt.Errorf("%s %q: port must be a number 0-65535", setting("listen"), cfg.listen)
	}
	if *public != "" {
		if cfg.publicAddr, err = server.ParsePublicAddr(*public); err != nil {
			return config{}, fmt.Errorf("%s: %w", setting("public-addr"), err)
		}
	}
	if cfg.roomTTL, err = time.ParseDuration(*roomTTL); err != nil {
		return config{}, fmt.Errorf("%s %q: %w", setting("room-ttl"), *roomTTL, err)
	}
	if cfg.roomTTL < time.Second || cfg.roomTTL > 24*time.Hour {
		return config{}, fmt.Errorf("%s %v: must be between 1s and 24h", setting("room-ttl"), cfg.roomTTL)
	}
	if cfg.hostKey == "" {
		return config{}, fmt.Errorf("%s: a path is required", setting("host-key"))
	}
	if cfg.redisURL != "" {
		client, err := redisstore.NewClient(cfg.redisURL)
		if err != nil {
			return config{}, fmt.Errorf("%s: %w", setting("redis"), err)
		}
		client.Close()
	}
	for _, field := range strings.Split(*proxies, ",") {
		if field = strings.TrimSpace(field); field == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(field)
		if err != nil {
			addr, addrErr := netip.ParseAddr(field)
			if addrErr != nil {
				return config{}, fmt.Errorf("%s %q: want an address or CIDR such as 10.0.0.0/8", setting("trusted-proxies"), field)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		cfg.trustedProxies = append(cfg.trustedProxies, prefix.Masked())
	}
	if cfg.seatLease, err = time.ParseDuration(*lease); err != nil {
		return config{}, fmt.Errorf("%s %q: %w", setting("seat-lease"), *lease, err)
	}
	if cfg.seatLease < time.Second || cfg.seatLease > time.Minute {
		return config{}, fmt.Errorf("%s %v: must be between 1s and 1m", setting("seat-lease"), cfg.seatLease)
	}
	if cfg.outageTolerance, err = time.ParseDuration(*outage); err != nil {
		return config{}, fmt.Errorf("%s %q: %w", setting("redis-outage-tolerance"), *outage, err)
	}
	if cfg.outageTolerance < time.Second || cfg.outageTolerance > time.Hour {
		return config{}, fmt.Errorf("%s %v: must be between 1s and 1h", setting("redis-outage-tolerance"), cfg.outageTolerance)
	}
	if cfg.maxSessions, err = strconv.Atoi(*sessions); err != nil || cfg.maxSessions < 1 {
		return config{}, fmt.Errorf("%s %q: want a whole number of at least 1", setting("max-sessions"), *sessions)
	}
	// At least the largest single cost (a message of the largest size).
	kib, err := strconv.Atoi(*budget)
	if err != nil || kib < 8 || kib > 64<<10 {
		return config{}, fmt.Errorf("%s %q: want a whole number of KiB from 8 to 65536", setting("address-budget"), *budget)
	}
	cfg.addressBudget = kib << 10
	if cfg.httpListen = *httpAddr; cfg.httpListen != "" {
		_, httpPort, err := net.SplitHostPort(cfg.httpListen)
		if err != nil {
			return config{}, fmt.Errorf("%s %q: want host:port or :port", setting("http"), cfg.httpListen)
		}
		if httpPort == listenPort && httpPort != "0" {
			return config{}, fmt.Errorf("%s %q: the operations listener needs a port of its own, not the SSH port", setting("http"), cfg.httpListen)
		}
	}
	if cfg.pprof, err = strconv.ParseBool(*pprof); err != nil {
		return config{}, fmt.Errorf("%s %q: want true or false", setting("pprof"), *pprof)
	}
	if cfg.pprof && cfg.httpListen == "" {
		return config{}, fmt.Errorf("%s: profiles are served on the operations listener; set -http too", setting("pprof"))
	}
	switch cfg.logFormat = *logFmt; cfg.logFormat {
	case "text", "json":
	default:
		return config{}, fmt.Errorf("%s %q: want text or json", setting("log-format"), *logFmt)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return config{}, fmt.Errorf("%s %q: want debug, info, warn or error", setting("log-level"), *logLevel)
	}
	if cfg.drainTimeout, err = time.ParseDuration(*drain); err != nil {
		return config{}, fmt.Errorf("%s %q: %w", setting("drain-timeout"), *drain, err)
	}
	if cfg.drainTimeout < time.Second || cfg.drainTimeout > 10*time.Minute {
		return config{}, fmt.Errorf("%s %v: must be between 1s and 10m", setting("drain-timeout"), cfg.drainTimeout)
	}
	return cfg, nil
}

// derivePublicAddr is the address to share when none is configured: the one
// listened on, where listening on every interface says nothing about the name
// people use, so localhost (right for a laptop; operators set -public-addr).
func derivePublicAddr(listen *net.TCPAddr) server.PublicAddr {
	host := listen.IP.String()
	if listen.IP == nil || listen.IP.IsUnspecified() {
		host = "localhost"
	}
	return server.PublicAddr{Host: host, Port: listen.Port}
}

// behindProxies reads the PROXY protocol header on connections from the
// trusted load balancers (it must be there) and leaves every other
// connection untouched, so nobody else can claim another address.
func behindProxies(ln net.Listener, trusted []netip.Prefix) net.Listener {
	return &proxyproto.Listener{
		Listener:          ln,
		ReadHeaderTimeout: 5 * time.Second,
		ConnPolicy: func(opts proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			if ap, err := netip.ParseAddrPort(opts.Upstream.String()); err == nil {
				for _, p := range trusted {
					if p.Contains(ap.Addr().Unmap()) {
						return proxyproto.REQUIRE, nil
					}
				}
			}
			return proxyproto.SKIP, nil
		},
	}
}

// openedStore is the configured store and what comes with it.
type openedStore struct {
	rooms store.Store // its Close also releases its Redis client, once
	kind  string      // a word for the logs
	// health is nil while the store serves (with Redis: while it answers,
	// or has not for less than the outage tolerance).
	health func() error
	// sharedLimits makes the per-address limits every replica shares,
	// counting an open chat for at most hold; nil: they are counted in
	// this process.
	sharedLimits func(l limits.Config, hold time.Duration) limits.Limiter
}

func openStore(ctx context.Context, cfg config, logger *slog.Logger) (openedStore, error) {
	if cfg.redisURL == "" {
		rooms := memstore.New(cfg.roomTTL)
		return openedStore{rooms: rooms, kind: "memory", health: rooms.Health}, nil
	}
	// go-redis reports some trouble (failed dials) only through its own
	// process-wide logger; send that to ours.
	redis.SetLogger(newRedisLog(logger.With("component", "redis")))
	client, err := redisstore.NewClient(cfg.redisURL)
	if err != nil {
		return openedStore{}, err
	}
	startCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rooms, err := redisstore.New(startCtx, redisstore.Config{
		Client: client, TTL: cfg.roomTTL, Lease: cfg.seatLease, OutageTolerance: cfg.outageTolerance, Logger: logger,
	})
	if err != nil {
		client.Close()
		return openedStore{}, err
	}
	return openedStore{
		rooms:  &closeBoth{Store: rooms, client: client},
		kind:   "redis",
		health: rooms.Health,
		sharedLimits: func(l limits.Config, hold time.Duration) limits.Limiter {
			return redislimits.New(redislimits.Config{Client: client, Limits: l, Replica: rooms, Hold: hold, Logger: logger})
		},
	}, nil
}

// redisLog adapts slog to go-redis's logger interface, at most a line a
// second after a short burst: while Redis is down every command's failed
// dial is reported, several a second, and the store already says it once.
type redisLog struct {
	log        *slog.Logger
	lines      *rate.Limiter
	suppressed atomic.Int64
}

func newRedisLog(log *slog.Logger) *redisLog {
	return &redisLog{log: log, lines: rate.NewLimiter(1, 3)}
}

func (r *redisLog) Printf(ctx context.Context, format string, v ...any) {
	if !r.lines.Allow() {
		r.suppressed.Add(1)
		return
	}
	if n := r.suppressed.Swap(0); n > 0 {
		r.log.WarnContext(ctx, fmt.Sprintf(format, v...), "suppressed", n)
		return
	}
	r.log.WarnContext(ctx, fmt.Sprintf(format, v...))
}

// closeBoth closes a store, then the client it was using, once.
type closeBoth struct {
	store.Store
	client io.Closer
	once   sync.Once
	err    error
}

func (c *closeBoth) Close() error {
	c.once.Do(func() { c.err = errors.Join(c.Store.Close(), c.client.Close()) })
	return c.err
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := newLogger(stderr, cfg)

	hostKey, err := server.LoadOrCreateHostKey(cfg.hostKey)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var opsLn net.Listener
	if cfg.httpListen != "" {
		if opsLn, err = net.Listen("tcp", cfg.httpListen); err != nil {
			ln.Close()
			return fmt.Errorf("listen for operations: %w", err)
		}
	}
	closeListeners := func() {
		ln.Close()
		if opsLn != nil {
			opsLn.Close()
		}
	}
	if cfg.publicAddr == (server.PublicAddr{}) {
		cfg.publicAddr = derivePublicAddr(ln.Addr().(*net.TCPAddr))
	}
	if len(cfg.trustedProxies) > 0 {
		ln = behindProxies(ln, cfg.trustedProxies)
	}
	opened, err := openStore(ctx, cfg, logger)
	if err != nil {
		closeListeners()
		return err
	}
	rooms := opened.rooms
	defer rooms.Close()
	sessionLimits := server.DefaultLimits()
	sessionLimits.MaxSessions = cfg.maxSessions
	// A session never outlives its room by much, however long the TTL.
	sessionLimits.MaxSession = cfg.roomTTL + time.Minute
	sessionLimits.IdleTimeout = min(sessionLimits.IdleTimeout, cfg.roomTTL)
	// An address's byte budget comes back over a room's life, as what
	// it made the store keep expires.
	perAddr := limits.DefaultConfig()
	perAddr.BudgetBurst, perAddr.BudgetRefill = cfg.addressBudget, 2*cfg.addressBudget
	perAddr.BudgetWindow = cfg.roomTTL
	var addrLimits limits.Limiter = local.New(perAddr)
	shared := opened.sharedLimits != nil
	if shared {
		// An open chat counts a little longer than the longest session.
		addrLimits = opened.sharedLimits(perAddr, sessionLimits.MaxSession+2*time.Minute)
	}
	defer addrLimits.Close()
	registry := prometheus.NewRegistry()
	srv, err := server.New(server.Config{
		Store: rooms, HostKey: hostKey, PublicAddr: cfg.publicAddr, Logger: logger,
		Limits: sessionLimits, AddrLimits: addrLimits, Metrics: ops.NewMetrics(registry),
	})
	if err != nil {
		closeListeners()
		return err
	}

	// Ready while the store serves and until the drain begins; alive
	// until the process exits.
	var draining atomic.Bool
	var opsSrv *http.Server
	if opsLn != nil {
		opsSrv = ops.NewServer(ops.Handler(ops.Config{
			Ready: func() error {
				if draining.Load() {
					return ops.ErrDraining
				}
				return opened.health()
			},
			Metrics: registry,
			Pprof:   cfg.pprof,
		}))
		go func() {
			if err := opsSrv.Serve(opsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("operations listener", "err", err)
			}
		}()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "http", listenerAddr(opsLn),
		"version", buildVersion(), "store", opened.kind, "share", cfg.publicAddr.Command(""),
		"host_key", gossh.FingerprintSHA256(hostKey.PublicKey()), "room_ttl", cfg.roomTTL,
		"max_sessions", sessionLimits.MaxSessions, "trusted_proxies", prefixes(cfg.trustedProxies),
		"limits", limitsSummary(sessionLimits, perAddr, shared), "pprof", cfg.pprof)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		shutdownOps(opsSrv)
		return err
	case <-ctx.Done():
	}

	// The drain: say at once that this replica takes no more sessions,
	// stop accepting them, and end the open ones, all within the drain
	// timeout.
	draining.Store(true)
	logger.Info("draining", "timeout", cfg.drainTimeout, "sessions", srv.Sessions())
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Shutdown(drainCtx) }()
	// Closing the store ends every seat here: each screen says the server
	// is going away (and, with Redis, that the room lives on and how to
	// return), each seat is given up at once, so a partner on another
	// replica sees the person leave, and each session ends.
	if err := rooms.Close(); err != nil {
		logger.Warn("close store", "err", err)
	}
	if err := <-stopped; err != nil {
		logger.Warn("sessions still open at the drain timeout; closing them", "err", err)
		srv.Close()
	}
	<-served
	shutdownOps(opsSrv)
	logger.Info("stopped")
	return nil
}

// newLogger logs at cfg's level, as text or JSON.
func newLogger(w io.Writer, cfg config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// shutdownOps closes the operations listener, last: probes get answers
// until the process is about to exit.
func shutdownOps(srv *http.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}

func listenerAddr(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}

func prefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// limitsSummary names the limits in force, for the startup line.
func limitsSummary(l server.Limits, a limits.Config, shared bool) string {
	where := "in this replica"
	if shared {
		where = "shared by the replicas"
	}
	return fmt.Sprintf("per address (%s): %d chats open, %g new connections/s (burst %d), %d rooms/min, %d failed joins/min, %d KiB kept (burst; +%d KiB per %s); %g messages/s (burst %d) a session; idle %s",
		where, a.ConnsPerAddr, float64(a.NewConnsPerSecond), a.NewConnsBurst, a.RoomsPerMinute, a.FailedJoins,
		a.BudgetBurst>>10, a.BudgetRefill>>10, a.BudgetWindow,
		float64(l.MessagesPerSecond), l.MessageBurst, l.IdleTimeout)
}

// version is set at build time (-ldflags "-X main.version=v1.2.3"); without
// it, the commit the binary was built from, when Go recorded it.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v, modified := info.Main.Version, false
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision" && len(s.Value) >= 12:
			v = s.Value[:12]
		case s.Key == "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		v += "-modified"
	}
	return v
}
