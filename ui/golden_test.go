package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/store"
)

// scriptedSeat is a seat whose snapshot and events a test decides, so that
// names, IDs and times are the same on every run.
type scriptedSeat struct {
	snap   store.Snapshot
	events chan store.Event
}

func (s *scriptedSeat) Snapshot() store.Snapshot                            { return s.snap }
func (s *scriptedSeat) Events() <-chan store.Event                          { return s.events }
func (s *scriptedSeat) Send(context.Context, store.MessageID, string) error { return nil }
func (s *scriptedSeat) Destroy(context.Context) error                       { return nil }
func (s *scriptedSeat) Leave(context.Context) error                         { return nil }
func (s *scriptedSeat) Typing(context.Context, bool) error                  { return nil }
func (s *scriptedSeat) Reopen(context.Context) error                        { return nil }

var (
	goldenMe      = store.Member{ID: "me00000000000000", Name: "anonymous-otter-k3f9"}
	goldenPartner = store.Member{ID: "pa00000000000000", Name: "anonymous-heron-7pq2"}
)

const (
	goldenJoin   = "ssh -p 2222 k7m2-q9xw-4p3f-h8n2@localhost"
	goldenNarrow = "ssh -p2222 k7m2-q9xw-4p3f-h8n2@localhost"
	goldenRejoin = "ssh -p 2222 k7m2-q9xw-4p3f-h8n2-abcd-efgh-jkmn-pqrs@localhost"
)

// goldenModel is a screen on a scripted seat, made inside a synctest
// bubble (whose clock starts at 2000-01-01 00:00 UTC), with the no-colour
// profile so the golden files hold text only.
func goldenModel(t *testing.T, withPartner bool, width, height int) (*Model, *scriptedSeat) {
	t.Helper()
	now := time.Now()
	seat := &scriptedSeat{
		snap: store.Snapshot{
			Room: store.Room{ID: "k7m2-q9xw-4p3f-h8n2", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)},
			Me:   goldenMe,
		},
		events: make(chan store.Event, 16),
	}
	m := New(Config{Seat: seat, JoinCommand: goldenJoin, NarrowJoinCommand: goldenNarrow, RejoinCommand: goldenRejoin, Profile: termenv.Ascii, Width: width, Height: height})
	if withPartner {
		m, _ = step(t, m, store.JoinedEvent{Member: goldenPartner})
	}
	return m, seat
}

func message(from store.Member, body string, at time.Time) store.Event {
	return store.MessageEvent{Message: store.Message{ID: store.NewMessageID(), From: from, Body: body, At: at}}
}

// wantGolden compares m's screen with testdata/name.golden, spaces and all:
// a line that moves by one column fails.
func wantGolden(t *testing.T, m *Model, name string) {
	t.Helper()
	got := m.View() + "\n"
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("screen differs from %s (run with -update to accept):\n%s", golden, got)
	}
}

// The screens people see, at the common sizes and the smallest one the
// chat lays out on: waiting with the command to share, talking (a long
// message wrapped under its text, wide characters, the partner typing),
// scrolled back with news below, the partner away, and the help.
func TestGoldenScreens(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {minWidth, minHeight}} {
		name := func(scene string) string { return fmt.Sprintf("%s-%dx%d", scene, size[0], size[1]) }
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, _ := goldenModel(t, false, size[0], size[1])
				wantGolden(t, m, name("waiting"))

				m, _ = goldenModel(t, true, size[0], size[1])
				start := time.Now()
				m, _ = step(t, m, message(goldenMe, "hi! is this thing private?", start.Add(90*time.Second)))
				m, _ = step(t, m, message(goldenPartner, "yes: only the two of us can get in now, and in ten minutes "+
					"every word of it is gone. 世界 🎉 even wide characters line up under the text.", start.Add(2*time.Minute)))
				time.Sleep(2 * time.Minute)
				m, _ = step(t, m, tickMsg(time.Now()))
				m, _ = step(t, m, store.TypingEvent{Member: goldenPartner, Typing: true})
				wantGolden(t, m, name("chat"))

				for i := range 30 {
					m, _ = step(t, m, message(goldenMe, fmt.Sprintf("line %d", i), start.Add(3*time.Minute)))
				}
				m, _ = step(t, m, press(tea.KeyPgUp))
				m, _ = step(t, m, message(goldenPartner, "one more", start.Add(4*time.Minute)))
				m, _ = step(t, m, message(goldenPartner, "and another", start.Add(4*time.Minute)))
				wantGolden(t, m, name("scrolled"))

				m, _ = goldenModel(t, true, size[0], size[1])
				m, _ = step(t, m, store.LeftEvent{Member: goldenPartner, Kept: true})
				wantGolden(t, m, name("away"))

				m, _ = step(t, m, press(tea.KeyF1))
				wantGolden(t, m, name("help"))
			})
		})
	}
	synctest.Test(t, func(t *testing.T) {
		m, _ := goldenModel(t, true, 30, 8)
		wantGolden(t, m, "too-small-30x8")
	})
}
