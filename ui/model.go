// Package ui is the chat screen: a Bubble Tea model over one store.Seat. It
// knows nothing of SSH; the server hands it a seat, the colour profile and
// background of the client's terminal and the commands that join the room,
// and draws it with package screen.
package ui

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui/screen"
)

const (
	// inputCap bounds what can be typed without pressing Enter. It is above
	// the message limit so an over-long message is reported, not cut.
	inputCap = 4 * safetext.MaxMessageRunes
	// maxEntries bounds the entries (messages and notices) kept on screen
	// for scrolling back; scrollbackBytes bounds their bytes (see
	// scrollback.go).
	maxEntries = 1000
	// storeTimeout bounds one call to the store made for the user.
	storeTimeout = 10 * time.Second
	// droppedNotice is how long the screen says that input was dropped.
	droppedNotice = 3 * time.Second
	// retryEvery is how soon a message whose sending had an unknown
	// outcome is sent again (under its ID: it is stored at most once), if
	// the link's return does not come first.
	retryEvery = time.Second
	// maxWaiting bounds the messages on their way at once (the outbox):
	// plenty for a minute of talk while the store cannot be reached, and
	// a bound on what a flood of Enter keys holds in memory.
	maxWaiting = 32
	// readingTime is the least time between a question and a yes to it:
	// faster than anyone reads, too slow for a paste.
	readingTime = 250 * time.Millisecond
	// noticeFor is how long a notice (not an error) stays under the
	// messages.
	noticeFor = 8 * time.Second
)

