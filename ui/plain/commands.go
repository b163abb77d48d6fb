package plain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui"
)

// handleLine takes one line the person typed: an answer to a question, a
// command, or a message.
func (c *Chat) handleLine(l line) (ui.Outcome, bool) {
	text := strings.TrimRight(l.text, " ")
	if c.question != askedNothing && !leaving(text) {
		// Leaving needs no answer first, as ctrl+c in the full screen.
		c.answer(strings.ToLower(strings.TrimSpace(text)))
		return ui.Outcome{}, false
	}
	if !l.over && strings.HasPrefix(text, "/") && !strings.HasPrefix(text, "//") {
		return c.command(text)
	}
	if strings.HasPrefix(text, "//") {
		text = text[1:]
	}
	c.send(text, l.over)
	return ui.Outcome{}, false
}

// command runs a command typed as a word.
func (c *Chat) command(text string) (ui.Outcome, bool) {
	if leaving(text) {
		return c.ends.Left(time.Now(), c.sealed, c.unsent()), true
	}
	word, _, _ := strings.Cut(strings.TrimSpace(text), " ")
	switch strings.ToLower(word) {
	case "/help":
		c.help()
	case "/who":
		c.who()
	case "/destroy":
		c.ask(askedDestroy, "Destroy this room and every message in it, for both of you? Type y to destroy it, n to keep it.")
	case "/reopen":
		if c.away == nil {
			c.say("/reopen gives the seat kept for an away partner to someone new; nobody's is kept now.")
			break
		}
		c.ask(askedReopen, fmt.Sprintf("Give %s's seat to someone new? Their command will no longer work. Type y to give it up, n to keep it for them.",
			safetext.Sanitize(c.away.Name)))
	case "/bell":
		c.bell = !c.bell
		if c.bell {
			c.say("Bell on: a message from your partner rings your terminal's bell. /bell turns it off.")
		} else {
			c.say("Bell off: messages arrive without a sound.")
		}
	case "/copy":
		c.say("Line mode has no clipboard; copy the room's command from here:")
		c.say(c.join)
	default:
		c.say(fmt.Sprintf("Unknown command %q: /help lists the commands. A line that begins with // is sent, with one /.",
			safetext.Sanitize(word)))
	}
	return ui.Outcome{}, false
}

// leaving reports the command that leaves.
func leaving(text string) bool {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "/leave", "/quit", "/exit":
		return true
	}
	return false
}

// help lists the commands, this person's own way back in, and what the
// room promises.
func (c *Chat) help() {
	bell := "off"
	if c.bell {
		bell = "on"
	}
	for _, l := range []string{
		"Each line you type is a message to the room. Commands:",
		"  /who      who is here, and how long the room lives",
		"  /destroy  destroy the room and every message in it, for both of you (asks first)",
		"  /reopen   give a seat kept for your partner, who is away, to someone new (asks first)",
		"  /bell     ring the terminal's bell when your partner writes (now " + bell + ")",
		"  /copy     show the room's command, to copy",
		"  /leave    leave; your seat is kept for you while the room lives (so does the end of your input)",
		"  /help     this help",
		"A line that begins with // is sent, with one /.",
		fmt.Sprintf("A message has at most %d characters (%d bytes).", safetext.MaxMessageRunes, safetext.MaxMessageBytes),
		"Your own way back into this room, as " + safetext.Sanitize(c.snap.Me.Name) + " (keep it to yourself):",
		c.back,
		"The room self-destructs when its time is up, or as soon as either of you destroys it. " +
			"Once two people have met in it, it is sealed to them: its command admits nobody new.",
	} {
		c.say(l)
	}
}

