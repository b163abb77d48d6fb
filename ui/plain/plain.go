// Package plain is the chat as lines, for terminals that take no escape
// sequences (TERM=dumb), clients without a terminal (ssh -T), screen
// readers and scripts: every event is one line (a message's own line
// breaks indented under it), a line typed is a message, and commands are
// words (/help lists them). It writes no escape sequence at all: no
// alternate screen, no cursor addressing, no colour, no clipboard; a bell
// only when its person turns it on.
//
// It runs over the same store.Seat as the full screen (package ui), with
// the same limits and the same words where the two say the same thing
// (ui.Ends): a chat ends, and exits, the same way in both.
package plain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui"
)

const (
	// storeTimeout bounds one call to the store made for the person.
	storeTimeout = 10 * time.Second
	// retryEvery is how soon a message whose sending had an unknown
	// outcome is sent again, under its ID (it is stored at most once).
	retryEvery = time.Second
	// maxWaiting bounds the messages on their way at once; while it is
	// reached, no more input is read, so a script's lines wait in its
	// own pipe instead of the server's memory.
	maxWaiting = 32
	// readingTime is the least time between a question and a yes to it:
	// faster than anyone reads, too slow for a paste that answers its
	// own question.
	readingTime = 250 * time.Millisecond
	// droppedEvery is how often dropped input is mentioned at most.
	droppedEvery = 5 * time.Second
	// lastMinute is when the countdown is said again.
	lastMinute = time.Minute
)

// Config is what a chat in lines needs.
type Config struct {
	Seat store.Seat
	// JoinCommand is the exact command that joins this room, for sharing.
	JoinCommand string
	// RejoinCommand brings this person back to their own seat: shown in
	// the help and when the chat ends while the room lives on.
	RejoinCommand string
	// Location is the time zone for times; UTC when nil.
	Location *time.Location
	// InputBytesPerSecond is the rate at which what the client sends is
	// taken in; what comes faster waits in a bounded queue, and beyond
	// it is dropped a line at a time.
	InputBytesPerSecond int
	// Echo: the client's terminal sends each key as it is pressed and
	// shows nothing itself (it asked for a terminal), so the chat shows
	// what is typed and lets it be edited. Without it the client's own
	// terminal, or a script, has the line already: nothing is echoed.
	Echo bool
	// Recover is deferred in each goroutine of the chat's own: it
	// recovers from a panic and reports it (a bug in a store, say),
	// which then fails only what that goroutine was doing. Nil lets a
	// panic through.
	Recover func(what string)
}

// Chat is one person's chat in lines.
type Chat struct {
	seat  store.Seat
	snap  store.Snapshot
	join  string
	back  string
	loc   *time.Location
	ends  *ui.Ends
	out   *output
	edit  editor
	inbox *inbox
	rate  *rate.Limiter
	tells chan tea.Msg
	done  chan struct{} // closed when Run returns
	// recover is Config.Recover, or nothing.
	recover func(what string)

	// Owned by Run.
	partner, away *store.Member
	sealed        bool
	outbox        []outgoing
	sending       store.MessageID // the message whose Send is on its way, if any
	retryAt       time.Time       // when to send outbox[0] again; zero if not due
	unreachable   bool            // said that the room cannot be reached
	reconnecting  bool
	question      question
	askedAt       time.Time
	bell          bool
	lines         []line // typed and not yet handled
	inputEnded    bool
	droppedSaid   time.Time      // when dropped input was last mentioned
	calls         sync.WaitGroup // store calls on their way
	results       chan sendResult
}

type outgoing struct {
	id   store.MessageID
	text string
}

type sendResult struct {
	id  store.MessageID
	err error
}

type question uint8

const (
	askedNothing question = iota
	askedDestroy
	askedReopen
)

