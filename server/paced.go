package server

import (
	"context"
	"sync"

	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/store"
)

// pacedSeat is a seat whose messages are held to the server's rate: a
// burst, then perSecond. Faster messages are refused with store.ErrTooFast
// before they reach the store; the screen says so and keeps the text. The
// same message sent again (the screen repeats a send whose outcome it does
// not know, under the message's ID) is not charged twice.
type pacedSeat struct {
	store.Seat

	mu      sync.Mutex
	rate    *rate.Limiter
	charged store.MessageID // the last message charged for
}

func newPacedSeat(seat store.Seat, perSecond rate.Limit, burst int) *pacedSeat {
	return &pacedSeat{Seat: seat, rate: rate.NewLimiter(perSecond, max(burst, 1))}
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
	return p.Seat.Send(ctx, id, body)
}