// Config is what a chat screen needs.
type Config struct {
	Seat store.Seat
	// JoinCommand is the exact command that joins this room, shown for sharing.
	JoinCommand string
	// NarrowJoinCommand is JoinCommand in as few characters as it can
	// take ("ssh -p2222 …"), shown where JoinCommand does not fit on one
	// line; JoinCommand is shown where this is empty.
	NarrowJoinCommand string
	// RejoinCommand is the command that brings this person back to their
	// own seat (store.RejoinName): theirs alone, shown in the help view and
	// when the chat ends while the room lives on, never elsewhere.
	RejoinCommand string
	// Profile is the colours the client's terminal shows.
	Profile termenv.Profile
	// LightBackground: the client declared a light background; the
	// colours assume a dark one otherwise.
	LightBackground bool
	// NoColor: the client asked for no colour (NO_COLOR). The screen keeps
	// bold, italics and a visible cursor, which Profile's Ascii would drop.
	NoColor bool
	// TerminalCursor: the terminal cannot show the cursor the screen
	// draws (no reverse video) or cannot hide its own (a VT100). Its own
	// cursor marks the input instead (see screen.TerminalCursor).
	TerminalCursor bool
	// Location is the time zone for message times; UTC when nil.
	Location *time.Location
	// Width and Height are the terminal size until the first WindowSizeMsg.
	Width, Height int
	// Clock drives the countdown; without one it shows the time the
	// screen was made.
	Clock *Clock
	// InputSettles: the program's input sends InputSettled each time it
	// has handed over everything its person sent so far. Keys are then
	// drawn, and typing is told, once for each piece of input rather than
	// for each key in it: a line and its Enter that arrive together are
	// drawn once, as sent, and never tell the partner "typing".
	InputSettles bool
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

// InputSettled tells a screen made with Config.InputSettles that the keys
// it has had are everything its person sent so far: what the input holds
// now is what they typed, worth drawing and telling the partner about.
type InputSettled struct{}

// maxHeldKeys bounds the keys whose drawing waits for InputSettled: input
// that keeps coming without a pause is drawn every so many keys.
const maxHeldKeys = 64

// Outcome is how a chat ended, to be printed once the full-screen UI has
// closed so the reason stays readable in the terminal.
type Outcome struct {
	Text     string
	Ending   Ending
	width    int      // the terminal's when the chat ended (see Wrapped)
	commands []string // in Text, never broken (see Wrapped)
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
	EndingReplaced           Ending = "replaced"
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
	narrow string // join, as short as it goes
	rejoin string
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

	// width and height are the layout's: the terminal's, but never below
	// the minimum; termWidth and termHeight are the terminal's own, and a
	// terminal below the minimum is asked to grow (see tooSmall).
	width, height         int
	termWidth, termHeight int
	title                 string // the header's left part, and its width
	titleWidth            int
	rule                  string        // a line across the screen, drawn once per width
	panel                 []screen.Line // the share panel, drawn when the width or the room changes
	partner               *store.Member // who is here
	away                  *store.Member // who is away, their seat kept for them
	sealed                bool
	entries               []entry
	kept                  int // bytes the entries hold (see entry.measure)
	now                   time.Time
	status                string // one line under the messages
	statusKind            statusKind
	statusUntil           time.Time    // when a notice goes; zero for the other kinds
	confirm               confirmation // a question waiting for y/n
	lastKeyAsked          time.Time    // when it was put on screen, or the last key since
	withdrawnAt           time.Time    // when a question went unanswered (its partner came back)
	helpOpen              bool
	helpTop               int       // the first help line shown
	bell                  bool      // a partner's message rings the terminal's bell
	signals               []byte    // for the terminal beside the lines (see TakeSignals)
	unread                int       // the partner's messages below the view while scrolled up
	reconnecting          bool      // the store lost its link; sends fail until it is back
	droppedUntil          time.Time // say until then that input was dropped
	inputText             string    // the typed text as last measured
	inputCount            int       // characters the typed text will have once sanitised
	inputBytes            int       // bytes the typed text will have once sanitised
	inputFull             bool      // the input holds inputCap characters: typing adds nothing
	recall                string    // the last message sent or draft erased (see recall.go)
	inputShown            int       // rows the input takes on screen
	laidOut               inputLaidOut
	typing                typing
	settles               bool // Config.InputSettles
	held                  int  // keys taken since the input last settled (with settles)
	outcome               Outcome
	done                  bool
	ownCursor             bool // the terminal's own cursor marks the input (Config.TerminalCursor)

	// version names the state the model is in; Lines redraws only for a
	// version it has not drawn yet (see unchanged).
	version uint64
	frame   frame
}

// confirmation is a question the screen waits on.
type confirmation int

const (
	confirmNothing confirmation = iota
	confirmDestroy
	confirmReopen
)

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
	// The key help as drawn for footerKey.
	footer    string
	footerKey footerKey
	// Where the input's cursor is: its row in lines (0: not shown) and
	// its column.
	inputRow, inputCol int
}

// footerKey is what the footer depends on.
type footerKey struct {
	width   int
	confirm confirmation
	help    bool
	alone   bool // nobody else is here and the room is open: the command is worth copying
	away    bool // a seat is kept for someone away: it can be reopened
	bell    bool
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
	cost       int // bytes it holds as drawn (see measure)
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
	reopenResult struct{ err error }
	typingDone   struct{}
)

