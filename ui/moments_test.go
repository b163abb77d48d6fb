package ui

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/ssh-burn/chat/store"
)

// scene brings a screen into one of its states.
type scene struct {
	name    string
	partner bool // the partner is in the room
	do      func(t *testing.T, m *Model) *Model
}

// sent is m after a message typed and sent, whose answer is still on its way.
func sent(t *testing.T, m *Model, text string) *Model {
	t.Helper()
	m = typeText(t, m, text)
	m, _ = step(t, m, press(tea.KeyEnter))
	return m
}

// answered is m after the store answered the message on its way with err.
func answered(t *testing.T, m *Model, err error) *Model {
	t.Helper()
	m = sent(t, m, "hello")
	m, _ = step(t, m, sendResult{id: m.sending, err: err})
	return m
}

func pressAll(t *testing.T, m *Model, ks ...tea.KeyType) *Model {
	t.Helper()
	for _, k := range ks {
		m, _ = step(t, m, press(k))
	}
	return m
}

// awayPartner is m after its partner left, their seat kept.
func awayPartner(t *testing.T, m *Model) *Model {
	t.Helper()
	m, _ = step(t, m, store.LeftEvent{Member: goldenPartner, Kept: true})
	return m
}

// statusScenes reach every status the screen can show, each by the way a
// person meets it.
var statusScenes = []scene{
	{"too many characters", true, func(t *testing.T, m *Model) *Model {
		return sent(t, m, strings.Repeat("a", 1005))
	}},
	{"typed too many", true, func(t *testing.T, m *Model) *Model { return typeText(t, m, strings.Repeat("a", 1005)) }},
	{"input capped", true, func(t *testing.T, m *Model) *Model { return typeText(t, m, strings.Repeat("a", inputCap)) }},
	{"too many bytes", true, func(t *testing.T, m *Model) *Model {
		m.setStatus(tooManyBytes("Not sent", 4999)+" Shorten it and press enter again.", statusError)
		return m
	}},
	{"outbox full", true, func(t *testing.T, m *Model) *Model {
		for i := range maxWaiting + 1 {
			m = sent(t, m, fmt.Sprint("message ", i))
		}
		return m
	}},
	{"unreachable", true, func(t *testing.T, m *Model) *Model { return answered(t, m, store.ErrUnavailable) }},
	{"too fast", true, func(t *testing.T, m *Model) *Model { return answered(t, m, store.ErrTooFast) }},
	{"over budget", true, func(t *testing.T, m *Model) *Model { return answered(t, m, store.ErrOverBudget) }},
	{"service full", true, func(t *testing.T, m *Model) *Model { return answered(t, m, store.ErrServiceFull) }},
	{"message too long", true, func(t *testing.T, m *Model) *Model { return answered(t, m, store.ErrMessageTooLong) }},
	{"send failed", true, func(t *testing.T, m *Model) *Model { return answered(t, m, errors.New("boom")) }},
	{"reconnecting", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, store.ReconnectingEvent{})
		return m
	}},
	{"reconnecting, one waits", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, store.ReconnectingEvent{})
		return sent(t, m, "one")
	}},
	{"reconnecting, some wait", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, store.ReconnectingEvent{})
		return sent(t, sent(t, m, "one"), "two")
	}},
	{"reconnecting, full", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, store.ReconnectingEvent{})
		for i := range maxWaiting {
			m = sent(t, m, fmt.Sprint("message ", i))
		}
		return m
	}},
	{"reconnected", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, store.ReconnectingEvent{})
		m, _ = step(t, m, store.ReconnectedEvent{})
		return m
	}},
	{"reconnected, sending", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, store.ReconnectingEvent{})
		m, _ = step(t, sent(t, m, "one"), store.ReconnectedEvent{})
		return m
	}},
	{"input dropped", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, InputDropped{})
		return m
	}},
	{"destroy asked", true, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlX) }},
	{"destroying", true, func(t *testing.T, m *Model) *Model {
		m = pressAll(t, m, tea.KeyCtrlX)
		time.Sleep(readingTime)
		m, _ = step(t, m, runeKey('y'))
		return m
	}},
	{"destroy kept", true, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlX, tea.KeyEsc) }},
	{"destroy failed", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, destroyError{errors.New("boom")})
		return m
	}},
	{"reopen asked", true, func(t *testing.T, m *Model) *Model { return pressAll(t, awayPartner(t, m), tea.KeyCtrlO) }},
	{"reopening", true, func(t *testing.T, m *Model) *Model {
		m = pressAll(t, awayPartner(t, m), tea.KeyCtrlO)
		time.Sleep(readingTime)
		m, _ = step(t, m, runeKey('y'))
		return m
	}},
	{"reopen kept", true, func(t *testing.T, m *Model) *Model { return pressAll(t, awayPartner(t, m), tea.KeyCtrlO, tea.KeyEsc) }},
	{"nothing to reopen", true, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlO) }},
	{"partner back first", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, reopenResult{store.ErrNothingToReopen})
		return m
	}},
	{"reopen failed", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, m, reopenResult{errors.New("boom")})
		return m
	}},
	{"reopened", true, func(t *testing.T, m *Model) *Model {
		m, _ = step(t, awayPartner(t, m), store.ReopenedEvent{Member: goldenPartner})
		return m
	}},
	{"copied", false, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlY) }},
	{"copied, sealed", true, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlY) }},
	{"bell off", true, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlG) }},
	{"bell on", true, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlG, tea.KeyCtrlG) }},
}

