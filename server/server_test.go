package server_test

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/server"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
	"github.com/ssh-burn/chat/ui"
)

const ttl = 10 * time.Minute

func TestLocalLoginNameCreatesARoomAndShowsTheShareCommand(t *testing.T) {
	ts := startServer(t, ttl)
	// The test client never answers terminal queries (background colour,
	// cursor position), like some real terminals: the screen must not wait
	// for an answer (how soon it comes is measured by the load command).
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	if _, err := store.ParseRoomID(id); err != nil {
		t.Errorf("shared ID %q: %v", id, err)
	}
	alice.waitFor("Waiting for them to join", "self-destructs in 10:00", "ctrl+x destroy room")
	if strings.Contains(alice.screen.Raw(), "\x1b]11;?") {
		t.Error("the server queried the client's background colour")
	}
}

// Login names as long as a room ID are still names: they open a room.
func TestLongLoginNamesCreateRooms(t *testing.T) {
	ts := startServer(t, ttl)
	for _, user := range []string{"christopherjames", "CHRISTOPHERJAMES", "anna-marie"} {
		c := ts.dial(t, user)
		c.roomID()
		c.typeText("\x03")
		if code := c.exitCode(); code != 0 {
			t.Errorf("%s: exit status %d", user, code)
		}
	}
}

func TestJoinChatBothWaysWithHistory(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	alice.say("written before anyone came")
	alice.waitFor("you: written before anyone came")

	bob := ts.dial(t, id)
	bob.waitFor("written before anyone came", "you joined; anonymous-")
	alice.waitFor("joined")
	if strings.Contains(alice.screen.String(), "Waiting for them") {
		t.Error("the creator still sees 'waiting' after the partner joined")
	}

	alice.say("hello bob")
	bob.waitFor("hello bob")
	bob.say("hi alice, 世界 🎉")
	alice.waitFor("hi alice, 世界")
	bob.waitFor("you: hi alice")
	// The two countdowns agree to the second, read at the same moment.
	a, b := alice.countdown(), bob.countdown()
	if d := a - b; d < -1 || d > 1 || a > 600 || a < 500 {
		t.Errorf("countdowns read %ds and %ds, want within a second of each other", a, b)
	}
}

var countdownText = regexp.MustCompile(`self-destructs in (\d+):(\d\d)`)

// countdown is the remaining life the screen shows, in seconds.
func (c *client) countdown() int {
	c.t.Helper()
	m := countdownText.FindStringSubmatch(c.screen.waitUntil(c.t, c.name, countdownText.MatchString, "a countdown"))
	minutes, _ := strconv.Atoi(m[1])
	sec, _ := strconv.Atoi(m[2])
	return 60*minutes + sec
}

// Once two people met, the room ID admits nobody else, while both are
// in it and after either left.
func TestThirdPersonIsToldTheRoomIsPrivate(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	carol := ts.dial(t, id)
	carol.waitFor("This room is private to the two people who met in it.")
	if code := carol.exitCode(); code == 0 {
		t.Errorf("exit status %d, want non-zero", code)
	}
	bob.typeText("\x03")
	alice.waitFor("left; their seat is kept for them")
	dave := ts.dial(t, id)
	dave.waitFor("This room is private to the two people who met in it.")
	if code := dave.exitCode(); code == 0 {
		t.Errorf("exit status %d, want non-zero", code)
	}
}

func TestUnknownAndMistypedRoomsAreRefused(t *testing.T) {
	ts := startServer(t, ttl)
	for user, want := range map[string]string{
		store.NewRoomID().String(): "No such room (it may have expired or been destroyed)",
		mistype(store.NewRoomID()): "that room ID has a typo",
	} {
		c := ts.dial(t, user)
		c.waitFor(want)
		if code := c.exitCode(); code == 0 {
			t.Errorf("%s: exit status 0, want non-zero", user)
		}
	}
}

