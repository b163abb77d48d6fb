package ui

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	"github.com/rivo/uniseg"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/ui/screen"
)

// The input holds a message of several lines. Its text field takes no
// line feeds (it makes them spaces), so a line break is kept in it as
// lineSep, which the sanitiser turns back into a line break: what is sent
// is the field's value as it is.
const (
	lineSep     = "\u2028"
	lineSepRune = '\u2028'
	// maxInputRows is the most rows the input grows to, as lines are
	// added or wrapped; beyond it, it shows the rows around the cursor.
	maxInputRows = 5
)

// moreAbove takes the prompt's place when the input's first rows are
// scrolled out of view; it is as wide as the prompt.
const moreAbove = "↑ "

// toInput is text as the input field keeps it: line breaks as lineSep.
func toInput(text string) string { return strings.ReplaceAll(text, "\n", lineSep) }

// setInput puts text into the input as it would show typed there.
func (m *Model) setInput(text string) {
	m.input.SetValue(toInput(safetext.Clean(text)))
}

// capLines joins the input's lines beyond safetext.MaxMessageLines onto the
// last one allowed, as the message would have them, and reports whether it
// did: a paste of many lines shows the shape it will be sent in. Each line
// break becomes one space, so the cursor keeps its place.
func capLines(value string) (string, bool) {
	if strings.Count(value, lineSep) < safetext.MaxMessageLines {
		return value, false
	}
	var b strings.Builder
	b.Grow(len(value))
	breaks := 0
	for _, r := range value {
		if r == lineSepRune {
			if breaks++; breaks >= safetext.MaxMessageLines {
				r = ' '
			}
		}
		b.WriteRune(r)
	}
	return b.String(), true
}

// linesJoined says what capLines did.
var linesJoined = fmt.Sprintf("A message has at most %d lines: the lines after the %dth were joined onto it.",
	safetext.MaxMessageLines, safetext.MaxMessageLines)

// newlineAllowed reports whether alt+enter (or ctrl+j) may start a line
// now, and if not, why not (nothing to say: an empty input, where a message
// does not start with a blank line).
func (m *Model) newlineAllowed() (ok bool, why string) {
	value := m.input.Value()
	switch {
	case value == "":
		return false, ""
	case strings.Count(value, lineSep)+1 >= safetext.MaxMessageLines:
		return false, fmt.Sprintf("A message has at most %d lines.", safetext.MaxMessageLines)
	}
	return true, ""
}

// graphemeKey does what the text field does with a key that moves over or
// deletes one character, for a character made of several code points (an
// emoji with its skin tone, a joined family, a flag, a letter with its
// accents): the field would take it apart a code point at a time. It
// reports whether msg was such a key on such a character.
func (m *Model) graphemeKey(msg tea.KeyMsg) bool {
	km := m.input.KeyMap
	back := key.Matches(msg, km.CharacterBackward) || key.Matches(msg, km.DeleteCharacterBackward)
	forward := key.Matches(msg, km.CharacterForward) || key.Matches(msg, km.DeleteCharacterForward)
	if !back && !forward {
		return false
	}
	value := m.input.Value()
	pos := m.input.Position()
	start, end := clusterAt(value, pos, back)
	if end-start <= 1 {
		return false // one code point: the field's own
	}
	switch {
	case key.Matches(msg, km.CharacterBackward):
		m.input.SetCursor(start)
	case key.Matches(msg, km.CharacterForward):
		m.input.SetCursor(end)
	default:
		runes := []rune(value)
		m.input.SetValue(string(runes[:start]) + string(runes[end:]))
		m.input.SetCursor(start)
	}
	return true
}

// clusterAt returns the grapheme cluster of s just before rune position
// pos (before) or at it, as rune positions [start, end); start == end if
// there is none.
func clusterAt(s string, pos int, before bool) (start, end int) {
	state := -1
	for rest := s; rest != ""; {
		var cluster string
		cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		end = start + utf8.RuneCountInString(cluster)
		if (before && start < pos && pos <= end) || (!before && start <= pos && pos < end) {
			return start, end
		}
		start = end
	}
	return start, start
}

