package server_test

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
	"github.com/ssh-burn/chat/ui"
)

// liner is one person in the plain line mode at a real SSH client: with no
// terminal (ssh -T), or with one whose TERM is dumb.
type liner struct {
	t       testing.TB
	name    string
	session *gossh.Session
	stdin   io.WriteCloser
	out     *rawOutput
	exited  chan error
	exitErr error
	done    bool
}

// rawOutput is every byte a session wrote, stdout and stderr as they came.
type rawOutput struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{}
}

func (o *rawOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.buf.Write(p)
	o.mu.Unlock()
	select {
	case o.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (o *rawOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// dialPlain connects as user without a terminal, or with a terminal of
// type term.
func (ts *testServer) dialPlain(t testing.TB, user, term string) *liner {
	t.Helper()
	conn, err := ts.connect(user, "")
	if err != nil {
		t.Fatalf("dial as %q: %v", user, err)
	}
	t.Cleanup(func() { conn.Close() })
	session, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	l := &liner{t: t, name: user, session: session, out: &rawOutput{changed: make(chan struct{}, 1)}, exited: make(chan error, 1)}
	session.Stdout, session.Stderr = l.out, l.out
	if l.stdin, err = session.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if term != "" {
		if err := session.RequestPty(term, 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatalf("pty: %v", err)
		}
	}
	if err := session.Shell(); err != nil {
		t.Fatalf("shell: %v", err)
	}
	go func() { l.exited <- session.Wait() }()
	return l
}

// waitFor waits until the output holds every one of texts, and returns it.
func (l *liner) waitFor(texts ...string) string {
	l.t.Helper()
	return l.waitMatch(fmt.Sprintf("%q", texts), func(s string) bool {
		for _, text := range texts {
			if !strings.Contains(s, text) {
				return false
			}
		}
		return true
	})
}

func (l *liner) waitMatch(what string, ok func(string) bool) string {
	l.t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		s := l.out.String()
		if ok(s) {
			return s
		}
		select {
		case <-l.out.changed:
		case <-deadline.C:
			l.t.Fatalf("%s: output never showed %s:\n%s", l.name, what, s)
		}
	}
}

func (l *liner) send(text string) {
	l.t.Helper()
	if _, err := io.WriteString(l.stdin, text); err != nil {
		l.t.Fatalf("%s: write: %v", l.name, err)
	}
}

// line types a line as a client without a terminal sends it.
func (l *liner) line(text string) { l.send(text + "\n") }

// roomID reads the room ID out of the share command.
func (l *liner) roomID() string {
	l.t.Helper()
	return shareCommand.FindStringSubmatch(l.waitMatch("the share command", shareCommand.MatchString))[2]
}

// destroyRoom types /destroy and y once the question is out, again after a
// pause if the yes came too soon to count.
func (l *liner) destroyRoom(enter string) {
	l.t.Helper()
	l.send("/destroy" + enter)
	l.waitFor("Destroy this room and every message in it, for both of you? Type y")
	for range 10 {
		l.send("y" + enter)
		if waitfor.Within(time.Second, func() bool { return strings.Contains(l.out.String(), "Destroying the room") }) {
			return
		}
	}
	l.t.Fatalf("%s: no yes to destroy the room counted", l.name)
}

func (l *liner) exitCode() int {
	l.t.Helper()
	if !l.done {
		select {
		case l.exitErr = <-l.exited:
			l.done = true
		case <-time.After(waitLimit):
			l.t.Fatalf("%s: session did not end:\n%s", l.name, l.out)
		}
	}
	var exit *gossh.ExitError
	switch {
	case l.exitErr == nil:
		return 0
	case errors.As(l.exitErr, &exit):
		return exit.ExitStatus()
	}
	l.t.Fatalf("%s: session ended without a status: %v", l.name, l.exitErr)
	return -1
}

// noEscapes fails t if out holds an escape byte, or any control but line
// ends (and backspace, which a terminal's line editing echoes).
func noEscapes(t testing.TB, who, out string) {
	t.Helper()
	for i, r := range out {
		switch {
		case r == '\n', r == '\r', r == '\b':
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
			t.Errorf("%s: control %U at byte %d in the output:\n%q", who, r, i, out)
			return
		}
	}
}

// messageLine is a message as the line mode shows it.
var messageLine = regexp.MustCompile(`(?m)^\d\d:\d\d anonymous-[a-z]+-[0-9a-z]{4}: hello from the full screen\r?$`)

func TestPlainLineModeTalksWithTheFullScreen(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dialPlain(t, "alice", "")
	alice.waitFor("Private room, in line mode. You are anonymous-", "The room self-destructs in ", "To invite someone, share this command with ONE person:")
	id := alice.roomID()

	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	alice.waitFor(" joined. The room is now sealed to you two: /help shows your own way back in.")

	alice.line("hello from the line mode")
	bob.waitFor("hello from the line mode")
	bob.say("hello from the full screen")
	alice.waitMatch("the partner's message as a line", messageLine.MatchString)
	// What the person typed is not repeated to them.
	if strings.Contains(alice.out.String(), "you: hello from the line mode") {
		t.Errorf("alice's own message was echoed back:\n%s", alice.out)
	}

	alice.line("/who")
	alice.waitFor(" is here.\n")
	alice.line("/help")
	alice.waitFor("/destroy  destroy the room", "Your own way back into this room", "ssh -p ")
	alice.line("/nonsense")
	alice.waitFor(`Unknown command "/nonsense"`)
	alice.line("//slash")
	bob.waitFor("/slash")

	alice.destroyRoom("\n")
	alice.waitFor("Room destroyed by you. Every message in it is gone.")
	bob.waitFor("Room destroyed by your partner (anonymous-")
	if code := alice.exitCode(); code != ui.ExitDestroyedBySelf {
		t.Errorf("alice: exit status %d", code)
	}
	if code := bob.exitCode(); code != ui.ExitDestroyedByOther {
		t.Errorf("bob: exit status %d", code)
	}
	noEscapes(t, "alice", alice.out.String())
}

func TestPlainLineModeOnADumbTerminal(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dialPlain(t, "alice", "dumb")
	id := alice.roomID()
	bob := ts.dialPlain(t, id, "")
	bob.waitFor("you joined; anonymous-")
	alice.waitFor(" joined.")

	// Every key is echoed as it comes, and backspace takes one back.
	alice.send("helo")
	alice.waitFor("helo")
	alice.send("\x7flo\x1b[D there\r")
	bob.waitFor(": hello there\n")
	alice.waitFor("helo\b \blo there\r\n")

	// A message arriving while a line is typed comes on a line of its
	// own, and the line so far is shown again under it.
	alice.send("half")
	alice.waitFor("half")
	bob.line("interrupting")
	alice.waitFor("half\r\n", ": interrupting\r\nhalf")
	alice.send(" done\r")
	bob.waitFor(": half done\n")

	alice.send("\x03") // ctrl+c leaves, as in the full screen
	alice.waitFor("You left the room. Your seat is kept for you until it self-destructs in ", "To return as yourself, run:\r\nssh -p ")
	if code := alice.exitCode(); code != 0 {
		t.Errorf("alice: exit status %d", code)
	}
	bob.waitFor(" left; their seat is kept for them until the room ends")
	noEscapes(t, "alice", alice.out.String())
	noEscapes(t, "bob", bob.out.String())
}

func TestPlainLineModeForAScript(t *testing.T) {
	ts := startServer(t, ttl)
	watcher := ts.dialPlain(t, "watcher", "")
	id := watcher.roomID()

	// A script pipes its lines in and closes its input: they are sent,
	// in order, and it leaves once they are in the room.
	script := ts.dialPlain(t, id, "")
	script.send("one\ntwo\r\n/who\nthree")
	if err := script.stdin.Close(); err != nil {
		t.Fatal(err)
	}
	script.waitFor("You left the room.")
	if code := script.exitCode(); code != 0 {
		t.Errorf("script: exit status %d", code)
	}
	out := watcher.waitFor(": one\n", ": two\n", ": three\n", " left; their seat is kept for them")
	if i, j, k := strings.Index(out, ": one"), strings.Index(out, ": two"), strings.Index(out, ": three"); i > j || j > k {
		t.Errorf("lines out of order:\n%s", out)
	}
	noEscapes(t, "script", script.out.String())
}

func TestPlainLineModeKeepsTheLimits(t *testing.T) {
	l := generousLimits()
	l.MessagesPerSecond, l.MessageBurst = 0.01, 2 // a third message waits 100 s: refused
	l.IdleTimeout = 5 * time.Second
	ts := startServerWith(t, memstore.New(ttl), l)
	alice := ts.dialPlain(t, "alice", "")
	alice.roomID()

	alice.line(strings.Repeat("x", safetext.MaxMessageRunes+1))
	alice.waitFor(fmt.Sprintf("Not sent: %d characters is too long, the limit is %d.", safetext.MaxMessageRunes+1, safetext.MaxMessageRunes))
	// 700 characters, each with three accents: 4,900 bytes.
	alice.line(strings.Repeat("e\u0301\u0302\u0303", 700))
	alice.waitFor(fmt.Sprintf("Not sent: with its accents or emoji it takes 4900 bytes, at most %d fit.", safetext.MaxMessageBytes))
	alice.line(strings.Repeat("y", 20000))
	alice.waitFor("Not sent: that line is longer than 16384 bytes.")

	alice.line("first")
	alice.line("second")
	alice.line("third")
	alice.waitFor("Not sent: too many messages at once. Send them again in a moment:\n  third\n")

	// Typing nothing ends the session as the full screen's does.
	alice.waitFor("You typed nothing for 5s, so you were disconnected. The room is still open.\nTo return as yourself, run:\nssh -p ")
	if code := alice.exitCode(); code != ui.ExitDisconnected {
		t.Errorf("alice: exit status %d", code)
	}
	noEscapes(t, "alice", alice.out.String())
}

func TestPlainLineModeKeepsExecRefused(t *testing.T) {
	ts := startServer(t, ttl)
	id := ts.dialPlain(t, "alice", "").roomID()
	rejoin := store.RejoinName(store.RoomID(id), store.NewSeatKey(store.RoomID(id)))
	for _, tc := range []struct{ name, user, want string }{
		{"ssh host ls", "alice", "This server runs only the chat, not commands. Connect with: ssh -t -p " + strconv.Itoa(ts.port) + " 127.0.0.1"},
		{"ssh room ls", id, "Connect with: ssh -t -p " + strconv.Itoa(ts.port) + " " + id + "@127.0.0.1"},
		{"ssh rejoin ls", rejoin, "Connect with: ssh -t -p " + strconv.Itoa(ts.port) + " " + rejoin + "@127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := ts.connect(tc.user, "")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			session, err := conn.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			out, err := session.CombinedOutput("ls")
			var exit *gossh.ExitError
			if !errors.As(err, &exit) || exit.ExitStatus() == 0 {
				t.Errorf("exit: %v, want a non-zero status", err)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("got %q, want %q in it", out, tc.want)
			}
		})
	}
	// None of those took the free seat.
	ts.dialPlain(t, id, "").waitFor("you joined; anonymous-")
}

func TestPlainLineModeSaysTheCountdown(t *testing.T) {
	// A minute and two seconds: the last minute is said in two seconds.
	ts := startServer(t, time.Minute+2*time.Second)
	alice := ts.dialPlain(t, "alice", "")
	alice.waitFor("The room self-destructs in 1:0")
	alice.waitMatch("the last minute said", regexp.MustCompile(`(?m)^\d\d:\d\d \* 1 minute left: the room self-destructs at \d\d:\d\d\.$`).MatchString)
}

func TestPlainLineModeEndsAtExpiry(t *testing.T) {
	ts := startServer(t, 3*time.Second)
	alice := ts.dialPlain(t, "alice", "")
	bob := ts.dialPlain(t, alice.roomID(), "dumb")
	bob.waitFor("you joined")
	for _, l := range []*liner{alice, bob} {
		l.waitFor("Room expired: its 3s are up. Every message in it is gone.")
		if code := l.exitCode(); code != ui.ExitExpired {
			t.Errorf("%s: exit status %d", l.name, code)
		}
	}
	if ts.memoryRooms() != 0 {
		t.Errorf("%d rooms left in memory", ts.memoryRooms())
	}
}

func TestPlainLineModeLeavesNoGoroutinesBehind(t *testing.T) {
	ts := startServer(t, ttl)
	warm := ts.dialPlain(t, "warm-up", "")
	warm.roomID()
	warm.line("/leave")
	warm.exitCode()
	waitForGoroutines(t, runtime.NumGoroutine())
	baseline := runtime.NumGoroutine()

	for _, term := range []string{"", "dumb"} {
		alice := ts.dialPlain(t, "alice", term)
		bob := ts.dialPlain(t, alice.roomID(), term)
		bob.waitFor("you joined")
		alice.send("hello\r")
		bob.waitFor(": hello")
		// A line being typed when the room ends.
		alice.send("half a line")
		bob.send("/destroy\r")
		bob.waitFor("Destroy this room")
		waitfor.Condition(t, waitLimit, "a yes that counts", func() bool {
			bob.send("y\r")
			return waitfor.Within(time.Second, func() bool { return strings.Contains(bob.out.String(), "Destroying") })
		})
		alice.waitFor("Room destroyed by your partner")
		alice.exitCode()
		bob.exitCode()
	}
	waitForGoroutines(t, baseline)
}

// A client that reads nothing is let go once what waits for it reaches
// its bound, and the room goes on for its partner.
func TestPlainLineModeLetsAClientThatReadsNothingGo(t *testing.T) {
	l := generousLimits()
	l.InputBytesPerSecond = 1 << 30
	ts := startServerWith(t, memstore.New(ttl), l)
	alice := ts.dialPlain(t, "alice", "")
	id := alice.roomID()
	conn, err := ts.connect(id, "")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A session whose output nobody reads: the SSH window fills, then
	// the server's queue.
	ch, reqs, err := conn.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go gossh.DiscardRequests(reqs)
	if ok, err := ch.SendRequest("shell", true, nil); !ok || err != nil {
		t.Fatalf("shell: %v %v", ok, err)
	}
	alice.waitFor(" joined.")
	stop := make(chan struct{})
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		line := []byte(strings.Repeat("w", safetext.MaxMessageRunes) + "\n")
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := alice.stdin.Write(line); err != nil {
				return
			}
		}
	}()
	waitfor.Condition(t, time.Minute, "the reader of nothing let go", func() bool {
		return strings.Contains(alice.out.String(), " left; ")
	})
	close(stop)
	<-flooded
	// Once alice's own backlog is through (what did not fit was
	// dropped), she is answered.
	waitfor.Condition(t, time.Minute, "an answer to /who", func() bool {
		alice.line("/who")
		return waitfor.Within(time.Second, func() bool {
			return strings.Contains(alice.out.String(), "is away, their seat kept for them")
		})
	})
}

func TestPlainLineModeKeepsTheByteBudgetAndSessionLimit(t *testing.T) {
	l := generousLimits()
	// The room and the seat fit; no message does.
	l.addr.BudgetBurst, l.addr.BudgetRefill = store.RoomCost+store.JoinCost+100, 1
	l.MaxSession = 4 * time.Second
	ts := startServerWith(t, memstore.New(ttl), l)
	alice := ts.dialPlain(t, "alice", "")
	alice.roomID()
	alice.line("too dear")
	alice.waitFor("Not sent: too much sent from your network lately. Send them again in a minute:\n  too dear\n")
	alice.waitFor("Sessions last at most 4s. The room is still open.\nTo return as yourself, run:\nssh -p ")
	if code := alice.exitCode(); code != ui.ExitDisconnected {
		t.Errorf("alice: exit status %d", code)
	}
}