// mistype changes one character so that the check character no longer fits.
func mistype(id store.RoomID) string {
	b := []byte(id)
	for _, c := range []byte("0123456789abcdefghjkmnpqrstvwxyz") {
		b[0] = c
		if _, err := store.ParseRoomID(string(b)); err == store.ErrMistypedRoomID {
			return string(b)
		}
	}
	panic("no mistyped variant")
}

func TestDestroyEndsBothSessionsWithTheReason(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	alice.say("something private")
	bob.waitFor("something private")

	bob.destroyRoom()
	bob.waitFor("Room destroyed by you. Every message in it is gone.")
	alice.waitFor("Room destroyed by your partner (anonymous-")
	for c, want := range map[*client]int{bob: ui.ExitDestroyedBySelf, alice: ui.ExitDestroyedByOther} {
		if code := c.exitCode(); code != want {
			t.Errorf("%s: exit status %d, want %d", c.name, code, want)
		}
	}
	if ts.memoryRooms() != 0 {
		t.Errorf("%d rooms left in memory", ts.memoryRooms())
	}
	late := ts.dial(t, id)
	late.waitFor("No such room")
}

func TestExpiryEndsBothSessions(t *testing.T) {
	ts := startServer(t, 3*time.Second)
	alice := ts.dial(t, "alice")
	bob := ts.dial(t, alice.roomID())
	bob.waitFor("you joined")
	for _, c := range []*client{alice, bob} {
		c.waitFor("Room expired: its 3s are up. Every message in it is gone.")
		if code := c.exitCode(); code != ui.ExitExpired {
			t.Errorf("%s: exit status %d, want %d", c.name, code, ui.ExitExpired)
		}
	}
	if ts.memoryRooms() != 0 {
		t.Errorf("%d rooms left in memory", ts.memoryRooms())
	}
}

// rejoinCommand reads the personal rejoin command out of an end screen.
var rejoinCommand = regexp.MustCompile(`To return as yourself, run:\s+ssh -p \d+ ([0-9a-z]{4}(?:-[0-9a-z]{4}){7})@127\.0\.0\.1`)

func (c *client) rejoinName() string {
	c.t.Helper()
	s := c.screen.waitUntil(c.t, c.name, rejoinCommand.MatchString, "the rejoin command")
	return rejoinCommand.FindStringSubmatch(s)[1]
}

// Leaving after the two met keeps the seat for its person: the partner is
// told, the room ID admits nobody, and the rejoin command the end screen
// gives brings the same person back, with the conversation.
func TestLeavingKeepsTheSeatForItsPerson(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	name := regexp.MustCompile(`you are (anonymous-[a-z]+-[0-9a-z]{4})`).FindStringSubmatch(bob.waitFor("you are anonymous-"))[1]
	alice.say("before you left")
	bob.waitFor("before you left")

	bob.typeText("\x03") // ctrl+c
	bob.waitFor("You left the room. Your seat is kept for you")
	user := bob.rejoinName()
	if code := bob.exitCode(); code != 0 {
		t.Errorf("bob: exit status %d", code)
	}
	alice.waitFor(name+" left; their seat is kept for them", name+" is away")

	back := ts.dial(t, user)
	back.waitFor("you are back; ", "you are "+name, "before you left")
	alice.waitFor(name + " is back")
	back.say("it is me again")
	alice.waitFor(name + ": it is me again")
}

// A connection that drops keeps the seat too; coming back with the
// command works at once, even before the server noticed the drop: the
// newest connection takes the seat.
func TestADroppedConnectionComesBackAsItsPerson(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	// Bob reads his command in the help, as someone would before a drop.
	bob.typeText("\x1bOP") // F1
	user := regexp.MustCompile(`ssh -p \d+ ([0-9a-z]{4}(?:-[0-9a-z]{4}){7})@`).FindStringSubmatch(bob.waitFor("Your own way back"))
	if user == nil {
		t.Fatalf("no rejoin command in the help:\n%s", bob.screen)
	}
	// A second connection with it, while the first still holds the seat.
	again := ts.dial(t, user[1])
	again.waitFor("you are back")
	bob.waitFor("You came back to this room from another connection")
	alice.waitFor("reconnected; their earlier connection was closed")
	// Then that one drops without a word.
	again.conn.Close()
	alice.waitFor("left; their seat is kept for them")
	ts.dial(t, user[1]).waitFor("you are back")
}

