package server

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what one client, one session and everybody together may
// use. Zero fields take the defaults in DefaultLimits.
type Limits struct {
	// HandshakeTimeout bounds the time from TCP accept until the session
	// asks for its shell, however slowly a client trickles its bytes.
	HandshakeTimeout time.Duration
	// IdleTimeout ends a session that typed nothing for this long. The
	// server's own redraws do not count as activity.
	IdleTimeout time.Duration
	// MaxSession ends any session after this long; set it a little above
	// the room TTL.
	MaxSession time.Duration
	// KeepaliveInterval is how often a silent client is asked whether it is
	// still there; two unanswered asks end the connection. It finds
	// clients whose connection stays open without them (behind a proxy or
	// a NAT that went quiet); each ask costs a request and its answer
	// through both SSH layers, the largest part of an idle session's CPU
	// after its countdown.
	KeepaliveInterval time.Duration
	// UnackedTimeout drops a connection whose sent data has gone
	// unacknowledged this long (TCP_USER_TIMEOUT, on Linux): a client whose
	// machine vanished (a laptop closed, a network gone). The countdown
	// sends something every second, so it is noticed at once, at no cost.
	UnackedTimeout time.Duration

	// Per client address (IPv6 by /64, since one host holds a whole /64).
	ConnsPerAddr      int        // open connections at once
	NewConnsPerSecond rate.Limit // sustained rate of new connections
	NewConnsBurst     int
	RoomsPerMinute    int // rooms created; also the burst
	FailedJoins       int // joins of unknown or mistyped room IDs per minute

	// MaxSessions caps open chat sessions on this server.
	MaxSessions int

	// MessagesPerSecond and MessageBurst pace one session's messages:
	// generous for typing and pasting, short of a flood. The server
	// enforces them around the seat (see pacedSeat), where a message
	// beyond the burst waits its turn; the screen bounds what it has on
	// its way and shows any refusal.
	MessagesPerSecond rate.Limit
	MessageBurst      int
	// InputBytesPerSecond throttles raw keyboard input on its way to the
	// chat; what arrives faster waits in a small queue, and beyond that
	// queue is dropped (see keyboard).
	InputBytesPerSecond int
	// RefusalLogsPerSecond and RefusalLogBurst bound the log lines about
	// refused connections and sessions: refusals are caused by clients,
	// and a flood of them must not become a flood of lines. The next line
	// logged says how many were left out.
	RefusalLogsPerSecond rate.Limit
	RefusalLogBurst      int
	// KeysPerSecond throttles keys (a key, a word, a space; a bracketed
	// paste is one) as the parser makes them: every one costs the chat a
	// redraw, so a stream of tiny keys would otherwise cost a core.
	// Typing and key repeat stay far below it.
	KeysPerSecond int
}

// DefaultLimits are the production limits.
func DefaultLimits() Limits {
	return Limits{
		HandshakeTimeout:    10 * time.Second,
		IdleTimeout:         10 * time.Minute,
		MaxSession:          11 * time.Minute,
		KeepaliveInterval:   30 * time.Second,
		UnackedTimeout:      30 * time.Second,
		ConnsPerAddr:        8,
		NewConnsPerSecond:   2,
		NewConnsBurst:       10,
		RoomsPerMinute:      10,
		FailedJoins:         10,
		MaxSessions:         defaultMaxSessions(),
		MessagesPerSecond:   5,
		MessageBurst:        30,
		InputBytesPerSecond: 16 << 10,
		KeysPerSecond:       200,
		// Refusal log lines.
		RefusalLogsPerSecond: 5,
		RefusalLogBurst:      20,
	}
}