// who says who is here and how long the room lives.
func (c *Chat) who() {
	me := "You are " + safetext.Sanitize(c.snap.Me.Name) + "."
	switch {
	case c.partner != nil:
		c.say(me + " " + safetext.Sanitize(c.partner.Name) + " is here.")
	case c.away != nil:
		c.say(me + " " + safetext.Sanitize(c.away.Name) + " is away, their seat kept for them (/reopen gives it up).")
	case c.sealed:
		c.say(me + " Nobody else is here.")
	default:
		c.say(me + " Nobody else is here yet. To invite someone, share this command with ONE person:")
		c.say(c.join)
	}
	c.countdown()
}

// ask puts a question to the person.
func (c *Chat) ask(q question, text string) {
	c.question, c.askedAt = q, time.Now()
	c.say(text)
}

// answer takes the line typed while a question waits. A yes counts only
// a moment after the question was put, and after any line since: sooner
// than anyone reads it, it was typed ahead or pasted along with the
// command (a paste that both asks and answers).
func (c *Chat) answer(a string) {
	asked := c.question
	now := time.Now()
	quiet := now.Sub(c.askedAt) >= readingTime
	c.askedAt = now
	switch {
	case (a == "y" || a == "yes") && !quiet:
		c.say("That came before the question could be read. Type y again to confirm, n to cancel.")
	case (a == "y" || a == "yes") && asked == askedDestroy:
		c.question = askedNothing
		c.say("Destroying the room...")
		c.call(func(ctx context.Context) error {
			err := c.seat.Destroy(ctx)
			if err != nil && !errors.Is(err, store.ErrEnded) {
				return errSaid{"Could not destroy the room. Type /destroy to try again."}
			}
			// The EndedEvent says the rest.
			return nil
		})
	case (a == "y" || a == "yes") && asked == askedReopen:
		c.question = askedNothing
		c.say("Reopening the seat...")
		c.call(func(ctx context.Context) error {
			err := c.seat.Reopen(ctx)
			switch {
			case err == nil, errors.Is(err, store.ErrEnded):
				return nil // its event says the rest
			case errors.Is(err, store.ErrNothingToReopen):
				return errSaid{"There is no seat to reopen: your partner is back."}
			}
			return errSaid{"Could not reopen the seat. Type /reopen to try again."}
		})
	case (a == "n" || a == "no") && asked == askedDestroy:
		c.question = askedNothing
		c.say("The room lives on.")
	case a == "n" || a == "no":
		c.question = askedNothing
		c.say("The seat stays kept for them.")
	default:
		c.say("Nothing was sent: type y or n first.")
	}
}

// call runs a store call for the person beside the chat; what fails is
// said as a line.
func (c *Chat) call(do func(ctx context.Context) error) {
	c.calls.Add(1)
	go func() {
		defer c.calls.Done()
		err := error(errSaid{"Something went wrong on our side. Try again."})
		defer func() {
			if err != nil {
				// Said by Run, which alone writes.
				c.deliver(sendResult{err: err})
			}
		}()
		defer c.recover("plain call")
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		err = do(ctx)
	}()
}

// deliver hands a call's result to Run, unless Run has returned.
func (c *Chat) deliver(r sendResult) {
	select {
	case c.results <- r:
	case <-c.done:
	}
}

// errCallFailed is the result of a call that panicked.
var errCallFailed = errors.New("plain: the call failed")

// errSaid is a call's failure, worded for the person.
type errSaid struct{ text string }

func (e errSaid) Error() string { return e.text }

// send puts a typed line on its way to the room, if it can be a message.
func (c *Chat) send(text string, over bool) {
	clean := safetext.Sanitize(text)
	switch {
	case over:
		c.say(fmt.Sprintf("Not sent: that line is longer than %d bytes. A message may have at most %d characters (%d bytes).",
			maxLineBytes, safetext.MaxMessageRunes, safetext.MaxMessageBytes))
		return
	case clean == "":
		return
	}
	if n := safetext.RuneCount(clean); n > safetext.MaxMessageRunes {
		c.say(fmt.Sprintf("Not sent: %d characters is too long, the limit is %d. Shorten it and send it again.", n, safetext.MaxMessageRunes))
		return
	}
	if n := len(clean); n > safetext.MaxMessageBytes {
		c.say(fmt.Sprintf("Not sent: with its accents or emoji it takes %d bytes, at most %d fit. Shorten it and send it again.", n, safetext.MaxMessageBytes))
		return
	}
	c.outbox = append(c.outbox, outgoing{id: store.NewMessageID(), text: text})
	c.sendNext()
}

