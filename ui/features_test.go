package ui

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui/screen"
)

// Tests of each key and each event the screen handles, one behaviour a
// test: what a person sees and what reaches the store and the terminal.

// recordingSeat is a real seat that also notes what the screen asked of
// the store beyond messages.
type recordingSeat struct {
	store.Seat
	mu      sync.Mutex
	typing  []bool
	reopens int
}

func (s *recordingSeat) Typing(ctx context.Context, typing bool) error {
	s.mu.Lock()
	s.typing = append(s.typing, typing)
	s.mu.Unlock()
	return s.Seat.Typing(ctx, typing)
}

func (s *recordingSeat) Reopen(ctx context.Context) error {
	s.mu.Lock()
	s.reopens++
	s.mu.Unlock()
	return s.Seat.Reopen(ctx)
}

func (s *recordingSeat) told() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]bool(nil), s.typing...)
}

// run runs cmd (a batch too) and feeds what it returns back to m, until
// no command is left, as Bubble Tea does.
func run(t *testing.T, m *Model, cmd tea.Cmd) *Model {
	t.Helper()
	for cmd != nil {
		msg := cmd()
		cmd = nil
		if batch, ok := msg.(tea.BatchMsg); ok {
			for _, c := range batch {
				m = run(t, m, c)
			}
			continue
		}
		if msg != nil {
			m, cmd = step(t, m, msg)
		}
	}
	return m
}

func partnerSays(t *testing.T, rm *room, m *Model, body string) *Model {
	t.Helper()
	if err := rm.b.Send(context.Background(), store.NewMessageID(), body); err != nil {
		t.Fatal(err)
	}
	return deliver(t, m)
}

func lowerRule(m *Model) string {
	lines := strings.Split(m.View(), "\n")
	return lines[len(lines)-4]
}

// A message from the partner rings the bell once; one's own, the history,
// joins, leaves and typing do not; ctrl+g turns it off and on.
func TestThePartnersMessageRingsTheBell(t *testing.T) {
	rm := newRoom(t, true)
	if err := rm.b.Send(context.Background(), store.NewMessageID(), "from history"); err != nil {
		t.Fatal(err)
	}
	m := deliver(t, newModel(t, rm.a, termenv.Ascii)) // the partner joined
	m = deliver(t, m)                                 // their first message
	m.TakeSignals()
	m = partnerSays(t, rm, m, "ding")
	if got := string(m.TakeSignals()); got != "\a" {
		t.Fatalf("signals after the partner's message = %q, want one bell", got)
	}
	if got := m.TakeSignals(); len(got) != 0 {
		t.Fatalf("the bell was handed out twice: %q", got)
	}
	m = typeText(t, m, "mine")
	m, cmd := step(t, m, press(tea.KeyEnter))
	m = run(t, m, cmd)
	m = deliver(t, m)
	m, _ = step(t, m, store.TypingEvent{Member: rm.b.Snapshot().Me, Typing: true})
	m, _ = step(t, m, store.LeftEvent{Member: rm.b.Snapshot().Me, Kept: true})
	m, _ = step(t, m, store.JoinedEvent{Member: rm.b.Snapshot().Me, Back: true})
	if got := m.TakeSignals(); len(got) != 0 {
		t.Fatalf("something else rang: %q", got)
	}

	m, _ = step(t, m, press(tea.KeyCtrlG))
	if !strings.Contains(m.View(), "Bell off") || !strings.Contains(m.View(), "ctrl+g bell off") {
		t.Fatalf("ctrl+g did not say the bell is off:\n%s", m.View())
	}
	m = partnerSays(t, rm, m, "quiet")
	if got := m.TakeSignals(); len(got) != 0 {
		t.Fatalf("a bell with the bell off: %q", got)
	}
	m, _ = step(t, m, press(tea.KeyCtrlG))
	m = partnerSays(t, rm, m, "loud again")
	if got := string(m.TakeSignals()); got != "\a" {
		t.Fatalf("signals = %q, want the bell back", got)
	}
}

