package server_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/ssh-burn/chat/store"
)

// Guessing keys is guessing rooms: every wrong key counts against the
// address like an unknown room, a sealed room tried with its ID alone
// does too, and the limit then refuses the address whatever it tries;
// the room itself, and its people, notice nothing.
func TestWrongKeysCountAsFailedJoins(t *testing.T) {
	ts := limitedServer(t, func(l *testLimits) { l.addr.FailedJoins = 3 })
	bys := startBystanders(t, ts)
	id, err := store.ParseRoomID(shareCommand.FindStringSubmatch(bys.alice.screen.Raw())[2])
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{
		store.RejoinName(id, store.NewSeatKey(id)),
		id.String(), // sealed: the two met
		store.RejoinName(id, store.NewSeatKey(id)),
	} {
		c := ts.dialWith(t, user, dialOptions{from: attacker})
		c.screen.waitUntil(t, "guesser", func(s string) bool {
			return strings.Contains(s, "No such room") || strings.Contains(s, "This room is private")
		}, "a refusal")
	}
	refused := ts.dialWith(t, store.RejoinName(id, store.NewSeatKey(id)), dialOptions{from: attacker})
	refused.waitFor("Too many attempts to join rooms")
	if refused.exitCode() == 0 {
		t.Error("exit 0")
	}
	bys.check()
}

// The personal command is shown to its person only: never to the partner,
// never in the logs, never on the waiting screen a share might show.
func TestTheRejoinCommandStaysWithItsPerson(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	bob.typeText("\x1bOP") // F1
	key := rejoinInHelp.FindStringSubmatch(bob.waitFor("Your own way back"))
	if key == nil {
		t.Fatalf("no command in the help:\n%s", bob.screen)
	}
	secret := key[1][len(id)+1:]
	bob.typeText("\x1b") // esc
	// Closed: only then type, or the esc and the first letter arrive
	// together and read as alt+h.
	bob.screen.waitUntil(t, bob.name, func(s string) bool { return !strings.Contains(s, "Your own way back") }, "the help closed")
	bob.say("hello")
	alice.waitFor("hello")
	bob.typeText("\x03")
	bob.waitFor("To return as yourself")
	back := ts.dial(t, key[1])
	back.waitFor("you are back")
	back.destroyRoom()
	alice.waitFor("Room destroyed")

	for where, text := range map[string]string{
		"the partner's screen": alice.screen.Raw(),
		"the logs":             ts.logs.String(),
	} {
		for _, clear := range []string{secret, strings.ReplaceAll(secret, "-", "")} {
			if strings.Contains(text, clear) {
				t.Errorf("%s hold the seat key %q", where, clear)
			}
		}
	}
}

// The colours follow the background the client declares in COLORFGBG:
// dark unless it says light.
func TestColoursFollowTheDeclaredBackground(t *testing.T) {
	ts := startServer(t, ttl)
	for _, c := range []struct {
		env         map[string]string
		want, avoid string
	}{
		{nil, "38;5;81m", "38;5;24m"},
		{map[string]string{"COLORFGBG": "15;0"}, "38;5;81m", "38;5;24m"},
		{map[string]string{"COLORFGBG": "0;15"}, "38;5;24m", "38;5;81m"},
		{map[string]string{"COLORFGBG": "0;default;15"}, "38;5;24m", "38;5;81m"},
	} {
		client := ts.dialWith(t, "alice", dialOptions{env: c.env})
		client.roomID()
		raw := client.screen.Raw()
		if !strings.Contains(raw, c.want) || strings.Contains(raw, c.avoid) {
			t.Errorf("COLORFGBG=%q: the accent is not %q", c.env["COLORFGBG"], c.want)
		}
		client.typeText("\x03")
		client.exitCode()
	}
}

// NO_COLOR takes the colours away and nothing else: bold stays, and the
// input's cursor (reverse video) still shows where typing goes.
func TestNoColorKeepsTheCursorVisible(t *testing.T) {
	ts := startServer(t, ttl)
	client := ts.dialWith(t, "alice", dialOptions{env: map[string]string{"NO_COLOR": "1"}})
	client.waitFor("type a message") // the input line, with its cursor
	raw := client.screen.Raw()
	if colour := colourSGR.FindString(raw); colour != "" {
		t.Errorf("NO_COLOR, yet a colour: %q", colour)
	}
	if !strings.Contains(raw, "\x1b[7m") || !strings.Contains(raw, "\x1b[1m") {
		t.Errorf("NO_COLOR lost the cursor's reverse video or bold:\n%q", raw)
	}
}

// colourSGR is a select graphic rendition that sets a foreground colour.
var colourSGR = regexp.MustCompile(`\x1b\[(?:[0-9]+;)*(?:3[0-8]|9[0-7])(?:;[0-9]+)*m`)

// A bell and the clipboard reach the client's terminal as the raw bytes
// that ring and copy, once each.
func TestBellAndClipboardReachTheTerminal(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	alice.typeText("\x19") // ctrl+y
	alice.waitFor("Copied the command")
	copied := regexp.MustCompile(`\x1b\]52;c;([A-Za-z0-9+/=]+)\x07`).FindStringSubmatch(alice.screen.Raw())
	if copied == nil {
		t.Fatalf("no OSC 52 in %q", alice.screen.Raw())
	}
	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	bob.say("ring")
	alice.waitFor("ring")
	if n := strings.Count(alice.screen.Raw(), "\a"); n != 2 { // the copy's terminator and the bell
		t.Errorf("%d BEL bytes, want the OSC's and one bell", n)
	}
	if n := strings.Count(bob.screen.Raw(), "\a"); n != 0 {
		t.Errorf("the sender's terminal rang %d times", n)
	}
}