// Every status the screen can show is shown whole at 80 and at 40
// columns, alone or with the partner: wrapped between words, never cut,
// every line within the screen, and the input and key help still there.
func TestEveryStatusIsShownWhole(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {minWidth, minHeight}} {
		for _, sc := range statusScenes {
			t.Run(fmt.Sprintf("%dx%d/%s", size[0], size[1], sc.name), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					m, _ := goldenModel(t, sc.partner, size[0], size[1])
					m = sc.do(t, m)
					text, _ := m.statusText()
					if text == "" {
						t.Fatal("no status")
					}
					view := strings.Split(ansi.Strip(m.View()), "\n")
					if len(view) != size[1] {
						t.Errorf("%d lines on a screen of %d", len(view), size[1])
					}
					for i, l := range view {
						view[i] = strings.TrimRight(l, " ")
						if w := ansi.StringWidth(l); w > size[0] {
							t.Errorf("line %d is %d wide: %q", i, w, l)
						}
					}
					var want []string
					for _, l := range m.statusLines() {
						want = append(want, strings.TrimRight(ansi.Strip(l), " "))
					}
					if got := strings.Fields(strings.Join(want, " ")); !slices.Equal(got, strings.Fields(text)) {
						t.Errorf("status lines %q, want the words of %q", want, text)
					}
					at := slices.Index(view, want[0])
					if at < 0 || len(view) < at+len(want) || !slices.Equal(view[at:at+len(want)], want) {
						t.Errorf("the status %q is not on screen whole:\n%s", want, strings.Join(view, "\n"))
					}
					// The input's first row shown follows the status: its
					// prompt, or the mark of rows scrolled out above.
					input := ""
					if at >= 0 && at+len(want) < len(view) {
						input = view[at+len(want)]
					}
					if !(strings.HasPrefix(input, "> ") || strings.HasPrefix(input, "↑ ")) || !strings.Contains(view[len(view)-1], "•") {
						t.Errorf("input or key help gone:\n%s", strings.Join(view, "\n"))
					}
				})
			})
		}
	}
}

// endScenes reach every way a chat can end.
func endScenes() []scene {
	var out []scene
	for _, reason := range []store.EndReason{store.EndDestroyed, store.EndExpired, store.EndVanished, store.EndEvicted,
		store.EndLeaseLost, store.EndReplaced, store.EndShutdown} {
		for _, livesOn := range []bool{false, true} {
			for _, by := range []store.Member{goldenMe, goldenPartner, {}} {
				out = append(out, scene{fmt.Sprintf("%v/lives on %v/by %q", reason, livesOn, by.Name), true, func(t *testing.T, m *Model) *Model {
					m, _ = step(t, m, store.EndedEvent{Reason: reason, RoomLivesOn: livesOn, By: by})
					return m
				}})
			}
		}
	}
	return append(out,
		scene{"left, sealed", true, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlC) }},
		scene{"left alone", false, func(t *testing.T, m *Model) *Model { return pressAll(t, m, tea.KeyCtrlC) }},
		scene{"left with messages on their way", true, func(t *testing.T, m *Model) *Model {
			return pressAll(t, sent(t, m, "are you there? this one may not have made it"), tea.KeyCtrlC)
		}},
		scene{"idle", true, func(t *testing.T, m *Model) *Model {
			m, _ = step(t, m, Disconnect{Reason: "You typed nothing for 30m0s, so you were disconnected.", Ending: EndingIdle})
			return m
		}},
		scene{"stream ended", true, func(t *testing.T, m *Model) *Model {
			m, _ = step(t, m, streamEnded{})
			return m
		}},
	)
}