// ctrl+y writes the share command to the client's clipboard (OSC 52) and
// says so.
func TestCtrlYCopiesTheShareCommand(t *testing.T) {
	m := newModel(t, newRoom(t, false).a, termenv.Ascii)
	m, _ = step(t, m, press(tea.KeyCtrlY))
	want := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(joinCommand)) + "\a"
	if got := string(m.TakeSignals()); got != want {
		t.Fatalf("signals = %q, want %q", got, want)
	}
	if !strings.Contains(m.View(), "Copied the command (if your terminal allows it)") {
		t.Fatalf("no word of the copy:\n%s", m.View())
	}
	m, _ = step(t, m, store.JoinedEvent{Member: store.Member{ID: "p", Name: "anonymous-owl-0000"}})
	if strings.Contains(m.View(), "Copied") {
		t.Fatalf("the copy is still told once the partner is in:\n%s", m.View())
	}
	if got := m.TakeSignals(); len(got) != 0 {
		t.Fatalf("copied twice: %q", got)
	}
}

// The share command is never broken across lines: on a terminal narrower
// than the command it runs on into blank lines, whole.
func TestTheShareCommandIsNeverBroken(t *testing.T) {
	const long = "ssh -p 2222 k7m2-q9xw-4p3f-h8n2@chat.a-rather-long-host-name.example.com"
	rm := newRoom(t, false)
	for _, size := range [][2]int{{40, 10}, {45, 12}, {60, 20}, {80, 24}, {120, 40}} {
		m := New(Config{Seat: rm.a, JoinCommand: long, Profile: termenv.Ascii, Width: size[0], Height: size[1]})
		found := false
		for i, line := range m.Lines() {
			if !strings.Contains(line.Text, "ssh ") {
				continue
			}
			found = true
			if strings.TrimSpace(line.Text) != long {
				t.Errorf("%v: the command's line is %q, want the command alone", size, line.Text)
			}
			if wide := lipgloss.Width(long) > size[0]; wide != line.Overflow {
				t.Errorf("%v: overflow %v for a command %d wide", size, line.Overflow, lipgloss.Width(long))
			} else if wide && m.Lines()[i+1] != (screen.Line{}) {
				t.Errorf("%v: the line under an overflowing command is %q, want it blank", size, m.Lines()[i+1].Text)
			}
		}
		if !found {
			t.Errorf("%v: no share command on the waiting screen:\n%s", size, m.View())
		}
	}
}

// While scrolled up, new messages leave the view where it is, a line says
// how many arrived, and pgdn or end come back to them.
func TestScrolledUpCountsWhatArrivesBelow(t *testing.T) {
	for _, back := range []tea.KeyType{tea.KeyEnd, tea.KeyPgDown} {
		rm := newRoom(t, true)
		m := deliver(t, newModel(t, rm.a, termenv.Ascii))
		for i := range 40 {
			m = partnerSays(t, rm, m, fmt.Sprintf("old %d", i))
		}
		m, _ = step(t, m, press(tea.KeyPgUp))
		shown := m.conv.top
		m = partnerSays(t, rm, m, "new one")
		m = partnerSays(t, rm, m, "new two")
		if m.conv.top != shown || strings.Contains(m.View(), "new two") {
			t.Fatalf("the view moved for new messages:\n%s", m.View())
		}
		if rule := lowerRule(m); !strings.Contains(rule, "↓ 2 new messages · end") {
			t.Fatalf("lower rule %q, want the count of new messages", rule)
		}
		for !m.conv.atBottom() {
			m, _ = step(t, m, press(back))
		}
		if v := m.View(); !strings.Contains(v, "new two") || strings.Contains(v, "new messages") {
			t.Fatalf("%v did not come back to the newest:\n%s", back, v)
		}
	}
}

// end moves the input's cursor when there is nothing below to go to.
func TestEndAtTheBottomIsTheInputsEnd(t *testing.T) {
	m := newModel(t, newRoom(t, true).a, termenv.Ascii)
	m = typeText(t, m, "abc")
	m, _ = step(t, m, press(tea.KeyHome))
	m, _ = step(t, m, press(tea.KeyEnd))
	if m.input.Position() != 3 {
		t.Fatalf("cursor at %d, want the end", m.input.Position())
	}
}

