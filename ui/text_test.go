package ui

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
)

// Emoji written as people write them, and text of several lines.
const (
	family     = "👨\u200d👩\u200d👧"
	coder      = "👨\u200d💻"
	thumbsUp   = "👍🏽"
	heart      = "❤\ufe0f"
	flags      = "🇫🇷🇯🇵"
	scotland   = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
	threeLines = "first line of three\n    the second, indented\nand the third"
)

// sendTyped presses enter and returns the body the partner's seat gets.
func sendTyped(t *testing.T, m *Model, rm *room) (*Model, string) {
	t.Helper()
	m, cmd := step(t, m, press(tea.KeyEnter))
	if cmd == nil {
		t.Fatalf("not sent:\n%s", m.View())
	}
	if res := cmd().(sendResult); res.err != nil {
		t.Fatalf("send: %v", res.err)
	}
	return m, (<-rm.b.Events()).(store.MessageEvent).Message.Body
}

func TestEmojiArriveWholeAndCountOnce(t *testing.T) {
	for _, tc := range []struct {
		text  string
		count int
	}{
		{thumbsUp + thumbsUp, 2},
		{family, 1},
		{coder + " at work", 9},
		{heart + " " + flags, 4},
		{scotland, 1},
		{"cafe\u0301", 4},
	} {
		rm := newRoom(t, true)
		m := deliver(t, newModel(t, rm.a, termenv.Ascii))
		m = typeText(t, m, tc.text)
		if want := fmt.Sprintf("%d/%d", tc.count, safetext.MaxMessageRunes); !strings.Contains(m.View(), want) {
			t.Errorf("typing %q: the counter does not say %s:\n%s", tc.text, want, m.View())
		}
		var body string
		m, body = sendTyped(t, m, rm)
		if body != tc.text {
			t.Errorf("sent %q, the partner got %q", tc.text, body)
		}
	}
}

// The limit counts characters as people see them: a thousand flags,
// accented letters and letters fit (in bytes too), a thousand and one do
// not.
func TestTheLimitCountsGraphemes(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii))
	atLimit := strings.Repeat("🇫🇷", 200) + strings.Repeat("e\u0301", 300) + strings.Repeat("x", 500)
	m = typeText(t, m, atLimit)
	if want := fmt.Sprintf("%d/%d", safetext.MaxMessageRunes, safetext.MaxMessageRunes); !strings.Contains(m.View(), want) {
		t.Fatalf("the counter does not say %s", want)
	}
	m, body := sendTyped(t, m, rm)
	if body != atLimit {
		t.Fatalf("a message at the limit arrived as %d characters", safetext.RuneCount(body))
	}
	m = typeText(t, m, atLimit+"!")
	m, _ = step(t, m, press(tea.KeyEnter))
	if !strings.Contains(m.View(), "Not sent") {
		t.Fatalf("a message over the limit was not refused:\n%s", m.View())
	}
}

func TestArrowsAndBackspaceTakeCharactersWhole(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii))
	m = typeText(t, m, "a"+family+thumbsUp+"e\u0301")
	m, _ = step(t, m, press(tea.KeyBackspace)) // é
	m, _ = step(t, m, press(tea.KeyLeft))      // before 👍🏽
	m, _ = step(t, m, press(tea.KeyLeft))      // before the family
	m, _ = step(t, m, runeKey('b'))
	if got := m.input.Value(); got != "ab"+family+thumbsUp {
		t.Fatalf("input = %q", got)
	}
	m, _ = step(t, m, press(tea.KeyDelete)) // the family
	m, _ = step(t, m, press(tea.KeyRight))  // past 👍🏽
	m, _ = step(t, m, runeKey('c'))
	if got := m.input.Value(); got != "ab"+thumbsUp+"c" {
		t.Fatalf("input = %q", got)
	}
}

