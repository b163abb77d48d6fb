package server_test

import (
	"fmt"
	"strings"
	"testing"
)

// A line and its Enter that arrive in one piece (pasted, or sent by a
// program) are a message, not typing: the partner's terminal never shows
// "typing…" for them, while keys typed one at a time still do.
func TestALineSentAtOnceTellsNoTyping(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	bob := ts.dial(t, alice.roomID())
	bob.waitFor("you joined")
	alice.waitFor("joined")
	for i := range 5 {
		text := fmt.Sprintf("sent at once %d", i)
		alice.say(text)
		bob.waitFor(text)
		alice.waitFor("you: " + text)
	}
	if strings.Contains(bob.screen.Raw(), "typing") {
		t.Fatalf("a line sent with its Enter told the partner that someone types:\n%s", bob.screen.Raw())
	}
	alice.typeText("h")
	bob.waitFor("is typing…")
}
