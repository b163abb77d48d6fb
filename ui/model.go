// Package ui is the chat screen: a Bubble Tea model over one store.Seat. It
// knows nothing of SSH; the server hands it a seat, the colour profile of
// the client's terminal and the command that joins the room, and draws it
// with package screen.
package ui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui/screen"
)

const (
	// inputCap bounds what can be typed without pressing Enter. It is above
	// the message limit so an over-long message is reported, not cut.
	inputCap = 4 * safetext.MaxMessageRunes
	// maxEntries bounds the lines kept on screen for scrolling back.
	maxEntries = 1000
	// storeTimeout bounds one call to the store made for the user.
	storeTimeout = 10 * time.Second
	// droppedNotice is how long the screen says that input was dropped.
	droppedNotice = 3 * time.Second
	// retryEvery is how soon a message whose sending had an unknown
	// outcome is sent again (under its ID: it is stored at most once), if
	// the link's return does not come first.
	retryEvery = time.Second
)

// Config is what a chat screen needs.
type Config struct {
	Seat store.Seat
	// JoinCommand is the exact command that joins this room, shown for sharing.
	JoinCommand string
	// Profile is the colours the client's terminal shows.
	Profile termenv.Profile
	// Location is the time zone for message times; UTC when nil.
	Location *time.Location
	// Width and Height are the terminal size until the first WindowSizeMsg.
	Width, Height int
	// Clock drives the countdown; without one it shows the time the
	// screen was made.
	Clock *Clock
}

// Disconnect ends the chat screen for a reason of the server's (idle too
// long, session too long, shutting down); the room itself lives on.
type Disconnect struct {
	Reason string // what the person reads
	Ending Ending
}

// InputDropped tells the screen that some of what its person sent was
// thrown away: more arrived than the chat takes in.
type InputDropped struct{}

// Outcome is how a chat ended, to be printed once the full-screen UI has
// closed so the reason stays readable in the terminal.
type Outcome struct {
	Text   string
	Ending Ending
}

// Ending names why a chat ended, for logs and metrics: a fixed phrase,
// never anything a person wrote or a room's ID.
type Ending string

// The ways a chat ends.
const (
	EndingLeft               Ending = "left"
	EndingDestroyedBySelf    Ending = "destroyed by self"
	EndingDestroyedByPartner Ending = "destroyed by partner"
	EndingExpired            Ending = "expired"
	EndingRoomVanished       Ending = "room vanished"
	EndingRoomLost           Ending = "room lost"
	EndingFellBehind         Ending = "fell behind"
	EndingSeatLost           Ending = "seat lost"
	EndingShutdown           Ending = "shutdown"
	EndingIdle               Ending = "idle"
	EndingMaxSession         Ending = "max session"
)

// Model is the chat screen.
type Model struct {
	seat   store.Seat
	clock  *Clock
	snap   store.Snapshot
	join   string
	loc    *time.Location
	styles *styles // shared by every screen with the same colours
	input  textinput.Model
	conv   conversation

	// outbox is what was sent from the input and is not stored yet,
	// oldest first. Messages go out one at a time, in order, each under
	// the ID it got when Enter was pressed, so one sent again after an
	// unknown outcome is stored at most once.
	outbox  []outgoing
	sending store.MessageID // the message whose Send is on its way, if any
	retryAt time.Time       // when to send outbox[0] again, if nothing is on its way
	// reconnected: the link came back while messages waited; once they
	// are stored, the screen can say that nothing was lost.
	reconnected bool

	width, height int
	title         string // the header's left part, and its width
	titleWidth    int
	rule          string   // a line across the screen, drawn once per width
	panel         []string // the share panel, drawn when the width or the partner changes
	partner       *store.Member
	entries       []entry
	now           time.Time
	status        string // one-line notice under the messages
	statusIsError bool
	confirming    bool      // destroy asked, waiting for y/n
	reconnecting  bool      // the store lost its link; sends fail until it is back
	droppedUntil  time.Time // say until then that input was dropped
	inputCount    int       // characters the typed text will have once sanitised
	inputFull     bool      // the input holds inputCap characters: typing adds nothing
	outcome       Outcome
	done          bool

	// version names the state the model is in; Lines redraws only for a
	// version it has not drawn yet (see unchanged).
	version uint64
	frame   frame
}

