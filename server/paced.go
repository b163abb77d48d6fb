package server

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/store"
)

// pacedSeat is a seat whose messages are held to the server's rate and
// charged to the client's byte budget. The rate is a burst, then
// perSecond: a message beyond the burst waits its turn, within the
// caller's deadline. The screen sends one message at a time, so messages
// that waited in its outbox (typed while the store could not be reached)
// all go out, at the server's pace, and a flood reaches the other person
// no faster than that pace. Only a message whose turn would come after the
// deadline is refused with store.ErrTooFast; one the address's byte budget
// cannot pay for (store.MessageCost) is refused with store.ErrOverBudget.
// The screen says so and keeps the text. The same message sent again (the
// screen repeats a send whose outcome it does not know, under the
// message's ID) is not charged twice. It counts the messages sent and the
// store's failures.
type pacedSeat struct {
	store.Seat
	metrics *ops.Metrics
	addrs   limits.Limiter
	client  netip.Prefix

	mu   sync.Mutex
	rate *rate.Limiter
	// paced and paid are the last message that had its turn at the rate,
	// and the last one charged to the budget.
	paced, paid store.MessageID
}

// pacing is what a pacedSeat holds its person's messages to.
type pacing struct {
	perSecond rate.Limit
	burst     int
	addrs     limits.Limiter
	client    netip.Prefix
}

func newPacedSeat(seat store.Seat, p pacing, metrics *ops.Metrics) *pacedSeat {
	return &pacedSeat{
		Seat: seat, metrics: metrics, addrs: p.addrs, client: p.client,
		rate: rate.NewLimiter(p.perSecond, max(p.burst, 1)),
	}
}

// Send implements store.Seat.
func (p *pacedSeat) Send(ctx context.Context, id store.MessageID, body string) error {
	if err := p.pace(ctx, id); err != nil {
		return err
	}
	if err := p.pay(ctx, id, body); err != nil {
		return err
	}
	err := p.Seat.Send(ctx, id, body)
	switch {
	case err == nil:
		p.metrics.Messages.Inc()
	case storeFailed(err):
		p.metrics.StoreErrors.WithLabelValues(string(opSend)).Inc()
	}
	return err
}

// pace takes id's turn at the rate, waiting for it if it comes within
// ctx's deadline.
func (p *pacedSeat) pace(ctx context.Context, id store.MessageID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id == p.paced {
		return nil
	}
	// Wait reserves nothing when the turn would come too late.
	if err := p.rate.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("send message: %w", ctx.Err())
		}
		p.metrics.MessagesRefused.WithLabelValues(string(refusedTooFast)).Inc()
		return store.ErrTooFast
	}
	p.paced = id
	return nil
}

// pay charges id's cost to the client's byte budget, once: the cost of
// what the store would keep of body. The limiter
// may ask Redis, so no lock is held while it decides; the screen sends
// one message at a time.
func (p *pacedSeat) pay(ctx context.Context, id store.MessageID, body string) error {
	p.mu.Lock()
	paid := id == p.paid
	p.mu.Unlock()
	if paid {
		return nil
	}
	clean, err := store.CleanMessage(body)
	if err != nil {
		return nil // the store refuses it, keeping nothing, and says why
	}
	if v := p.addrs.Spend(ctx, p.client, store.MessageCost(clean)); v != limits.Admitted {
		p.metrics.MessagesRefused.WithLabelValues(string(messageVerdict(v))).Inc()
		return fmt.Errorf("send message: %s: %w", v.Reason(), store.ErrOverBudget)
	}
	p.mu.Lock()
	p.paid = id
	p.mu.Unlock()
	return nil
}

// Destroy implements store.Seat.
func (p *pacedSeat) Destroy(ctx context.Context) error {
	err := p.Seat.Destroy(ctx)
	if storeFailed(err) {
		p.metrics.StoreErrors.WithLabelValues(string(opDestroy)).Inc()
	}
	return err
}

// storeFailed tells the store's own trouble (unreachable, full, timed
// out, a bug) from its answers about the room or the message.
func storeFailed(err error) bool {
	if err == nil {
		return false
	}
	for _, answer := range storeAnswers {
		if errors.Is(err, answer) {
			return false
		}
	}
	return true
}

var storeAnswers = []error{
	store.ErrEnded, store.ErrEmptyMessage, store.ErrMessageTooLong, store.ErrTooFast, store.ErrOverBudget,
	store.ErrBadMessageID, store.ErrClosed, store.ErrNotFound, context.Canceled,
}