// A wrong key gets exactly what an unknown room gets, counts as a failed
// join for the address, and a typo in the command is said to be one.
func TestAWrongKeyIsAnUnknownRoom(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id, err := store.ParseRoomID(alice.roomID())
	if err != nil {
		t.Fatal(err)
	}
	nowhere := store.NewRoomID()
	unknown := ts.dial(t, store.RejoinName(nowhere, store.NewSeatKey(nowhere)))
	wrong := ts.dial(t, store.RejoinName(id, store.NewSeatKey(id)))
	for _, c := range []*client{unknown, wrong} {
		c.waitFor("No such room (it may have expired or been destroyed).")
		if code := c.exitCode(); code == 0 {
			t.Errorf("exit status %d, want non-zero", code)
		}
	}
	if a, b := strings.TrimSpace(unknown.screen.String()), strings.TrimSpace(wrong.screen.String()); a != b {
		t.Errorf("a wrong key answers %q, an unknown room %q", b, a)
	}
	typo := []byte(store.RejoinName(id, store.NewSeatKey(id)))
	for _, c := range []byte("0123456789abcdefghjkmnpqrstvwxyz") {
		typo[len(typo)-1] = c
		if _, _, err := store.ParseRejoinName(string(typo)); err == store.ErrMistypedRoomID {
			break
		}
	}
	ts.dial(t, string(typo)).waitFor("No such room: that command has a typo.")
}

// Without a terminal (ssh -T) the chat comes in lines: plain_test.go.
func TestCommandIsRefusedWithAHint(t *testing.T) {
	ts := startServer(t, ttl)
	id := ts.dial(t, "alice").roomID()
	for _, tc := range []struct {
		name, user string
		opts       dialOptions
		want       string
	}{
		{"ssh host ls", "alice", dialOptions{noPTY: true, command: "ls"}, "runs only the chat, not commands. Connect with: ssh -t -p"},
		{"ssh -t host ls", "alice", dialOptions{command: "ls"}, "runs only the chat, not commands"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.dialWith(t, tc.user, tc.opts)
			c.waitFor(tc.want)
			if code := c.exitCode(); code == 0 {
				t.Errorf("exit status 0, want non-zero")
			}
		})
	}
	// None of those took the free seat.
	ts.dial(t, id).waitFor("you joined")
}

func TestCapHoldsWhenManyJoinAtOnce(t *testing.T) {
	ts := startServer(t, ttl)
	id := ts.dial(t, "alice").roomID()
	const racers = 8
	results := make(chan string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			c := ts.dial(t, id)
			c.name = "racer " + strconv.Itoa(i)
			s := c.screen.waitUntil(t, c.name, func(s string) bool {
				return strings.Contains(s, "you joined") || strings.Contains(s, "This room is private")
			}, "joined or refused")
			if strings.Contains(s, "you joined") {
				results <- "joined"
			} else {
				results <- "full"
			}
		})
	}
	wg.Wait()
	close(results)
	counts := map[string]int{}
	for r := range results {
		counts[r]++
	}
	if counts["joined"] != 1 || counts["full"] != racers-1 {
		t.Fatalf("results %v, want exactly one joined", counts)
	}
}

func TestShutdownTellsEverySession(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	alice.roomID()
	ts.store.Close()
	alice.waitFor("The server is shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("sessions did not end: %v", err)
	}
}

