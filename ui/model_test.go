package ui

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	joinCommand   = "ssh -p 2222 ROOM@localhost"
	rejoinCommand = "ssh -p 2222 ROOM-KEY@localhost"
)

// room is a real in-memory room with two seats, a and b, where a is shown on
// screen.
type room struct {
	store *memstore.Store
	a, b  store.Seat
}

func newRoom(t testing.TB, withPartner bool) *room {
	t.Helper()
	s := memstore.New(10 * time.Minute)
	t.Cleanup(func() { s.Close() })
	r, err := s.Create(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Join(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	rm := &room{store: s, a: a}
	if withPartner {
		if rm.b, err = s.Join(context.Background(), r.ID); err != nil {
			t.Fatal(err)
		}
	}
	return rm
}

func newModel(t testing.TB, seat store.Seat, profile termenv.Profile) *Model {
	t.Helper()
	return New(Config{Seat: seat, JoinCommand: joinCommand, RejoinCommand: rejoinCommand, Profile: profile, Width: 80, Height: 20})
}

// step feeds msg to m and returns the new model and command.
func step(t testing.TB, m *Model, msg tea.Msg) (*Model, tea.Cmd) {
	t.Helper()
	next, cmd := m.Update(msg)
	return next.(*Model), cmd
}

// deliver feeds the seat's next event to m, as the program's listener
// command would.
func deliver(t testing.TB, m *Model) *Model {
	t.Helper()
	select {
	case ev := <-m.seat.Events():
		m, _ = step(t, m, ev)
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return m
}

func typeText(t testing.TB, m *Model, text string) *Model {
	t.Helper()
	m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(text), Paste: true})
	return m
}

func press(t tea.KeyType) tea.KeyMsg { return tea.KeyMsg{Type: t} }

func runeKey(r rune) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}} }

func TestAloneShowsTheJoinCommandUntilSomeoneJoins(t *testing.T) {
	rm := newRoom(t, false)
	m := newModel(t, rm.a, termenv.Ascii)
	if v := m.View(); !strings.Contains(v, joinCommand) || !strings.Contains(v, "Waiting for them to join") {
		t.Fatalf("waiting screen lacks the join command:\n%s", v)
	}
	b, err := rm.store.Join(context.Background(), rm.a.Snapshot().Room.ID)
	if err != nil {
		t.Fatal(err)
	}
	m = deliver(t, m)
	v := m.View()
	if strings.Contains(v, "Waiting for them") {
		t.Errorf("still waiting after the partner joined:\n%s", v)
	}
	if !strings.Contains(v, b.Snapshot().Me.Name+" joined") {
		t.Errorf("no notice that %s joined:\n%s", b.Snapshot().Me.Name, v)
	}
	_ = b.Leave(context.Background())
	m = deliver(t, m)
	if v := m.View(); !strings.Contains(v, "left; their seat is kept") || strings.Contains(v, joinCommand) || !strings.Contains(v, "is away") {
		t.Errorf("after the partner left, expected a notice that their seat is kept, and no join command:\n%s", v)
	}
}

func TestSendShowsYouAndPartnerApart(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii)) // b joined
	m = typeText(t, m, "hello from a")
	m, cmd := step(t, m, press(tea.KeyEnter))
	if m.input.Value() != "" {
		t.Errorf("input not cleared after send: %q", m.input.Value())
	}
	if res := cmd().(sendResult); res.err != nil {
		t.Fatalf("send: %v", res.err)
	}
	m = deliver(t, m)
	if len(m.outbox) != 0 {
		t.Fatalf("the delivered message is still in the outbox: %v", m.outbox)
	}
	if err := rm.b.Send(context.Background(), store.NewMessageID(), "hello from b"); err != nil {
		t.Fatal(err)
	}
	m = deliver(t, m)
	v := m.View()
	if !strings.Contains(v, "you: hello from a") {
		t.Errorf("own message not labelled 'you':\n%s", v)
	}
	if !strings.Contains(v, rm.b.Snapshot().Me.Name+": hello from b") {
		t.Errorf("partner's message not labelled with their name:\n%s", v)
	}
}