func TestAltEnterAndCtrlJStartALine(t *testing.T) {
	for _, newline := range []tea.KeyMsg{{Type: tea.KeyEnter, Alt: true}, {Type: tea.KeyCtrlJ}} {
		rm := newRoom(t, true)
		m := deliver(t, newModel(t, rm.a, termenv.Ascii))
		m, _ = step(t, m, newline) // nothing to break yet
		m = typeText(t, m, "one")
		m, _ = step(t, m, newline)
		m = typeText(t, m, "two")
		m, _ = step(t, m, newline)
		m, _ = step(t, m, tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
		m, _ = step(t, m, tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
		m = typeText(t, m, "three")
		if v := m.View(); !strings.Contains(v, "> one\n  two\n    three") {
			t.Fatalf("%s: the input does not show three lines:\n%s", newline, v)
		}
		var body string
		m, body = sendTyped(t, m, rm)
		if body != "one\ntwo\n  three" {
			t.Fatalf("%s: the partner got %q", newline, body)
		}
		if v := m.View(); strings.Contains(v, "  two") && !strings.Contains(v, "you: one") {
			t.Fatalf("the input kept its rows after sending:\n%s", v)
		}
	}
}

// A paste keeps its lines and their indentation; the input grows to show
// them, up to maxInputRows, and the partner sees them with the hanging
// indent.
func TestAPasteKeepsItsLines(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii))
	m = typeText(t, m, strings.ReplaceAll(threeLines, "\n", "\r")) // as terminals paste
	if v := m.View(); !strings.Contains(v, "> first line of three\n      the second, indented\n  and the third") {
		t.Fatalf("the input does not show the paste's lines:\n%s", v)
	}
	_, body := sendTyped(t, m, rm)
	if body != threeLines {
		t.Fatalf("the partner got %q", body)
	}
	other := newModel(t, rm.b, termenv.Ascii)
	other, _ = step(t, other, store.MessageEvent{Message: store.Message{ID: store.NewMessageID(), From: rm.a.Snapshot().Me, Body: body, At: time.Now()}})
	lines := strings.Split(other.View(), "\n")
	for i, line := range lines {
		if !strings.Contains(line, "first line of three") {
			continue
		}
		column := strings.Index(line, "first")
		if i+2 >= len(lines) || strings.Index(lines[i+1], "    the second") != column || strings.Index(lines[i+2], "and the third") != column {
			t.Fatalf("the lines do not hang under the text's start:\n%s", other.View())
		}
		return
	}
	t.Fatalf("the message is not shown:\n%s", other.View())
}

// Lines beyond the limit are joined onto the last one as they arrive,
// with a line that says so; the input never grows past its rows, and a
// line break typed at the limit is refused with a word.
func TestLinesBeyondTheLimit(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, newModel(t, rm.a, termenv.Ascii))
	m = typeText(t, m, strings.Repeat("line\n", 100))
	v := m.View()
	if !strings.Contains(v, "at most 20 lines") {
		t.Fatalf("nothing says lines were joined:\n%s", v)
	}
	if got := strings.Count(v, "\n") + 1; got != 20 {
		t.Fatalf("the screen has %d lines, not 20:\n%s", got, v)
	}
	if n := strings.Count(m.input.Value(), lineSep) + 1; n != safetext.MaxMessageLines {
		t.Fatalf("the input holds %d lines", n)
	}
	m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyEnter, Alt: true})
	if n := strings.Count(m.input.Value(), lineSep) + 1; n != safetext.MaxMessageLines || !strings.Contains(m.View(), "A message has at most 20 lines.") {
		t.Fatalf("a 21st line was started (%d lines):\n%s", n, m.View())
	}
}

// The input grows while lines are added and gives the rows back once the
// message is sent; the screen keeps its height throughout.
func TestTheInputGrowsAndShrinks(t *testing.T) {
	for _, height := range []int{minHeight, 24, 40} {
		rm := newRoom(t, true)
		m := deliver(t, New(Config{Seat: rm.a, JoinCommand: joinCommand, Profile: termenv.Ascii, Width: 60, Height: height}))
		want := min(maxInputRows, max(height-fixedLines-minConversation+1, 1))
		for i := range 8 {
			if i > 0 {
				m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyCtrlJ})
			}
			m = typeText(t, m, fmt.Sprintf("row %d", i))
			if got := strings.Count(m.View(), "\n") + 1; got != height {
				t.Fatalf("height %d: the screen has %d lines", height, got)
			}
		}
		if m.inputShown != want {
			t.Fatalf("height %d: the input has %d rows, want %d", height, m.inputShown, want)
		}
		if v := m.View(); !strings.Contains(v, "row 7") || strings.Contains(v, "row 0") && want < 8 {
			t.Fatalf("height %d: the input does not show its newest rows:\n%s", height, v)
		}
		m, _ = sendTyped(t, m, rm)
		if m.inputShown != 1 {
			t.Fatalf("height %d: the input kept %d rows after sending", height, m.inputShown)
		}
	}
}

