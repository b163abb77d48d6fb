package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui"
)

// reopenSeat gives the seat kept for the away partner to someone new,
// saying yes once the question is on screen (see destroyRoom).
func (c *client) reopenSeat() {
	c.t.Helper()
	c.typeText("\x0f") // ctrl+o
	c.waitFor("seat? Whoever takes it sees this chat. y/n")
	for range 10 {
		c.typeText("y")
		if waitfor.Within(time.Second, func() bool { return strings.Contains(c.screen.String(), "their command no longer works") }) {
			return
		}
	}
	c.t.Fatalf("%s: no yes to reopen the seat counted", c.name)
}

// The personal command of a seat given away says so while the room
// lives, and exits as a refusal; a key that never opened a seat still gets
// the unknown room's answer; the newcomer has another animal.
func TestAGivenAwayCommandSaysTheSeatWasGiven(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	id := alice.roomID()
	bob := ts.dial(t, id)
	bob.waitFor("you joined")
	bob.typeText("\x03")
	bob.waitFor("You left the room. Your seat is kept for you")
	if code := bob.exitCode(); code != ui.ExitLeft {
		t.Errorf("left: exit status %d, want %d", code, ui.ExitLeft)
	}
	user := bob.rejoinName()
	alice.waitFor("left; their seat is kept for them")
	alice.reopenSeat()

	back := ts.dial(t, user)
	back.waitFor("Your seat in this room was given to someone else")
	if code := back.exitCode(); code != ui.ExitRefused {
		t.Errorf("given away: exit status %d, want %d", code, ui.ExitRefused)
	}
	roomID, err := store.ParseRoomID(id)
	if err != nil {
		t.Fatal(err)
	}
	guess := ts.dial(t, store.RejoinName(roomID, store.NewSeatKey(roomID)))
	guess.waitFor("No such room (it may have expired or been destroyed).")

	carol := ts.dial(t, id)
	carol.waitFor("you joined")
	alice.waitFor("joined. The room is now sealed")
}

// A shutdown ends the chat with its own exit status.
func TestAShutdownExitsWithItsOwnStatus(t *testing.T) {
	ts := startServer(t, ttl)
	alice := ts.dial(t, "alice")
	alice.roomID()
	ts.store.Close()
	alice.waitFor("The server is shutting down")
	if code := alice.exitCode(); code != ui.ExitShutdown {
		t.Errorf("exit status %d, want %d", code, ui.ExitShutdown)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatalf("sessions did not end: %v", err)
	}
}