func TestTooLongMessageIsRefusedWithAReason(t *testing.T) {
	rm := newRoom(t, false)
	m := newModel(t, rm.a, termenv.Ascii)
	m = typeText(t, m, strings.Repeat("x", safetext.MaxMessageRunes+1))
	if !strings.Contains(m.View(), "Too long: 1001 of at most 1000") {
		t.Errorf("no warning while typing too much:\n%s", m.View())
	}
	m, cmd := step(t, m, press(tea.KeyEnter))
	if cmd != nil {
		t.Fatal("an over-long message was sent")
	}
	if !strings.Contains(m.View(), "Not sent") || len(strings.TrimRight(m.input.Value(), " ")) != safetext.MaxMessageRunes+1 {
		t.Errorf("over-long message must stay in the input with a reason:\n%s", m.View())
	}
	// Typing without Enter is capped.
	m = typeText(t, m, strings.Repeat("y", 10*inputCap))
	if n := len([]rune(m.input.Value())); n != inputCap {
		t.Errorf("input holds %d characters, want the cap %d", n, inputCap)
	}
	if !strings.Contains(m.View(), "Input is capped") {
		t.Errorf("no notice that the input is capped:\n%s", m.View())
	}
}

func TestClipboardPasteFromServerIsDisabled(t *testing.T) {
	m := newModel(t, newRoom(t, false).a, termenv.Ascii)
	if m.input.KeyMap.Paste.Enabled() {
		t.Fatal("ctrl+v would read the server's clipboard")
	}
}

func TestDestroyNeedsConfirmation(t *testing.T) {
	synctest.Test(t, testDestroyNeedsConfirmation)
}

func testDestroyNeedsConfirmation(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii)) // b joined
	m, _ = step(t, m, press(tea.KeyCtrlX))
	if !strings.Contains(m.View(), "Destroy this room") {
		t.Fatalf("no confirmation prompt:\n%s", m.View())
	}
	m, cmd := step(t, m, runeKey('n'))
	if cmd != nil || m.confirm != confirmNothing {
		t.Fatal("'n' did not cancel the destroy")
	}
	m, _ = step(t, m, press(tea.KeyCtrlX))
	// A y as fast as a paste is no answer: the question stays.
	m, cmd = step(t, m, runeKey('y'))
	if cmd != nil || !strings.Contains(m.View(), "Destroy this room") {
		t.Fatalf("a y before anyone could read the question destroyed the room:\n%s", m.View())
	}
	// Nor is one after a paste padded out with other keys.
	for range 20 {
		time.Sleep(readingTime / 2)
		m, _ = step(t, m, press(tea.KeyCtrlA))
	}
	m, cmd = step(t, m, runeKey('y'))
	if cmd != nil || !strings.Contains(m.View(), "Destroy this room") {
		t.Fatalf("a y at the end of padding destroyed the room:\n%s", m.View())
	}
	time.Sleep(readingTime)
	m, cmd = step(t, m, runeKey('y'))
	if cmd == nil {
		t.Fatal("'y' did not destroy")
	}
	if msg := cmd(); msg != nil {
		t.Fatalf("destroy: %#v", msg)
	}
	m = deliver(t, m)
	if !m.done || !strings.Contains(m.Outcome().Text, "destroyed by you") {
		t.Fatalf("outcome = %q", m.Outcome().Text)
	}
	// The partner's screen says who did it.
	pm := newModel(t, rm.b, termenv.Ascii)
	pm = deliver(t, pm)
	if !strings.Contains(pm.Outcome().Text, "destroyed by your partner") {
		t.Fatalf("partner's outcome = %q", pm.Outcome().Text)
	}
}

func TestLeaveQuitsAndSaysHowToReturn(t *testing.T) {
	m := newModel(t, newRoom(t, false).a, termenv.Ascii)
	m, cmd := step(t, m, press(tea.KeyCtrlC))
	if cmd == nil || !m.done {
		t.Fatal("ctrl+c did not quit")
	}
	if out := m.Outcome(); !strings.Contains(out.Text, "You left") || !strings.Contains(out.Text, joinCommand) || out.Ending != EndingLeft {
		t.Fatalf("outcome = %+v", out)
	}
}