// WithDefaults returns l with every zero field set to DefaultLimits'.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	set(&l.HandshakeTimeout, d.HandshakeTimeout)
	set(&l.IdleTimeout, d.IdleTimeout)
	set(&l.MaxSession, d.MaxSession)
	set(&l.KeepaliveInterval, d.KeepaliveInterval)
	set(&l.UnackedTimeout, d.UnackedTimeout)
	setInt(&l.ConnsPerAddr, d.ConnsPerAddr)
	setInt(&l.NewConnsBurst, d.NewConnsBurst)
	setInt(&l.RoomsPerMinute, d.RoomsPerMinute)
	setInt(&l.FailedJoins, d.FailedJoins)
	setInt(&l.MaxSessions, d.MaxSessions)
	setInt(&l.MessageBurst, d.MessageBurst)
	setInt(&l.InputBytesPerSecond, d.InputBytesPerSecond)
	setInt(&l.KeysPerSecond, d.KeysPerSecond)
	setInt(&l.RefusalLogBurst, d.RefusalLogBurst)
	if l.RefusalLogsPerSecond == 0 {
		l.RefusalLogsPerSecond = d.RefusalLogsPerSecond
	}
	if l.NewConnsPerSecond == 0 {
		l.NewConnsPerSecond = d.NewConnsPerSecond
	}
	if l.MessagesPerSecond == 0 {
		l.MessagesPerSecond = d.MessagesPerSecond
	}
	return l
}

// sessionsPerCPU is how many sessions a core serves. Measured with the
// load command (BENCHMARKS.md): an idle session costs about 0.07 ms of CPU
// a second, nearly all of it its countdown's redraw, and about 140 KiB; so
// 5,000 idle sessions take about a third of a core and 700 MiB, leaving
// the rest for the people who talk.
const sessionsPerCPU = 5000

// reservedFiles are the file descriptors kept for everything that is not
// a session: listeners, Redis connections, logs.
const reservedFiles = 128

// defaultMaxSessions is sessionsPerCPU a core, and never more than the
// process may open connections.
func defaultMaxSessions() int {
	perCPU := sessionsPerCPU * runtime.GOMAXPROCS(0)
	if files := openFilesLimit(); files > 0 {
		return max(min(perCPU, files-reservedFiles), 1)
	}
	return perCPU
}

// AddrLimiter enforces the per-address limits of Limits: how many chats a
// client holds open at once, and how fast it opens connections, creates
// rooms and fails to join. NewLocalLimiter keeps the counts in this
// process; a shared one (server/redislimits) keeps them where every
// replica sees them, so that behind a load balancer the limits hold per
// person, not per replica. A limiter decides alone: trouble of its own (a
// shared store out of reach) is its to handle, not the server's.
//
// A client is its address grouped as ClientKey groups it.
type AddrLimiter interface {
	// Admit decides on a new connection from client. release is never
	// nil; with Admitted it must be called once the connection closes (it
	// is idempotent), otherwise it does nothing.
	Admit(ctx context.Context, client netip.Prefix) (v Verdict, release func())
	// AllowRoom takes one room creation from client's budget.
	AllowRoom(ctx context.Context, client netip.Prefix) bool
	// MayTryJoin reports whether client has failed joins left, without
	// using one.
	MayTryJoin(ctx context.Context, client netip.Prefix) bool
	// FailedJoin spends one of client's failed joins.
	FailedJoin(ctx context.Context, client netip.Prefix)
}

// Verdict is an AddrLimiter's decision on a new connection.
type Verdict int

const (
	// Admitted: the connection is counted until its release.
	Admitted Verdict = iota
	// TooManyNew: the client opens connections faster than allowed; the
	// connection is refused before any SSH work.
	TooManyNew
	// TooManyOpen: the client holds as many chats as allowed; the
	// connection is let through uncounted, and its session refused inside
	// SSH, where OpenSSH shows why.
	TooManyOpen
	// Overloaded: the limiter cannot take on another address now; the
	// connection is refused before any SSH work.
	Overloaded
)

// ClientKey groups addresses that one client controls: an IPv4 address,
// or the /64 of an IPv6 one (a single host holds a whole /64).
func ClientKey(addr net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	prefix, _ := ip.Prefix(bits)
	return prefix
}

// maxTrackedAddrs bounds the memory spent remembering client addresses.
// Past it, addresses with nothing open are forgotten at once.
const maxTrackedAddrs = 100_000

// addrForget is how long an address with nothing open is remembered: long
// enough for every per-minute bucket to have refilled.
const addrForget = 2 * time.Minute

