package ui

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/muesli/termenv"
)

// One clock ticks every screen's countdown at the moment its room's
// deadline says it changes, both people's together; a screen that was busy
// when its tick came gets it at once.
func TestTheClockTicksWhenTheCountdownChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := NewClock()
		defer clock.Stop()
		time.Sleep(437 * time.Millisecond) // the room's deadline falls mid-second
		rm := newRoom(t, true)
		a := newModel(t, rm.a, termenv.Ascii)
		a.clock = clock
		b := newModel(t, rm.b, termenv.Ascii)
		b.clock = clock
		a = deliver(t, a) // b joined
		created := time.Now()
		if header := a.Lines()[0]; !strings.Contains(header, "10:00") {
			t.Fatalf("header at creation: %q", header)
		}

		// Each screen ticks when its countdown changes: at the deadline's
		// fraction of the second, both screens at once.
		want := created.Add(time.Second).Truncate(tickWidth).Add(tickWidth)
		var first tickMsg
		for {
			got := make(chan tickMsg, 2)
			for _, m := range []*Model{a, b} {
				go func() { got <- m.listen()().(tickMsg) }()
			}
			tick, other := <-got, <-got
			if tick != other {
				t.Fatalf("the two screens ticked at %v and %v", time.Time(tick), time.Time(other))
			}
			a, _ = step(t, a, tick)
			b, _ = step(t, b, tick)
			if strings.Contains(a.Lines()[0], "9:59") {
				first = tick
				break
			}
			if time.Time(tick).After(want) {
				t.Fatalf("at %v after creation the header still says %q", time.Time(tick).Sub(created), a.Lines()[0])
			}
		}
		if !time.Time(first).Equal(want) {
			t.Fatalf("the countdown moved %v after creation, want %v", time.Time(first).Sub(created), want.Sub(created))
		}

		// Three seconds pass while the screen is busy: the next listen
		// ticks at once, with the clock's time.
		time.Sleep(3 * time.Second)
		if tick := a.listen()().(tickMsg); !time.Time(tick).After(time.Time(first)) {
			t.Fatalf("a missed tick came as %v, after %v", tick, first)
		}
	})
}