func TestCountdownTurnsRedInTheLastMinute(t *testing.T) {
	m := newModel(t, newRoom(t, false).a, termenv.ANSI)
	exp := m.snap.Room.ExpiresAt
	m, _ = step(t, m, tickMsg(exp.Add(-90*time.Second)))
	if h := header(m); !strings.Contains(h, "1:30") || strings.Contains(h, "\x1b[1;91m") {
		t.Errorf("at 1:30 header = %q", h)
	}
	m, _ = step(t, m, tickMsg(exp.Add(-59*time.Second)))
	if h := header(m); !strings.Contains(h, "0:59") || !strings.Contains(h, "\x1b[1;91m") {
		t.Errorf("in the last minute header = %q, want red", h)
	}
}

func TestHostileTextCannotReachTheTerminal(t *testing.T) {
	rm := newRoom(t, true)
	m := newModel(t, rm.a, termenv.Ascii)
	if err := rm.b.Send(context.Background(), store.NewMessageID(), "x\x1b]52;c;ZXZpbA==\x07\x1b[2J\u202e\r\x9b"); err != nil {
		t.Fatal(err)
	}
	m = deliver(t, m)
	v := m.View()
	for _, bad := range []string{"\x1b", "\x07", "\u202e", "\r", "\x9b"} {
		if strings.Contains(v, bad) {
			t.Errorf("view contains %q", bad)
		}
	}
}

func TestNarrowAndTinyTerminalsDoNotBreak(t *testing.T) {
	m := newModel(t, newRoom(t, false).a, termenv.Ascii)
	for _, size := range [][2]int{{0, 0}, {1, 1}, {20, 5}, {65535, 65535}} {
		m, _ = step(t, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		if h := header(m); !strings.Contains(h, "10:00") {
			t.Errorf("%dx%d: the header lost the countdown: %q", size[0], size[1], h)
		}
		if size[0] >= 20 && size[0] < 1000 {
			for _, line := range strings.Split(m.View(), "\n") {
				if w := lipgloss.Width(line); w > m.width {
					t.Errorf("%dx%d: line %q is %d wide", size[0], size[1], line, w)
				}
			}
		}
	}
}

func TestReconnectingIsVisibleUntilTheLinkIsBack(t *testing.T) {
	m := newModel(t, newRoom(t, false).a, termenv.Ascii)
	m, _ = step(t, m, store.ReconnectingEvent{})
	if !strings.Contains(m.View(), "Reconnecting to the room") {
		t.Fatalf("no reconnecting notice:\n%s", m.View())
	}
	m, _ = step(t, m, store.ReconnectedEvent{})
	if v := m.View(); strings.Contains(v, "Reconnecting") || !strings.Contains(v, "Reconnected") {
		t.Fatalf("after reconnecting:\n%s", v)
	}
}

func TestEveryEndSaysWhyAndWhetherTheRoomLivesOn(t *testing.T) {
	for _, c := range []struct {
		ev     store.EndedEvent
		want   []string
		ending Ending
	}{
		{store.EndedEvent{Reason: store.EndExpired}, []string{"Room expired: its 10 minutes are up", "gone"}, EndingExpired},
		{store.EndedEvent{Reason: store.EndDestroyed}, []string{"Room destroyed.", "gone"}, EndingDestroyedByPartner},
		{store.EndedEvent{Reason: store.EndDestroyed, By: store.Member{ID: "x", Name: "anonymous-owl-\x1b[2Jab"}},
			[]string{"destroyed by your partner (anonymous-owl-[2Jab)", "gone"}, EndingDestroyedByPartner},
		{store.EndedEvent{Reason: store.EndVanished}, []string{"no longer exists", "gone"}, EndingRoomVanished},
		{store.EndedEvent{Reason: store.EndLeaseLost, RoomLivesOn: true}, []string{"seat was given up", "still open", "To return as yourself, run:\n" + rejoinCommand}, EndingSeatLost},
		{store.EndedEvent{Reason: store.EndEvicted, RoomLivesOn: true}, []string{"fell behind", "To return as yourself, run:\n" + rejoinCommand}, EndingFellBehind},
		{store.EndedEvent{Reason: store.EndShutdown, RoomLivesOn: true}, []string{"shutting down", "still open", "To return as yourself, run:\n" + rejoinCommand}, EndingShutdown},
		{store.EndedEvent{Reason: store.EndShutdown}, []string{"shutting down", "closed", "gone"}, EndingShutdown},
	} {
		m := newModel(t, newRoom(t, false).a, termenv.Ascii)
		m, _ = step(t, m, c.ev)
		for _, want := range c.want {
			if !m.done || !strings.Contains(m.Outcome().Text, want) {
				t.Errorf("%v: outcome %q, want %q in it", c.ev.Reason, m.Outcome().Text, want)
			}
		}
		if got := m.Outcome().Ending; got != c.ending {
			t.Errorf("%v: ending %q, want %q", c.ev.Reason, got, c.ending)
		}
	}
	// Destroyed by this very person.
	m := newModel(t, newRoom(t, false).a, termenv.Ascii)
	m, _ = step(t, m, store.EndedEvent{Reason: store.EndDestroyed, By: m.snap.Me})
	if got := m.Outcome().Ending; got != EndingDestroyedBySelf || !strings.Contains(m.Outcome().Text, "by you") {
		t.Errorf("own destroy: ending %q, outcome %q", got, m.Outcome().Text)
	}
}

// Text that arrives in one read is text, even when it spells a key's name.
func TestTypedWordsThatNameKeysAreJustText(t *testing.T) {
	m := newModel(t, newRoom(t, true).a, termenv.Ascii)
	for _, word := range []string{"the", " ", "end", " ", "enter", " ", "ctrl+x", " ", "home", " ", "ctrl+c"} {
		m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(word)})
	}
	if got := m.input.Value(); got != "the end enter ctrl+x home ctrl+c" || m.done || m.confirm != confirmNothing {
		t.Fatalf("input %q (done %v, confirming %v)", got, m.done, m.confirm)
	}
}

