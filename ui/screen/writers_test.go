package screen

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// heldWriter blocks every write until release is closed, as a client that
// reads nothing does.
type heldWriter struct{ release chan struct{} }

func (h heldWriter) Write(p []byte) (int, error) {
	<-h.release
	return len(p), nil
}

// Screens drawn by shared writers get their frames, a stuck client holds
// up only its own, at most the bound of writers stays waiting, and Close
// ends every one of them (synctest fails on a goroutine left behind).
func TestWritersShareGoroutinesButNotStalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := NewWriters(2)
		stuck := heldWriter{release: make(chan struct{})}
		held := w.Screen(stuck, 20, 3)
		held.draw(frame("never read"), nil)

		terms := make([]*terminal, 5)
		screens := make([]*Screen, len(terms))
		for round := range 3 {
			for i := range terms {
				if round == 0 {
					terms[i] = newTerminal(20, 3)
					screens[i] = w.Screen(terms[i], 20, 3)
				}
				screens[i].draw(frame(fmt.Sprintf("screen %d", i), fmt.Sprintf("round %d", round)), nil)
			}
			synctest.Wait()
			for i, term := range terms {
				wantRows(t, term, fmt.Sprintf("screen %d", i), fmt.Sprintf("round %d", round))
			}
		}
		w.mu.Lock()
		idle := w.idle
		w.mu.Unlock()
		if idle < 1 || idle > 2 {
			t.Fatalf("%d writers wait for frames, want 1 or 2 (the bound)", idle)
		}

		// Once frames stop coming, the idle writers end: a quiet server
		// keeps none.
		time.Sleep(idleWriterFor + time.Second)
		synctest.Wait()
		w.mu.Lock()
		idle = w.idle
		w.mu.Unlock()
		if idle != 0 {
			t.Fatalf("%d writers still wait after %v without a frame, want none", idle, idleWriterFor)
		}

		close(stuck.release)
		for _, s := range append(screens, held) {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		w.Close()
		// A screen drawn after its writers closed still gets its frame.
		late := newTerminal(20, 3)
		s := w.Screen(late, 20, 3)
		s.draw(frame("after close"), nil)
		synctest.Wait()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if late.writeCount() < 2 {
			t.Fatalf("%d writes: the frame drawn after Close was not written", late.writeCount())
		}
	})
}