// New returns the chat screen for cfg.Seat.
func New(cfg Config) *Model {
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	st := stylesFor(look{cfg.Profile, cfg.LightBackground, cfg.NoColor})

	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = st.placeholderText
	in.CharLimit = inputCap
	in.PromptStyle = st.prompt
	in.TextStyle = st.plain
	in.PlaceholderStyle = st.placeholder
	in.Cursor.Style = st.plain
	in.Cursor.TextStyle = st.plain
	// A blinking cursor would redraw twice a second forever; the
	// terminal's own, where it marks the input, needs no drawn one.
	in.Cursor.SetMode(cursor.CursorStatic)
	if cfg.TerminalCursor {
		in.Cursor.SetMode(cursor.CursorHide)
	}
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
		narrow: cfg.NarrowJoinCommand,
		rejoin: cfg.RejoinCommand,
		loc:    loc,
		styles: st,
		input:  in,
		now:    time.Now(),
		bell:   true,
		sealed: snap.Sealed,

		ownCursor: cfg.TerminalCursor,
		settles:   cfg.InputSettles,
	}
	if m.rejoin == "" {
		m.rejoin = m.join
	}
	m.title = st.header.Render("private room") + st.help.Render(" · you are ") + st.me.Render(safetext.Sanitize(snap.Me.Name))
	m.titleWidth = lipgloss.Width(m.title)
	for _, msg := range snap.History {
		m.entries = append(m.entries, entry{msg: &msg, at: msg.At})
	}
	// The entries hold what they show; the rest of the history would
	// outlive them (and the scrollback's budget) here.
	m.snap.History = nil
	switch {
	case len(snap.Others) > 0:
		other := snap.Others[0]
		m.partner = &other
		if snap.Back {
			m.addNotice(fmt.Sprintf("you are back; %s is here", other.Name))
		} else {
			m.addNotice(fmt.Sprintf("you joined; %s is here. %s", other.Name, sealedNote))
		}
	case len(snap.Away) > 0:
		away := snap.Away[0]
		m.away = &away
		m.addNotice(fmt.Sprintf("you are back; %s is away, their seat kept for them", away.Name))
	case snap.Back:
		m.addNotice("you are back")
	}
	m.resize(cfg.Width, cfg.Height)
	return m
}

// sealedNote tells the two who just met what that means for them.
const sealedNote = "The room is now sealed to you two: F1 shows your own way back in."

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
		if clock != nil {
			clock.listening(slot, 1)
			defer clock.listening(slot, -1)
		}
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