// A long line wraps in the input a character at a time, never splitting
// an emoji, and no row is wider than the screen.
func TestTheInputWrapsWithoutSplittingCharacters(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, New(Config{Seat: rm.a, JoinCommand: joinCommand, Profile: termenv.Ascii, Width: minWidth, Height: 24}))
	m = typeText(t, m, strings.Repeat(family+thumbsUp+"x", 12))
	v := m.View()
	for _, line := range strings.Split(v, "\n") {
		if w := lipgloss.Width(line); w > minWidth {
			t.Fatalf("a line is %d wide: %q", w, line)
		}
		if strings.HasPrefix(strings.TrimLeft(line, " >"), "\u200d") || strings.HasSuffix(strings.TrimRight(line, " 0123456789/"), "\u200d") {
			t.Fatalf("an emoji is split across rows:\n%s", v)
		}
	}
	if m.inputShown < 2 {
		t.Fatalf("a long line did not wrap:\n%s", v)
	}
}

// Golden screens of the new cases at the usual sizes: a joined emoji,
// skin tones, flags, a message of several lines with its hanging indent,
// and the input grown to hold several lines.
func TestGoldenTextScreens(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {minWidth, minHeight}} {
		name := func(scene string) string { return fmt.Sprintf("%s-%dx%d", scene, size[0], size[1]) }
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, _ := goldenModel(t, true, size[0], size[1])
				start := time.Now()
				m, _ = step(t, m, message(goldenPartner, "the family: "+family+", at work: "+coder, start.Add(time.Minute)))
				m, _ = step(t, m, message(goldenMe, "nice "+thumbsUp+thumbsUp+" "+heart+" "+flags+" "+scotland, start.Add(time.Minute)))
				m, _ = step(t, m, message(goldenPartner, "three lines, pasted:\n    indented, and long enough to wrap onto a line of its own at forty\nthe end", start.Add(2*time.Minute)))
				wantGolden(t, m, name("emoji-lines"))

				m = typeText(t, m, "a reply of\r  two lines "+thumbsUp)
				m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyEnter, Alt: true})
				m = typeText(t, m, "and a third")
				wantGolden(t, m, name("input-lines"))
			})
		})
	}
}

// The input keeps the cursor's row in view: moved to the start of a
// message longer than the input's rows, it shows the first rows, with the
// prompt; and its rows break between words.
func TestTheInputFollowsTheCursor(t *testing.T) {
	rm := newRoom(t, true)
	m := deliver(t, New(Config{Seat: rm.a, JoinCommand: joinCommand, Profile: termenv.Ascii, Width: minWidth, Height: 24}))
	for i := range 8 {
		if i > 0 {
			m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyCtrlJ})
		}
		m = typeText(t, m, fmt.Sprintf("row %d", i))
	}
	if v := m.View(); !strings.Contains(v, "↑ row 3") || strings.Contains(v, "row 2") {
		t.Fatalf("the input does not end at its last rows:\n%s", v)
	}
	m, _ = step(t, m, press(tea.KeyHome))
	if v := m.View(); !strings.Contains(v, "> row 0") || strings.Contains(v, "row 5") {
		t.Fatalf("the input does not show its first rows:\n%s", v)
	}
	m, _ = step(t, m, tea.KeyMsg{Type: tea.KeyCtrlK})
	m = typeText(t, m, "several words that will not fit on one row of the input")
	if v := m.View(); !strings.Contains(v, "> several words that will \n  not fit on one row of the \n  input ") {
		t.Fatalf("the input does not break between words:\n%s", v)
	}
}