// frame is the last screen drawn. Bubble Tea asks for the screen after
// every message; keys that change nothing, and the countdown's ticks,
// would otherwise redraw all of it each time. Lines that did not change
// stay the same strings, so the renderer finds what changed without
// reading them.
type frame struct {
	versions uint64 // the last version handed out
	drawn    uint64 // the version body shows
	body     []screen.Line
	// The header as drawn for headerKey; it changes once a second at most.
	header    screen.Line
	headerKey headerKey
	// lines is the header and the body, as last handed out.
	lines []screen.Line
	// The key help as drawn for helpKey.
	help    string
	helpKey helpKey
}

type helpKey struct {
	width      int
	confirming bool
}

// headerKey is what the header depends on besides what never changes.
type headerKey struct {
	secondsLeft int
	width       int
}

// touch gives m a version no other state of it has had.
func (m *Model) touch() {
	m.frame.versions++
	m.version = m.frame.versions
}

// entry is one line of the conversation: a message or a system notice.
type entry struct {
	msg    *store.Message
	notice string
	at     time.Time
	// drawn is the entry's lines as drawn at width drawnWidth (0: not
	// yet), so a new message costs one entry's rendering, not the whole
	// history's.
	drawn      []string
	drawnWidth int
}

// Messages that enter the program from outside its event loop, besides
// the room's events (store.Event), which come as they are.
type (
	streamEnded struct{}
	tickMsg     time.Time // the moment the clock ticked
	sendResult  struct {
		id  store.MessageID
		err error
	}
	destroyError struct{ err error }
)

// New returns the chat screen for cfg.Seat.
func New(cfg Config) *Model {
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	st := stylesFor(cfg.Profile)

	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = "type a message, enter to send"
	in.CharLimit = inputCap
	in.PromptStyle = st.prompt
	in.TextStyle = st.plain
	in.PlaceholderStyle = st.help
	in.Cursor.Style = st.plain
	in.Cursor.TextStyle = st.plain
	// A blinking cursor would redraw twice a second forever.
	in.Cursor.SetMode(cursor.CursorStatic)
	// textinput's ctrl+v reads the clipboard of the machine the program
	// runs on: here, the server's. Clients paste through their terminal.
	in.KeyMap.Paste.SetEnabled(false)
	in.Focus()

	snap := cfg.Seat.Snapshot()
	m := &Model{
		seat:   cfg.Seat,
		clock:  cfg.Clock,
		snap:   snap,
		join:   cfg.JoinCommand,
		loc:    loc,
		styles: st,
		input:  in,
		now:    time.Now(),
	}
	m.title = st.header.Render("private room") + st.help.Render(" · you are ") + st.me.Render(safetext.Sanitize(snap.Me.Name))
	m.titleWidth = lipgloss.Width(m.title)
	for _, msg := range snap.History {
		m.entries = append(m.entries, entry{msg: &msg, at: msg.At})
	}
	if len(snap.Others) > 0 {
		other := snap.Others[0]
		m.partner = &other
		m.addNotice(fmt.Sprintf("you joined; %s is here", other.Name))
	}
	m.resize(cfg.Width, cfg.Height)
	return m
}

// Outcome reports how the chat ended; valid once the program has exited.
func (m *Model) Outcome() Outcome { return m.outcome }

// Init implements tea.Model. The room's events and the countdown's ticks
// come from Listen, which the program's owner runs beside it.
func (m *Model) Init() tea.Cmd { return nil }