// New returns the chat for cfg.Seat, writing its lines to out (with \n
// line ends; a writer for a terminal turns them into what it needs) from
// a goroutine that Run ends: run it.
func New(cfg Config, out io.Writer) *Chat {
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	snap := cfg.Seat.Snapshot()
	back := cfg.RejoinCommand
	if back == "" {
		back = cfg.JoinCommand
	}
	guard := cfg.Recover
	if guard == nil {
		guard = func(string) {}
	}
	return &Chat{
		recover: guard,
		seat:    cfg.Seat, snap: snap, join: cfg.JoinCommand, back: back, loc: loc,
		ends:    ui.NewEnds(snap, cfg.JoinCommand, cfg.RejoinCommand),
		out:     newOutput(out, guard),
		edit:    editor{echo: cfg.Echo},
		inbox:   newInbox(),
		rate:    rate.NewLimiter(rate.Limit(max(cfg.InputBytesPerSecond, 1)), max(cfg.InputBytesPerSecond, receiveBuffer)),
		tells:   make(chan tea.Msg),
		done:    make(chan struct{}),
		sealed:  snap.Sealed,
		results: make(chan sendResult, 1),
	}
}

// Tell hands the chat something from outside: a ui.Disconnect (the
// server ends the chat). It returns at once once Run has returned.
func (c *Chat) Tell(msg tea.Msg) {
	select {
	case c.tells <- msg:
	case <-c.done:
	}
}

// Run shows the chat and reads lines from in until the chat ends, and
// returns how it ended, for its end line. An error means nobody is left
// to tell: ctx ended (the connection is gone), or the client read nothing
// more (ErrStuck: close what the chat writes to).
//
// It reads in from a goroutine that ends when in does: end in once Run
// has returned.
func (c *Chat) Run(ctx context.Context, in io.Reader) (ui.Outcome, error) {
	// Calls still on their way end within storeTimeout, their results
	// unread once done is closed (deferred calls run last first).
	defer c.calls.Wait()
	defer close(c.done)
	go func() {
		defer c.recover("plain input")
		c.inbox.receive(in)
	}()

	c.greet()
	lastMinuteAt := time.Until(c.snap.Room.ExpiresAt.Add(-lastMinute))
	minute := time.NewTimer(max(lastMinuteAt, 0))
	if lastMinuteAt <= 0 {
		minute.Stop()
	}
	defer minute.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	// Input is taken at the rate the server allows; while it waits its
	// turn, it waits in the inbox.
	turn := time.NewTimer(time.Hour)
	turn.Stop()
	defer turn.Stop()
	var waitingTurn bool

	events := c.seat.Events()
	for {
		// Lines are handled while the outbox has room; till then the
		// client's input waits in the inbox.
		for len(c.lines) > 0 && len(c.outbox) < maxWaiting {
			l := c.lines[0]
			c.lines = c.lines[1:]
			if outcome, ended := c.handleLine(l); ended {
				return c.end(outcome)
			}
		}
		if c.inputEnded && len(c.lines) == 0 && len(c.outbox) == 0 {
			// The end of the input is the end of the chat, once what was
			// written is in the room: a script that pipes its lines in
			// is done when they are.
			return c.end(c.ends.Left(time.Now(), c.sealed, nil))
		}
		var input <-chan struct{}
		if len(c.lines) == 0 && !c.inputEnded && !waitingTurn {
			input = c.inbox.ready
		}
		if !c.retryAt.IsZero() && c.sending == "" {
			retry.Reset(max(time.Until(c.retryAt), 0))
		}
		select {
		case <-ctx.Done():
			return ui.Outcome{}, c.gone(ctx.Err())
		case <-c.out.failed:
			return ui.Outcome{}, c.gone(errBroken)
		case ev, ok := <-events:
			if !ok {
				return c.end(c.ends.Lost(c.unsent()))
			}
			if outcome, ended := c.handleEvent(ev); ended {
				return c.end(outcome)
			}
		case <-c.inbox.interrupt:
			// ctrl+c leaves, as in the full screen, without waiting
			// behind what was typed before it.
			return c.end(c.ends.Left(time.Now(), c.sealed, c.unsent()))
		case <-input:
			if delay := c.takeInput(); delay > 0 {
				waitingTurn = true
				turn.Reset(delay)
			}
		case <-turn.C:
			waitingTurn = false
			signal(c.inbox.ready)
		case r := <-c.results:
			c.handleSendResult(r)
		case msg := <-c.tells:
			if outcome, ended := c.handleTell(msg); ended {
				return c.end(outcome)
			}
		case <-minute.C:
			c.notice(fmt.Sprintf("1 minute left: the room self-destructs at %s.", c.clock(c.snap.Room.ExpiresAt)))
		case <-retry.C:
			if !c.retryAt.IsZero() && c.sending == "" {
				c.sendNext()
			}
		}
	}
}

