package ui

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/muesli/termenv"
)

// One clock ticks every screen's countdown on the wall-clock second, and a
// screen that was busy when a tick came gets it at once.
func TestTheClockTicksEveryScreenOnTheSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := NewClock()
		defer clock.Stop()
		rm := newRoom(t, true)
		a := newModel(t, rm.a, termenv.Ascii)
		a.clock = clock
		b := newModel(t, rm.b, termenv.Ascii)
		b.clock = clock
		a = deliver(t, a) // b joined

		start := time.Now()
		got := make(chan tickMsg, 2)
		for _, m := range []Model{a, b} {
			go func() { got <- m.listen()().(tickMsg) }()
		}
		first, second := <-got, <-got
		if first != second || !time.Time(first).Equal(start.Truncate(time.Second).Add(time.Second)) {
			t.Fatalf("ticks at %v and %v, want both on the next second after %v", first, second, start)
		}
		a, _ = step(t, a, first)
		if a.Lines()[0] == b.Lines()[0] {
			t.Fatalf("the countdown did not move: %q", a.Lines()[0])
		}

		// Three seconds pass while the screen is busy: the next listen
		// ticks at once, with the clock's time.
		time.Sleep(3 * time.Second)
		if tick := a.listen()().(tickMsg); !time.Time(tick).After(time.Time(first)) {
			t.Fatalf("a missed tick came as %v, after %v", tick, first)
		}
	})
}
