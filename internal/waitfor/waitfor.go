// Package waitfor is the tests' one way to wait for something that offers
// nothing to block on (another process, the runtime, a store seen from
// outside): poll a condition until it holds, and fail at a deadline that a
// loaded machine meets with room to spare.
package waitfor

import (
	"testing"
	"time"
)

// Timeout is the deadline tests use unless they need another.
const Timeout = 15 * time.Second

// poll is how often a condition is checked.
const poll = 10 * time.Millisecond

// Condition polls cond until it holds, failing t (as "timed out waiting
// for what") after timeout.
func Condition(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// Within polls cond until it holds or timeout passes, and reports whether
// it held.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}