// A flood of characters into a full input must cost next to nothing:
// Bubble Tea draws the whole screen after every message.
func TestKeysThatChangeNothingDoNotRedraw(t *testing.T) {
	m := newModel(t, newRoom(t, true).a, termenv.Ascii)
	m = typeText(t, m, strings.Repeat("y", inputCap))
	before := m.View()
	for _, k := range []tea.KeyMsg{runeKey('z'), press(tea.KeySpace), {Type: tea.KeyRunes, Runes: []rune("more")}} {
		m, _ = step(t, m, k)
		if v := m.View(); v != before {
			t.Fatalf("%v into a full input changed the screen", k)
		}
	}
	if m.version != m.frame.drawn {
		t.Fatal("the frame was not reused")
	}
	// Anything that does change the screen is drawn.
	m, _ = step(t, m, press(tea.KeyBackspace))
	if v := m.View(); v == before || !strings.Contains(v, fmt.Sprintf("%d/%d", inputCap-1, safetext.MaxMessageRunes)) {
		t.Fatalf("backspace did not redraw:\n%s", v)
	}
}

// BenchmarkKeystroke is the cost of one typed key as the server pays it:
// Update, then Lines for the screen. An empty input takes an x and its
// backspace (two keys an op, so the line does not grow); a full one takes
// an x that changes nothing.
func BenchmarkKeystroke(b *testing.B) {
	for _, bc := range []struct {
		name          string
		filled        int
		width, height int
	}{{"empty-input", 0, 80, 20}, {"long-input", safetext.MaxMessageRunes, 80, 20}, {"full-input", inputCap, 80, 20}, {"empty-input-400x150", 0, 400, 150}} {
		b.Run(bc.name, func(b *testing.B) {
			m := newModel(b, newRoom(b, true).a, termenv.ANSI256)
			m, _ = step(b, m, tea.WindowSizeMsg{Width: bc.width, Height: bc.height})
			m = typeText(b, m, strings.Repeat("y", bc.filled))
			m.Lines()
			keys := []tea.Msg{runeKey('x'), press(tea.KeyBackspace)}
			if bc.filled > 0 {
				keys = keys[:1]
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, key := range keys {
					m.Update(key)
					m.Lines()
				}
			}
		})
	}
}