// Wrapped lines start under the message's text, by display width, and
// never run past the screen, whatever characters they hold.
func TestWrappedLinesHangUnderTheText(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii))
	name := rm.b.Snapshot().Me.Name
	body := strings.Repeat("世界 e\u0301te 🎉 word ", 12)
	m = partnerSays(t, rm, m, body)
	for _, width := range []int{120, 80, 60, 40} {
		m, _ = step(t, m, tea.WindowSizeMsg{Width: width, Height: 40})
		lines := m.entries[len(m.entries)-1].drawn
		indent := len("15:04 " + name + ": ")
		if width-indent < minTextWidth {
			indent = len("15:04 ")
		}
		if len(lines) < 2 {
			t.Fatalf("at %d the message fits one line: %q", width, lines)
		}
		for i, line := range lines {
			if w := lipgloss.Width(line); w > width {
				t.Errorf("at %d line %d is %d wide: %q", width, i, w, line)
			}
			if i == 0 {
				continue
			}
			if !strings.HasPrefix(line, strings.Repeat(" ", indent)) || line[indent] == ' ' {
				t.Errorf("at %d line %d does not start at column %d: %q", width, i, indent, line)
			}
		}
	}
}

// The input shows what the partner will get: characters the sanitiser
// drops are dropped as they are typed or pasted.
func TestTheInputIsSanitisedLive(t *testing.T) {
	m := newModel(t, newRoom(t, true).a, termenv.Ascii)
	m = typeText(t, m, "abc\u202edef")
	m, _ = step(t, m, runeKey('\u2066'))
	m = typeText(t, m, "g\U000E0041h\u200b!")
	if got := m.input.Value(); got != "abcdefgh!" {
		t.Fatalf("input %q, want the hidden characters gone", got)
	}
	if v := inputLineOf(m); strings.ContainsAny(v, "\u202e\u2066\U000E0041\u200b") {
		t.Fatalf("the input line shows them: %q", v)
	}
	// Typing in the middle keeps the cursor where it was.
	m, _ = step(t, m, press(tea.KeyLeft))
	m = typeText(t, m, "\u202eX")
	if got := m.input.Value(); got != "abcdefghX!" || m.input.Position() != 9 {
		t.Fatalf("input %q, cursor %d", got, m.input.Position())
	}
}

func inputLineOf(m *Model) string {
	for line := range strings.SplitSeq(m.View(), "\n") {
		if strings.HasPrefix(line, "> ") {
			return line
		}
	}
	return ""
}

// F1 (or ctrl+/) opens the help, with every key and this person's own
// rejoin command; keys that are not the help's do nothing there; esc
// closes it.
func TestF1OpensTheHelpAndEscClosesIt(t *testing.T) {
	for _, open := range []tea.KeyType{tea.KeyF1, tea.KeyCtrlUnderscore} {
		m := newModel(t, newRoom(t, true).a, termenv.Ascii)
		m, _ = step(t, m, tea.WindowSizeMsg{Width: 100, Height: 40})
		m, _ = step(t, m, press(open))
		v := m.View()
		for _, want := range []string{rejoinCommand, "ctrl+y", "ctrl+g", "ctrl+o", "ctrl+x", "ctrl+c", "pgup/pgdn", "enter", "esc"} {
			if !strings.Contains(v, want) {
				t.Errorf("the help lacks %q:\n%s", want, v)
			}
		}
		if strings.Contains(m.View(), joinCommand+"\n") {
			t.Errorf("the help shows the share command as the way back")
		}
		before := m.View()
		for _, k := range []tea.KeyMsg{runeKey('x'), press(tea.KeyEnter), press(tea.KeyCtrlX)} {
			if m.Redraws(k) {
				t.Errorf("%v redraws the help", k)
			}
			m, _ = step(t, m, k)
		}
		if m.View() != before || m.input.Value() != "" || m.confirm != confirmNothing {
			t.Fatalf("keys acted behind the help")
		}
		m, _ = step(t, m, press(tea.KeyEsc))
		if strings.Contains(m.View(), rejoinCommand) || !strings.Contains(m.View(), "> ") {
			t.Fatalf("esc did not close the help:\n%s", m.View())
		}
	}
}

