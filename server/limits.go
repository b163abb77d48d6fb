package server

import (
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
	// still there; two unanswered asks end the connection.
	KeepaliveInterval time.Duration

	// Per client address (IPv6 by /64, since one host holds a whole /64).
	ConnsPerAddr      int        // open connections at once
	NewConnsPerSecond rate.Limit // sustained rate of new connections
	NewConnsBurst     int
	RoomsPerMinute    int // rooms created; also the burst
	FailedJoins       int // joins of unknown or mistyped room IDs per minute

	// MaxSessions caps open chat sessions on this server.
	MaxSessions int

	// MessagesPerSecond and MessageBurst limit one session's messages:
	// generous for typing and pasting, short of a flood.
	MessagesPerSecond rate.Limit
	MessageBurst      int
	// InputBytesPerSecond throttles raw keyboard input on its way to the
	// chat; what arrives faster waits in a small queue, and beyond that
	// queue is dropped (see keyboard).
	InputBytesPerSecond int
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
		KeepaliveInterval:   15 * time.Second,
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
	}
}

func (l Limits) withDefaults() Limits {
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
	setInt(&l.ConnsPerAddr, d.ConnsPerAddr)
	setInt(&l.NewConnsBurst, d.NewConnsBurst)
	setInt(&l.RoomsPerMinute, d.RoomsPerMinute)
	setInt(&l.FailedJoins, d.FailedJoins)
	setInt(&l.MaxSessions, d.MaxSessions)
	setInt(&l.MessageBurst, d.MessageBurst)
	setInt(&l.InputBytesPerSecond, d.InputBytesPerSecond)
	setInt(&l.KeysPerSecond, d.KeysPerSecond)
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

// maxTrackedAddrs bounds the memory spent remembering client addresses.
// Past it, addresses with nothing open are forgotten at once.
const maxTrackedAddrs = 100_000

// addrForget is how long an address with nothing open is remembered: long
// enough for every per-minute bucket to have refilled.
const addrForget = 2 * time.Minute

// clients tracks what each client address is using. Its limits are token
// buckets, so nobody is shut out beyond the window they exceeded.
type clients struct {
	limits   Limits
	maxAddrs int // maxTrackedAddrs, but for tests

	mu        sync.Mutex
	byAddr    map[netip.Prefix]*client
	lastSweep time.Time
}

type client struct {
	conns    int
	newConns *rate.Limiter
	rooms    *rate.Limiter
	failures *rate.Limiter
	lastSeen time.Time
}

func newClients(l Limits) *clients {
	return &clients{limits: l, maxAddrs: maxTrackedAddrs, byAddr: make(map[netip.Prefix]*client)}
}

// clientKey groups addresses that one client controls.
func clientKey(addr net.Addr) netip.Prefix {
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

// get returns the client for key, creating it; nil when too many
// addresses are already tracked. Called with c.mu held.
func (c *clients) getLocked(key netip.Prefix, now time.Time) *client {
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

// admit decides on a new connection from addr. refuseNow is a refusal
// that is cheapest made at once, before any SSH work: a line of text and a
// close. tellInside is a refusal to make inside SSH, where OpenSSH shows it
// to the person (it shows nothing of a line sent before the handshake):
// the connection is let through uncounted and its session refused with
// the text. Otherwise the connection is counted until release is called.
func (c *clients) admit(addr net.Addr) (refuseNow, tellInside string, release func()) {
	key := clientKey(addr)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.getLocked(key, now)
	switch {
	case cl == nil:
		return "the server is busy; try again in a minute", "", nil
	case !cl.newConns.AllowN(now, 1):
		// Rate first: it bounds the handshakes over-limit clients get.
		return "too many new connections from your address; try again in a few seconds", "", nil
	case cl.conns >= c.limits.ConnsPerAddr:
		return "", "Too many connections from your address at once: close one and try again.", func() {}
	}
	cl.conns++
	var once sync.Once
	return "", "", func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			cl.conns--
			cl.lastSeen = time.Now()
		})
	}
}

// allowRoom takes one room creation from addr's budget.
func (c *clients) allowRoom(addr net.Addr) bool {
	return c.take(addr, func(cl *client) *rate.Limiter { return cl.rooms }, true)
}

// mayTryJoin reports whether addr has failed joins left, without using one.
func (c *clients) mayTryJoin(addr net.Addr) bool {
	return c.take(addr, func(cl *client) *rate.Limiter { return cl.failures }, false)
}

// failedJoin spends one of addr's failed joins.
func (c *clients) failedJoin(addr net.Addr) {
	c.take(addr, func(cl *client) *rate.Limiter { return cl.failures }, true)
}

func (c *clients) take(addr net.Addr, bucket func(*client) *rate.Limiter, spend bool) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.getLocked(clientKey(addr), now)
	if cl == nil {
		return false
	}
	if spend {
		return bucket(cl).AllowN(now, 1)
	}
	return bucket(cl).TokensAt(now) >= 1
}