// BenchmarkIncomingMessage is the cost of showing one more message, Update
// and Lines, by how long the conversation already is.
func BenchmarkIncomingMessage(b *testing.B) {
	for _, n := range []int{10, 300, maxEntries} {
		b.Run(fmt.Sprintf("entries-%d", n), func(b *testing.B) {
			m := newModel(b, newRoom(b, true).a, termenv.ANSI256)
			msg := func(i int) tea.Msg {
				return store.MessageEvent{Message: store.Message{
					ID: store.MessageID(fmt.Sprint(i)), From: store.Member{ID: "p", Name: "anonymous-otter-k3f9"},
					Body: fmt.Sprintf("message %d with some ordinary words in it, as people write them", i), At: time.Now(),
				}}
			}
			for i := range n {
				m, _ = step(b, m, msg(i))
			}
			m.Lines()
			b.ReportAllocs()
			i := n
			for b.Loop() {
				// The conversation keeps its length: below maxEntries
				// the newest is taken back, at it the oldest goes.
				m.Update(msg(i))
				m.Lines()
				i++
				if n < maxEntries {
					last := len(m.entries) - 1
					m.conv.lines = m.conv.lines[:len(m.conv.lines)-len(m.entries[last].drawn)]
					m.kept -= m.entries[last].cost
					m.entries = m.entries[:last]
				}
			}
		})
	}
}

// Messages are drawn once, and again whenever the width changes.
func TestResizeRewrapsTheConversation(t *testing.T) {
	rm := newRoom(t, true)
	m := newModel(t, rm.a, termenv.Ascii)
	long := strings.TrimSpace(strings.Repeat("wrap me ", 20))
	if err := rm.b.Send(context.Background(), store.NewMessageID(), long); err != nil {
		t.Fatal(err)
	}
	m = deliver(t, m) // b joined
	m = deliver(t, m)
	for _, width := range []int{120, 40, 90} {
		m, _ = step(t, m, tea.WindowSizeMsg{Width: width, Height: 30})
		v := m.View()
		for _, line := range strings.Split(v, "\n") {
			if w := lipgloss.Width(line); w > width {
				t.Fatalf("at width %d a line is %d wide: %q", width, w, line)
			}
		}
		if got := strings.Count(v, "wrap"); got != 20 {
			t.Fatalf("at width %d the message shows %d of 20 words:\n%s", width, got, v)
		}
	}
}

// An indented paste fits the input as the message it will be: its white
// space is squeezed as it arrives (indentation capped, lines beyond the
// limit joined onto the last), not counted against the cap first.
func TestIndentedPasteIsKeptWhole(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii)) // b joined
	var paste strings.Builder
	for i := range 100 {
		fmt.Fprintf(&paste, "%s%s\n", strings.Repeat(" ", 40), fmt.Sprintf("l%02d", i)) // 4,400 runes
	}
	m = typeText(t, m, paste.String())
	m, cmd := step(t, m, press(tea.KeyEnter))
	if cmd == nil {
		t.Fatalf("not sent:\n%s", m.View())
	}
	if res := cmd().(sendResult); res.err != nil {
		t.Fatalf("send: %v", res.err)
	}
	body := (<-rm.b.Events()).(store.MessageEvent).Message.Body
	if !strings.HasPrefix(body, "l00\n"+strings.Repeat(" ", 16)+"l01\n") || !strings.HasSuffix(body, "l98 l99") ||
		strings.Count(body, "\n")+1 != safetext.MaxMessageLines {
		t.Fatalf("the paste arrived as %q", body)
	}
}

// Lines that arrive faster than they may be sent stay in the input, in
// order and apart, with the server's refusal said.
func TestLinesBeyondTheRateLimitDoNotRunTogether(t *testing.T) {
	rm := newRoom(t, true)
	paced := &refusingSeat{Seat: rm.a, after: 1, err: store.ErrTooFast}
	m := newModel(t, paced, termenv.Ascii)
	var cmds []tea.Cmd
	for _, line := range []string{"one", "two", "three"} {
		m = typeText(t, m, line)
		var cmd tea.Cmd
		m, cmd = step(t, m, press(tea.KeyEnter))
		cmds = append(cmds, cmd)
	}
	// One message is on its way at a time; the others wait their turn.
	if cmds[1] != nil || cmds[2] != nil {
		t.Fatal("a second send started while the first was on its way")
	}
	m = runSends(t, m, cmds[0])
	if got := m.input.Value(); got != "two three " || !strings.Contains(m.View(), "Slow down") {
		t.Fatalf("input %q, want the lines not sent kept apart, and a notice:\n%s", got, m.View())
	}
	if got := bodiesOn(t, rm.b); !slices.Equal(got, []string{"one"}) {
		t.Fatalf("the partner got %q, want only the line that was allowed", got)
	}
}