// Every end text, as printed once the screen is gone, breaks between
// words at 80 and 40 columns: no line wider than the terminal but a
// command, which stays whole on a line of its own.
func TestEveryEndTextWrapsBetweenWords(t *testing.T) {
	for _, width := range []int{80, minWidth} {
		for _, sc := range endScenes() {
			t.Run(fmt.Sprintf("%d/%s", width, sc.name), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					m, _ := goldenModel(t, sc.partner, width, 24)
					m = sc.do(t, m)
					out := m.Outcome()
					if !m.done || out.Text == "" {
						t.Fatal("not ended")
					}
					wrapped := out.Wrapped()
					if !slices.Equal(strings.Fields(wrapped), strings.Fields(out.Text)) {
						t.Errorf("words changed:\n%s\nwant the words of\n%s", wrapped, out.Text)
					}
					for l := range strings.SplitSeq(wrapped, "\n") {
						if ansi.StringWidth(l) > width && l != goldenJoin && l != goldenRejoin {
							t.Errorf("a line of %d at %d columns: %q", ansi.StringWidth(l), width, l)
						}
					}
					if strings.Contains(out.Text, goldenRejoin) && !strings.Contains(wrapped, "\n"+goldenRejoin+"\n") &&
						!strings.HasSuffix(wrapped, "\n"+goldenRejoin) {
						t.Errorf("the command is not on a line of its own:\n%s", wrapped)
					}
				})
			})
		}
	}
}

// Every ending has an exit code of its own kind, and none is the code
// of a refusal.
func TestEveryEndingHasAnExitCode(t *testing.T) {
	want := map[Ending]int{
		EndingLeft: ExitLeft, EndingDestroyedBySelf: ExitDestroyedBySelf, EndingDestroyedByPartner: ExitDestroyedByOther,
		EndingExpired: ExitExpired, EndingRoomVanished: ExitRoomGone, EndingRoomLost: ExitRoomGone,
		EndingFellBehind: ExitDisconnected, EndingSeatLost: ExitDisconnected, EndingIdle: ExitDisconnected,
		EndingMaxSession: ExitDisconnected, EndingReplaced: ExitReplaced, EndingShutdown: ExitShutdown,
	}
	for e, code := range want {
		if got := e.ExitCode(); got != code || got == ExitRefused {
			t.Errorf("%q exits %d, want %d", e, got, code)
		}
	}
}

// Below the smallest size nothing acts unseen: typing and enter send
// nothing, ctrl+x asks nothing; ctrl+c still leaves.
func TestKeysDoNothingBelowTheMinimumSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := goldenModel(t, true, 30, 8)
		m = typeText(t, m, "typed blind")
		m, cmd := step(t, m, press(tea.KeyEnter))
		if cmd != nil || len(m.outbox) != 0 || m.input.Value() != "" {
			t.Fatalf("sent blind: outbox %d, input %q", len(m.outbox), m.input.Value())
		}
		m = pressAll(t, m, tea.KeyCtrlX)
		time.Sleep(readingTime)
		m, cmd = step(t, m, runeKey('y'))
		if m.confirm != confirmNothing || cmd != nil || m.Redraws(press(tea.KeyCtrlX)) {
			t.Fatalf("destroy acted blind: confirm %v", m.confirm)
		}
		if !strings.Contains(m.View(), "keys do nothing but ctrl+c") {
			t.Errorf("the small screen does not say so:\n%s", m.View())
		}
		m = pressAll(t, m, tea.KeyCtrlC)
		if !m.done || m.Outcome().Ending != EndingLeft {
			t.Fatalf("ctrl+c did not leave")
		}
	})
}

// A take-over (the partner back from a new connection while the old one
// still held the seat) is one line that says so, not "is back" again.
func TestATakeOverIsOneClearLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := goldenModel(t, true, 80, 24)
		m, _ = step(t, m, store.JoinedEvent{Member: goldenPartner, Back: true})
		m, _ = step(t, m, store.JoinedEvent{Member: goldenPartner, Back: true})
		view := m.View()
		if n := strings.Count(view, "reconnected; their earlier connection was closed"); n != 2 || strings.Contains(view, "is back") {
			t.Fatalf("take-overs told %d times as such:\n%s", n, view)
		}
		m, _ = step(t, m, store.LeftEvent{Member: goldenPartner, Kept: true})
		m, _ = step(t, m, store.JoinedEvent{Member: goldenPartner, Back: true})
		if n := strings.Count(m.View(), goldenPartner.Name+" is back"); n != 1 {
			t.Fatalf("back after leaving told %d times:\n%s", n, m.View())
		}
	})
}

