// Package limitstest is the one conformance suite of limits.Limiter: every
// implementation runs it, as replicas (two limiters that share their
// counts) where it shares them, and as one process otherwise.
package limitstest

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/limits"
)

// MakeReplicas returns two limiters enforcing cfg that share their counts,
// as two replicas behind a load balancer do. A limiter that keeps its
// counts to itself returns the same one twice. The suite closes them;
// whatever else they need is the maker's to clean up.
type MakeReplicas func(t *testing.T, cfg limits.Config) (a, b limits.Limiter)

// The clients of the suite: one IPv4 address, one IPv6 /64, and a
// bystander nothing is done to.
var (
	Alice     = netip.MustParsePrefix("203.0.113.7/32")
	Bob       = netip.MustParsePrefix("2001:db8:1:2::/64")
	Bystander = netip.MustParsePrefix("198.51.100.9/32")
)

// Config is the suite's starting point: generous rates, so that each test
// meets only the limit it is about.
func Config() limits.Config {
	return limits.Config{
		ConnsPerAddr: 2, NewConnsPerSecond: 1000, NewConnsBurst: 1000,
		RoomsPerMinute: 3, FailedJoins: 3,
		// Practically no refill within a test, unless it sets one.
		BudgetBurst: 10_000, BudgetRefill: 1, BudgetWindow: time.Hour,
	}
}

// Run runs every test of the suite against the limiters make returns.
func Run(t *testing.T, make MakeReplicas) {
	replicas := func(t *testing.T, cfg limits.Config) (a, b limits.Limiter) {
		t.Helper()
		a, b = make(t, cfg)
		t.Cleanup(func() {
			for _, l := range []limits.Limiter{a, b} {
				if err := l.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			}
		})
		return a, b
	}
	t.Run("OpenChatsCountAcrossReplicas", func(t *testing.T) {
		t.Parallel()
		a, b := replicas(t, Config())
		v1, release1 := a.Admit(t.Context(), Alice)
		v2, _ := b.Admit(t.Context(), Alice)
		if v1 != limits.Admitted || v2 != limits.Admitted {
			t.Fatalf("the first two chats: %v, %v", v1, v2)
		}
		for _, l := range []limits.Limiter{a, b} {
			if v, _ := l.Admit(t.Context(), Alice); v != limits.TooManyOpen {
				t.Fatalf("a third chat from the address: %v, want %v", v, limits.TooManyOpen)
			}
		}
		if v, _ := a.Admit(t.Context(), Bob); v != limits.Admitted {
			t.Fatalf("another address: %v", v)
		}
		release1()
		release1() // idempotent
		if v, _ := b.Admit(t.Context(), Alice); v != limits.Admitted {
			t.Fatalf("after a release: %v, want Admitted", v)
		}
		if v, _ := a.Admit(t.Context(), Alice); v != limits.TooManyOpen {
			t.Fatalf("a release counted twice: %v, want %v", v, limits.TooManyOpen)
		}
	})
	t.Run("NewConnectionsAreRateLimited", func(t *testing.T) {
		t.Parallel()
		cfg := Config()
		cfg.ConnsPerAddr, cfg.NewConnsPerSecond, cfg.NewConnsBurst = 100, rate.Limit(0.001), 3
		a, b := replicas(t, cfg)
		for i, l := range []limits.Limiter{a, b, a} {
			v, release := l.Admit(t.Context(), Alice)
			if v != limits.Admitted {
				t.Fatalf("connection %d of the burst: %v", i+1, v)
			}
			release()
		}
		if v, _ := b.Admit(t.Context(), Alice); v != limits.TooManyNew {
			t.Fatalf("a connection beyond the burst: %v, want %v", v, limits.TooManyNew)
		}
		if v, _ := b.Admit(t.Context(), Bob); v != limits.Admitted {
			t.Fatalf("another address: %v", v)
		}
	})
	t.Run("RoomsAreRateLimited", func(t *testing.T) {
		t.Parallel()
		a, b := replicas(t, Config())
		for i, l := range []limits.Limiter{a, b, a} {
			if v := l.AllowRoom(t.Context(), Alice); v != limits.Admitted {
				t.Fatalf("room %d: %v", i+1, v)
			}
		}
		for _, l := range []limits.Limiter{a, b} {
			if v := l.AllowRoom(t.Context(), Alice); v != limits.TooManyRooms {
				t.Fatalf("a fourth room in the minute: %v, want %v", v, limits.TooManyRooms)
			}
		}
		if v := b.AllowRoom(t.Context(), Bob); v != limits.Admitted {
			t.Fatalf("another address: %v", v)
		}
	})
	t.Run("FailedJoinsAreRateLimited", func(t *testing.T) {
		t.Parallel()
		a, b := replicas(t, Config())
		for range 3 {
			if v := b.MayTryJoin(t.Context(), Bob); v != limits.Admitted {
				t.Fatalf("a join was refused before enough failed: %v", v)
			}
			a.FailedJoin(t.Context(), Bob)
		}
		for _, l := range []limits.Limiter{a, b} {
			if v := l.MayTryJoin(t.Context(), Bob); v != limits.TooManyFailedJoins {
				t.Fatalf("joins after the failures of a minute were spent: %v, want %v", v, limits.TooManyFailedJoins)
			}
		}
		if v := a.MayTryJoin(t.Context(), Alice); v != limits.Admitted {
			t.Fatalf("another address: %v", v)
		}
	})
	t.Run("ByteBudgetIsShared", func(t *testing.T) {
		t.Parallel()
		a, b := replicas(t, Config())
		spend := func(l limits.Limiter, who netip.Prefix, cost int, want limits.Verdict) {
			t.Helper()
			if v := l.Spend(t.Context(), who, cost); v != want {
				t.Fatalf("spend %d: %v, want %v", cost, v, want)
			}
		}
		spend(a, Alice, 6000, limits.Admitted)
		spend(b, Alice, 5000, limits.OverBudget) // refused whole: nothing taken
		spend(b, Alice, 4000, limits.Admitted)
		spend(a, Alice, 100, limits.OverBudget)
		spend(b, Alice, 0, limits.Admitted) // nothing to keep costs nothing
		spend(b, Bob, 10_000, limits.Admitted)
		spend(a, Bystander, 10_001, limits.OverBudget) // more than a whole budget, ever
		spend(a, Bystander, 10_000, limits.Admitted)
	})
	t.Run("ByteBudgetRefills", func(t *testing.T) {
		t.Parallel()
		cfg := Config()
		cfg.BudgetBurst, cfg.BudgetRefill, cfg.BudgetWindow = 1000, 1000, 10*time.Second
		a, b := replicas(t, cfg)
		if v := a.Spend(t.Context(), Alice, 1000); v != limits.Admitted {
			t.Fatalf("the whole budget: %v", v)
		}
		if v := b.Spend(t.Context(), Alice, 1000); v != limits.OverBudget {
			t.Fatalf("the whole budget again at once: %v, want %v", v, limits.OverBudget)
		}
		// 100 bytes come back a second.
		waitfor.Condition(t, waitfor.Timeout, "part of the budget to come back", func() bool {
			return b.Spend(t.Context(), Alice, 100) == limits.Admitted
		})
	})
	t.Run("CloseIsIdempotent", func(t *testing.T) {
		t.Parallel()
		a, b := replicas(t, Config())
		for _, l := range []limits.Limiter{a, b, a} {
			if err := l.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		}
		// Decisions after Close are still answered.
		if v, release := a.Admit(t.Context(), Alice); v != limits.Admitted {
			t.Fatalf("admit after close: %v", v)
		} else {
			release()
		}
	})
}