// inputRoom is how many rows the input may take: up to maxInputRows, as
// long as the conversation keeps its least.
func (m *Model) inputRoom() int {
	return min(maxInputRows, max(m.height-fixedLines-minConversation+1, 1))
}

// inputChar is one character of the input as laid out: a grapheme
// cluster, its width at its widest (screen.Cells), whether terminals agree
// on that width, and its first rune's position.
type inputChar struct {
	text  string
	width int
	sure  bool
	at    int
}

// inputLaidOut is the input's layout (see inputLayout), kept for the text
// and width it was made for: each edit lays it out once, for the rows it
// takes and then to draw them.
type inputLaidOut struct {
	value  string
	width  int
	chars  []inputChar
	starts []int
	runes  int
}

// inputLayout lays the typed text out on rows as wide as the input, a line
// break starting a new row and a line too long for one wrapped onto the
// next between words (a word wider than a row is broken between
// characters, a grapheme cluster is never split). Rows are measured at
// their widest and kept a cell short where terminals disagree on their
// width (screen.FitsCells), so no terminal wraps one onto the next. It
// returns the characters, where each row starts among them (a row ends
// where the next starts), the row the cursor is on and the text's length
// in runes. A resize changes the width, and so lays the text out anew.
func (m *Model) inputLayout() (chars []inputChar, starts []int, cursorRow, runes int) {
	value, pos := m.input.Value(), m.input.Position()
	// One cell of each row is kept for the cursor at its end.
	width := max(m.input.Width-1, 1)
	l := &m.laidOut
	if l.starts == nil || l.value != value || l.width != width {
		l.value, l.width = value, width
		l.chars, l.starts, l.runes = layOut(value, width, l.chars[:0], l.starts[:0])
	}
	// The cursor is on the character at its position, or after the last.
	at := sort.Search(len(l.chars), func(i int) bool {
		return l.chars[i].at+utf8.RuneCountInString(l.chars[i].text) > pos
	})
	cursorRow = sort.Search(len(l.starts), func(r int) bool { return l.starts[r] > at }) - 1
	return l.chars, l.starts, cursorRow, l.runes
}

// layOut is inputLayout's work, into chars and starts.
func layOut(value string, width int, chars []inputChar, starts []int) ([]inputChar, []int, int) {
	runes, state := 0, -1
	for rest := value; rest != ""; {
		var cluster string
		w, sure := 1, true
		if rest[0] < utf8.RuneSelf && (len(rest) == 1 || rest[1] < utf8.RuneSelf) {
			// Two ASCII characters (the input holds no CR) are two
			// clusters: most text needs no segmenting.
			cluster, rest, state = rest[:1], rest[1:], -1
		} else {
			cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
			w, sure = screen.Cells(cluster)
		}
		chars = append(chars, inputChar{cluster, w, sure, runes})
		runes += utf8.RuneCountInString(cluster)
	}
	starts = append(starts, 0)
	// The row's width so far, whether terminals agree on it, and its
	// last space.
	used, sure, space := 0, true, -1
	fits := func(c inputChar) bool { return screen.FitsCells(used+c.width, sure && c.sure, width) }
	for i, c := range chars {
		row := starts[len(starts)-1]
		switch {
		case c.text == lineSep:
			starts = append(starts, i+1)
			used, sure, space = 0, true, -1
			continue
		case used > 0 && !fits(c) && space > row:
			// The word under way goes onto the next row.
			starts = append(starts, space+1)
			used, sure = 0, true
			for _, d := range chars[space+1 : i] {
				used, sure = used+d.width, sure && d.sure
			}
			space = -1
			if used > 0 && !fits(c) {
				// A wide character after it is not room enough: the word
				// is broken here.
				starts = append(starts, i)
				used, sure = 0, true
			}
		case used > 0 && !fits(c):
			starts = append(starts, i)
			used, sure, space = 0, true, -1
		}
		if c.text == " " {
			space = i
		}
		used, sure = used+c.width, sure && c.sure
	}
	return chars, starts, runes
}