// The help scrolls where it does not fit.
func TestTheHelpScrollsOnASmallTerminal(t *testing.T) {
	m := newModel(t, newRoom(t, true).a, termenv.Ascii)
	m, _ = step(t, m, tea.WindowSizeMsg{Width: minWidth, Height: minHeight})
	m, _ = step(t, m, press(tea.KeyF1))
	if !strings.Contains(m.View(), "ROOM-KEY") {
		t.Fatalf("the rejoin command is not first:\n%s", m.View())
	}
	for range 10 {
		m, _ = step(t, m, press(tea.KeyPgDown))
	}
	if !strings.Contains(m.View(), "sealed") {
		t.Fatalf("pgdn did not reach the end of the help:\n%s", m.View())
	}
}

// Below the minimum size a screen says so instead of a broken layout, and
// the layout comes back when the terminal grows.
func TestATooSmallTerminalIsAskedToGrow(t *testing.T) {
	m := newModel(t, newRoom(t, true).a, termenv.Ascii)
	for _, size := range [][2]int{{39, 24}, {80, 9}, {20, 5}} {
		m, _ = step(t, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		v := m.View()
		if !strings.Contains(strings.Join(strings.Fields(v), " "), "Make the window larger") || strings.Contains(v, "> ") {
			t.Errorf("%v:\n%s", size, v)
		}
		if got := strings.Count(v, "\n") + 1; got != size[1] {
			t.Errorf("%v: %d lines", size, got)
		}
	}
	m, _ = step(t, m, tea.WindowSizeMsg{Width: minWidth, Height: minHeight})
	if v := m.View(); strings.Contains(v, "larger") || !strings.Contains(v, "> ") {
		t.Errorf("at the minimum size:\n%s", v)
	}
}

// Once the partner is in, the room is sealed; when they leave, their
// seat is kept and the screen says so instead of offering the command;
// when they come back, they are "back".
func TestThePartnerAwayAndBack(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii))
	if v := m.View(); !strings.Contains(v, "sealed to you two") {
		t.Fatalf("no word of the sealing:\n%s", v)
	}
	bob := rm.b.Snapshot()
	if err := rm.b.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = deliver(t, m)
	v := m.View()
	if !strings.Contains(v, bob.Me.Name+" left; their seat is kept") || !strings.Contains(v, bob.Me.Name+" is away") ||
		strings.Contains(v, joinCommand) || !strings.Contains(v, "ctrl+o reopen seat") {
		t.Fatalf("after the partner left:\n%s", v)
	}
	back, err := rm.store.Rejoin(context.Background(), bob.Room.ID, bob.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Leave(context.Background())
	m = deliver(t, m)
	if v := m.View(); !strings.Contains(v, bob.Me.Name+" is back") || strings.Contains(v, "is away") {
		t.Fatalf("after the partner came back:\n%s", v)
	}
	// The one who came back sees who is here.
	bm := newModel(t, back, termenv.Ascii)
	if v := bm.View(); !strings.Contains(v, "you are back; "+m.snap.Me.Name+" is here") {
		t.Fatalf("the one back sees:\n%s", v)
	}
}

// askToReopen has the partner leave, m hear of it, and ctrl+o ask whether
// to give their seat up. It returns the partner's snapshot.
func askToReopen(t *testing.T, rm *room, m *Model) (*Model, store.Snapshot) {
	t.Helper()
	partner := rm.b.Snapshot()
	if err := rm.b.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = deliver(t, m)
	m, _ = step(t, m, press(tea.KeyCtrlO))
	if !strings.Contains(m.View(), "Reopen "+partner.Me.Name+"'s seat? Whoever takes it sees this chat. y/n") {
		t.Fatalf("no question:\n%s", m.View())
	}
	return m, partner
}

