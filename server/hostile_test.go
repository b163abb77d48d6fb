package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gossh "golang.org/x/crypto/ssh"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/limits/local"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
	"github.com/ssh-burn/chat/store/redistest"
	"github.com/ssh-burn/chat/ui"
)

// One test per class of ../shared/HOSTILE-INPUT.md. The attacker connects
// from 127.0.0.2 (and .3); a well-behaved pair chats in another room from
// 127.0.0.9 throughout, and must not notice.

const (
	attacker      = "127.0.0.2"
	other         = "127.0.0.3"
	bystanderAddr = "127.0.0.9"
)

// bystanders is a well-behaved room. check proves it still works.
type bystanders struct {
	t          *testing.T
	alice, bob *client
	n          int
}

func startBystanders(t *testing.T, ts *testServer) *bystanders {
	t.Helper()
	alice := ts.dialWith(t, "alice", dialOptions{from: bystanderAddr})
	bob := ts.dialWith(t, alice.roomID(), dialOptions{from: bystanderAddr})
	bob.waitFor("you joined")
	b := &bystanders{t: t, alice: alice, bob: bob}
	b.check()
	return b
}

func (b *bystanders) check() {
	b.t.Helper()
	b.n++
	text := fmt.Sprintf("still fine %d", b.n)
	b.alice.say(text)
	b.bob.waitFor(text)
}

func limitedServer(t *testing.T, tweak func(*testLimits)) *testServer {
	t.Helper()
	l := generousLimits()
	tweak(&l)
	return startServerWith(t, memstore.New(ttl), l)
}

func TestHostileTextNeverReachesThePartnersTerminal(t *testing.T) {
	// The input throttles are raised so a megabyte arrives within the test.
	ts := limitedServer(t, func(l *testLimits) { l.InputBytesPerSecond, l.KeysPerSecond = 8<<20, 1<<20 })
	bys := startBystanders(t, ts)
	victim := ts.dialWith(t, "victim", dialOptions{from: other})
	evil := ts.dialWith(t, victim.roomID(), dialOptions{from: attacker})
	evil.waitFor("you joined")
	// The bell the screen rings for a message is its own; with it off,
	// any BEL would be the attacker's.
	victim.typeText("\x07") // ctrl+g
	victim.waitFor("Bell off")

	hostile := []string{
		"\x1b[2J\x1b[H", "\x1b]0;pwned\x07", "\x1b]52;c;cm0gLXJmIH4=\x07", "\x1bP+q544e\x1b\\", "\x1b_apc\x1b\\",
		"\x9b31m", "\x07\x08\x00\x7f", "\r", "\u202eevil\u202c", "\u2066iso\u2069", "zero\u200bwidth\u200d",
		"line\u2028sep\u2029", "e" + strings.Repeat("\u0301", 300), "\xff\xfe\xc0\xaf",
	}
	for i, h := range hostile {
		evil.say(fmt.Sprintf("m%d<%s>", i, h))
	}
	evil.say("the end")
	victim.waitFor("the end")
	evil.waitFor("you: the end")
	raw := victim.screen.Raw()
	for _, banned := range []string{"\x1b]0;", "\x1b]52", "\x1bP", "\x1b_", "\x9b", "\u202e", "\u2066", "\u200b", "\u2028", "\x07", "\x00", "\xff"} {
		if strings.Contains(raw, banned) {
			t.Errorf("the victim's terminal received %q", banned)
		}
	}
	if strings.Contains(victim.screen.String(), "pwned") && strings.Contains(raw, "\x1b]0;pwned") {
		t.Error("window title was set")
	}
	// Sizes: a 100 KB line is refused whole with a reason: too long, or,
	// when its Enter was dropped with the rest of what the chat could not
	// take in at once, that input was dropped and the rest is capped.
	// Thousands of newlines are not thousands of messages, and megabytes
	// without Enter are capped.
	refused := func(what string) {
		t.Helper()
		evil.screen.waitUntil(t, "evil", func(s string) bool {
			return strings.Contains(s, "too long") || strings.Contains(s, "Input is capped at 4000 characters") ||
				strings.Contains(s, "Too much input at once: some of what you sent was dropped.")
		}, "a refusal of "+what)
	}
	evil.say(strings.Repeat("x", 100_000))
	refused("the 100 KB line")
	evil.typeText("\x15") // ctrl+u clears the line
	evil.typeText(strings.Repeat("\r", 5000))
	evil.typeText(strings.Repeat("y", 1<<20))
	refused("1 MB without Enter")
	evil.typeText(strings.Repeat("y", 1<<20))
	// What arrives while a flood is still queued is dropped with it, so
	// keep trying, as a person would.
	getThrough := func(text string) {
		t.Helper()
		waitUntil(t, text+" gets through", func() bool {
			evil.typeText("\x15")
			evil.say(text)
			return strings.Contains(victim.screen.String(), text)
		})
	}
	getThrough("after the flood")
	// A bracketed paste whose end never comes is ended for it after 16 KB:
	// what follows is typed, not pasted.
	evil.typeText("\x1b[200~" + strings.Repeat("z", 20<<10))
	evil.waitFor("zzzzzzzzzz", "4000/1000")
	getThrough("after the paste")
	for _, flood := range []string{"yyyyyyyyyy", "zzzzzzzzzz"} {
		if strings.Contains(victim.screen.Raw(), flood) {
			t.Errorf("part of a flood (%s…) reached the victim", flood[:1])
		}
	}
	if n := strings.Count(victim.screen.String(), "xxxxxxxxxx"); n > 0 {
		t.Errorf("part of the 100 KB line reached the victim")
	}
	bys.check()
}

