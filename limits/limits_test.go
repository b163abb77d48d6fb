package limits_test

import (
	"net"
	"testing"

	"github.com/ssh-burn/chat/limits"
)

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
		if got := limits.ClientKey(tcp).String(); got != want {
			t.Errorf("ClientKey(%s) = %s, want %s", addr, got, want)
		}
	}
}

// Every refusal has a reason of its own, for logs and metrics.
func TestEveryRefusalHasItsOwnReason(t *testing.T) {
	seen := map[string]limits.Verdict{limits.Admitted.Reason(): limits.Admitted}
	for _, v := range limits.Refusals() {
		r := v.Reason()
		if r == "" || r == "unknown" {
			t.Errorf("verdict %d has no reason", int(v))
		}
		if other, ok := seen[r]; ok {
			t.Errorf("verdicts %d and %d share the reason %q", int(v), int(other), r)
		}
		seen[r] = v
	}
	if n := len(limits.Refusals()) + 1; limits.Verdict(n).Reason() != "unknown" {
		t.Errorf("verdict %d has a reason but is not among the refusals", n)
	}
}
