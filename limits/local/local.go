// Package local keeps the per-address limits in this process: right for a
// single server, and per replica for several (each replica then counts
// alone, so an address gets as much from every replica).
//
// It sees nothing of the store's memory, so it has no headroom rule: its
// byte budget never answers limits.Headroom. A single server's memory is
// bounded by its own session limits instead.
package local

import (
	"context"
	"maps"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/limits"
)

// MaxTrackedAddrs bounds the memory spent remembering client addresses.
// Past it, addresses with nothing open are forgotten at once.
const MaxTrackedAddrs = 100_000

// addrForget is how long an address with nothing open is remembered: long
// enough for every per-minute bucket to have refilled. A byte budget takes
// longer to refill; forgetting it early gives the address a fresh one,
// which the table bound makes worth nothing to someone cycling addresses.
const addrForget = 2 * time.Minute

// Limiter tracks what each client address is using, in this process. Its
// limits are token buckets, so nobody is shut out beyond the window they
// exceeded.
type Limiter struct {
	cfg      limits.Config
	maxAddrs int

	mu        sync.Mutex
	byAddr    map[netip.Prefix]*client
	lastSweep time.Time
}

var _ limits.Limiter = (*Limiter)(nil)

type client struct {
	conns    int
	newConns *rate.Limiter
	rooms    *rate.Limiter
	failures *rate.Limiter
	bytes    *rate.Limiter
	lastSeen time.Time
}

// New returns a limiter enforcing cfg (zero fields take the defaults) in
// this process.
func New(cfg limits.Config) *Limiter {
	return NewWithTable(cfg, MaxTrackedAddrs)
}

// NewWithTable is New with a table of at most maxAddrs addresses.
func NewWithTable(cfg limits.Config, maxAddrs int) *Limiter {
	return &Limiter{cfg: cfg.WithDefaults(), maxAddrs: maxAddrs, byAddr: make(map[netip.Prefix]*client)}
}

// getLocked returns the client for key, creating it; nil when too many
// addresses are already tracked. Called with l.mu held.
func (l *Limiter) getLocked(key netip.Prefix, now time.Time) *client {
	if now.Sub(l.lastSweep) > addrForget/2 {
		l.lastSweep = now
		for k, cl := range l.byAddr {
			if cl.conns == 0 && now.Sub(cl.lastSeen) > addrForget {
				delete(l.byAddr, k)
			}
		}
	}
	cl := l.byAddr[key]
	if cl == nil {
		if len(l.byAddr) >= l.maxAddrs {
			// Someone is cycling through addresses. Forgetting the
			// idle ones early resets their budgets (a client with that
			// many addresses gets round per-address limits anyway) but
			// never turns everybody away.
			maps.DeleteFunc(l.byAddr, func(_ netip.Prefix, cl *client) bool { return cl.conns == 0 })
		}
		if len(l.byAddr) >= l.maxAddrs {
			return nil
		}
		perMinute := func(n int) *rate.Limiter { return rate.NewLimiter(rate.Limit(float64(n)/60), n) }
		cl = &client{
			newConns: rate.NewLimiter(l.cfg.NewConnsPerSecond, l.cfg.NewConnsBurst),
			rooms:    perMinute(l.cfg.RoomsPerMinute),
			failures: perMinute(l.cfg.FailedJoins),
			bytes:    rate.NewLimiter(rate.Limit(l.cfg.BudgetPerSecond()), l.cfg.BudgetBurst),
		}
		l.byAddr[key] = cl
	}
	cl.lastSeen = now
	return cl
}

// Admit implements limits.Limiter.
func (l *Limiter) Admit(_ context.Context, key netip.Prefix) (limits.Verdict, func()) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	cl := l.getLocked(key, now)
	switch {
	case cl == nil:
		return limits.TableFull, func() {}
	case !cl.newConns.AllowN(now, 1):
		// Rate first: it bounds the handshakes over-limit clients get.
		return limits.TooManyNew, func() {}
	case cl.conns >= l.cfg.ConnsPerAddr:
		return limits.TooManyOpen, func() {}
	}
	cl.conns++
	var once sync.Once
	return limits.Admitted, func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			cl.conns--
			cl.lastSeen = time.Now()
		})
	}
}

// AllowRoom implements limits.Limiter.
func (l *Limiter) AllowRoom(_ context.Context, key netip.Prefix) limits.Verdict {
	return l.take(key, func(cl *client) *rate.Limiter { return cl.rooms }, 1, limits.TooManyRooms)
}

// MayTryJoin implements limits.Limiter.
func (l *Limiter) MayTryJoin(_ context.Context, key netip.Prefix) limits.Verdict {
	return l.take(key, func(cl *client) *rate.Limiter { return cl.failures }, 0, limits.TooManyFailedJoins)
}

// FailedJoin implements limits.Limiter.
func (l *Limiter) FailedJoin(_ context.Context, key netip.Prefix) {
	l.take(key, func(cl *client) *rate.Limiter { return cl.failures }, 1, limits.TooManyFailedJoins)
}

// Spend implements limits.Limiter. There is no headroom rule here (see
// the package comment).
func (l *Limiter) Spend(_ context.Context, key netip.Prefix, cost int) limits.Verdict {
	if cost <= 0 {
		return limits.Admitted
	}
	return l.take(key, func(cl *client) *rate.Limiter { return cl.bytes }, cost, limits.OverBudget)
}

// Close implements limits.Limiter; nothing runs in the background.
func (l *Limiter) Close() error { return nil }

// take spends cost from the client's bucket (with cost 0, checks that one
// token is left), answering refused when it cannot.
func (l *Limiter) take(key netip.Prefix, bucket func(*client) *rate.Limiter, cost int, refused limits.Verdict) limits.Verdict {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	cl := l.getLocked(key, now)
	switch {
	case cl == nil:
		return limits.TableFull
	case cost == 0 && bucket(cl).TokensAt(now) >= 1:
		return limits.Admitted
	case cost > 0 && bucket(cl).AllowN(now, cost):
		return limits.Admitted
	}
	return refused
}
