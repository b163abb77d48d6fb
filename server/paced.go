package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/store"
)

// pacedSeat is a seat whose messages are held to the server's rate: a
// burst, then perSecond. A message beyond the burst waits its turn, within
// the caller's deadline: the screen sends one message at a time, so
// messages that waited in its outbox (typed while the store could not be
// reached) all go out, at the server's pace, and a flood reaches the other
// person no faster than that pace. Only a message whose turn would come
// after the deadline is refused with store.ErrTooFast; the screen says so
// and keeps the text. The same message sent again (the screen repeats a
// send whose outcome it does not know, under the message's ID) is not
// charged twice. It counts the messages sent and the store's failures.
type pacedSeat struct {
	store.Seat
	metrics *ops.Metrics

	mu      sync.Mutex
	rate    *rate.Limiter
	charged store.MessageID // the last message charged for
}

func newPacedSeat(seat store.Seat, perSecond rate.Limit, burst int, metrics *ops.Metrics) *pacedSeat {
	return &pacedSeat{Seat: seat, metrics: metrics, rate: rate.NewLimiter(perSecond, max(burst, 1))}
}

// Send implements store.Seat.
func (p *pacedSeat) Send(ctx context.Context, id store.MessageID, body string) error {
	if err := p.charge(ctx, id); err != nil {
		return err
	}
	err := p.Seat.Send(ctx, id, body)
	switch {
	case err == nil:
		p.metrics.Messages.Inc()
	case storeFailed(err):
		p.metrics.StoreErrors.WithLabelValues("send").Inc()
	}
	return err
}

// charge takes id's turn at the rate, waiting for it if it comes within
// ctx's deadline.
func (p *pacedSeat) charge(ctx context.Context, id store.MessageID) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id == p.charged {
		return nil
	}
	// Wait reserves nothing when the turn would come too late.
	if err := p.rate.Wait(ctx); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("send message: %w", ctx.Err())
		}
		return store.ErrTooFast
	}
	p.charged = id
	return nil
}

// Destroy implements store.Seat.
func (p *pacedSeat) Destroy(ctx context.Context) error {
	err := p.Seat.Destroy(ctx)
	if storeFailed(err) {
		p.metrics.StoreErrors.WithLabelValues("destroy").Inc()
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