// Listen returns what hands the room's events and the countdown's ticks to
// send (the program's Send), one at a time and in room order, until the
// room's stream ends; run it in a goroutine of its own beside the program.
//
// It costs no goroutine per event or tick, as a command re-armed after
// each would, and allocates nothing while a screen is idle: with thousands
// of screens, a goroutine that allocates while the garbage collector marks
// must first help it mark, and thousands of them each second made every
// collection stall the people who were talking.
func (m *Model) Listen() func(send func(tea.Msg)) {
	seat, clock := m.seat, m.clock
	slot := slotOf(m.snap.Room.ExpiresAt)
	var seen uint64 // the ticks this screen has had
	if clock != nil {
		seen, _, _ = clock.tick(slot)
	}
	return func(send func(tea.Msg)) {
		for {
			var next <-chan struct{} // never, without a clock
			if clock != nil {
				ticks, tick, ch := clock.tick(slot)
				if ticks != seen {
					// One tick or more came while the screen was busy:
					// the latest says all of them.
					seen = ticks
					send(tick)
					continue
				}
				next = ch
			}
			select {
			case ev, ok := <-seat.Events():
				if !ok {
					send(streamEnded{})
					return
				}
				send(ev)
			case <-next:
			}
		}
	}
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m.done || m.unchanged(msg) {
		return m, nil
	}
	if t, ok := msg.(tickMsg); ok {
		// The header is drawn for every frame; below it, only the notice
		// of dropped input depends on the time.
		noticeEnds := m.now.Before(m.droppedUntil) && !time.Time(t).Before(m.droppedUntil)
		m.now = time.Time(t)
		if noticeEnds {
			m.touch()
		}
		if m.retryDue(m.now) {
			return m, m.sendNext()
		}
		return m, nil
	}
	m.touch()
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
		return m, nil
	case store.Event:
		return m.handleEvent(msg)
	case streamEnded:
		// Only our own Leave closes the stream without an EndedEvent, and
		// we quit before leaving; anything else means the room is gone.
		return m.finish("The connection to the room was lost.", EndingRoomLost)
	case sendResult:
		return m, m.handleSendResult(msg)
	case destroyError:
		if !errors.Is(msg.err, store.ErrEnded) {
			m.setStatus("Could not destroy the room. Try again.", true)
		}
		return m, nil
	case tea.KeyMsg:
		return m.handleKey(msg)
	case Disconnect:
		return m.finish(msg.Reason+m.livesOn(), msg.Ending)
	case InputDropped:
		// Shown for a while whatever else the keys of the flood say: they
		// keep coming, each with a status of its own. (The countdown's
		// time stays the clock's, so both people's agree.)
		m.droppedUntil = time.Now().Add(droppedNotice)
	}
	return m, nil
}

// Redraws reports whether msg would change the screen, and so cost a
// redraw: the server throttles the input messages that do.
func (m *Model) Redraws(msg tea.Msg) bool { return !m.done && !m.unchanged(msg) }

// unchanged reports messages that would leave the model exactly as it
// is: those it has no use for (unknown escape sequences a client sends, for
// one), characters typed into a full input (which takes no more), enter on
// an empty one. A key not recognised here counts as a change.
func (m *Model) unchanged(msg tea.Msg) bool {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg, tickMsg, store.Event, streamEnded, sendResult, destroyError, Disconnect, InputDropped:
		return false
	case tea.KeyMsg:
		switch {
		case m.confirming:
			return false
		case msg.Type == tea.KeyRunes, msg.Type == tea.KeySpace:
			// alt+letter moves or deletes by word: it can change a full input.
			return m.inputFull && !msg.Alt
		case msg.Type == tea.KeyEnter:
			return m.input.Value() == ""
		}
		return false
	}
	return true
}

func (m *Model) handleKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 {
		// Several characters read at once are text, however they spell:
		// typed quickly (or pasted without bracketed paste), "end" or
		// "enter" would otherwise match the key of that name. Marking
		// them pasted keeps every key binding from matching.
		msg.Paste = true
	}
	if key.Matches(msg, keys.Leave) {
		return m.finish(m.leftText(), EndingLeft)
	}
	if m.confirming {
		switch {
		case key.Matches(msg, keys.Confirm):
			m.confirming = false
			m.setStatus("Destroying the room…", false)
			return m, destroy(m.seat)
		case key.Matches(msg, keys.Cancel):
			m.confirming = false
			m.setStatus("The room lives on.", false)
		}
		return m, nil
	}
	switch {
	case key.Matches(msg, keys.Destroy):
		m.confirming = true
		m.setStatus("", false)
		return m, nil
	case key.Matches(msg, keys.Send):
		return m.send()
	case key.Matches(msg, keys.ScrollUp):
		m.conv.scroll(-max(m.conv.height/2, 1))
		return m, nil
	case key.Matches(msg, keys.ScrollDown):
		m.conv.scroll(max(m.conv.height/2, 1))
		return m, nil
	}
	// textinput's sanitiser edits the runes in place, and bubbletea hands
	// out shared slices for some keys (space is one): two sessions typing
	// a space at once would race on them. Give it a copy, with pasted
	// white space already squeezed as the message will have it, so an
	// indented paste is not cut at the input's cap for its indentation.
	msg.Runes = []rune(safetext.SqueezeSpace(string(msg.Runes)))
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	m.updateInputStatus()
	return m, cmd
}

