package server

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/store"
)

// pacedSeat is a seat whose messages are held to the server's rate: a
// burst, then perSecond. Faster messages are refused with store.ErrTooFast
// before they reach the store; the screen says so and keeps the text. The
// same message sent again (the screen repeats a send whose outcome it does
// not know, under the message's ID) is not charged twice. It counts the
// messages sent and the store's failures.
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
	p.mu.Lock()
	if id != p.charged {
		if !p.rate.Allow() {
			p.mu.Unlock()
			return store.ErrTooFast
		}
		p.charged = id
	}
	p.mu.Unlock()
	err := p.Seat.Send(ctx, id, body)
	switch {
	case err == nil:
		p.metrics.Messages.Inc()
	case storeFailed(err):
		p.metrics.StoreErrors.WithLabelValues("send").Inc()
	}
	return err
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
	store.ErrEnded, store.ErrEmptyMessage, store.ErrMessageTooLong, store.ErrTooFast,
	store.ErrBadMessageID, store.ErrClosed, store.ErrNotFound, context.Canceled,
}