// sendNext sends the oldest message of the outbox, unless one is on its
// way: messages are stored in the order they were written.
func (c *Chat) sendNext() {
	if c.sending != "" || len(c.outbox) == 0 {
		return
	}
	next := c.outbox[0]
	c.sending, c.retryAt = next.id, time.Time{}
	seat := c.seat
	c.calls.Add(1)
	go func() {
		defer c.calls.Done()
		r := sendResult{id: next.id, err: errCallFailed}
		defer func() { c.deliver(r) }()
		defer c.recover("plain send")
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		r.err = seat.Send(ctx, next.id, next.text)
	}()
}

func (c *Chat) handleSendResult(r sendResult) {
	var said errSaid
	if errors.As(r.err, &said) {
		c.say(said.text)
		return
	}
	if r.id != c.sending {
		return // its message's event came first: the answer is stale
	}
	c.sending = ""
	if len(c.outbox) == 0 || c.outbox[0].id != r.id {
		c.sendNext() // its event came first
		return
	}
	switch {
	case r.err == nil:
		c.stored(r.id)
		return
	case errors.Is(r.err, store.ErrEnded):
		return // the room is ending, and its EndedEvent is on the way
	case errors.Is(r.err, store.ErrUnavailable), errors.Is(r.err, context.DeadlineExceeded):
		// Whether it was stored is unknown: it goes again, under its ID,
		// when the link is back or in a moment.
		c.retryAt = time.Now().Add(retryEvery)
		if !c.unreachable {
			c.unreachable = true
			c.say("Not sent yet: the room cannot be reached. It goes out as soon as it can.")
		}
		return
	}
	// Refused: nothing of it was stored, nor of what waited behind it,
	// which is not sent either, to keep the order.
	switch {
	case errors.Is(r.err, store.ErrTooFast):
		c.say("Not sent: too many messages at once. Send them again in a moment:")
	case errors.Is(r.err, store.ErrOverBudget):
		c.say("Not sent: too much sent from your network lately. Send them again in a minute:")
	case errors.Is(r.err, store.ErrServiceFull):
		c.say("Not sent: the service is full right now. Send them again in a moment:")
	case errors.Is(r.err, store.ErrMessageTooLong):
		c.say(fmt.Sprintf("Not sent: a message may have at most %d characters (%d bytes: accents and emoji take more):",
			safetext.MaxMessageRunes, safetext.MaxMessageBytes))
	case errors.Is(r.err, store.ErrEmptyMessage):
		c.outbox = c.outbox[1:]
		c.sendNext()
		return
	default:
		c.say("Not sent: something went wrong. Send them again:")
	}
	for _, o := range c.outbox {
		c.say("  " + safetext.Sanitize(o.text))
	}
	c.outbox, c.retryAt, c.unreachable = nil, time.Time{}, false
}

// stored takes the message id out of the outbox: the room has it.
func (c *Chat) stored(id store.MessageID) {
	i := slices.IndexFunc(c.outbox, func(o outgoing) bool { return o.id == id })
	if i < 0 {
		return
	}
	if c.sending == id {
		c.sending = "" // its answer, when it comes, is stale
	}
	c.outbox = slices.Delete(c.outbox, i, i+1)
	if len(c.outbox) > 0 {
		c.sendNext()
	} else {
		c.retryAt = time.Time{}
		if c.unreachable && !c.reconnecting {
			c.unreachable = false
			c.say("Reconnected. Nothing was lost.")
		}
	}
}