// updateInputStatus measures the typed text, once per change (not per
// frame: a flood of keys would pay for it thousands of times), and warns
// while it cannot be sent as it is.
func (m *Model) updateInputStatus() {
	m.measureInput()
	switch {
	case m.inputFull:
		m.setStatus(fmt.Sprintf("Input is capped at %d characters; a message may have at most %d.", inputCap, safetext.MaxMessageRunes), true)
	case m.inputCount > safetext.MaxMessageRunes:
		m.setStatus(fmt.Sprintf("Too long: %d of at most %d characters.", m.inputCount, safetext.MaxMessageRunes), true)
	case m.statusIsError:
		m.setStatus("", false)
	}
}

// measureInput records what the view and the key handler need to know of
// the typed text.
func (m *Model) measureInput() {
	value := m.input.Value()
	m.inputFull = utf8.RuneCountInString(value) >= inputCap
	m.inputCount = safetext.RuneCount(safetext.Sanitize(value))
}

func (m *Model) send() (tea.Model, tea.Cmd) {
	text := m.input.Value()
	clean := safetext.Sanitize(text)
	if clean == "" {
		m.input.Reset()
		m.measureInput()
		return m, nil
	}
	if n := safetext.RuneCount(clean); n > safetext.MaxMessageRunes {
		m.setStatus(fmt.Sprintf("Not sent: %d characters is too long, the limit is %d. Shorten it and press enter again.", n, safetext.MaxMessageRunes), true)
		m.keepApart()
		return m, nil
	}
	m.input.Reset()
	m.measureInput()
	if !m.reconnecting {
		m.setStatus("", false)
	}
	m.outbox = append(m.outbox, outgoing{id: store.NewMessageID(), text: text})
	return m, m.sendNext()
}

// outgoing is a message on its way to the room.
type outgoing struct {
	id   store.MessageID
	text string
}

// sendNext sends the oldest message of the outbox, unless one is on its
// way already: messages are stored in the order they were written.
func (m *Model) sendNext() tea.Cmd {
	if m.sending != "" || len(m.outbox) == 0 {
		return nil
	}
	next := m.outbox[0]
	m.sending, m.retryAt = next.id, time.Time{}
	seat := m.seat
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		return sendResult{id: next.id, err: seat.Send(ctx, next.id, next.text)}
	}
}

// retryDue reports whether the message whose outcome was unknown is to
// be sent again now.
func (m *Model) retryDue(now time.Time) bool {
	return m.sending == "" && len(m.outbox) > 0 && !m.retryAt.IsZero() && !now.Before(m.retryAt)
}

func (m *Model) handleSendResult(r sendResult) tea.Cmd {
	if r.id != m.sending {
		return nil // its message arrived meanwhile: the answer is stale
	}
	m.sending = ""
	if len(m.outbox) == 0 || m.outbox[0].id != r.id {
		return m.sendNext()
	}
	switch {
	case r.err == nil:
		m.stored(r.id)
		return m.sendNext()
	case errors.Is(r.err, store.ErrEnded):
		// The room is ending, and its EndedEvent is on the way.
		return nil
	case errors.Is(r.err, store.ErrUnavailable), errors.Is(r.err, context.DeadlineExceeded):
		// Whether it was stored is unknown. It stays out of the input
		// (it may have been delivered) and is sent again, under its ID,
		// when the link is back or in a moment, whichever comes first;
		// if it was stored, its event takes it out of the outbox.
		m.retryAt = time.Now().Add(retryEvery)
		m.setStatus("Not sent yet: the room cannot be reached. It goes out as soon as it can.", true)
		return nil
	}
	// Refused: nothing of it was stored. It goes back into the input, with
	// whatever waited behind it.
	m.reconnected = false
	m.restoreOutbox()
	switch {
	case errors.Is(r.err, store.ErrTooFast):
		m.setStatus("Slow down: too many messages at once. Not sent; press enter again in a moment.", true)
	case errors.Is(r.err, store.ErrServiceFull):
		m.setStatus("Not sent: the service is full right now. Press enter to try again in a moment.", true)
	case errors.Is(r.err, store.ErrMessageTooLong):
		m.setStatus(fmt.Sprintf("Not sent: a message may have at most %d characters.", safetext.MaxMessageRunes), true)
	case errors.Is(r.err, store.ErrEmptyMessage):
		m.setStatus("", false)
	default:
		m.setStatus("Not sent: something went wrong. Press enter to try again.", true)
	}
	return nil
}

