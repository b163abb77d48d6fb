package ui

import (
	"strconv"
	"strings"
	"unicode/utf8"

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
	type cluster struct {
		text  string
		cells int
		sure  bool
	}
	var clusters []cluster
	at := -1
	runes, state := 0, -1
	for rest := value; rest != ""; {
		var c string
		c, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if n := utf8.RuneCountInString(c); at < 0 && pos < runes+n {
			at = len(clusters)
		}
		runes += utf8.RuneCountInString(c)
		cells, sure := screen.Cells(c)
		clusters = append(clusters, cluster{c, cells, sure})
	}
	end := at + 1 // the window is clusters[start:end]
	cells, sure := 0, true
	if at < 0 {
		// After the text: the cursor is a blank of its own.
		at, end, cells = len(clusters), len(clusters), 1
	} else {
		cells, sure = clusters[at].cells, clusters[at].sure
	}
	start := at
	// The window: from the cursor back as far as fits, then on as far
	// as fits.
	grow := func(c cluster) bool {
		if !screen.FitsCells(cells+c.cells, sure && c.sure, room) {
			return false
		}
		cells, sure = cells+c.cells, sure && c.sure
		return true
	}
	for start > 0 && grow(clusters[start-1]) {
		start--
	}
	for end < len(clusters) && grow(clusters[end]) {
		end++
	}
	var before, under, after strings.Builder
	under.WriteString(" ")
	for i := start; i < end; i++ {
		switch {
		case i < at:
			before.WriteString(clusters[i].text)
		case i == at:
			under.Reset()
			under.WriteString(clusters[i].text)
		default:
			after.WriteString(clusters[i].text)
		}
	}
	col := ansi.StringWidth(m.input.Prompt) + ansi.StringWidth(before.String())
	return prompt + m.styles.plain.Render(before.String()) + m.cursorView(under.String()) + m.styles.plain.Render(after.String()), col
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
