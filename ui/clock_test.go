package ui

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"
)

// One clock ticks every screen's countdown at the moment its room's
// deadline says it changes, both people's together; a screen that was busy
// when its tick came gets it at once.
func TestTheClockTicksWhenTheCountdownChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := NewClock()
		defer clock.Stop()
		// The room's deadline falls mid-second, and between two ticks.
		time.Sleep(437*time.Millisecond + tickWidth/2)
		rm := newRoom(t, true)
		a := newModel(t, rm.a, termenv.Ascii)
		a.clock = clock
		b := newModel(t, rm.b, termenv.Ascii)
		b.clock = clock
		a = deliver(t, a) // b joined
		created := time.Now()
		if header := a.Lines()[0].Render(a.width); !strings.Contains(header, "10:00") {
			t.Fatalf("header at creation: %q", header)
		}

		// Each screen ticks when its countdown changes: at the deadline's
		// fraction of the second, both screens at once.
		want := created.Add(time.Second).Truncate(tickWidth).Add(tickWidth)
		ticksA, ticksB := listen(t, a), listen(t, b)
		var first tickMsg
		for {
			tick, other := <-ticksA, <-ticksB
			if tick != other {
				t.Fatalf("the two screens ticked at %v and %v", time.Time(tick), time.Time(other))
			}
			a, _ = step(t, a, tick)
			b, _ = step(t, b, tick)
			if strings.Contains(a.Lines()[0].Render(a.width), "9:59") {
				first = tick
				break
			}
			if time.Time(tick).After(want) {
				t.Fatalf("at %v after creation the header still says %q", time.Time(tick).Sub(created), a.Lines()[0].Render(a.width))
			}
		}
		if !time.Time(first).Equal(want) {
			t.Fatalf("the countdown moved %v after creation, want %v", time.Time(first).Sub(created), want.Sub(created))
		}

		// Three seconds pass while the screen is busy: its listener waits
		// to hand on the tick after first, and then, at once, the latest,
		// which says all that came meanwhile.
		// (Half a tick more, so the third tick has surely happened when
		// the test wakes: at the very instant it is due, which goroutine
		// runs first is up to the scheduler.)
		time.Sleep(3*time.Second + tickWidth/2)
		stale := <-ticksA
		if time.Time(stale).Sub(time.Time(first)) != time.Second {
			t.Fatalf("the tick held back came %v after the first", time.Time(stale).Sub(time.Time(first)))
		}
		before := time.Now()
		latest := <-ticksA
		if time.Since(before) != 0 || time.Time(latest).Sub(time.Time(first)) != 3*time.Second {
			t.Fatalf("after the held-back tick came %v (after %v), want the latest at once", time.Time(latest).Sub(time.Time(first)), time.Since(before))
		}
		a, _ = step(t, a, latest)
		if header := a.Lines()[0].Render(a.width); !strings.Contains(header, "9:56") {
			t.Fatalf("header after the missed ticks: %q", header)
		}
	})
}

// listen runs m's listener, returning the ticks it hands on (one at a time:
// the listener waits until each is taken, as a program's Send does).
func listen(t *testing.T, m *Model) <-chan tickMsg {
	ticks, done := make(chan tickMsg), make(chan struct{})
	go m.Listen()(func(msg tea.Msg) {
		if tick, ok := msg.(tickMsg); ok {
			select {
			case ticks <- tick:
			case <-done: // like a program that has ended
			}
		}
	})
	t.Cleanup(func() {
		close(done)
		m.seat.Leave(context.Background())
	})
	return ticks
}
