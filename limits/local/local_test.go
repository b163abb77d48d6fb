package local_test

import (
	"net"
	"testing"

	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/limits/limitstest"
	"github.com/ssh-burn/chat/limits/local"
)

// One process is one replica: its "two replicas" are the same limiter.
func TestLocalLimiter(t *testing.T) {
	limitstest.Run(t, func(t *testing.T, cfg limits.Config) (a, b limits.Limiter) {
		l := local.New(cfg)
		return l, l
	})
}

// Cycling through more addresses than the table holds never turns
// everybody away: addresses with nothing open are forgotten to make room.
func TestAddressTableForgetsIdleAddressesWhenFull(t *testing.T) {
	c := local.NewWithTable(limits.DefaultConfig(), 10)
	addr := func(i int) net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 40000} }
	admit := func(i int) (limits.Verdict, func()) {
		v, release := c.Admit(t.Context(), limits.ClientKey(addr(i)))
		if v == limits.TooManyOpen {
			t.Fatalf("address %d: too many open", i)
		}
		return v, release
	}
	for i := range 1000 { // an attacker's thousand addresses, one connection each
		v, release := admit(i)
		if v != limits.Admitted {
			t.Fatalf("address %d of a cycle was refused: %v", i, v)
		}
		release()
	}
	// Ten addresses with connections open fill it for real.
	for i := range 10 {
		if v, _ := admit(2000 + i); v != limits.Admitted {
			t.Fatalf("open connection %d refused: %v", i, v)
		}
	}
	if v, _ := admit(3000); v != limits.TableFull {
		t.Fatalf("an address beyond a table full of open connections got %v, want %v", v, limits.TableFull)
	}
	fresh := limits.ClientKey(addr(3001))
	for what, v := range map[string]limits.Verdict{
		"room":  c.AllowRoom(t.Context(), fresh),
		"join":  c.MayTryJoin(t.Context(), fresh),
		"spend": c.Spend(t.Context(), fresh, 1),
	} {
		if v != limits.TableFull {
			t.Errorf("%s of an address beyond the full table: %v, want %v", what, v, limits.TableFull)
		}
	}
}