// At most maxWaiting messages are on their way at once; what is sent
// beyond them stays in the input, apart, and the rest go out in order.
func TestMessagesOnTheirWayAreBounded(t *testing.T) {
	rm := newRoom(t, true)
	m := newModel(t, rm.a, termenv.Ascii)
	var first tea.Cmd
	var want []string
	for i := range maxWaiting + 2 {
		line := fmt.Sprintf("m%d", i)
		if i < maxWaiting {
			want = append(want, line)
		}
		m = typeText(t, m, line)
		var cmd tea.Cmd
		m, cmd = step(t, m, press(tea.KeyEnter))
		if i == 0 {
			first = cmd
		}
	}
	if got := m.input.Value(); len(m.outbox) != maxWaiting || got != fmt.Sprintf("m%d m%d ", maxWaiting, maxWaiting+1) {
		t.Fatalf("%d on their way, input %q; want %d, and the rest kept apart", len(m.outbox), got, maxWaiting)
	}
	if v := m.View(); !strings.Contains(v, fmt.Sprintf("Slow down: %d messages are still on their way", maxWaiting)) {
		t.Fatalf("no notice:\n%s", v)
	}
	m = runSends(t, m, first)
	if got := bodiesOn(t, rm.b); !slices.Equal(got, want) {
		t.Fatalf("the partner got %q, want %q", got, want)
	}
	if len(m.outbox) != 0 || strings.Contains(m.View(), "Slow down") {
		t.Fatalf("%d still on their way, and the notice:\n%s", len(m.outbox), m.View())
	}
}

// refusingSeat refuses every Send after the first after ones with err, as
// a server policy or a full store does.
type refusingSeat struct {
	store.Seat
	after int
	err   error
	sent  int
}

func (s *refusingSeat) Send(ctx context.Context, id store.MessageID, body string) error {
	if s.sent++; s.sent > s.after {
		return s.err
	}
	return s.Seat.Send(ctx, id, body)
}

// runSends runs cmd and the sends its results start, until none is left,
// feeding every result to m.
func runSends(t *testing.T, m *Model, cmd tea.Cmd) *Model {
	t.Helper()
	for cmd != nil {
		msg := cmd()
		m, cmd = step(t, m, msg)
	}
	return m
}

// bodiesOn drains the message events queued on seat.
func bodiesOn(t *testing.T, seat store.Seat) []string {
	t.Helper()
	var out []string
	for {
		select {
		case ev := <-seat.Events():
			if msg, ok := ev.(store.MessageEvent); ok {
				out = append(out, msg.Message.Body)
			}
		default:
			return out
		}
	}
}

// unsureSeat fails its first Sends with ErrUnavailable as a store does when
// it cannot tell whether a message was stored; with stored set, the first
// attempt went through nevertheless (its answer was lost).
type unsureSeat struct {
	store.Seat
	failures int
	stored   bool
	calls    []store.MessageID
}

func (s *unsureSeat) Send(ctx context.Context, id store.MessageID, body string) error {
	s.calls = append(s.calls, id)
	if len(s.calls) <= s.failures {
		if s.stored && len(s.calls) == 1 {
			if err := s.Seat.Send(ctx, id, body); err != nil {
				return err
			}
		}
		return fmt.Errorf("send message: %w: i/o timeout", store.ErrUnavailable)
	}
	return s.Seat.Send(ctx, id, body)
}