func TestClientTimeZoneIsUsed(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dialWith(t, "alice", dialOptions{env: map[string]string{"TZ": "Asia/Kathmandu"}}) // UTC+5:45
	alice.roomID()
	alice.say("what time is it")
	want := time.Now().In(mustLoad(t, "Asia/Kathmandu")).Format("15:04")
	alice.screen.waitUntil(t, "alice", func(s string) bool {
		// The minute may turn over between sending and checking.
		return strings.Contains(s, want+" you: what time") ||
			strings.Contains(s, time.Now().In(mustLoad(t, "Asia/Kathmandu")).Format("15:04")+" you: what time")
	}, "a Kathmandu time stamp")
}

func mustLoad(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestEndedRoomsLeaveNoGoroutinesBehind checks that sessions, programs and
// subscriptions of a room are all released once it ends and its people hang up.
func TestEndedRoomsLeaveNoGoroutinesBehind(t *testing.T) {
	// Input is taken in at a byte a second (after a burst of a read): a
	// flood is still being taken in long after its session ended, unless
	// that is stopped.
	limits := generousLimits()
	limits.InputBytesPerSecond = 1
	ts := startServerWith(t, memstore.New(ttl), limits)
	warm := ts.dial(t, "warm-up") // let lazily started runtime goroutines settle
	warm.roomID()
	warm.typeText("\x03")
	warm.exitCode()
	warm.conn.Close()
	waitForGoroutines(t, runtime.NumGoroutine())
	baseline := runtime.NumGoroutine()

	for range 3 {
		alice := ts.dial(t, "alice")
		bob := ts.dial(t, alice.roomID())
		bob.waitFor("you joined")
		alice.say("hello")
		bob.waitFor("hello")
		bob.destroyRoom()
		alice.waitFor("Room destroyed by your partner")
		for _, c := range []*client{alice, bob} {
			c.exitCode()
			c.conn.Close()
		}
	}
	// One who leaves in the middle of a flood the chat is still taking
	// in, slowly: the reading behind it ends with the session.
	flooder := ts.dial(t, "flooder")
	flooder.roomID()
	flooder.typeText(strings.Repeat("a ", 200))
	flooder.waitFor("255/1000") // the burst is in; the rest waits its turn
	flooder.typeText("\x03")
	flooder.waitFor("You left the room.")
	flooder.exitCode()
	flooder.conn.Close()
	waitForGoroutines(t, baseline)
}

// waitForGoroutines waits until no more than n goroutines run, none of
// them in a session's keyboard. The server's idle frame writers are the
// server's, not a session's: they are not counted, and are at most
// server.IdleWriters.
func waitForGoroutines(t *testing.T, n int) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(waitLimit)
	buf := make([]byte, 1<<20)
	for {
		count := runtime.NumGoroutine()
		stacks := string(buf[:runtime.Stack(buf, true)])
		writers := strings.Count(stacks, "screen.(*Writers).writer(")
		count -= writers
		if count <= n && writers <= server.IdleWriters && !strings.Contains(stacks, "(*keyboard)") {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d goroutines and %d idle frame writers, want at most %d and %d, and none in a keyboard:\n%s", count, writers, n, server.IdleWriters, stacks)
		}
	}
}

// Shutting down while connections keep arriving and finishing their
// handshakes ends cleanly: every connection is let go, and nothing races
// with the wait for them (run with -race).
func TestShutdownWhileConnectionsArrive(t *testing.T) {
	ts := startServer(t, ttl)
	stop := make(chan struct{})
	var connected atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			from := fmt.Sprintf("127.0.9.%d", i+1)
			for range 10000 {
				select {
				case <-stop:
					return
				default:
				}
				if c, err := ts.connect("x", from); err == nil {
					connected.Add(1)
					c.Close()
				}
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	waitfor.Condition(t, waitfor.Timeout, "connections to come and go", func() bool { return connected.Load() >= 40 })
	ctx, cancel := context.WithTimeout(t.Context(), waitfor.Timeout)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
