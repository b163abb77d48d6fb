package ui

import (
	"strconv"
	"strings"

	"github.com/charmbracelet/x/ansi"
	"github.com/rivo/uniseg"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/ui/screen"
)

// inputView is the input line: the prompt and what is typed, with the
// counter against the right edge. The typed text is laid out to fit at
// its widest (see screen.Fits), so a terminal that draws an emoji wider
// than the server counts it never wraps the line onto the footer; and it
// is laid out anew for every frame, so a narrower window shows it whole
// at once, counter and cursor included.
func (m *Model) inputView() screen.Line {
	n := m.inputCount
	counter := strconv.Itoa(n) + "/" + strconv.Itoa(safetext.MaxMessageRunes)
	style := m.styles.counter
	if n > safetext.MaxMessageRunes || m.inputBytes > safetext.MaxMessageBytes {
		style = m.styles.warning
	}
	room := m.width - len(counter) - 1 // a blank before the counter
	var text string
	if m.input.Value() == "" {
		text = strings.TrimRight(ansi.Truncate(m.input.View(), room, ""), " ")
		m.frame.inputCol = len(m.input.Prompt)
	} else {
		text, m.frame.inputCol = m.typedView(room)
	}
	return screen.Line{Text: text, Right: style.Render(counter)}
}

// typedView is the prompt and the typed text in room cells, the cursor
// in view, and the cursor's column. Where the text is longer than the
// room, it shows the part around the cursor.
func (m *Model) typedView(room int) (string, int) {
	prompt := m.styles.prompt.Render(m.input.Prompt)
	room -= ansi.StringWidth(m.input.Prompt)
	value := m.input.Value()
	// The cursor is a position in code points; it stands on the whole
	// cluster it is in.
	pos := m.input.Position()
	var clusters []string
	at := -1
	runes, state := 0, -1
	for rest := value; rest != ""; {
		var c string
		c, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		n := len([]rune(c))
		if at < 0 && pos < runes+n {
			at = len(clusters)
		}
		runes += n
		clusters = append(clusters, c)
	}
	atEnd := at < 0
	if atEnd {
		at = len(clusters)
	}
	// The window: from the cursor back as far as fits, then on as far
	// as fits.
	under := " "
	if !atEnd {
		under = clusters[at]
	}
	start, end := at, at
	if !atEnd {
		end = at + 1
	}
	fits := func(from, to int) bool {
		return screen.Fits(strings.Join(clusters[from:to], "")+tail(atEnd), room)
	}
	for start > 0 && fits(start-1, end) {
		start--
	}
	for end < len(clusters) && fits(start, end+1) {
		end++
	}
	before := strings.Join(clusters[start:at], "")
	after := ""
	if !atEnd {
		after = strings.Join(clusters[at+1:end], "")
	}
	cursor := m.cursorView(under)
	col := ansi.StringWidth(m.input.Prompt) + ansi.StringWidth(before)
	return prompt + m.styles.plain.Render(before) + cursor + m.styles.plain.Render(after), col
}

// tail is the blank the cursor takes after the last cluster.
func tail(atEnd bool) string {
	if atEnd {
		return " "
	}
	return ""
}

// cursorView is the cell under the cursor: in reverse video, unless the
// terminal's own cursor marks it.
func (m *Model) cursorView(under string) string {
	if m.ownCursor {
		return m.styles.plain.Render(under)
	}
	return m.styles.plain.Reverse(true).Render(under)
}

// TerminalCursor implements screen.TerminalCursor: on a terminal that
// cannot show the cursor the screen draws, its own marks the input.
func (m *Model) TerminalCursor() (row, col int, show bool) {
	if !m.ownCursor || m.done || m.helpOpen || m.tooSmall() || m.frame.inputRow == 0 {
		return 0, 0, false
	}
	return m.frame.inputRow, min(m.frame.inputCol, m.width-1), true
}
