// Package limits is the contract of the per-address limits: what one
// client address may open, create, fail at and make the service keep,
// whichever replica serves it. It holds the interface, the verdicts and
// their reasons, and the settings with their defaults; limits/local keeps
// the counts in one process, limits/redis in the Redis the replicas share,
// and limits/limitstest is the one suite both pass.
//
// A client is its address grouped as ClientKey groups it: an IPv4
// address, or the /64 of an IPv6 one.
package limits

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Limiter enforces the per-address limits of a Config. A limiter decides
// alone: trouble of its own (a shared store out of reach) is its to
// handle, not its caller's, so every method answers within its context's
// deadline and never returns an error.
type Limiter interface {
	// Admit decides on a new connection from client: Admitted,
	// TooManyNew, TooManyOpen or TableFull. release is never nil; with
	// Admitted it must be called once the connection closes (it is
	// idempotent), otherwise it does nothing.
	Admit(ctx context.Context, client netip.Prefix) (v Verdict, release func())
	// AllowRoom takes one room creation from client's rate: Admitted,
	// TooManyRooms or TableFull.
	AllowRoom(ctx context.Context, client netip.Prefix) Verdict
	// MayTryJoin reports whether client has failed joins left, without
	// using one: Admitted, TooManyFailedJoins or TableFull.
	MayTryJoin(ctx context.Context, client netip.Prefix) Verdict
	// FailedJoin spends one of client's failed joins.
	FailedJoin(ctx context.Context, client netip.Prefix)
	// Spend takes cost bytes from client's byte budget: Admitted,
	// OverBudget, Headroom (the shared store is nearly full and keeps
	// what is left for lighter writers) or TableFull. A refused spend
	// takes nothing.
	Spend(ctx context.Context, client netip.Prefix, cost int) Verdict
	// Close stops whatever the limiter runs in the background. It is
	// idempotent; decisions after it are still answered, from what the
	// limiter last knew.
	Close() error
}

// Verdict is a Limiter's decision. Every refusal has a reason of its own,
// which logs and metrics name it by.
type Verdict int

// The verdicts. A new one needs its reason in reasons and a place in
// Refusals.
const (
	// Admitted: go ahead (with Admit, the connection is counted until
	// its release).
	Admitted Verdict = iota
	// TooManyNew: the client opens connections faster than allowed; the
	// connection is refused before any SSH work.
	TooManyNew
	// TooManyOpen: the client holds as many chats as allowed; the
	// connection is let through uncounted, and its session refused inside
	// SSH, where OpenSSH shows why.
	TooManyOpen
	// TableFull: the limiter cannot take on another address now.
	TableFull
	// TooManyRooms: the client created as many rooms as its rate allows.
	TooManyRooms
	// TooManyFailedJoins: the client failed to join as often as its rate
	// allows (unknown or mistyped room IDs, wrong keys).
	TooManyFailedJoins
	// OverBudget: the client made the service keep as many bytes as its
	// budget allows for now.
	OverBudget
	// Headroom: the shared store is nearly full, and the client has spent
	// too much of its budget to be given any of what is left.
	Headroom
)

var reasons = [...]string{
	Admitted:           "admitted",
	TooManyNew:         "new connections per address",
	TooManyOpen:        "open connections per address",
	TableFull:          "address table full",
	TooManyRooms:       "room rate",
	TooManyFailedJoins: "failed joins",
	OverBudget:         "byte budget",
	Headroom:           "byte budget headroom",
}

// Reason names the verdict in logs and metric labels: a fixed phrase
// that says nothing about the client.
func (v Verdict) Reason() string {
	if v < 0 || int(v) >= len(reasons) {
		return "unknown"
	}
	return reasons[v]
}

// String implements fmt.Stringer.
func (v Verdict) String() string { return v.Reason() }

// Refusals are every verdict but Admitted, for callers that list the
// reasons they may count (so that each is known from the start).
func Refusals() []Verdict {
	return []Verdict{TooManyNew, TooManyOpen, TableFull, TooManyRooms, TooManyFailedJoins, OverBudget, Headroom}
}

// Config are the per-address limits. Zero fields take DefaultConfig's.
type Config struct {
	// ConnsPerAddr bounds the connections open at once.
	ConnsPerAddr int
	// NewConnsPerSecond and NewConnsBurst bound the rate of new
	// connections.
	NewConnsPerSecond rate.Limit
	NewConnsBurst     int
	// RoomsPerMinute bounds rooms created; it is also the burst.
	RoomsPerMinute int
	// FailedJoins bounds joins of unknown or mistyped room IDs (and wrong
	// rejoin keys) a minute; it is also the burst.
	FailedJoins int
	// BudgetBurst is the byte budget: what an address may make the
	// service keep at once, in the store's cost units (store.MessageCost,
	// store.RoomCost, store.JoinCost). A single spend above it never
	// passes.
	BudgetBurst int
	// BudgetRefill is how many bytes of budget come back every
	// BudgetWindow. An address may make the service keep at most
	// BudgetBurst + BudgetRefill within one window.
	BudgetRefill int
	// BudgetWindow is the period of BudgetRefill: the room TTL, so that
	// what an address made the service keep has expired by the time its
	// budget has come back.
	BudgetWindow time.Duration
}

// Defaults of the byte budget: a burst of 64 KiB (sixteen of the largest
// messages, or a conversation of some hundred lines), refilled at twice
// that per room TTL, so at most 192 KiB an address per window.
const (
	DefaultBudgetBurst  = 64 << 10
	DefaultBudgetRefill = 128 << 10
	DefaultBudgetWindow = 10 * time.Minute
)

// DefaultConfig are the production limits.
func DefaultConfig() Config {
	return Config{
		ConnsPerAddr:      8,
		NewConnsPerSecond: 2,
		NewConnsBurst:     10,
		RoomsPerMinute:    10,
		FailedJoins:       10,
		BudgetBurst:       DefaultBudgetBurst,
		BudgetRefill:      DefaultBudgetRefill,
		BudgetWindow:      DefaultBudgetWindow,
	}
}

// WithDefaults returns c with every zero field set to DefaultConfig's.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	c.ConnsPerAddr = cmp.Or(c.ConnsPerAddr, d.ConnsPerAddr)
	c.NewConnsPerSecond = cmp.Or(c.NewConnsPerSecond, d.NewConnsPerSecond)
	c.NewConnsBurst = cmp.Or(c.NewConnsBurst, d.NewConnsBurst)
	c.RoomsPerMinute = cmp.Or(c.RoomsPerMinute, d.RoomsPerMinute)
	c.FailedJoins = cmp.Or(c.FailedJoins, d.FailedJoins)
	c.BudgetBurst = cmp.Or(c.BudgetBurst, d.BudgetBurst)
	c.BudgetRefill = cmp.Or(c.BudgetRefill, d.BudgetRefill)
	c.BudgetWindow = cmp.Or(c.BudgetWindow, d.BudgetWindow)
	return c
}

// BudgetPerSecond is the budget's refill rate in bytes a second.
func (c Config) BudgetPerSecond() float64 {
	return float64(c.BudgetRefill) / c.BudgetWindow.Seconds()
}

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