func TestHostileUsernamesAreNeverEchoed(t *testing.T) {
	ts := startServer(t, ttl)
	bys := startBystanders(t, ts)
	for _, user := range []string{
		"", strings.Repeat("a", 4096), "{", "*", "room:*", "\x1b]0;pwned\x07", "\u202eevil", "chat:{x}:meta",
		"../../etc/passwd", "a\r\nb", "\x00",
	} {
		c := ts.dialWith(t, user, dialOptions{from: attacker})
		// Not a room ID: a fresh room, shown with the real ID only.
		c.roomID()
		raw := c.screen.Raw()
		if user != "" && len(user) > 1 && strings.Contains(raw, user) {
			t.Errorf("username %q was echoed", user)
		}
		c.typeText("\x03")
		c.exitCode()
	}
	bys.check()
}

func TestSlowAndSilentHandshakesAreCut(t *testing.T) {
	const bound = time.Second
	ts := limitedServer(t, func(l *testLimits) { l.HandshakeTimeout = bound })
	bys := startBystanders(t, ts)
	dial := func() net.Conn {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attacker)}}).Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	closedWithin := func(c net.Conn, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(limit))
		_, err := io.Copy(io.Discard, c)
		took := time.Since(start)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection still open after %v", took)
		}
		return took
	}

	silent := dial()
	if took := closedWithin(silent, 3*bound); took < bound/2 {
		t.Errorf("a silent client was cut after %v, before the bound", took)
	}

	// One byte at a time, each one resetting the library's own deadlines:
	// the bound holds anyway.
	trickler := dial()
	go func() {
		for _, b := range []byte("SSH-2.0-trickle\r\n") {
			if _, err := trickler.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(bound / 10) // the attack itself: bytes spaced out in time
		}
	}()
	closedWithin(trickler, 3*bound)

	// A session channel with a terminal but no shell, ever: cut off with
	// the handshake, not kept until the session limits would end it.
	half, err := ts.connect("x", attacker)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	sess, err := half.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 30, 100, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	cut := make(chan error, 1)
	go func() { cut <- half.Wait() }()
	select {
	case <-cut:
	case <-time.After(3 * bound):
		t.Fatal("a session that never asked for its shell is still open")
	}
	bys.check()
}