// takeInput takes what waits in the inbox into lines, a piece at a time,
// and returns how long the next piece must wait for its turn at the
// input's rate.
func (c *Chat) takeInput() time.Duration {
	data, lost, ended := c.inbox.take(c.rate.Burst())
	if lost {
		c.out.write(c.edit.lose())
		// Said once a while: a flood would otherwise be answered by one.
		if now := time.Now(); now.Sub(c.droppedSaid) >= droppedEvery {
			c.droppedSaid = now
			c.say("Some of what you sent was dropped: more arrived than the chat takes in. The lines it fell in were not sent.")
		}
	}
	if ended {
		c.inputEnded = true
		if l, ok := c.edit.rest(); ok {
			c.lines = append(c.lines, l)
		}
		return 0
	}
	if len(data) == 0 {
		return 0
	}
	lines, echo := c.edit.feed(data)
	c.out.write(echo)
	c.lines = append(c.lines, lines...)
	if c.edit.eof {
		c.inputEnded = true
	}
	return c.rate.ReserveN(time.Now(), len(data)).Delay()
}

// LastInput is when the client last sent anything: the server's idle
// timeout counts from it.
func (c *Chat) LastInput() time.Time { return c.inbox.lastInput() }

// end finishes the chat with outcome: what was said goes out first.
func (c *Chat) end(outcome ui.Outcome) (ui.Outcome, error) {
	if c.edit.pending() != "" {
		c.out.write("\n")
	}
	if err := c.out.close(); err != nil {
		return ui.Outcome{}, err
	}
	return outcome, nil
}

// gone ends the chat with nobody left to tell.
func (c *Chat) gone(err error) error {
	if closeErr := c.out.close(); errors.Is(closeErr, ErrStuck) {
		return ErrStuck
	}
	return err
}

// greet says where the person is: who they are, the room's history, who
// else is here, how long the room lives and how to invite someone.
func (c *Chat) greet() {
	c.say("Private room, in line mode. You are " + safetext.Sanitize(c.snap.Me.Name) +
		". Each line you type is a message; /help lists the commands.")
	for _, msg := range c.snap.History {
		c.message(msg)
	}
	c.snap.History = nil
	switch {
	case len(c.snap.Others) > 0:
		other := c.snap.Others[0]
		c.partner = &other
		if c.snap.Back {
			c.notice(fmt.Sprintf("you are back; %s is here", safetext.Sanitize(other.Name)))
		} else {
			c.notice(fmt.Sprintf("you joined; %s is here. %s", safetext.Sanitize(other.Name), sealedNote))
		}
	case len(c.snap.Away) > 0:
		away := c.snap.Away[0]
		c.away = &away
		c.notice(fmt.Sprintf("you are back; %s is away, their seat kept for them", safetext.Sanitize(away.Name)))
	case c.snap.Back:
		c.notice("you are back")
	}
	c.countdown()
	if c.partner == nil && c.away == nil && !c.sealed {
		c.say("To invite someone, share this command with ONE person:")
		c.say(c.join)
	}
}

// sealedNote tells the two who just met what that means for them.
const sealedNote = "The room is now sealed to you two: /help shows your own way back in."

// countdown says how long the room lives.
func (c *Chat) countdown() {
	c.say(fmt.Sprintf("The room self-destructs in %s, at %s.",
		ui.FormatCountdown(time.Until(c.snap.Room.ExpiresAt)), c.clock(c.snap.Room.ExpiresAt)))
}