// ctrl+o, with the partner away, asks; n keeps their seat; y gives it up
// and the command to share comes back.
func TestCtrlOReopensTheKeptSeatAfterAYes(t *testing.T) {
	rm := newRoom(t, true)
	seat := &recordingSeat{Seat: rm.a}
	m := deliver(t, newModel(t, seat, termenv.Ascii))
	m, _ = step(t, m, press(tea.KeyCtrlO))
	if m.confirm != confirmNothing || !strings.Contains(m.View(), "nobody's is kept") {
		t.Fatalf("ctrl+o with the partner here:\n%s", m.View())
	}
	m, bob := askToReopen(t, rm, m)
	m, cmd := step(t, m, runeKey('n'))
	if cmd != nil || seat.reopens != 0 || !strings.Contains(m.View(), "kept for them") {
		t.Fatalf("n did not keep the seat:\n%s", m.View())
	}
	m, _ = step(t, m, press(tea.KeyCtrlO))
	m.lastKeyAsked = m.lastKeyAsked.Add(-readingTime) // read, not pasted
	m, cmd = step(t, m, runeKey('y'))
	m = run(t, m, cmd)
	m = deliver(t, m) // the ReopenedEvent
	if seat.reopens != 1 {
		t.Fatalf("%d reopens", seat.reopens)
	}
	if v := m.View(); !strings.Contains(v, joinCommand) || !strings.Contains(v, "you gave "+bob.Me.Name+"'s seat up") || strings.Contains(v, "is away") {
		t.Fatalf("after reopening:\n%s", v)
	}
	if _, err := rm.store.Rejoin(context.Background(), bob.Room.ID, bob.Key); err == nil {
		t.Fatal("the old key still opens the seat")
	}
}

// The partner coming back while ctrl+o's question is on screen takes the
// question away: a late y gives nobody's seat up.
func TestAPartnerBackWithdrawsTheReopenQuestion(t *testing.T) {
	rm := newRoom(t, true)
	seat := &recordingSeat{Seat: rm.a}
	m, bob := askToReopen(t, rm, deliver(t, newModel(t, seat, termenv.Ascii)))
	back, err := rm.store.Rejoin(context.Background(), bob.Room.ID, bob.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Leave(context.Background())
	m = deliver(t, m)
	if v := m.View(); strings.Contains(v, "Reopen ") || !strings.Contains(v, bob.Me.Name+" is back") {
		t.Fatalf("the question outlived the partner's return:\n%s", v)
	}
	m.lastKeyAsked = m.lastKeyAsked.Add(-readingTime) // a y read, not pasted
	m, cmd := step(t, m, runeKey('y'))
	m = run(t, m, cmd)
	if seat.reopens != 0 || m.input.Value() != "" {
		t.Fatalf("a late y reopened the seat of a partner who is back (%d), or was typed (%q)", seat.reopens, m.input.Value())
	}
}

// A notice goes by itself after a while; an error stays until what it is
// about changes.
func TestNoticesGoErrorsStay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rm := newRoom(t, true)
		m := deliver(t, newModel(t, rm.a, termenv.Ascii))
		m, _ = step(t, m, press(tea.KeyCtrlG))
		if !strings.Contains(m.View(), "Bell off:") {
			t.Fatalf("no notice:\n%s", m.View())
		}
		time.Sleep(noticeFor - time.Second)
		m = tickNow(t, m)
		if !strings.Contains(m.View(), "Bell off:") {
			t.Fatalf("the notice went after %v:\n%s", noticeFor-time.Second, m.View())
		}
		time.Sleep(time.Second)
		m = tickNow(t, m)
		if strings.Contains(m.View(), "Bell off:") {
			t.Fatalf("the notice outlived %v:\n%s", noticeFor, m.View())
		}
		m = typeText(t, m, strings.Repeat("x", safetext.MaxMessageRunes+1))
		time.Sleep(2 * noticeFor)
		m = tickNow(t, m)
		if !strings.Contains(m.View(), "Too long") {
			t.Fatalf("the error went by itself:\n%s", m.View())
		}
		// What is under way stays until its outcome comes.
		m, _ = step(t, m, press(tea.KeyCtrlU))
		m, _ = step(t, m, press(tea.KeyCtrlX))
		time.Sleep(readingTime)
		m, _ = step(t, m, runeKey('y')) // the destroy is not run
		time.Sleep(2 * noticeFor)
		m = tickNow(t, m)
		if !strings.Contains(m.View(), "Destroying the room") {
			t.Fatalf("the progress went before its outcome:\n%s", m.View())
		}
	})
}