// localLimiter tracks what each client address is using, in this
// process. Its limits are token buckets, so nobody is shut out beyond the
// window they exceeded.
type localLimiter struct {
	limits   Limits
	maxAddrs int // maxTrackedAddrs, but for tests

	mu        sync.Mutex
	byAddr    map[netip.Prefix]*client
	lastSweep time.Time
}

var _ AddrLimiter = (*localLimiter)(nil)

type client struct {
	conns    int
	newConns *rate.Limiter
	rooms    *rate.Limiter
	failures *rate.Limiter
	lastSeen time.Time
}

// NewLocalLimiter returns an AddrLimiter that keeps the counts of limits
// in this process: right for a single server, per replica for several.
func NewLocalLimiter(limits Limits) AddrLimiter {
	return newLocalLimiter(limits.WithDefaults())
}

func newLocalLimiter(l Limits) *localLimiter {
	return &localLimiter{limits: l, maxAddrs: maxTrackedAddrs, byAddr: make(map[netip.Prefix]*client)}
}

// getLocked returns the client for key, creating it; nil when too many
// addresses are already tracked. Called with c.mu held.
func (c *localLimiter) getLocked(key netip.Prefix, now time.Time) *client {
	if now.Sub(c.lastSweep) > addrForget/2 {
		c.lastSweep = now
		for k, cl := range c.byAddr {
			if cl.conns == 0 && now.Sub(cl.lastSeen) > addrForget {
				delete(c.byAddr, k)
			}
		}
	}
	cl := c.byAddr[key]
	if cl == nil {
		if len(c.byAddr) >= c.maxAddrs {
			// Someone is cycling through addresses. Forgetting the
			// idle ones early resets their budgets (a client with that
			// many addresses gets round per-address limits anyway) but
			// never turns everybody away.
			maps.DeleteFunc(c.byAddr, func(_ netip.Prefix, cl *client) bool { return cl.conns == 0 })
		}
		if len(c.byAddr) >= c.maxAddrs {
			return nil
		}
		perMinute := func(n int) *rate.Limiter { return rate.NewLimiter(rate.Limit(float64(n)/60), n) }
		cl = &client{
			newConns: rate.NewLimiter(c.limits.NewConnsPerSecond, c.limits.NewConnsBurst),
			rooms:    perMinute(c.limits.RoomsPerMinute),
			failures: perMinute(c.limits.FailedJoins),
		}
		c.byAddr[key] = cl
	}
	cl.lastSeen = now
	return cl
}

// Admit implements AddrLimiter.
func (c *localLimiter) Admit(_ context.Context, key netip.Prefix) (Verdict, func()) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.getLocked(key, now)
	switch {
	case cl == nil:
		return Overloaded, func() {}
	case !cl.newConns.AllowN(now, 1):
		// Rate first: it bounds the handshakes over-limit clients get.
		return TooManyNew, func() {}
	case cl.conns >= c.limits.ConnsPerAddr:
		return TooManyOpen, func() {}
	}
	cl.conns++
	var once sync.Once
	return Admitted, func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			cl.conns--
			cl.lastSeen = time.Now()
		})
	}
}

// AllowRoom implements AddrLimiter.
func (c *localLimiter) AllowRoom(_ context.Context, key netip.Prefix) bool {
	return c.take(key, func(cl *client) *rate.Limiter { return cl.rooms }, true)
}

// MayTryJoin implements AddrLimiter.
func (c *localLimiter) MayTryJoin(_ context.Context, key netip.Prefix) bool {
	return c.take(key, func(cl *client) *rate.Limiter { return cl.failures }, false)
}

// FailedJoin implements AddrLimiter.
func (c *localLimiter) FailedJoin(_ context.Context, key netip.Prefix) {
	c.take(key, func(cl *client) *rate.Limiter { return cl.failures }, true)
}

func (c *localLimiter) take(key netip.Prefix, bucket func(*client) *rate.Limiter, spend bool) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.getLocked(key, now)
	if cl == nil {
		return false
	}
	if spend {
		return bucket(cl).AllowN(now, 1)
	}
	return bucket(cl).TokensAt(now) >= 1
}
