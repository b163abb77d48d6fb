package ui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/ssh-burn/chat/store"
)

// typing is both sides of the typing indicator: what this person's partner
// was told, and what the partner is doing. It costs no timer: the
// countdown's tick, once a second, ends what has gone quiet.
type typing struct {
	told    bool      // the partner was told this person is typing
	toldAt  time.Time // when they were last told anything
	busy    bool      // a call to the store is on its way
	lastKey time.Time // the last key that edited the input

	partner   bool      // the partner has text in their input
	partnerAt time.Time // when they last said so
}

const (
	// typingIdle is how long without a key someone with text in their
	// input is still typing.
	typingIdle = 5 * time.Second
	// typingRenew is how often "typing" is said again while keys keep
	// coming, well within store.TypingExpiry.
	typingRenew = 3 * time.Second
	// typingGap keeps what one person sends to a few calls a second,
	// however they type: what changes sooner waits for the next key or
	// tick.
	typingGap = 250 * time.Millisecond
)

// partnerTyping takes the partner's news.
func (t *typing) partnerTyping(ev store.TypingEvent, partner *store.Member) {
	if partner == nil || ev.Member.ID != partner.ID {
		return
	}
	t.partner, t.partnerAt = ev.Typing, time.Now()
}

// partnerExpired ends the partner's typing when it was not renewed in
// time (the word that it ended may have been lost); true if it did.
func (t *typing) partnerExpired(now time.Time) bool {
	if t.partner && now.Sub(t.partnerAt) >= store.TypingExpiry {
		t.partner = false
		return true
	}
	return false
}

// typingCmd tells the partner whether this person is typing, when that
// changed or is due to be said again, one call at a time (so the calls
// cannot overtake each other) and a few a second at most. It allocates
// nothing when there is nothing to tell.
func (m *Model) typingCmd(now time.Time) tea.Cmd {
	t := &m.typing
	want := m.partner != nil && m.inputCount > 0 && now.Sub(t.lastKey) < typingIdle
	renew := want && t.told && now.Sub(t.toldAt) >= typingRenew
	if t.busy || (want == t.told && !renew) || now.Sub(t.toldAt) < typingGap {
		return nil
	}
	t.busy, t.told, t.toldAt = true, want, now
	seat := m.seat
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		_ = seat.Typing(ctx, want) // a hint: one lost costs nothing lasting
		return typingDone{}
	}
}
