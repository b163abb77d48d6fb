package server

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
)

func pacedPair(t *testing.T, perSecond rate.Limit, burst int) (*pacedSeat, store.Seat) {
	t.Helper()
	s := memstore.New(time.Hour)
	t.Cleanup(func() { _ = s.Close() })
	room, err := s.Create(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	alice, err := s.Join(t.Context(), room.ID)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.Join(t.Context(), room.ID)
	if err != nil {
		t.Fatal(err)
	}
	return newPacedSeat(alice, perSecond, burst, ops.NewMetrics(prometheus.NewRegistry())), bob
}

// Messages beyond the burst, sent one after another as the screen sends
// them (its outbox after the store was out of reach), all go out, in
// order, each in its turn: none is refused.
func TestPacedMessagesBeyondTheBurstWaitTheirTurn(t *testing.T) {
	paced, bob := pacedPair(t, 50, 2)
	for i := range 8 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		err := paced.Send(ctx, store.NewMessageID(), fmt.Sprintf("m%d", i))
		cancel()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for i := 0; i < 8; {
		select {
		case ev := <-bob.Events():
			if msg, ok := ev.(store.MessageEvent); ok {
				if got := msg.Message.Body; got != fmt.Sprintf("m%d", i) {
					t.Fatalf("message %d is %q", i, got)
				}
				i++
			}
		case <-deadline.C:
			t.Fatalf("%d of 8 messages arrived", i)
		}
	}
}

// A message whose turn would come after its deadline is refused at once,
// not stored; the same message sent again is never charged twice.
func TestPacedMessagesTooLateAreRefused(t *testing.T) {
	paced, _ := pacedPair(t, 0.001, 1)
	first := store.NewMessageID()
	if err := paced.Send(t.Context(), first, "in the burst"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := paced.Send(ctx, store.NewMessageID(), "too soon"); !errors.Is(err, store.ErrTooFast) {
		t.Fatalf("a message due in 1,000 s with a minute to go = %v, want ErrTooFast", err)
	}
	if err := paced.Send(ctx, first, "in the burst"); err != nil {
		t.Fatalf("the first message sent again = %v, want it taken, uncharged", err)
	}
}