// "typing…" shows while the partner says they type, and goes when they
// say they stopped or when nothing renews it in time.
func TestThePartnersTypingShowsAndGoes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rm := newRoom(t, true)
		m := deliver(t, newModel(t, rm.a, termenv.Ascii))
		bob := rm.b.Snapshot().Me
		typing := bob.Name + " is typing…"
		m, _ = step(t, m, store.TypingEvent{Member: bob, Typing: true})
		if !strings.Contains(lowerRule(m), typing) {
			t.Fatalf("lower rule %q", lowerRule(m))
		}
		m, _ = step(t, m, store.TypingEvent{Member: bob, Typing: false})
		if strings.Contains(m.View(), "typing") {
			t.Fatalf("still typing after they stopped")
		}
		// What they typed arriving ends it too.
		m, _ = step(t, m, store.TypingEvent{Member: bob, Typing: true})
		m = partnerSays(t, rm, m, "typed")
		if strings.Contains(m.View(), "typing") {
			t.Fatalf("still typing after their message came")
		}
		// Someone who is not the partner says nothing here.
		m, _ = step(t, m, store.TypingEvent{Member: store.Member{ID: "other", Name: "other"}, Typing: true})
		if strings.Contains(m.View(), "typing") {
			t.Fatalf("a stranger's typing shows")
		}
		m, _ = step(t, m, store.TypingEvent{Member: bob, Typing: true})
		time.Sleep(store.TypingExpiry - time.Second)
		m = tickNow(t, m)
		if !strings.Contains(m.View(), typing) {
			t.Fatalf("typing gone before its time")
		}
		time.Sleep(time.Second)
		m = tickNow(t, m)
		if strings.Contains(m.View(), "typing") {
			t.Fatalf("typing outlived %v without news", store.TypingExpiry)
		}
	})
}

// The screen tells the partner that its person types: when text appears,
// again every few seconds while keys keep coming, and that they stopped
// when the text is sent or cleared, or no key came for 5 s; one call at a
// time, a few a second at most, and nothing while alone.
func TestTypingIsToldThrottledAndEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, seat := typist(t)
		var pending []tea.Cmd
		key := func(k tea.KeyMsg) {
			var cmd tea.Cmd
			m, cmd = step(t, m, k)
			if cmd != nil {
				pending = append(pending, cmd)
			}
		}
		finish := func() {
			for len(pending) > 0 {
				cmd := pending[0]
				pending = pending[1:]
				m = run(t, m, cmd)
			}
		}
		// A burst of keys: one call, however many keys.
		for _, r := range "hello" {
			key(runeKey(r))
		}
		if len(pending) != 1 {
			t.Fatalf("%d calls on their way for five keys", len(pending))
		}
		finish()
		if got := seat.told(); len(got) != 1 || !got[0] {
			t.Fatalf("told %v, want [true]", got)
		}
		// Sending ends it without a word: the message ends it on the
		// partner's screen. Typing at once again says so at once.
		time.Sleep(typingGap)
		key(press(tea.KeyEnter))
		finish()
		m = deliver(t, m)
		if got := seat.told(); len(got) != 1 {
			t.Fatalf("told %v, want [true]: the message says the rest", got)
		}
		time.Sleep(typingGap / 2)
		key(runeKey('a'))
		finish()
		time.Sleep(typingGap)
		key(runeKey('a'))
		finish()
		if got := seat.told(); len(got) != 2 || !got[1] {
			t.Fatalf("told %v, want typing again %v after the message", got, typingGap)
		}
		// Typing on, renewed while keys come; a pause of 5 s ends it.
		for range 4 {
			time.Sleep(time.Second)
			key(runeKey('a'))
			finish()
		}
		if got := seat.told(); len(got) != 3 || !got[2] {
			t.Fatalf("told %v, want a renewal after %v of typing", got, typingRenew)
		}
		time.Sleep(typingIdle)
		m = tickNow(t, m)
		if got := seat.told(); len(got) != 4 || got[3] {
			t.Fatalf("told %v, want an end after %v without a key", got, typingIdle)
		}
		// Clearing the input ends it too: at once, or, right after the
		// last call, at the next tick (within a second).
		time.Sleep(typingGap)
		key(runeKey('b'))
		finish()
		for range len(m.input.Value()) {
			key(press(tea.KeyBackspace))
			finish()
		}
		if got := seat.told(); len(got) != 5 || !got[4] {
			t.Fatalf("told %v, want the end held back a moment", got)
		}
		time.Sleep(time.Second)
		m = tickNow(t, m)
		if got := seat.told(); len(got) != 6 || got[5] {
			t.Fatalf("told %v, want an end once the input is empty", got)
		}
		// Flapping: at most one call per typingGap.
		before := len(seat.told())
		for range 100 {
			key(runeKey('x'))
			finish()
			key(press(tea.KeyBackspace))
			finish()
		}
		if n := len(seat.told()) - before; n > 2 {
			t.Fatalf("%d calls for 200 keys in an instant", n)
		}
	})
}

