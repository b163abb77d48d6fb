package server

import (
	"net"
	"testing"
)

// Cycling through more addresses than the table holds never turns
// everybody away: addresses with nothing open are forgotten to make room.
func TestAddressTableForgetsIdleAddressesWhenFull(t *testing.T) {
	c := newClients(DefaultLimits())
	c.maxAddrs = 10
	addr := func(i int) net.Addr { return &net.TCPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 40000} }
	admit := func(i int) (string, func()) {
		refuseNow, tellInside, release := c.admit(addr(i))
		if tellInside != "" {
			t.Fatalf("address %d: told %q", i, tellInside)
		}
		return refuseNow, release
	}
	for i := range 1000 { // an attacker's thousand addresses, one connection each
		refusal, release := admit(i)
		if refusal != "" {
			t.Fatalf("address %d of a cycle was refused: %q", i, refusal)
		}
		release()
	}
	// Ten addresses with connections open fill it for real.
	for i := range 10 {
		if refusal, _ := admit(2000 + i); refusal != "" {
			t.Fatalf("open connection %d refused: %q", i, refusal)
		}
	}
	if refusal, _ := admit(3000); refusal == "" {
		t.Fatal("an address beyond a table full of open connections was admitted")
	}
}
