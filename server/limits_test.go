package server

import (
	"net"
	"testing"
)

// Cycling through more addresses than the table holds never turns
// everybody away: addresses with nothing open are forgotten to make room.
func TestAddressTableForgetsIdleAddressesWhenFull(t *testing.T) {
	c := newLocalLimiter(DefaultLimits())
	c.maxAddrs = 10
	addr := func(i int) net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 40000} }
	admit := func(i int) (Verdict, func()) {
		v, release := c.Admit(t.Context(), ClientKey(addr(i)))
		if v == TooManyOpen {
			t.Fatalf("address %d: too many open", i)
		}
		return v, release
	}
	for i := range 1000 { // an attacker's thousand addresses, one connection each
		v, release := admit(i)
		if v != Admitted {
			t.Fatalf("address %d of a cycle was refused: %v", i, v)
		}
		release()
	}
	// Ten addresses with connections open fill it for real.
	for i := range 10 {
		if v, _ := admit(2000 + i); v != Admitted {
			t.Fatalf("open connection %d refused: %v", i, v)
		}
	}
	if v, _ := admit(3000); v != Overloaded {
		t.Fatalf("an address beyond a table full of open connections got %v, want Overloaded", v)
	}
}

// Limits counts an IPv6 client by its /64, and an IPv4-mapped address as
// the IPv4 one.
func TestClientKeyGroupsWhatOneClientControls(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7:40000":              "192.0.2.7/32",
		"[::ffff:192.0.2.7]:40000":     "192.0.2.7/32",
		"[2001:db8:1:2:3:4:5:6]:40000": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:1":     "2001:db8:1:2::/64",
	} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := ClientKey(tcp).String(); got != want {
			t.Errorf("ClientKey(%s) = %s, want %s", addr, got, want)
		}
	}
}