// stored takes the message id out of the outbox: the room has it.
func (m *Model) stored(id store.MessageID) {
	i := slices.IndexFunc(m.outbox, func(o outgoing) bool { return o.id == id })
	if i < 0 {
		return
	}
	m.outbox = slices.Delete(m.outbox, i, i+1)
	if m.sending == id {
		m.sending = "" // its answer, when it comes, is stale
	}
	if len(m.outbox) > 0 {
		return
	}
	m.retryAt = time.Time{}
	switch {
	case m.reconnected && !m.reconnecting:
		m.reconnected = false
		m.setStatus("Reconnected. Nothing was lost.", false)
	case m.statusIsError && strings.HasPrefix(m.status, "Not sent yet"):
		m.setStatus("", false)
	}
}

// restoreOutbox puts the messages that were not stored back into the
// input, oldest first, before whatever was typed since; a space after
// them keeps what is typed next (the following lines of a paste) apart.
func (m *Model) restoreOutbox() {
	parts := make([]string, 0, len(m.outbox)+1)
	for _, o := range m.outbox {
		parts = append(parts, strings.TrimRight(o.text, " "))
	}
	if typed := m.input.Value(); typed != "" {
		parts = append(parts, typed)
	}
	m.outbox, m.sending, m.retryAt = nil, "", time.Time{}
	m.input.SetValue(strings.Join(parts, " "))
	m.keepApart()
}

// keepApart ends the input with a space, so that what is typed next (the
// following lines of a paste) does not run into text that stays there.
func (m *Model) keepApart() {
	if text := m.input.Value(); !strings.HasSuffix(text, " ") {
		m.input.SetValue(text + " ")
	}
	m.input.CursorEnd()
	m.measureInput()
}

func destroy(seat store.Seat) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := seat.Destroy(ctx); err != nil {
			return destroyError{err}
		}
		// The EndedEvent arrives through the event stream.
		return nil
	}
}

func (m *Model) handleEvent(ev store.Event) (tea.Model, tea.Cmd) {
	switch ev := ev.(type) {
	case store.MessageEvent:
		msg := ev.Message
		m.addEntry(entry{msg: &msg, at: msg.At})
		if msg.From.ID == m.snap.Me.ID {
			m.stored(msg.ID)
			return m, m.sendNext()
		}
	case store.JoinedEvent:
		member := ev.Member
		m.partner = &member
		m.addNotice(member.Name + " joined")
		m.resize(m.width, m.height)
	case store.LeftEvent:
		m.partner = nil
		m.addNotice(ev.Member.Name + " left; the seat is free again")
		m.resize(m.width, m.height)
	case store.ReconnectingEvent:
		m.reconnecting = true
	case store.ReconnectedEvent:
		m.reconnecting = false
		if len(m.outbox) == 0 {
			m.setStatus("Reconnected. Nothing was lost.", false)
			return m, nil
		}
		// What was written meanwhile goes out now; once it is stored,
		// nothing was lost.
		m.reconnected = true
		m.setStatus("Reconnected. Sending what you wrote…", false)
		m.retryAt = time.Now()
		return m, m.sendNext()
	case store.EndedEvent:
		return m.finish(m.endedText(ev), m.ending(ev))
	}
	return m, nil
}

