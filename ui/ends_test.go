package ui

import (
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/store"
)

// The words another way of showing a chat ends with are the full
// screen's own, for every ending.
func TestEndsAreTheFullScreens(t *testing.T) {
	rm := newRoom(t, true)
	me := rm.a.Snapshot().Me
	partner := store.Member{ID: "other", Name: "anonymous-robin-ab12"}
	for _, tc := range []struct {
		name string
		msg  any
	}{
		{"expired", store.EndedEvent{Reason: store.EndExpired}},
		{"destroyed by self", store.EndedEvent{Reason: store.EndDestroyed, By: me}},
		{"destroyed by partner", store.EndedEvent{Reason: store.EndDestroyed, By: partner}},
		{"evicted", store.EndedEvent{Reason: store.EndEvicted, RoomLivesOn: true}},
		{"replaced", store.EndedEvent{Reason: store.EndReplaced, RoomLivesOn: true}},
		{"shutdown", store.EndedEvent{Reason: store.EndShutdown, RoomLivesOn: true}},
		{"idle", Disconnect{Reason: "You typed nothing.", Ending: EndingIdle}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newModel(t, rm.a, termenv.Ascii)
			m, _ = step(t, m, tc.msg)
			ends := NewEnds(rm.a.Snapshot(), joinCommand, rejoinCommand)
			var got Outcome
			switch msg := tc.msg.(type) {
			case store.EndedEvent:
				got = ends.Ended(msg, nil)
			case Disconnect:
				got = ends.Disconnected(msg, nil)
			}
			if want := m.Outcome(); got.Text != want.Text || got.Ending != want.Ending {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
			if ansi.Strip(got.Text) != got.Text {
				t.Errorf("end words hold escapes: %q", got.Text)
			}
		})
	}
	ends := NewEnds(rm.a.Snapshot(), joinCommand, rejoinCommand)
	if got := ends.Ended(store.EndedEvent{Reason: store.EndExpired}, []string{"one", "two"}).Text; got != "Room expired: its 10 minutes are up. Every message in it is gone.\nNot confirmed as sent: one / two" {
		t.Errorf("with unsent messages: %q", got)
	}
}