// A message whose sending timed out but was delivered is never put back
// into the input: its own event settles it, once, and the screen says
// nothing was lost only once that is true.
func TestADeliveredMessageIsNeverPutBack(t *testing.T) {
	rm := newRoom(t, true)
	seat := &unsureSeat{Seat: rm.a, failures: 1, stored: true}
	m := deliver(t, newModel(t, seat, termenv.Ascii)) // b joined
	m, _ = step(t, m, store.ReconnectingEvent{})
	m = typeText(t, m, "sent in the outage")
	m, cmd := step(t, m, press(tea.KeyEnter))
	m, _ = step(t, m, cmd())
	if m.input.Value() != "" {
		t.Fatalf("a message of unknown fate is back in the input: %q", m.input.Value())
	}
	if !strings.Contains(m.View(), "your message waits") {
		t.Fatalf("the screen does not say a message waits:\n%s", m.View())
	}
	m, cmd = step(t, m, store.ReconnectedEvent{})
	if strings.Contains(m.View(), "Nothing was lost") {
		t.Fatalf("nothing lost said before the message was stored:\n%s", m.View())
	}
	m = runSends(t, m, cmd) // sent again, under the same ID
	m = deliver(t, m)       // its event
	if got := bodiesOn(t, rm.b); !slices.Equal(got, []string{"sent in the outage"}) {
		t.Fatalf("the partner got %q, want the message once", got)
	}
	if len(seat.calls) != 2 || seat.calls[0] != seat.calls[1] {
		t.Fatalf("sent as %q, want twice under one ID", seat.calls)
	}
	v := m.View()
	if m.input.Value() != "" || !strings.Contains(v, "Reconnected. Nothing was lost.") || strings.Count(v, "sent in the outage") != 1 {
		t.Fatalf("input %q; screen:\n%s", m.input.Value(), v)
	}
	if len(m.outbox) != 0 {
		t.Fatalf("outbox still holds %v", m.outbox)
	}
}

// Without news of the link, a message of unknown fate is sent again on
// the countdown's next tick after a moment.
func TestAMessageOfUnknownFateIsSentAgain(t *testing.T) {
	rm := newRoom(t, true)
	seat := &unsureSeat{Seat: rm.a, failures: 1}
	m := deliver(t, newModel(t, seat, termenv.Ascii)) // b joined
	m = typeText(t, m, "again")
	m, cmd := step(t, m, press(tea.KeyEnter))
	m, cmd = step(t, m, cmd())
	if cmd != nil || !strings.Contains(m.View(), "Not sent yet") {
		t.Fatalf("after an unknown outcome:\n%s", m.View())
	}
	if _, cmd = step(t, m, tickMsg(time.Now())); cmd != nil {
		t.Fatal("sent again at once")
	}
	m, cmd = step(t, m, tickMsg(time.Now().Add(retryEvery)))
	m = runSends(t, m, cmd)
	m = deliver(t, m)
	if got := bodiesOn(t, rm.b); !slices.Equal(got, []string{"again"}) {
		t.Fatalf("the partner got %q", got)
	}
	if strings.Contains(m.View(), "Not sent") {
		t.Fatalf("the notice outlived the message's delivery:\n%s", m.View())
	}
}

// A send that is refused for good keeps its text in the input, with why.
func TestARefusedMessageStaysInTheInput(t *testing.T) {
	for refusal, why := range map[error]string{
		store.ErrServiceFull: "the service is full right now",
		store.ErrOverBudget:  "too much sent from your network lately",
	} {
		rm := newRoom(t, true)
		m := newModel(t, &refusingSeat{Seat: rm.a, err: refusal}, termenv.Ascii)
		m = typeText(t, m, "when there is room")
		m, cmd := step(t, m, press(tea.KeyEnter))
		m = runSends(t, m, cmd)
		if got := m.input.Value(); got != "when there is room " || !strings.Contains(m.View(), why) {
			t.Errorf("refused with %v: input %q:\n%s", refusal, got, m.View())
		}
	}
}

// A message within the limit in characters but over it in bytes (marks
// and emoji take several) is refused before it is sent, and kept.
func TestAMessageOfTooManyBytesIsRefusedWithAReason(t *testing.T) {
	rm := newRoom(t, true)
	m := newModel(t, rm.a, termenv.Ascii)
	heavy := strings.Repeat("e\u0301\u0302\u0303", safetext.MaxMessageRunes/2) // 500 characters, 3,500 bytes
	heavy += strings.Repeat("😀", 200)                                          // 700 characters, 4,300 bytes
	m = typeText(t, m, heavy)
	if got := safetext.Sanitize(heavy); safetext.RuneCount(got) > safetext.MaxMessageRunes || len(got) <= safetext.MaxMessageBytes {
		t.Fatalf("the test's message has %d characters and %d bytes", safetext.RuneCount(got), len(got))
	}
	if v := m.View(); !strings.Contains(v, "Too long: with its accents or emoji it takes 4300 bytes, at most 4096") || !strings.Contains(v, "700/1000") {
		t.Errorf("no warning while typing too many bytes, or the counter stopped counting characters:\n%s", v)
	}
	m, cmd := step(t, m, press(tea.KeyEnter))
	if cmd != nil {
		t.Fatal("a message of too many bytes was sent")
	}
	if !strings.Contains(m.View(), "Not sent: with its accents or emoji it takes 4300 bytes") || strings.TrimRight(m.input.Value(), " ") != heavy {
		t.Errorf("the message must stay in the input with a reason:\n%s", m.View())
	}
	if got := bodiesOn(t, rm.b); len(got) != 0 {
		t.Errorf("the partner got %q", got)
	}
}