// TakeSignals implements screen.Signaller: the bells and clipboard writes
// asked for since the last call.
func (m *Model) TakeSignals() []byte {
	out := m.signals
	m.signals = m.signals[:0]
	return out
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if _, ok := msg.(InputSettled); ok {
		// What was held is drawn now (see Holding), and typing told.
		m.held = 0
		if m.done {
			return m, nil
		}
		return m, m.typingCmd(time.Now())
	}
	if m.done || m.unchanged(msg) {
		return m, nil
	}
	if _, ok := msg.(tea.KeyMsg); ok && m.settles {
		if m.held++; m.held >= maxHeldKeys {
			m.held = 0
		}
	}
	switch msg := msg.(type) {
	case tickMsg:
		return m, m.tick(time.Time(msg))
	case typingDone:
		// Nothing to draw: only what to tell next.
		m.typing.busy = false
		return m, m.typingCmd(time.Now())
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
			m.setStatus("Could not destroy the room. Try again.", statusError)
		}
		return m, nil
	case reopenResult:
		switch {
		case msg.err == nil: // its event says the rest
		case errors.Is(msg.err, store.ErrNothingToReopen):
			m.setStatus("There is no seat to reopen: your partner is back.", statusNotice)
		case !errors.Is(msg.err, store.ErrEnded):
			m.setStatus("Could not reopen the seat. Try again.", statusError)
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

// tick is the countdown's tick, once a second: it redraws the header (see
// Lines) and whatever below it depends on the time, and sends what is due.
// An idle screen's tick allocates nothing.
func (m *Model) tick(now time.Time) tea.Cmd {
	noticeEnds := m.now.Before(m.droppedUntil) && !now.Before(m.droppedUntil)
	m.now = now
	if !m.statusUntil.IsZero() && !now.Before(m.statusUntil) {
		m.setStatus("", statusNotice)
		noticeEnds = true
	}
	if noticeEnds || (m.typing.partner && m.typing.partnerExpired(now)) {
		m.touch()
	}
	var send, typing tea.Cmd
	if m.retryDue(now) {
		send = m.sendNext()
	}
	if m.typing.told || m.inputCount > 0 {
		typing = m.typingCmd(now)
	}
	return both(send, typing)
}

// both runs a and b, either of which may be nil.
func both(a, b tea.Cmd) tea.Cmd {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return tea.Batch(a, b)
}

// Redraws reports whether msg would change the screen, and so cost a
// redraw: the server throttles the input messages that do.
func (m *Model) Redraws(msg tea.Msg) bool { return !m.done && !m.unchanged(msg) }

// unchanged reports messages that would leave the model exactly as it
// is: those it has no use for (unknown escape sequences a client sends, for
// one), characters typed into a full input (which takes no more), enter on
// an empty one, keys the help view ignores. A key not recognised here
// counts as a change.
func (m *Model) unchanged(msg tea.Msg) bool {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg, tickMsg, store.Event, streamEnded, sendResult, destroyError, reopenResult, typingDone,
		Disconnect, InputDropped:
		return false
	case tea.KeyMsg:
		switch {
		case m.tooSmall():
			return !is(msg.String(), keys.Leave)
		case m.confirm != confirmNothing:
			return false
		case m.helpOpen:
			return !is(msg.String(), keys.CloseHelp, keys.Leave, keys.ScrollUp, keys.ScrollDown)
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
	// Named once: every binding is matched against it.
	k := msg.String()
	if is(k, keys.Leave) {
		return m.finish(m.leftText(), EndingLeft)
	}
	if m.tooSmall() {
		// Nothing acts unseen: a message typed blind is not sent, and a
		// room is not destroyed by a key whose question nobody read.
		return m, nil
	}
	if m.confirm != confirmNothing {
		return m.answer(k)
	}
	if (is(k, keys.Confirm) || is(k, keys.Cancel)) && time.Since(m.withdrawnAt) < readingTime {
		return m, nil // an answer to the question just withdrawn, not text
	}
	if m.helpOpen {
		return m.helpKey(k)
	}
	switch {
	case is(k, keys.Help):
		m.helpOpen, m.helpTop = true, 0
		return m, nil
	case is(k, keys.Destroy):
		m.ask(confirmDestroy)
		return m, nil
	case is(k, keys.Reopen):
		if m.away == nil {
			m.setStatus("ctrl+o gives the seat kept for an away partner to someone new; nobody's is kept now.", statusNotice)
			return m, nil
		}
		m.ask(confirmReopen)
		return m, nil
	case is(k, keys.Copy):
		m.copyCommand()
		return m, nil
	case is(k, keys.BellOn):
		m.bell = !m.bell
		if m.bell {
			m.setStatus("Bell on: a message from your partner rings your terminal's bell.", statusNotice)
		} else {
			m.setStatus("Bell off: messages arrive without a sound.", statusNotice)
		}
		return m, nil
	case is(k, keys.Send):
		return m.send()
	case is(k, keys.Newline):
		if ok, why := m.newlineAllowed(); !ok {
			if why != "" {
				m.setStatus(why, statusError)
			}
			return m, nil
		}
		// Typed as the line break it stands for.
		msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{lineSepRune}}
	case is(k, keys.ScrollUp):
		m.conv.scroll(-max(m.conv.height/2, 1))
		return m, nil
	case is(k, keys.ScrollDown):
		m.conv.scroll(max(m.conv.height/2, 1))
		m.seenBottom()
		return m, nil
	case is(k, keys.Newest) && !m.conv.atBottom():
		m.conv.toBottom()
		m.seenBottom()
		return m, nil
	case msg.Type == recallKey && m.recallLast():
		return m, m.keyTyping()
	}
	// textinput's sanitiser edits the runes in place, and bubbletea hands
	// out shared slices for some keys (space is one): two sessions typing
	// a space at once would race on them. Give it a copy, with pasted
	// white space already squeezed as the message will have it, so an
	// indented paste is not cut at the input's cap for its indentation.
	// Line breaks go in as the input keeps them.
	msg.Runes = []rune(toInput(safetext.SqueezeSpace(string(msg.Runes))))
	var cmd tea.Cmd
	if !m.graphemeKey(msg) {
		m.input, cmd = m.input.Update(msg)
	}
	if !plainASCII(msg.Runes) {
		m.cleanInput()
	}
	joined := false
	if value, ok := capLines(m.input.Value()); ok {
		pos := m.input.Position()
		m.input.SetValue(value)
		m.input.SetCursor(pos)
		joined = true
	}
	if m.updateInputStatus() {
		// Only a key that changed the text is typing; moving the
		// cursor is not.
		m.typing.lastKey = time.Now()
	}
	if joined && !m.statusKind.isError() {
		m.setStatus(linesJoined, statusNotice)
	}
	return m, both(cmd, m.keyTyping())
}

// keyTyping is what a key that edited the input tells the partner: at
// once, unless the input settles (Config.InputSettles), when it waits for
// InputSettled and tells what the input holds then.
func (m *Model) keyTyping() tea.Cmd {
	if m.settles {
		return nil
	}
	return m.typingCmd(time.Now())
}

// Holding implements screen.Holder: with Config.InputSettles, the keys
// taken since the input last settled are drawn once it has (or every
// maxHeldKeys keys of input that does not pause).
func (m *Model) Holding() bool { return m.held > 0 && !m.done }

// copyCommand puts the room's command on the client's clipboard, with an
// OSC 52 sequence that the client's terminal acts on if it lets programs
// write the clipboard (most do; some ask first).
//
// Once the room is sealed its command admits nobody, so what is copied is
// this person's own way back in (their rejoin command).
func (m *Model) copyCommand() {
	cmd := m.join
	if m.sealed {
		cmd = m.rejoin
	}
	m.signals = append(m.signals, "\x1b]52;c;"...)
	m.signals = base64.StdEncoding.AppendEncode(m.signals, []byte(cmd))
	m.signals = append(m.signals, '\a')
	if m.sealed {
		m.setStatus("Copied your own way back in (if your terminal allows it). Keep it to yourself.", statusNotice)
		return
	}
	m.setStatus("Copied the command (if your terminal allows it). Send it to ONE person.", statusNotice)
}

// ask puts a question on screen.
func (m *Model) ask(q confirmation) {
	m.confirm, m.lastKeyAsked = q, time.Now()
}

// answer takes y or n to the question on screen. A y counts only after a
// moment without keys since the question came: sooner than anyone reads
// it, it was typed ahead or pasted along with the key that asked (a
// crafted paste that ends itself, then destroys the room, however it is
// padded: any key starts the moment again). Other keys are ignored.
func (m *Model) answer(k string) (tea.Model, tea.Cmd) {
	asked := m.confirm
	now := time.Now()
	quiet := now.Sub(m.lastKeyAsked) >= readingTime
	m.lastKeyAsked = now
	switch {
	case is(k, keys.Confirm) && !quiet:
	case is(k, keys.Confirm) && asked == confirmDestroy:
		m.confirm = confirmNothing
		m.setStatus("Destroying the room…", statusProgress)
		return m, destroy(m.seat)
	case is(k, keys.Confirm) && asked == confirmReopen:
		m.confirm = confirmNothing
		m.setStatus("Reopening the seat…", statusProgress)
		return m, reopen(m.seat)
	case is(k, keys.Cancel) && asked == confirmDestroy:
		m.confirm = confirmNothing
		m.setStatus("The room lives on.", statusNotice)
	case is(k, keys.Cancel):
		m.confirm = confirmNothing
		m.setStatus("The seat stays kept for them.", statusNotice)
	}
	return m, nil
}

// helpKey handles a key while the help view is open: it scrolls and
// closes; typing waits until it is closed.
func (m *Model) helpKey(k string) (tea.Model, tea.Cmd) {
	switch {
	case is(k, keys.CloseHelp):
		m.helpOpen = false
	case is(k, keys.ScrollUp):
		m.helpTop = max(m.helpTop-max(m.height/2, 1), 0)
	case is(k, keys.ScrollDown):
		m.helpTop += max(m.height/2, 1) // bounded where it is drawn
	}
	return m, nil
}

// is reports whether the key named k is one of bindings (key.Matches,
// without naming the key again for each).
func is(k string, bindings ...key.Binding) bool {
	for _, b := range bindings {
		if b.Enabled() && slices.Contains(b.Keys(), k) {
			return true
		}
	}
	return false
}

// plainASCII reports text that no sanitising changes but the squeezing of
// white space, which is done already.
func plainASCII(runes []rune) bool {
	for _, r := range runes {
		if r < 0x20 || r >= 0x7f {
			return false
		}
	}
	return true
}

// cleanInput applies the sanitiser to the input as it stands, so it shows
// what the partner will get: a bidi override or a tag character typed or
// pasted never shows here as it would not there.
func (m *Model) cleanInput() {
	value := m.input.Value()
	clean := safetext.Clean(value)
	if toInput(clean) == value {
		return
	}
	pos := m.input.Position()
	before := []rune(value)[:min(pos, utf8.RuneCountInString(value))]
	m.input.SetValue(toInput(clean))
	m.input.SetCursor(utf8.RuneCountInString(safetext.Clean(string(before))))
}

// updateInputStatus measures the typed text, once per change (not per
// frame: a flood of keys would pay for it thousands of times), warns while
// it cannot be sent as it is, and reports whether it changed.
func (m *Model) updateInputStatus() (edited bool) {
	edited = m.measureInput()
	switch {
	case m.inputFull:
		m.setStatus(fmt.Sprintf("Input is capped at %d characters; a message may have at most %d.", inputCap, safetext.MaxMessageRunes), statusError)
	case m.inputCount > safetext.MaxMessageRunes:
		m.setStatus(fmt.Sprintf("Too long: %d of at most %d characters.", m.inputCount, safetext.MaxMessageRunes), statusError)
	case m.inputBytes > safetext.MaxMessageBytes:
		m.setStatus(tooManyBytes("Too long", m.inputBytes), statusError)
	case m.statusKind.isError():
		m.setStatus("", statusNotice)
	}
	return edited
}

// measureInput records what the view and the key handler need to know of
// the typed text, and reports whether it changed.
func (m *Model) measureInput() (edited bool) {
	value := m.input.Value()
	if value == m.inputText {
		return false
	}
	if value == "" && utf8.RuneCountInString(m.inputText) > 1 {
		// Erased at once (ctrl+u): ↑ brings it back. (One character
		// backspaced last is not worth it.)
		m.remember(m.inputText)
	}
	m.inputText = value
	m.inputFull = utf8.RuneCountInString(value) >= inputCap
	clean := safetext.Sanitize(value)
	m.inputCount, m.inputBytes = safetext.RuneCount(clean), len(clean)
	if m.inputHeight() != m.inputShown {
		m.layoutHeights()
	}
	return true
}

func (m *Model) send() (tea.Model, tea.Cmd) {
	text := m.input.Value()
	clean := safetext.Sanitize(text)
	if clean == "" {
		m.input.Reset()
		m.measureInput()
		return m, m.typingCmd(time.Now())
	}
	if n := safetext.RuneCount(clean); n > safetext.MaxMessageRunes {
		m.setStatus(fmt.Sprintf("Not sent: %d characters is too long, the limit is %d. Shorten it and press enter again.", n, safetext.MaxMessageRunes), statusError)
		m.keepApart()
		return m, nil
	}
	if n := len(clean); n > safetext.MaxMessageBytes {
		m.setStatus(tooManyBytes("Not sent", n)+" Shorten it and press enter again.", statusError)
		m.keepApart()
		return m, nil
	}
	if len(m.outbox) >= maxWaiting {
		m.setStatus(fmt.Sprintf("Slow down: %d messages are still on their way. Not sent; press enter again in a moment.", len(m.outbox)), statusWaiting)
		m.keepApart()
		return m, nil
	}
	m.input.Reset()
	m.measureInput()
	if !m.reconnecting {
		m.setStatus("", statusNotice)
	}
	// What you send is what you want to see: back to the newest.
	m.conv.toBottom()
	m.seenBottom()
	m.remember(text)
	m.outbox = append(m.outbox, outgoing{id: store.NewMessageID(), text: text})
	// The message itself ends "typing…" on the partner's screen: telling
	// them would cost a call, and believing them still told would hold
	// back the news that the next message is being typed. Unless a call
	// is on its way: it may arrive after the message, and its answer
	// will send the end.
	if !m.typing.busy {
		m.typing.told = false
	}
	return m, both(m.sendNext(), m.typingCmd(time.Now()))
}

// tooManyBytes says what is wrong with a message of n bytes, which few
// people count: marks and emoji take several bytes per character.
func tooManyBytes(lead string, n int) string {
	return fmt.Sprintf("%s: with its accents or emoji it takes %d bytes, at most %d fit.", lead, n, safetext.MaxMessageBytes)
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
		m.setStatus("Not sent yet: the room cannot be reached. It goes out as soon as it can.", statusWaiting)
		return nil
	}
	// Refused: nothing of it was stored. It goes back into the input, with
	// whatever waited behind it.
	m.reconnected = false
	m.restoreOutbox()
	switch {
	case errors.Is(r.err, store.ErrTooFast):
		m.setStatus("Slow down: too many messages at once. Not sent; press enter again in a moment.", statusError)
	case errors.Is(r.err, store.ErrOverBudget):
		m.setStatus("Not sent: too much sent from your network lately. Press enter in a minute.", statusError)
	case errors.Is(r.err, store.ErrServiceFull):
		m.setStatus("Not sent: the service is full right now. Press enter to try again in a moment.", statusError)
	case errors.Is(r.err, store.ErrMessageTooLong):
		m.setStatus(fmt.Sprintf("Not sent: a message may have at most %d characters (%d bytes: accents and emoji take more).", safetext.MaxMessageRunes, safetext.MaxMessageBytes), statusError)
	case errors.Is(r.err, store.ErrEmptyMessage):
		m.setStatus("", statusNotice)
	default:
		m.setStatus("Not sent: something went wrong. Press enter to try again.", statusError)
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
		m.setStatus("Reconnected. Nothing was lost.", statusNotice)
	case m.statusKind == statusWaiting:
		// What it said waits no more.
		m.setStatus("", statusNotice)
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
	m.setInput(strings.Join(parts, " "))
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

func reopen(seat store.Seat) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		// The ReopenedEvent arrives through the event stream.
		return reopenResult{seat.Reopen(ctx)}
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
		if !m.conv.atBottom() {
			m.unread++
		}
		if m.partner != nil && msg.From.ID == m.partner.ID {
			// What they typed is here: whatever they type next, they say.
			m.typing.partner = false
		}
		if m.bell {
			m.signals = append(m.signals, '\a')
		}
	case store.TypingEvent:
		m.typing.partnerTyping(ev, m.partner)
	case store.JoinedEvent:
		member := ev.Member
		// Back: they were here, or away, and came back to their seat (from
		// a new connection, perhaps before the old one was noticed gone).
		present := m.partner != nil && m.partner.ID == member.ID
		back := ev.Back && ((m.away != nil && m.away.ID == member.ID) || present)
		m.partner, m.away, m.typing.partner = &member, nil, false
		if m.confirm == confirmReopen {
			// The seat in question is taken again: nothing to answer.
			m.confirm, m.withdrawnAt = confirmNothing, time.Now()
		}
		// Two people here: the room is sealed to them, and what the
		// status said of the room before is old news.
		m.sealed = true
		if !m.statusKind.isError() {
			m.setStatus("", statusNotice)
		}
		switch {
		case back && present:
			// A take-over: the same person from a new connection, the
			// old one closed. Nobody left in between.
			m.addNotice(member.Name + " reconnected; their earlier connection was closed")
		case back:
			m.addNotice(member.Name + " is back")
		default:
			m.addNotice(member.Name + " joined. " + sealedNote)
		}
		m.relayout()
		// Someone to tell that you are typing, if you are.
		return m, m.typingCmd(time.Now())
	case store.LeftEvent:
		m.partner, m.typing.partner = nil, false
		if ev.Kept {
			member := ev.Member
			m.away = &member
			m.addNotice(ev.Member.Name + " left; their seat is kept for them until the room ends")
		} else {
			m.addNotice(ev.Member.Name + " left; the seat is free again")
		}
		m.relayout()
	case store.ReopenedEvent:
		m.away, m.sealed = nil, false
		m.addNotice("you gave " + ev.Member.Name + "'s seat up: their command no longer works, and whoever you share the room's command with can take it, with the messages so far")
		m.setStatus("Share the command again (ctrl+y copies it).", statusNotice)
		m.relayout()
	case store.ReconnectingEvent:
		m.reconnecting = true
	case store.ReconnectedEvent:
		m.reconnecting = false
		if len(m.outbox) == 0 {
			m.setStatus("Reconnected. Nothing was lost.", statusNotice)
			return m, nil
		}
		// What was written meanwhile goes out now; once it is stored,
		// nothing was lost.
		m.reconnected = true
		m.setStatus("Reconnected. Sending what you wrote…", statusNotice)
		m.retryAt = time.Now()
		return m, m.sendNext()
	case store.EndedEvent:
		return m.finish(m.endedText(ev), m.ending(ev))
	}
	return m, nil
}

// seenBottom notes that the newest messages are in view.
func (m *Model) seenBottom() {
	if m.conv.atBottom() {
		m.unread = 0
	}
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
	m.outcome = Outcome{Text: text, Ending: ending, width: m.termWidth, commands: []string{m.rejoin, m.join}}
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
	case store.EndReplaced:
		return EndingReplaced
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
	case store.EndReplaced:
		return "You came back to this room from another connection, so this one was closed."
	case store.EndShutdown:
		if ev.RoomLivesOn {
			return "The server is shutting down." + livesOn
		}
		return "The server is shutting down, so this room has been closed." + gone
	}
	return "The room has ended."
}