// A message sent while the word that its person types is still on its
// way (a pasted line and its Enter) is followed by the word that they
// stopped: the typing news may reach the partner after the message.
func TestTypingInFlightAtSendIsEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, seat := typist(t)
		m, typingCall := step(t, m, runeKey('h'))
		m, sendCall := step(t, m, press(tea.KeyEnter))
		m = run(t, m, typingCall)
		m = run(t, m, sendCall)
		// Within the throttle's gap: at the next tick.
		time.Sleep(time.Second)
		m = tickNow(t, m)
		if got := seat.told(); len(got) != 2 || !got[0] || got[1] {
			t.Fatalf("told %v, want [true false]", got)
		}
	})
}

// Keys that only move the cursor are not typing: 5 s after the last edit,
// the partner hears that it ended, however the cursor moved since.
func TestMovingTheCursorIsNotTyping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, seat := typist(t)
		for _, k := range []tea.KeyMsg{runeKey('h'), runeKey('i')} {
			var cmd tea.Cmd
			m, cmd = step(t, m, k)
			m = run(t, m, cmd)
		}
		time.Sleep(typingIdle - time.Second)
		for _, k := range []tea.KeyType{tea.KeyLeft, tea.KeyHome, tea.KeyRight, tea.KeyEnd} {
			var cmd tea.Cmd
			m, cmd = step(t, m, press(k))
			m = run(t, m, cmd)
		}
		time.Sleep(time.Second)
		m = tickNow(t, m)
		if got := seat.told(); len(got) < 2 || !got[0] || got[len(got)-1] {
			t.Fatalf("told %v, want typing, then its end %v after the last edit", got, typingIdle)
		}
	})
}

// Alone, the screen tells nobody that its person types.
func TestTypingAloneTellsNobody(t *testing.T) {
	seat := &recordingSeat{Seat: newRoom(t, false).a}
	m := newModel(t, seat, termenv.Ascii)
	m, cmd := step(t, m, runeKey('a'))
	m = run(t, m, cmd)
	if got := seat.told(); len(got) != 0 {
		t.Fatalf("told %v while alone", got)
	}
	_ = m
}

// A person who comes back sees so, and who is away or here.
func TestComingBackSaysSo(t *testing.T) {
	rm := newRoom(t, true)
	alice, bob := rm.a.Snapshot(), rm.b.Snapshot()
	_ = rm.b.Leave(context.Background())
	_ = rm.a.Leave(context.Background())
	back, err := rm.store.Rejoin(context.Background(), alice.Room.ID, alice.Key)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Leave(context.Background())
	m := newModel(t, back, termenv.Ascii)
	if v := m.View(); !strings.Contains(v, "you are back; "+bob.Me.Name+" is away") || !strings.Contains(v, bob.Me.Name+" is away. Their seat is kept") {
		t.Fatalf("back alone:\n%s", v)
	}
}

// Leaving a sealed room says the seat is kept, with the personal command;
// one replaced by the same person's newer connection says why.
func TestEndsNameTheWayBack(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii))
	m, _ = step(t, m, press(tea.KeyCtrlC))
	if out := m.Outcome().Text; !strings.Contains(out, "Your seat is kept for you") || !strings.Contains(out, "To return as yourself, run:\n"+rejoinCommand) {
		t.Fatalf("outcome %q", out)
	}
	m = newModel(t, newRoom(t, true).a, termenv.Ascii)
	m, _ = step(t, m, store.EndedEvent{Reason: store.EndReplaced, RoomLivesOn: true})
	if out := m.Outcome(); out.Ending != EndingReplaced || !strings.Contains(out.Text, "from another connection") {
		t.Fatalf("outcome %+v", out)
	}
}