func (m *Model) finish(text string, ending Ending) (tea.Model, tea.Cmd) {
	m.done = true
	if len(m.outbox) > 0 {
		// The screen closes: what the person wrote must not vanish with it.
		texts := make([]string, len(m.outbox))
		for i, o := range m.outbox {
			texts[i] = safetext.Sanitize(o.text)
		}
		text += "\nNot confirmed as sent: " + strings.Join(texts, " / ")
	}
	m.outcome = Outcome{Text: text, Ending: ending}
	return m, tea.Quit
}

// ending names why the room's stream ended for this seat.
func (m *Model) ending(ev store.EndedEvent) Ending {
	switch ev.Reason {
	case store.EndDestroyed:
		if ev.By.ID == m.snap.Me.ID {
			return EndingDestroyedBySelf
		}
		return EndingDestroyedByPartner
	case store.EndExpired:
		return EndingExpired
	case store.EndVanished:
		return EndingRoomVanished
	case store.EndEvicted:
		return EndingFellBehind
	case store.EndLeaseLost:
		return EndingSeatLost
	case store.EndShutdown:
		return EndingShutdown
	}
	return EndingRoomLost
}

func (m *Model) endedText(ev store.EndedEvent) string {
	const gone = " Every message in it is gone."
	livesOn := m.livesOn()
	switch ev.Reason {
	case store.EndDestroyed:
		switch ev.By.ID {
		case m.snap.Me.ID:
			return "Room destroyed by you." + gone
		case "":
			return "Room destroyed." + gone
		}
		return "Room destroyed by your partner (" + safetext.Sanitize(ev.By.Name) + ")." + gone
	case store.EndExpired:
		return "Room expired: its " + formatTTL(m.snap.Room.ExpiresAt.Sub(m.snap.Room.CreatedAt)) + " are up." + gone
	case store.EndVanished:
		return "The room no longer exists: it was destroyed, or the server lost it." + gone
	case store.EndEvicted:
		return "You were disconnected because your connection fell behind." + livesOn
	case store.EndLeaseLost:
		return "This server lost touch with the room for too long, so your seat was given up." + livesOn
	case store.EndShutdown:
		if ev.RoomLivesOn {
			return "The server is shutting down." + livesOn
		}
		return "The server is shutting down, so this room has been closed." + gone
	}
	return "The room has ended."
}

// livesOn tells someone whose session ended how to get back in. The
// command gets a line of its own so it is easy to copy.
func (m *Model) livesOn() string {
	return " The room is still open.\nTo return: " + m.join
}

func (m *Model) leftText() string {
	// The command gets a line of its own so it is easy to copy.
	return fmt.Sprintf("You left the room. It self-destructs in %s unless destroyed sooner.\nTo return: %s",
		formatCountdown(m.remaining()), m.join)
}

func (m *Model) addNotice(text string) {
	m.addEntry(entry{notice: text, at: time.Now()})
}

func (m *Model) addEntry(e entry) {
	if over := len(m.entries) + 1 - maxEntries; over > 0 {
		// The oldest go, and their lines with them.
		dropped := 0
		for _, old := range m.entries[:over] {
			dropped += len(old.drawn)
		}
		clear(m.entries[:over])
		m.entries = m.entries[over:]
		m.conv.drop(dropped)
	}
	// The others are drawn already: only the new one's lines are added.
	m.entries = append(m.entries, e)
	added := &m.entries[len(m.entries)-1]
	m.drawEntry(added)
	m.conv.add(added.drawn)
}

func (m *Model) setStatus(text string, isError bool) {
	m.status, m.statusIsError = text, isError
}

// Layout: header, rule, [share panel while alone], messages, rule, status,
// input, help. Everything but the panel and the messages is one line high.
const (
	fixedLines      = 6
	minConversation = 3
)

func (m *Model) resize(width, height int) {
	m.touch()
	// Smaller terminals get the smallest screen; Bubble Tea shows its
	// bottom lines.
	m.width, m.height = max(width, 20), max(height, fixedLines+minConversation)
	m.input.Width = max(m.width-len(m.input.Prompt)-m.counterWidth()-2, 1)
	m.rule = m.styles.rule.Render(strings.Repeat("─", m.width))
	m.panel = nil
	if panel := m.sharePanel(); panel != "" {
		m.panel = strings.Split(panel, "\n")
	}
	m.conv.setHeight(max(m.height-fixedLines-len(m.panel), 1))
	m.refreshConversation()
}