// livesOn tells someone whose session ended how to get back in: their own
// command, which brings them back as themselves. It gets a line of its own,
// with nothing else on it, so it is easy to copy.
func (m *Model) livesOn() string {
	return " The room is still open.\nTo return as yourself, run:\n" + m.rejoin
}

func (m *Model) leftText() string {
	left := formatCountdown(m.remaining())
	if m.sealed {
		// The command gets a line of its own so it is easy to copy.
		return fmt.Sprintf("You left the room. Your seat is kept for you until it self-destructs in %s.\nTo return as yourself, run:\n%s", left, m.rejoin)
	}
	return fmt.Sprintf("You left the room. It self-destructs in %s unless destroyed sooner.\nTo return as yourself, run:\n%s\nTo invite someone, share:\n%s",
		left, m.rejoin, m.join)
}

func (m *Model) addNotice(text string) {
	m.addEntry(entry{notice: text, at: time.Now()})
}

// statusKind says how long a status stays.
type statusKind uint8

const (
	statusNotice   statusKind = iota // information: goes by itself after noticeFor
	statusProgress                   // something under way: stays until its outcome replaces it
	statusError                      // stays until what it is about changes (the input, here)
	statusWaiting                    // an error about messages on their way: goes once none waits
)

func (k statusKind) isError() bool { return k >= statusError }

// setStatus shows text under the messages, for as long as its kind says.
func (m *Model) setStatus(text string, kind statusKind) {
	m.status, m.statusKind, m.statusUntil = text, kind, time.Time{}
	if text != "" && kind == statusNotice {
		m.statusUntil = time.Now().Add(noticeFor)
	}
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