// The notice that input was dropped outlasts the flood's own keys, which
// would otherwise replace it before it is ever drawn.
func TestDroppedInputIsToldAndStaysToldAWhile(t *testing.T) {
	m := newModel(t, newRoom(t, true).a, termenv.Ascii)
	m, _ = step(t, m, InputDropped{})
	m = typeText(t, m, strings.Repeat("x", inputCap+10))
	m = typeText(t, m, "more")
	if !strings.Contains(m.View(), "Too much input at once") {
		t.Fatalf("no notice of dropped input:\n%s", m.View())
	}
	m, _ = step(t, m, tickMsg(time.Now().Add(droppedNotice)))
	if strings.Contains(m.View(), "Too much input at once") {
		t.Fatalf("the notice outlived its time:\n%s", m.View())
	}
}

// A full input takes no more characters, but alt+b and alt+d (word back,
// delete word), which arrive as letters with alt, still edit it.
func TestAFullInputCanStillBeEdited(t *testing.T) {
	m := newModel(t, newRoom(t, true).a, termenv.Ascii)
	m = typeText(t, m, strings.Repeat("x", inputCap-4)+" abc")
	for _, k := range "bd" {
		m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{k}, Alt: true})
	}
	if got := m.input.Value(); got != strings.Repeat("x", inputCap-4)+" " {
		t.Fatalf("alt+b, alt+d left %d characters ending %q", len(got), got[len(got)-5:])
	}
}

// The screen is exactly as tall as the terminal, whatever is on it: a line
// more and the terminal scrolls the header away.
func TestTheScreenFillsTheTerminalExactly(t *testing.T) {
	rm := newRoom(t, false)
	m := newModel(t, rm.a, termenv.Ascii)
	for _, height := range []int{fixedLines + minConversation, 10, 12, 16, 20, 40} {
		m, _ = step(t, m, tea.WindowSizeMsg{Width: 90, Height: height})
		if got := strings.Count(m.View(), "\n") + 1; got != height {
			t.Fatalf("alone, at height %d the screen has %d lines", height, got)
		}
	}
	if _, err := rm.store.Join(context.Background(), rm.a.Snapshot().Room.ID); err != nil {
		t.Fatal(err)
	}
	m = deliver(t, m)
	for i := range 30 {
		if err := rm.a.Send(context.Background(), store.NewMessageID(), fmt.Sprintf("line %d", i)); err != nil {
			t.Fatal(err)
		}
		m = deliver(t, m)
		if got := strings.Count(m.View(), "\n") + 1; got != 40 {
			t.Fatalf("with %d messages the screen has %d lines, want 40", i+1, got)
		}
	}
}

// BenchmarkCountdownTick is what an idle session's screen costs each
// second: the countdown's tick, Update and Lines.
func BenchmarkCountdownTick(b *testing.B) {
	for _, size := range [][2]int{{80, 24}, {400, 150}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			m := newModel(b, newRoom(b, true).a, termenv.ANSI256)
			m, _ = step(b, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
			m.Lines()
			start, i := time.Now(), 0
			b.ReportAllocs()
			for b.Loop() {
				// Every tick moves the countdown, round and round.
				i = (i + 1) % 300
				m.Update(tickMsg(start.Add(time.Duration(i) * time.Second)))
				m.Lines()
			}
		})
	}
}

// header is the header line as the terminal shows it.
func header(m *Model) string { return m.Lines()[0].Render(m.width) }