// refreshConversation gathers the lines of every entry, drawing only those
// not yet drawn at this width.
func (m *Model) refreshConversation() {
	var lines []string
	for i := range m.entries {
		e := &m.entries[i]
		m.drawEntry(e)
		lines = append(lines, e.drawn...)
	}
	m.conv.set(lines)
}

// drawEntry draws e at the screen's width, unless it is drawn already.
func (m *Model) drawEntry(e *entry) {
	if e.drawnWidth != m.width {
		e.drawn, e.drawnWidth = strings.Split(m.renderEntry(*e), "\n"), m.width
	}
}

func (m *Model) renderEntry(e entry) string {
	stamp := m.styles.time.Render(e.at.In(m.loc).Format("15:04"))
	if e.msg == nil {
		return ansi.Wrap(stamp+" "+m.styles.system.Render("· "+safetext.Sanitize(e.notice)), m.width, " ")
	}
	name := m.styles.partner.Render(safetext.Sanitize(e.msg.From.Name) + ":")
	if e.msg.From.ID == m.snap.Me.ID {
		name = m.styles.me.Render("you:")
	}
	// The body was sanitised by the store; doing it again here keeps this
	// screen safe whatever store it is given.
	return ansi.Wrap(stamp+" "+name+" "+safetext.Sanitize(e.msg.Body), m.width, " ")
}

func (m *Model) remaining() time.Duration {
	return m.snap.Room.ExpiresAt.Sub(m.now)
}

// secondsLeft is d in whole seconds, rounded up: the countdown shows 0:00
// only once the time is up.
func secondsLeft(d time.Duration) int { return max(int(math.Ceil(d.Seconds())), 0) }

// formatCountdown shows whole seconds left, rounded up, as m:ss.
func formatCountdown(d time.Duration) string { return formatSeconds(secondsLeft(d)) }

func formatSeconds(secs int) string { return string(appendSeconds(nil, secs)) }

// appendSeconds appends secs as m:ss.
func appendSeconds(b []byte, secs int) []byte {
	b = strconv.AppendInt(b, int64(secs/60), 10)
	return append(b, ':', byte('0'+secs%60/10), byte('0'+secs%10))
}

func formatTTL(d time.Duration) string {
	if d%time.Minute == 0 {
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	}
	return d.String()
}

func (m *Model) counterWidth() int {
	return len(fmt.Sprintf("%d/%d", inputCap, safetext.MaxMessageRunes))
}

// View implements tea.Model: the lines of the screen.
func (m *Model) View() string {
	lines := m.Lines()
	text := make([]string, len(lines))
	for i, line := range lines {
		text[i] = line.Render(m.width)
	}
	return strings.Join(text, "\n")
}

// Lines is the screen, line by line from the top, valid until the next
// Update. The header counts down every second; the rest is drawn again
// only for a state it has not drawn yet.
func (m *Model) Lines() []screen.Line {
	if m.done {
		// The outcome is printed on the normal screen after the program
		// exits; the last frame is left blank.
		return nil
	}
	changed := false
	if m.frame.drawn != m.version {
		m.frame.body, m.frame.drawn, changed = m.drawBelowHeader(), m.version, true
	}
	if key := (headerKey{secondsLeft(m.remaining()), m.width}); key != m.frame.headerKey {
		m.frame.header, m.frame.headerKey, changed = m.headerView(key.secondsLeft), key, true
	}
	if changed || m.frame.lines == nil {
		// The renderer copies the lines before the next Update, so the
		// slice is reused.
		m.frame.lines = append(append(m.frame.lines[:0], m.frame.header), m.frame.body...)
	}
	return m.frame.lines
}

// drawBelowHeader lays out everything under the header. Every part is at
// most the screen's width already, so they are only gathered, not measured.
func (m *Model) drawBelowHeader() []screen.Line {
	lines := make([]screen.Line, 0, m.height)
	add := func(text ...string) {
		for _, t := range text {
			lines = append(lines, screen.Line{Text: t})
		}
	}
	add(m.rule)
	add(m.panel...)
	add(m.conv.view()...)
	add(m.rule, m.statusView(), m.inputView(), m.helpView())
	return lines
}