func TestConnectionFloodsAreRefusedWithoutBanning(t *testing.T) {
	// Refusal log lines: a burst, and then (for this test) next to none,
	// so the bound below holds however long a loaded machine takes.
	const logBurst = 20
	ts := limitedServer(t, func(l *testLimits) {
		l.addr.ConnsPerAddr = 3
		l.addr.NewConnsPerSecond, l.addr.NewConnsBurst = 5, 5
		l.RefusalLogsPerSecond, l.RefusalLogBurst = 0.0001, logBurst
	})
	bys := startBystanders(t, ts)

	var open []*gossh.Client
	for range 3 {
		c, err := ts.connect("x", attacker)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	refusal := func(from string) string {
		c, err := net.Dial("tcp", ts.addr)
		if from != "" {
			c, err = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).Dial("tcp", ts.addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(waitLimit))
		line := make([]byte, 200)
		n, _ := c.Read(line)
		return string(line[:n])
	}
	// Told inside SSH, where OpenSSH shows it (a line before the
	// handshake shows only with ssh -v).
	fourth := ts.dialWith(t, "x", dialOptions{from: attacker})
	fourth.waitFor("Too many connections from your address at once: close one and try again.")
	if code := fourth.exitCode(); code == 0 {
		t.Error("the 4th concurrent connection exited 0")
	}
	fourth.conn.Close()
	// Another address is unaffected.
	if c, err := ts.connect("x", other); err != nil {
		t.Fatalf("another address was refused: %v", err)
	} else {
		c.Close()
	}
	// Closing one frees its slot.
	open[0].Close()
	var c *gossh.Client
	waitUntil(t, "a slot is free again", func() bool {
		var err error
		c, err = ts.connect("x", attacker)
		return err == nil
	})
	c.Close()
	for _, c := range open[1:] {
		c.Close()
	}

	// The rate of new connections: the burst is spent, then refused, then
	// allowed again once the bucket refills (nobody is banned).
	var refused string
	for range 20 {
		if got := refusal(attacker); strings.Contains(got, "too many new connections") {
			refused = got
			break
		}
	}
	if refused == "" {
		t.Fatal("20 rapid connections were never refused")
	}
	// A flood of refusals is not a flood of log lines: far more refusals
	// than the burst, and exactly the burst logged.
	for range 200 {
		refusal(other)
	}
	logged := strings.Count(ts.logs.String(), " refused")
	if logged != logBurst {
		t.Errorf("%d refusals were logged, want the burst of %d", logged, logBurst)
	}
	waitUntil(t, "new connections are accepted again", func() bool {
		c, err := ts.connect("x", attacker)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	bys.check()
}

func TestOnlyOneChatSessionAndNothingElse(t *testing.T) {
	ts := startServer(t, ttl)
	bys := startBystanders(t, ts)
	conn, err := ts.connect("alice", attacker)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	first, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := conn.NewSession(); err == nil {
		t.Error("a second session channel on one connection was accepted")
	}
	// -L: direct-tcpip channels.
	if _, err := conn.Dial("tcp", bys.alice.conn.LocalAddr().String()); err == nil {
		t.Error("local port forwarding was accepted")
	}
	// -R: tcpip-forward requests.
	if _, err := conn.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote port forwarding was accepted")
	}
	for _, req := range []string{"auth-agent-req@openssh.com", "x11-req", "signal", "break"} {
		if ok, err := first.SendRequest(req, true, nil); ok || err != nil {
			t.Errorf("%s: accepted %v, err %v", req, ok, err)
		}
	}
	// Environment variables: a bounded number, each bounded in size.
	accepted := 0
	for i := range 100 {
		if first.Setenv(fmt.Sprintf("V%d", i), "x") == nil {
			accepted++
		}
	}
	if accepted == 0 || accepted > 32 {
		t.Errorf("%d of 100 env requests accepted, want 1..32", accepted)
	}
	bys.check()
}

func TestAbsurdWindowsAndResizeStormsAreHarmless(t *testing.T) {
	ts := startServer(t, ttl)
	bys := startBystanders(t, ts)
	conn, err := ts.connect("alice", attacker)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, size := range [][2]int{{0, 0}, {65535, 65535}} {
		sess, err := conn.NewSession()
		if err != nil {
			// One session per connection: use a new one.
			conn.Close()
			if conn, err = ts.connect("alice", attacker); err != nil {
				t.Fatal(err)
			}
			if sess, err = conn.NewSession(); err != nil {
				t.Fatal(err)
			}
		}
		screen := newScreen(100, 30)
		sess.Stdout = screen
		if err := sess.RequestPty("xterm", size[1], size[0], gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
		if err := sess.Shell(); err != nil {
			t.Fatal(err)
		}
		// Drawn for at most 1000×500, whatever was claimed: more than this
		// 100×30 test terminal shows, so look at the bytes.
		waitUntil(t, "a first screen", func() bool { return strings.Contains(screen.Raw(), "destroy room") })
		for i := range 2000 {
			w := 1 + i%65535
			payload := gossh.Marshal(struct{ Cols, Rows, Width, Height uint32 }{uint32(w), uint32(w), 0, 0})
			if _, err := sess.SendRequest("window-change", false, payload); err != nil {
				t.Fatal(err)
			}
		}
		// The last size wins, however many came before it: the screen is
		// drawn for this terminal again, its countdown against the edge.
		last := gossh.Marshal(struct{ Cols, Rows, Width, Height uint32 }{100, 30, 0, 0})
		if _, err := sess.SendRequest("window-change", false, last); err != nil {
			t.Fatal(err)
		}
		screen.waitUntil(t, "alice", func(s string) bool {
			header, _, _ := strings.Cut(s, "\n")
			return strings.Contains(header, "self-destructs in") && utf8.RuneCountInString(strings.TrimRight(header, " ")) == 100
		}, "a screen drawn for 100 columns")
		bys.check()
	}
}

func TestVanishedClientIsNoticedAndItsSeatKept(t *testing.T) {
	const interval = 200 * time.Millisecond
	ts := limitedServer(t, func(l *testLimits) { l.KeepaliveInterval = interval })
	bys := startBystanders(t, ts)
	alice := ts.dial(t, "alice")
	id := alice.roomID()

	// Bob reaches the server through a proxy that can go silent, as a
	// laptop lid closing does: no FIN, no RST, just nothing.
	proxy := redistest.StartProxy(t, ts.addr)
	via := &testServer{addr: proxy.Addr}
	conn, err := via.connect(id, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	bobScreen := newScreen(100, 30)
	sess.Stdout = bobScreen
	if err := sess.RequestPty("xterm", 30, 100, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	alice.waitFor("joined")
	proxy.Cut()
	vanished := time.Now()
	alice.waitFor("left; their seat is kept for them")
	if took := time.Since(vanished); took > 5*interval+time.Second {
		t.Errorf("noticed after %v, want within about 3 keepalive intervals (%v)", took, 3*interval)
	}
	// The seat is Bob's until the room ends: nobody takes it with the ID.
	ts.dial(t, id).waitFor("This room is private")
	bys.check()
}

func TestIdleAndOverlongSessionsEndPolitely(t *testing.T) {
	ts := limitedServer(t, func(l *testLimits) { l.IdleTimeout = time.Second })
	idle := ts.dial(t, "idle")
	idle.roomID()
	// The countdown redraws every second; that is not activity.
	idle.waitFor("You typed nothing for 1s, so you were disconnected.", "The room is still open.", "To return as yourself, run:")
	if code := idle.exitCode(); code != ui.ExitDisconnected {
		t.Errorf("exit %d, want %d", code, ui.ExitDisconnected)
	}

	// Idle as long as the room lives (the default settings): the room's
	// end is what the screen says.
	limits := generousLimits()
	limits.IdleTimeout = 2 * time.Second
	ts = startServerWith(t, memstore.New(limits.IdleTimeout), limits)
	quiet := ts.dial(t, "quiet")
	quiet.roomID()
	quiet.waitFor("Room expired")
	if strings.Contains(quiet.screen.String(), "You typed nothing") {
		t.Error("the idle timeout spoke over the room's expiry")
	}

	ts = limitedServer(t, func(l *testLimits) { l.MaxSession = 2 * time.Second })
	busy := ts.dial(t, "busy")
	busy.roomID()
	// Typing all along, so it is not idleness that ends it.
	waitUntil(t, "a busy session is ended", func() bool {
		_, _ = busy.stdin.Write([]byte("a"))
		return strings.Contains(busy.screen.String(), "Sessions last at most 2s.")
	})
}

// lastFloodLine is the flood's last line in the input (as the terminal
// shows it: its spaces may be drawn wider, and the input, which wraps
// between words, may break the line there onto its next row).
var lastFloodLine = regexp.MustCompile(`flood\s+149`)

// floodLabel finds the flood's lines on a screen.
var floodLabel = regexp.MustCompile(`flood (\d{3})`)

// A flood of messages reaches the other person at the server's pace,
// without a gap: what the sender's screen holds on its way is
// bounded, the rest stays in their input with a notice, and nobody is
// banned: once the flood has gone out, a message goes out again.
func TestMessageFloodsArePacedWithoutBanning(t *testing.T) {
	ts := limitedServer(t, func(l *testLimits) {
		l.MessagesPerSecond, l.MessageBurst = 10, 5
		// The flood is typed at once, not at a person's pace.
		l.InputBytesPerSecond, l.KeysPerSecond = 8<<20, 1<<20
	})
	bys := startBystanders(t, ts)
	victim := ts.dialWith(t, "victim", dialOptions{from: other})
	evil := ts.dialWith(t, victim.roomID(), dialOptions{from: attacker})
	evil.waitFor("you joined")

	// Far more than are let on their way (32) plus what goes out while
	// the screen takes the flood in, however slowly a loaded machine
	// does: some stay in the input.
	const lines = 150
	var flood strings.Builder
	for i := range lines {
		fmt.Fprintf(&flood, "flood %03d\r", i)
	}
	evil.typeText(flood.String())
	// Generous deadlines: what is held back drains at the server's pace.
	waitfor.Condition(t, 3*waitfor.Timeout, "the flood to be held back", func() bool {
		s := evil.screen.String()
		return strings.Contains(s, "Slow down") && lastFloodLine.MatchString(inputLine(s))
	})
	// What was held back is the sender's to keep or clear; what went on
	// its way arrives, and then a new message.
	evil.typeText("\x15calm now\r")
	waitfor.Condition(t, 3*waitfor.Timeout, "a message to go through again", func() bool {
		if strings.Contains(victim.screen.String(), "calm now") {
			return true
		}
		if strings.Contains(evil.screen.String(), "Slow down") {
			evil.typeText("\x15calm now\r") // still full: again
		}
		return false
	})
	seen := map[string]bool{}
	for _, m := range floodLabel.FindAllStringSubmatch(victim.screen.Raw(), -1) {
		seen[m[1]] = true
	}
	for i := range len(seen) {
		if !seen[fmt.Sprintf("%03d", i)] {
			t.Fatalf("the victim saw %d flood lines but not line %d: one went missing", len(seen), i)
		}
	}
	if len(seen) == 0 || len(seen) == lines {
		t.Errorf("the victim saw %d of %d flood lines, want the flood held back", len(seen), lines)
	}
	// A legitimate paste of a few KB is one message.
	evil.typeText("\x1b[200~" + strings.Repeat("pasted text ", 80) + "\x1b[201~\r")
	victim.waitFor("pasted text pasted text")
	bys.check()
}

// A paste that ends itself and then asks to destroy the room and says
// yes, padded out with other keys so the yes comes late, destroys nothing:
// the yes needs a moment without keys after the question.
func TestAPastedYesDestroysNothing(t *testing.T) {
	ts := startServer(t, ttl)
	victim := ts.dialWith(t, "victim", dialOptions{from: other})
	evil := ts.dialWith(t, victim.roomID(), dialOptions{from: attacker})
	evil.waitFor("you joined")
	victim.typeText("\x1b[200~innocent text\x1b[201~\x18" + strings.Repeat("\x01", 400) + "y")
	victim.waitFor("Destroy this room")
	// n, after it all, shows the whole paste was taken in.
	victim.typeText("n")
	victim.waitFor("The room lives on.")
	evil.say("still here")
	victim.waitFor("still here")
}

// Leaving never waits behind a flood of input, however slowly the chat
// takes that flood in: the 200,000 tiny keys before the Ctrl+C would take
// over 15 minutes to take in, and the test waits seconds.
func TestCtrlCLeavesAtOnceBehindAFlood(t *testing.T) {
	ts := startServer(t, ttl)
	bys := startBystanders(t, ts)
	evil := ts.dialWith(t, "evil", dialOptions{from: attacker})
	evil.roomID()
	evil.typeText(strings.Repeat("a\x7f", 100_000) + "\x03")
	evil.waitFor("You left the room.")
	if code := evil.exitCode(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	bys.check()
}

func TestRoomAndGuessingFloodsAreLimitedPerAddress(t *testing.T) {
	ts := limitedServer(t, func(l *testLimits) { l.addr.RoomsPerMinute, l.addr.FailedJoins = 3, 3 })
	bys := startBystanders(t, ts) // one room from the bystanders' address

	for range 3 {
		c := ts.dialWith(t, "x", dialOptions{from: attacker})
		c.roomID()
		c.typeText("\x03")
	}
	refused := ts.dialWith(t, "x", dialOptions{from: attacker})
	refused.waitFor("You have opened too many rooms")
	if refused.exitCode() == 0 {
		t.Error("exit 0")
	}
	ts.dialWith(t, "x", dialOptions{from: other}).roomID()

	for range 3 {
		c := ts.dialWith(t, store.NewRoomID().String(), dialOptions{from: attacker})
		c.waitFor("No such room")
	}
	guess := ts.dialWith(t, store.NewRoomID().String(), dialOptions{from: attacker})
	guess.waitFor("Too many attempts to join rooms that do not exist")
	ts.dialWith(t, store.NewRoomID().String(), dialOptions{from: other}).waitFor("No such room")
	bys.check()
}

// Refused sessions cost a log line each at most, and only so many a
// second: refusals are caused by clients.
func TestRefusedSessionsAreLoggedSparingly(t *testing.T) {
	started := time.Now()
	ts := startServer(t, ttl)
	const refusals = 40
	for range refusals {
		c := ts.dialWith(t, mistype(store.NewRoomID()), dialOptions{from: attacker})
		c.waitFor("that room ID has a typo")
		c.exitCode()
		c.conn.Close()
	}
	logs := ts.logs.String()
	if n := strings.Count(logs, "session ended"); n > 0 {
		t.Errorf("%d refused sessions were logged as ended sessions", n)
	}
	if n, limit := strings.Count(logs, "session refused"), 20+5*int(time.Since(started).Seconds()+1); n > limit || n == 0 {
		t.Errorf("%d of %d refusals were logged, want some and at most %d", n, refusals, limit)
	}
}

func TestServerBusyBeyondTheSessionCap(t *testing.T) {
	ts := limitedServer(t, func(l *testLimits) { l.MaxSessions = 2 })
	bys := startBystanders(t, ts) // two sessions: the cap
	c := ts.dialWith(t, "x", dialOptions{from: attacker})
	c.waitFor("The server is busy")
	if c.exitCode() == 0 {
		t.Error("exit 0")
	}
	bys.check()
}

// panicky is a store whose Create panics: a bug in one session's path.
type panicky struct{ store.Store }

func (p panicky) Create(ctx context.Context) (store.Room, error) { panic("boom") }

func TestOneSessionsPanicEndsOnlyThatSession(t *testing.T) {
	mem := memstore.New(ttl)
	ts := startServerOn(t, panicky{mem})
	// The bystanders' room is made directly, since Create panics.
	room, err := mem.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	alice := ts.dialWith(t, room.ID.String(), dialOptions{from: bystanderAddr})
	bob := ts.dialWith(t, room.ID.String(), dialOptions{from: bystanderAddr})
	bob.waitFor("you joined")
	bys := &bystanders{t: t, alice: alice, bob: bob}

	c := ts.dialWith(t, "x", dialOptions{from: attacker})
	c.waitFor("Something went wrong on our side")
	if c.exitCode() == 0 {
		t.Error("exit 0")
	}
	bys.check()
	if !strings.Contains(ts.logs.String(), "session panicked") {
		t.Error("the panic was not logged")
	}
}

// panickySeats hands out seats whose Send panics on one message: a bug
// inside the chat screen's own goroutines, after its terminal was set up.
type panickySeats struct{ store.Store }

func (p panickySeats) Join(ctx context.Context, id store.RoomID) (store.Seat, error) {
	seat, err := p.Store.Join(ctx, id)
	return panickySeat{seat}, err
}

type panickySeat struct{ store.Seat }

func (p panickySeat) Send(ctx context.Context, id store.MessageID, body string) error {
	if body == "this send panics" {
		panic("boom")
	}
	return p.Seat.Send(ctx, id, body)
}

// A bug inside a running chat ends only that chat, and leaves the person's
// terminal as it was: their own screen back, the cursor shown, pastes
// arriving as keys again.
func TestAPanicInsideTheChatRestoresTheTerminal(t *testing.T) {
	ts := startServerOn(t, panickySeats{memstore.New(ttl)})
	bys := startBystanders(t, ts)
	c := ts.dialWith(t, "victim", dialOptions{from: attacker})
	c.roomID()
	c.say("this send panics")
	// The explanation comes on stderr, the restoring on stdout: the test's
	// client copies the two apart (a terminal would show them in order), so
	// look for both in everything received.
	waitUntil(t, "the person is told", func() bool { return strings.Contains(c.screen.Raw(), "Something went wrong on our side") })
	if c.exitCode() == 0 {
		t.Error("exit 0")
	}
	wantRestored(t, c.screen.Raw())
	waitUntil(t, "the panic is logged", func() bool {
		return strings.Contains(ts.logs.String(), `msg="session panicked" in=command panic=boom stack=`)
	})
	bys.check()
}

func TestLogsHoldNoMessageRoomIDKeyOrEnvironment(t *testing.T) {
	ts := startServer(t, ttl)
	canary := make([]byte, 12)
	rand.Read(canary)
	secret := "canary-" + hex.EncodeToString(canary)
	alice := ts.dialWith(t, "alice-"+secret, dialOptions{env: map[string]string{"SECRET": secret, "TZ": "Europe/Berlin"}})
	id := alice.roomID()
	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	alice.say(secret)
	bob.waitFor(secret)
	bob.destroyRoom()
	alice.waitFor("destroyed")
	logs := ts.logs.String()
	for _, clear := range []string{secret, id, strings.ReplaceAll(id, "-", "")} {
		if strings.Contains(logs, clear) {
			t.Errorf("logs contain %q:\n%s", clear, logs)
		}
	}
	if !strings.Contains(logs, "seat taken") {
		t.Errorf("no session was logged at all:\n%s", logs)
	}
}

// waitUntil polls cond until it holds; for conditions with nothing to
// block on (a refill over time, a remote reply).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(waitLimit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}

// What an address makes the service keep is bounded in bytes: rooms,
// seats and messages are charged to its budget, and beyond it a message is
// not sent (its sender is told, and keeps the text) and a new room is
// refused in one line; other addresses notice nothing.
func TestByteBudgetBoundsWhatAnAddressMakesUsKeep(t *testing.T) {
	long := func(i int) string { return fmt.Sprintf("msg%d %s", i, strings.Repeat("y", 980)) }
	ts := limitedServer(t, func(l *testLimits) {
		// A room with its creator's seat, four long messages, and a
		// little more: short of a fifth message or another room.
		l.addr.BudgetBurst = store.RoomCost + store.JoinCost + 4*store.MessageCost(long(1)) + 500
		l.addr.BudgetRefill = 1 // practically none within the test
		l.InputBytesPerSecond, l.KeysPerSecond = 1<<20, 1<<20
	})
	bys := startBystanders(t, ts)
	evil := ts.dialWith(t, "evil", dialOptions{from: attacker})
	victim := ts.dialWith(t, evil.roomID(), dialOptions{from: other})
	victim.waitFor("you joined")
	for i := 1; i <= 4; i++ {
		evil.say(long(i))
		victim.waitFor(fmt.Sprintf("msg%d", i))
	}
	evil.say(long(5))
	evil.waitFor("Not sent")
	victim.say("still here")
	evil.waitFor("still here")
	if strings.Contains(victim.screen.String(), "msg5") {
		t.Fatal("a message beyond the budget reached the partner")
	}

	again := ts.dialWith(t, "evil", dialOptions{from: attacker})
	again.waitFor("Your address has sent too much lately")
	if again.exitCode() == 0 {
		t.Error("a room refused for the budget exited 0")
	}
	if n := strings.Count(ts.logs.String(), `reason="byte budget"`); n == 0 {
		t.Errorf("the refusal was not logged under its reason:\n%s", ts.logs.String())
	}
	ts.dialWith(t, "x", dialOptions{from: "127.0.0.4"}).roomID()
	bys.check()
}

// stallingLimiter's Admit answers only when its context ends, as a shared
// limiter would whose store never answers; it hands on the deadline it
// was given.
type stallingLimiter struct {
	limits.Limiter
	deadlines chan time.Time
}

func (s stallingLimiter) Admit(ctx context.Context, client netip.Prefix) (limits.Verdict, func()) {
	d, _ := ctx.Deadline()
	s.deadlines <- d
	<-ctx.Done()
	return s.Limiter.Admit(ctx, client)
}

// The per-address limits decide within the handshake's bound: nothing
// done for a connection outlives it, however long the limiter would wait.
func TestAdmissionIsBoundByTheHandshakeDeadline(t *testing.T) {
	const bound = time.Second
	l := generousLimits()
	l.HandshakeTimeout = bound
	stalling := stallingLimiter{Limiter: local.New(l.addr), deadlines: make(chan time.Time, 1)}
	ts := startServerShared(t, memstore.New(ttl), l.Limits, stalling)
	start := time.Now()
	c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(attacker)}}).Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var deadline time.Time
	select {
	case deadline = <-stalling.deadlines:
	case <-time.After(waitLimit):
		t.Fatal("the connection was never put to the limits")
	}
	asked := time.Now()
	if deadline.IsZero() || deadline.Before(start.Add(bound)) || deadline.After(asked.Add(bound)) {
		t.Fatalf("Admit's deadline is %v after the dial (asked %v after), want the handshake's bound, %v after the accept",
			deadline.Sub(start), asked.Sub(start), bound)
	}
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := io.Copy(io.Discard, c); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the connection is still open long after its handshake's bound")
		}
	}
}