// clock is t as the person's clock shows it.
func (c *Chat) clock(t time.Time) string { return t.In(c.loc).Format("15:04") }

// say writes one line that is not an event of the room; pending input
// being typed is shown again after it.
func (c *Chat) say(text string) {
	pending := c.edit.pending()
	var b strings.Builder
	if pending != "" {
		b.WriteString("\n")
	}
	b.WriteString(text)
	b.WriteString("\n")
	b.WriteString(pending)
	c.out.write(b.String())
}

// notice writes an event of the room that is not a message.
func (c *Chat) notice(text string) {
	c.say(c.clock(time.Now()) + " * " + safetext.Sanitize(text))
}

// message writes msg as a line: its time, who sent it, and its text, each
// further line of which is indented under the first, so no line of a
// message can pass for an event of its own.
func (c *Chat) message(msg store.Message) {
	name := safetext.Sanitize(msg.From.Name)
	if msg.From.ID == c.snap.Me.ID {
		name = "you"
	}
	prefix := c.clock(msg.At) + " " + name + ": "
	var b strings.Builder
	for i, part := range strings.Split(msg.Body, "\n") {
		if i > 0 {
			b.WriteString("\n")
			b.WriteString(strings.Repeat(" ", ansi.StringWidth(prefix)))
		}
		b.WriteString(safetext.Sanitize(part))
	}
	c.say(prefix + b.String())
}

func (c *Chat) handleEvent(ev store.Event) (ui.Outcome, bool) {
	switch ev := ev.(type) {
	case store.MessageEvent:
		msg := ev.Message
		if msg.From.ID == c.snap.Me.ID {
			// The person has it already: they typed it.
			c.stored(msg.ID)
			return ui.Outcome{}, false
		}
		c.message(msg)
		if c.bell {
			c.out.write("\a")
		}
	case store.JoinedEvent:
		member := ev.Member
		back := ev.Back && ((c.away != nil && c.away.ID == member.ID) || (c.partner != nil && c.partner.ID == member.ID))
		c.partner, c.away, c.sealed = &member, nil, true
		if c.question == askedReopen {
			c.question = askedNothing
			c.say("The seat is taken again: nothing to reopen.")
		}
		if back {
			c.notice(member.Name + " is back")
		} else {
			c.notice(member.Name + " joined. " + sealedNote)
		}
	case store.LeftEvent:
		c.partner = nil
		if ev.Kept {
			member := ev.Member
			c.away = &member
			c.notice(member.Name + " left; their seat is kept for them until the room ends")
		} else {
			c.notice(ev.Member.Name + " left; the seat is free again")
		}
	case store.ReopenedEvent:
		c.away, c.sealed = nil, false
		c.notice("you gave " + ev.Member.Name + "'s seat up: their command no longer works, and whoever you share the room's command with can take it, with the messages so far")
		c.say("Share the room's command again:")
		c.say(c.join)
	case store.ReconnectingEvent:
		c.reconnecting = true
		c.notice("the room cannot be reached right now; reconnecting")
	case store.ReconnectedEvent:
		c.reconnecting = false
		if len(c.outbox) == 0 {
			c.notice("reconnected. Nothing was lost.")
			return ui.Outcome{}, false
		}
		c.notice("reconnected. Sending what you wrote.")
		c.retryAt = time.Now()
		c.sendNext()
	case store.EndedEvent:
		return c.ends.Ended(ev, c.unsent()), true
	}
	return ui.Outcome{}, false
}

func (c *Chat) handleTell(msg tea.Msg) (ui.Outcome, bool) {
	if d, ok := msg.(ui.Disconnect); ok {
		return c.ends.Disconnected(d, c.unsent()), true
	}
	return ui.Outcome{}, false
}

// unsent is what was written and not confirmed as stored.
func (c *Chat) unsent() []string {
	texts := make([]string, len(c.outbox))
	for i, o := range c.outbox {
		texts[i] = o.text
	}
	return texts
}