// headerView is drawn every second, for every screen in the process, so
// it costs nothing to make: the title is this screen's, drawn once, and
// the countdown against the right edge comes from a table shared by every
// screen with the same colours.
func (m *Model) headerView(secs int) screen.Line {
	labelled := m.styles.countdowns.get(secs, true)
	switch rightWidth := len(destructsIn) + countdownWidth(secs); {
	case m.width-m.titleWidth-rightWidth >= 1:
		return screen.Line{Text: m.title, Right: labelled}
	case rightWidth <= m.width:
		// Narrow terminal: the countdown matters most.
		return screen.Line{Right: labelled}
	}
	return screen.Line{Right: m.styles.countdowns.get(secs, false)}
}

// countdownWidth is how wide secs is as m:ss.
func countdownWidth(secs int) int {
	width := 4 // m:ss
	for minutes := secs / 60; minutes >= 10; minutes /= 10 {
		width++
	}
	return width
}

// sharePanel is shown while nobody else is in the room.
func (m *Model) sharePanel() string {
	if m.partner != nil {
		return ""
	}
	const intro, waiting = "Your private room is ready. Share this command with ONE person:", "Waiting for them to join…"
	// The panel leaves the conversation a few lines at least: on a short
	// terminal the command alone is shown.
	room := m.height - fixedLines - minConversation
	boxed := max(lipgloss.Width(intro), lipgloss.Width(m.join)) + 6 // border and padding
	if boxed <= m.width && room >= 7 {
		return m.styles.share.Render(intro + "\n\n" + m.styles.command.Render(m.join) + "\n\n" + m.styles.notice.Render(waiting))
	}
	// Too narrow for the box: wrap the words, and break the command only
	// if it cannot fit on one line at all.
	command := m.styles.command.Render(ansi.Hardwrap(m.join, m.width, false))
	panel := ansi.Wrap(intro, m.width, " ") + "\n" + command + "\n" + m.styles.notice.Render(ansi.Wrap(waiting, m.width, " "))
	if lipgloss.Height(panel) <= room {
		return panel
	}
	return command
}

func (m *Model) statusView() string {
	if m.confirming {
		return m.styles.warning.Render("Destroy this room and every message in it, for both of you? y/n")
	}
	if m.reconnecting {
		text := "Reconnecting to the room… what you send waits and goes out when it is back."
		switch n := len(m.outbox); {
		case n == 1:
			text = "Reconnecting to the room… your message waits and goes out when it is back."
		case n > 1:
			text = fmt.Sprintf("Reconnecting to the room… your %d messages wait and go out when it is back.", n)
		}
		return ansi.Truncate(m.styles.warning.Render(text), m.width, "…")
	}
	if m.now.Before(m.droppedUntil) {
		return ansi.Truncate(m.styles.warning.Render("Too much input at once: some of what you sent was dropped."), m.width, "…")
	}
	if m.status == "" {
		return ""
	}
	style := m.styles.notice
	if m.statusIsError {
		style = m.styles.warning
	}
	return ansi.Truncate(style.Render(m.status), m.width, "…")
}

func (m *Model) inputView() string {
	n := m.inputCount
	counter := fmt.Sprintf("%d/%d", n, safetext.MaxMessageRunes)
	style := m.styles.counter
	if n > safetext.MaxMessageRunes {
		style = m.styles.warning
	}
	in := m.input.View()
	gap := max(m.width-lipgloss.Width(in)-len(counter), 1)
	return ansi.Truncate(in+strings.Repeat(" ", gap)+style.Render(counter), m.width, "")
}

// helpView is the key help, drawn again only when what it shows changes.
func (m *Model) helpView() string {
	key := helpKey{m.width, m.confirming}
	if m.frame.helpKey == key && m.frame.help != "" {
		return m.frame.help
	}
	var shown help.KeyMap = keys
	if m.confirming {
		shown = confirmKeys(keys)
	}
	bar := m.styles.helpBar // a copy: its width is this screen's
	bar.Width = m.width
	// help adds an item that does not fit whenever its ellipsis does not
	// fit either, so cut the line to the screen here.
	m.frame.help, m.frame.helpKey = ansi.Truncate(bar.View(shown), m.width, "…"), key
	return m.frame.help
}