// Once the room is sealed its command admits nobody: ctrl+y copies this
// person's own way back in, and says which it copied; the help says so.
func TestCtrlYCopiesYourOwnCommandOnceSealed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := goldenModel(t, true, 80, 24)
		m = pressAll(t, m, tea.KeyCtrlY)
		want := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(goldenRejoin)) + "\a"
		if got := string(m.TakeSignals()); got != want {
			t.Fatalf("signals = %q, want %q", got, want)
		}
		if !strings.Contains(m.View(), "Copied your own way back in") {
			t.Errorf("does not say what it copied:\n%s", m.View())
		}
		m = pressAll(t, m, tea.KeyF1)
		if !strings.Contains(strings.Join(strings.Fields(ansi.Strip(m.View())), " "), "once you two have met, your own way back in") {
			t.Errorf("the help does not say what ctrl+y copies:\n%s", m.View())
		}
		// Reopened, the room takes someone new again: the room's command.
		m = pressAll(t, m, tea.KeyEsc)
		m = awayPartner(t, m)
		m, _ = step(t, m, store.ReopenedEvent{Member: goldenPartner})
		m = pressAll(t, m, tea.KeyCtrlY)
		if got, want := string(m.TakeSignals()), base64.StdEncoding.EncodeToString([]byte(goldenJoin)); !strings.Contains(got, want) {
			t.Fatalf("reopened: signals = %q, want the room's command", got)
		}
	})
}

// ↑ in an empty input brings back the last message sent, or a draft
// erased at once since; it leaves typed text alone.
func TestUpRecallsTheLastMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := goldenModel(t, true, 80, 24)
		m = pressAll(t, m, tea.KeyUp)
		if m.input.Value() != "" {
			t.Fatalf("recalled %q from nothing", m.input.Value())
		}
		m = sent(t, m, "first message")
		m = pressAll(t, m, tea.KeyUp)
		if got := m.input.Value(); got != "first message" {
			t.Fatalf("after a send, up = %q", got)
		}
		m = pressAll(t, m, tea.KeyCtrlU)
		m = typeText(t, m, "a draft, erased")
		m = pressAll(t, m, tea.KeyCtrlU)
		if m.input.Value() != "" {
			t.Fatalf("ctrl+u left %q", m.input.Value())
		}
		m = pressAll(t, m, tea.KeyUp)
		if got := m.input.Value(); got != "a draft, erased" {
			t.Fatalf("after ctrl+u, up = %q", got)
		}
		m = pressAll(t, m, tea.KeyUp)
		if got := m.input.Value(); got != "a draft, erased" {
			t.Fatalf("up on typed text changed it to %q", got)
		}
		if !strings.Contains(m.View(), "15/1000") {
			t.Errorf("the counter does not count the recalled text:\n%s", m.View())
		}
	})
}

// The help lists the input's editing keys, and each does what it says.
func TestTheHelpListsTheEditingKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := goldenModel(t, true, 120, 40)
		help := ansi.Strip(pressAll(t, m, tea.KeyF1).View())
		for _, k := range []string{"ctrl+a/e", "alt+b/f", "ctrl+w", "ctrl+u/k", "↑"} {
			if !strings.Contains(help, "  "+k+" ") {
				t.Errorf("the help lacks %s:\n%s", k, help)
			}
		}
		m, _ = goldenModel(t, true, 80, 24)
		m = typeText(t, m, "one two three")
		m = pressAll(t, m, tea.KeyCtrlA, tea.KeyCtrlK)
		if m.input.Value() != "" {
			t.Errorf("ctrl+a, ctrl+k left %q", m.input.Value())
		}
		m = typeText(t, m, "one two three")
		m = pressAll(t, m, tea.KeyCtrlW)
		m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{'b'}, Alt: true})
		m = pressAll(t, m, tea.KeyCtrlU, tea.KeyCtrlE)
		m = typeText(t, m, "!")
		if got := m.input.Value(); got != "two !" {
			t.Errorf("editing gave %q, want %q", got, "two !")
		}
	})
}

// The new screens at the common sizes and the smallest: a long status
// wrapped under the messages, and while waiting alone (the share panel
// says less to make room), and a take-over.
func TestGoldenMoments(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {minWidth, minHeight}} {
		name := func(scene string) string { return fmt.Sprintf("%s-%dx%d", scene, size[0], size[1]) }
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, _ := goldenModel(t, true, size[0], size[1])
				m, _ = step(t, m, message(goldenPartner, "send me the whole thing", time.Now()))
				m = sent(t, m, strings.Repeat("a", 1005))
				wantGolden(t, m, name("status-long"))

				m, _ = goldenModel(t, false, size[0], size[1])
				m = pressAll(t, m, tea.KeyCtrlO)
				wantGolden(t, m, name("waiting-status"))

				m, _ = goldenModel(t, true, size[0], size[1])
				m, _ = step(t, m, store.JoinedEvent{Member: goldenPartner, Back: true})
				m = pressAll(t, m, tea.KeyCtrlY)
				wantGolden(t, m, name("taken-over"))
			})
		})
	}
}
