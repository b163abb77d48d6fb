package server_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// label is a row of the pasted lines on a screen.
var label = regexp.MustCompile(`(?m)^.*\bl\d\d\b.*$`)

// A paste of thousands of line breaks is not thousands of lines on the
// partner's screen: blank runs collapse, and lines beyond the twentieth
// are joined onto it, which the sender's screen says before it is sent.
func TestAPasteOfThousandsOfLinesIsTwentyAtMost(t *testing.T) {
	ts := limitedServer(t, func(l *testLimits) { l.InputBytesPerSecond, l.KeysPerSecond = 8<<20, 1<<20 })
	victim := ts.dialWith(t, "victim", dialOptions{from: other})
	evil := ts.dialWith(t, victim.roomID(), dialOptions{from: attacker})
	evil.waitFor("you joined")
	var paste strings.Builder
	paste.WriteString(strings.Repeat("\r", 5000))
	for i := range 30 {
		fmt.Fprintf(&paste, "l%02d\r", i)
	}
	evil.typeText("\x1b[200~" + paste.String() + "\x1b[201~")
	evil.waitFor("A message has at most 20 lines")
	evil.typeText("\r")
	screen := victim.waitFor("l17 l18 l19")
	if strings.Contains(screen, "\nl18") || !strings.Contains(screen, "l29") {
		t.Fatalf("the lines beyond the twentieth were not joined onto it:\n%s", screen)
	}
	// l00 to l16 on rows of their own, then l17 to l29 on one.
	if rows := len(label.FindAllString(screen, -1)); rows != 18 {
		t.Fatalf("the message takes %d rows, want 18:\n%s", rows, screen)
	}
}