// Light and dark backgrounds get different colours, each legible.
func TestStylesFollowTheBackground(t *testing.T) {
	rm := newRoom(t, false)
	dark := New(Config{Seat: rm.a, JoinCommand: joinCommand, Profile: termenv.ANSI, Width: 80, Height: 24})
	light := New(Config{Seat: rm.a, JoinCommand: joinCommand, Profile: termenv.ANSI, Width: 80, Height: 24, LightBackground: true})
	if dark.View() == light.View() {
		t.Fatal("the same colours on light and dark backgrounds")
	}
	// The notice is yellow on dark, never on light.
	if !strings.Contains(dark.View(), "\x1b[93m") || strings.Contains(light.View(), "\x1b[93m") || strings.Contains(light.View(), "\x1b[33m") {
		t.Fatalf("yellow where it does not read:\ndark %q\nlight %q", dark.View(), light.View())
	}
}

// tickNow hands m the countdown's tick at the present time and runs what
// it sends.
func tickNow(t *testing.T, m *Model) *Model {
	t.Helper()
	m, cmd := step(t, m, tickMsg(time.Now()))
	return run(t, m, cmd)
}

// typist is a screen with a partner, whose seat records what it is told.
func typist(t *testing.T) (*Model, *recordingSeat) {
	t.Helper()
	seat := &recordingSeat{Seat: newRoom(t, true).a}
	return deliver(t, newModel(t, seat, termenv.Ascii)), seat
}

// With input that settles (the server's keyboard), the keys of one piece
// of input are drawn once and typing is told for what the input holds
// when it settles: a line and its Enter that came together tell the
// partner nothing but the message; keys typed one at a time tell them
// "typing" as before; input that never pauses is still drawn.
func TestSettledInputIsDrawnOnceAndTellsTyping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		seat := &recordingSeat{Seat: newRoom(t, true).a}
		m := New(Config{Seat: seat, JoinCommand: joinCommand, RejoinCommand: rejoinCommand, Profile: termenv.Ascii, Width: 80, Height: 20, InputSettles: true})
		m = deliver(t, m) // b joined

		// A line and its Enter, read at once.
		m, typed := step(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("hello")})
		if typed != nil || !m.Holding() {
			t.Fatalf("a key of unsettled input: command %v, holding %v; want none, held", typed, m.Holding())
		}
		m, sendCall := step(t, m, press(tea.KeyEnter))
		if !m.Holding() {
			t.Fatal("the Enter of unsettled input is drawn before the input settled")
		}
		m, told := step(t, m, InputSettled{})
		if told != nil || m.Holding() {
			t.Fatalf("settled after a line and its Enter: command %v, holding %v; want none, drawn", told, m.Holding())
		}
		m = run(t, m, sendCall)
		m = deliver(t, m)
		if !strings.Contains(m.View(), "hello") {
			t.Fatalf("the message is not on screen:\n%s", m.View())
		}
		if got := seat.told(); len(got) != 0 {
			t.Fatalf("told %v for a line sent at once, want nothing: the message says it", got)
		}

		// Typed one key at a time: each settles, and typing is told.
		time.Sleep(typingGap)
		m, _ = step(t, m, runeKey('h'))
		m, told = step(t, m, InputSettled{})
		m = run(t, m, told)
		if got := seat.told(); len(got) != 1 || !got[0] {
			t.Fatalf("told %v after a key typed alone, want [true]", got)
		}

		// Input that does not pause is drawn every maxHeldKeys keys.
		drawn := 0
		for range 3 * maxHeldKeys {
			m, _ = step(t, m, runeKey('x'))
			if !m.Holding() {
				drawn++
			}
		}
		if drawn != 3 {
			t.Fatalf("%d frames for %d keys without a pause, want 3", drawn, 3*maxHeldKeys)
		}
	})
}
