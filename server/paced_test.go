package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/limits/local"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
)

func pacedPair(t *testing.T, perSecond rate.Limit, burst int) (*pacedSeat, store.Seat) {
	t.Helper()
	return pacedPairWith(t, pacing{perSecond: perSecond, burst: burst, addrs: local.New(limits.DefaultConfig()), client: client})
}

// client is the address the paced seats' messages come from.
var client = netip.MustParsePrefix("192.0.2.1/32")

func pacedPairWith(t *testing.T, p pacing) (*pacedSeat, store.Seat) {
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
	return newPacedSeat(alice, p, ops.NewMetrics(prometheus.NewRegistry())), bob
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

// Each message is charged to the address's byte budget at its cost, once
// however often it is sent; one the budget cannot pay for is refused with
// ErrOverBudget, and nothing of it is stored.
func TestPacedMessagesAreChargedToTheBudgetOnce(t *testing.T) {
	const body = "hello"
	cost := store.MessageCost(body)
	cfg := limits.Config{BudgetBurst: 3*cost + cost/2, BudgetRefill: 1, BudgetWindow: time.Hour}
	paced, bob := pacedPairWith(t, pacing{perSecond: 1000, burst: 1000, addrs: local.New(cfg), client: client})
	first := store.NewMessageID()
	for range 3 { // one message, sent again twice: its outcome was unknown
		if err := paced.Send(t.Context(), first, body); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if err := paced.Send(t.Context(), store.NewMessageID(), body); err != nil {
			t.Fatalf("message %d of the budget: %v", i+2, err)
		}
	}
	// What the store refuses anyway costs nothing, and is refused for
	// what it is.
	if err := paced.Send(t.Context(), store.NewMessageID(), strings.Repeat("x", 100_000)); !errors.Is(err, store.ErrMessageTooLong) {
		t.Fatalf("a message far too long = %v, want ErrMessageTooLong", err)
	}
	refused := store.NewMessageID()
	if err := paced.Send(t.Context(), refused, body); !errors.Is(err, store.ErrOverBudget) {
		t.Fatalf("a message beyond the budget = %v, want ErrOverBudget", err)
	}
	if err := paced.Send(t.Context(), refused, body); !errors.Is(err, store.ErrOverBudget) {
		t.Fatalf("the refused message sent again = %v, want ErrOverBudget", err)
	}
	// Another address has its own budget.
	other, _ := pacedPairWith(t, pacing{perSecond: 1000, burst: 1000, addrs: paced.addrs, client: netip.MustParsePrefix("192.0.2.2/32")})
	if err := other.Send(t.Context(), store.NewMessageID(), body); err != nil {
		t.Fatalf("another address: %v", err)
	}
	got := 0
	for got < 3 {
		select {
		case ev := <-bob.Events():
			if msg, ok := ev.(store.MessageEvent); ok {
				if msg.Message.ID == refused {
					t.Fatal("the refused message was stored")
				}
				got++
			}
		case <-time.After(time.Minute):
			t.Fatalf("%d of 3 messages arrived", got)
		}
	}
	select {
	case ev := <-bob.Events():
		if msg, ok := ev.(store.MessageEvent); ok {
			t.Fatalf("a fourth message arrived: %v", msg.Message.ID)
		}
	default:
	}
}