// inputHeight is how many rows the input shows for what is typed now.
func (m *Model) inputHeight() int {
	if m.input.Value() == "" {
		return 1
	}
	_, starts, _, _ := m.inputLayout()
	return min(len(starts), m.inputRoom())
}

// inputRows draws rows [top, top+n) of the input's layout, the cursor over
// the whole character it stands on, and returns the cursor's column in its
// row (by the cells the server counts, as a terminal that places its own
// cursor does).
func (m *Model) inputRows(chars []inputChar, starts []int, runes, top, n int) (rows []string, col int) {
	pos := m.input.Position()
	text := m.styles.plain
	rows = make([]string, 0, n)
	for r := top; r < top+n; r++ {
		end := len(chars)
		if r+1 < len(starts) {
			end = starts[r+1]
		}
		var before, after strings.Builder
		shown := ""
		for _, c := range chars[starts[r]:end] {
			here := c.at <= pos && pos < c.at+utf8.RuneCountInString(c.text)
			switch {
			case here && c.text == lineSep:
				shown = m.cursorView(" ")
			case here:
				shown = m.cursorView(c.text)
			case c.text == lineSep:
			case shown != "":
				after.WriteString(c.text)
			default:
				before.WriteString(c.text)
			}
		}
		if r == len(starts)-1 && pos >= runes {
			shown = m.cursorView(" ")
		}
		if shown != "" {
			col = ansi.StringWidth(before.String())
		}
		rows = append(rows, text.Render(before.String())+shown+text.Render(after.String()))
	}
	return rows, col
}

// cursorView is the cell under the cursor: in reverse video, unless the
// terminal's own cursor marks it.
func (m *Model) cursorView(under string) string {
	if m.ownCursor {
		return m.styles.plain.Render(under)
	}
	return m.styles.plain.Reverse(true).Render(under)
}

// inputView is the input: the prompt on its first row, the counter against
// the right edge of its last, as many rows as the text needs up to
// inputRoom, scrolled to keep the cursor in view. It returns the rows and
// the cursor's row among them, and notes the cursor's column for
// TerminalCursor.
func (m *Model) inputView() ([]screen.Line, int) {
	counter := m.counterView()
	promptWidth := ansi.StringWidth(m.input.Prompt)
	if m.input.Value() == "" {
		// The placeholder, as the field draws it, short of the counter
		// and a blank before it.
		m.frame.inputCol = promptWidth
		room := m.width - ansi.StringWidth(counter) - 1
		text := strings.TrimRight(ansi.Truncate(m.input.View(), room, ""), " ")
		return []screen.Line{{Text: text, Right: counter}}, 0
	}
	chars, starts, cursorRow, runes := m.inputLayout()
	shown := min(len(starts), m.inputRoom())
	top := min(max(cursorRow-shown+1, 0), len(starts)-shown)
	rows, col := m.inputRows(chars, starts, runes, top, shown)
	m.frame.inputCol = promptWidth + col
	out := make([]screen.Line, len(rows))
	indent := strings.Repeat(" ", promptWidth)
	for i, row := range rows {
		line := indent + row
		switch {
		case i == 0 && top == 0:
			line = m.styles.prompt.Render(m.input.Prompt) + row
		case i == 0:
			// The message starts on a row scrolled out of view.
			line = m.styles.prompt.Render(moreAbove) + row
		}
		out[i] = screen.Line{Text: line}
	}
	out[len(out)-1].Right = counter
	return out, cursorRow - top
}

// TerminalCursor implements screen.TerminalCursor: on a terminal that
// cannot show the cursor the screen draws, its own marks the input, on the
// row and at the column of the character the cursor stands on.
func (m *Model) TerminalCursor() (row, col int, show bool) {
	if !m.ownCursor || m.done || m.helpOpen || m.tooSmall() || m.frame.inputRow == 0 {
		return 0, 0, false
	}
	return m.frame.inputRow, min(m.frame.inputCol, m.width-1), true
}
