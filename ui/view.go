package ui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/ui/screen"
)

// Layout: header, rule, [panel while alone], messages, rule (with who is
// typing and what is below), status, input, footer. Everything but the
// panel and the messages is one line high.
const (
	fixedLines      = 6
	minConversation = 3
	// minWidth and minHeight are the smallest terminal the chat is laid
	// out on; a smaller one is asked to grow instead of showing a broken
	// layout.
	minWidth, minHeight = 40, 10
	// timeWidth is the time stamp and its space: where a message's wrapped
	// lines start when there is no room to start them under its text.
	timeWidth = len("15:04 ")
	// minTextWidth is the narrowest a message's text column may be.
	minTextWidth = 20
)

// resize lays the screen out for a terminal of width×height cells.
func (m *Model) resize(width, height int) {
	m.termWidth, m.termHeight = width, height
	m.relayout()
}

// relayout lays the screen out again, after a change of the terminal's
// size or of what is shown above the conversation.
func (m *Model) relayout() {
	m.touch()
	m.width, m.height = max(m.termWidth, minWidth), max(m.termHeight, minHeight)
	if m.termWidth == 0 || m.termHeight == 0 {
		// No size at all: a client that does not know its own. It most
		// likely has the usual.
		m.width, m.height = 80, 24
	}
	m.input.Width = max(m.width-len(m.input.Prompt)-m.counterWidth()-2, 1)
	m.rule = m.styles.rule.Render(strings.Repeat("─", m.width))
	m.layoutHeights()
	m.refreshConversation()
	if m.conv.atBottom() {
		m.unread = 0
	}
}

// layoutHeights shares the screen's height out between the input, which
// grows with what is typed, the share panel and the conversation.
func (m *Model) layoutHeights() {
	m.inputShown = m.inputHeight()
	m.panel = m.sharePanel()
	m.conv.setHeight(max(m.height-fixedLines-(m.inputShown-1)-len(m.panel), 1))
}

// tooSmall reports a terminal below the smallest the chat is laid out on.
// A size of 0 is no size at all (a client that does not know its own):
// the layout is drawn for the usual 80×24, and the terminal shows what it
// can.
func (m *Model) tooSmall() bool {
	return (m.termWidth > 0 && m.termWidth < minWidth) || (m.termHeight > 0 && m.termHeight < minHeight)
}

// renderEntry draws one message or notice: its time and sender, then its
// text, whose wrapped lines start under the text's first (by display
// width: wide and combining characters count as the terminal draws them),
// or under the sender where that would leave too narrow a column.
func (m *Model) renderEntry(e entry) []string {
	stamp := m.styles.time.Render(e.at.In(m.loc).Format("15:04"))
	var prefix, body string
	style := m.styles.plain
	if e.msg == nil {
		prefix, body, style = stamp+" "+m.styles.system.Render("·")+" ", safetext.Sanitize(e.notice), m.styles.system
	} else {
		name := m.styles.partner.Render(safetext.Sanitize(e.msg.From.Name) + ":")
		if e.msg.From.ID == m.snap.Me.ID {
			name = m.styles.me.Render("you:")
		}
		// The body was sanitised by the store; doing it again here keeps
		// this screen safe whatever store it is given.
		prefix, body = stamp+" "+name+" ", safetext.Sanitize(e.msg.Body)
	}
	return hang(prefix, body, style, m.width)
}

// nbsp holds the place of a prefix in text being wrapped: the wrapping
// never breaks at it, and sanitised text never contains it (it is white
// space, which Sanitize makes a plain space).
const nbsp = "\u00a0"

// hang lays body out after prefix on lines width cells wide, its wrapped
// lines indented under its start, or under the time stamp if that column
// would be too narrow. A body of several lines keeps them: each starts on
// a line of its own, at the same column, with its own indentation (its
// wrapped lines under its text). Each line is styled on its own, so no
// style runs from one line into the next.
func hang(prefix, body string, style lipgloss.Style, width int) []string {
	prefixWidth := ansi.StringWidth(prefix)
	indent := prefixWidth
	if width-indent < minTextWidth {
		indent = min(timeWidth, prefixWidth)
	}
	lead := prefixWidth - indent // cells of the prefix beyond the indent
	column := max(width-indent, 1)
	var lines []string
	for i, paragraph := range strings.Split(body, "\n") {
		text := strings.TrimLeft(paragraph, " ")
		// Indentation as written, as far as it leaves a column to read.
		own := min(len(paragraph)-len(text), max(column-minTextWidth, 0))
		if i == 0 {
			text = strings.Repeat(nbsp, lead) + text
		}
		for _, line := range wrapWords(text, max(column-own, 1)) {
			lines = append(lines, strings.Repeat(" ", own)+line)
		}
	}
	pad := strings.Repeat(" ", indent)
	for i, line := range lines {
		if i == 0 {
			for range lead {
				line = strings.TrimPrefix(line, nbsp)
			}
			lines[i] = prefix + style.Render(line)
			continue
		}
		lines[i] = pad + style.Render(line)
	}
	return lines
}

// wrapWords breaks unstyled text into lines at most width cells wide (by
// display width), between words only: a name such as
// anonymous-otter-k3f9 stays whole. A word wider than a line is broken
// where it must be. Text whose width terminals disagree on (emoji with
// skin tones, joined emoji, flags) is measured at its widest and kept off
// the last column (screen.Fits), so no terminal wraps it.
func wrapWords(text string, width int) []string { return wrapWordsKeeping(text, width, false) }

// wrapWordsKeeping is wrapWords, but with keepLong a word wider than a
// line is not broken: it gets a line of its own (a command to copy from
// text the terminal prints, which it wraps as it must).
func wrapWordsKeeping(text string, width int, keepLong bool) []string {
	var lines []string
	var line strings.Builder
	used, sure := 0, true
	for word := range strings.SplitSeq(text, " ") {
		w, wordSure := screen.Cells(word)
		if used > 0 && screen.FitsCells(used+1+w, sure && wordSure, width) {
			line.WriteByte(' ')
			line.WriteString(word)
			used += 1 + w
			sure = sure && wordSure
			continue
		}
		if used > 0 || line.Len() > 0 {
			lines = append(lines, line.String())
			line.Reset()
		}
		for !keepLong && !screen.FitsCells(w, wordSure, width) {
			piece := screen.Cut(word, width)
			if piece == "" {
				// Not one character fits: the screen is narrower than
				// one, and cuts it.
				break
			}
			lines = append(lines, piece)
			word = word[len(piece):]
			w, wordSure = screen.Cells(word)
		}
		line.WriteString(word)
		used, sure = w, wordSure
	}
	return append(lines, line.String())
}

// counterWidth is the widest the input's character counter gets.
func (m *Model) counterWidth() int {
	return len(strconv.Itoa(inputCap)) + 1 + len(strconv.Itoa(safetext.MaxMessageRunes))
}

// View implements tea.Model: the lines of the screen.
func (m *Model) View() string {
	lines := m.Lines()
	width := m.width
	if m.tooSmall() {
		width = m.termWidth
	}
	text := make([]string, len(lines))
	for i, line := range lines {
		text[i] = line.Render(width)
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
	bodyChanged := false
	if m.frame.drawn != m.version {
		m.frame.body, m.frame.drawn, bodyChanged = m.drawBelowHeader(), m.version, true
	}
	width := m.width
	if m.tooSmall() {
		width = m.termWidth
	}
	if key := (headerKey{secondsLeft(m.remaining()), width}); key != m.frame.headerKey {
		m.frame.header, m.frame.headerKey = m.headerView(key.secondsLeft, width), key
		if !bodyChanged && m.frame.lines != nil {
			// The countdown's tick: only the header moved.
			m.frame.lines[0] = m.frame.header
			return m.frame.lines
		}
		bodyChanged = true
	}
	if bodyChanged || m.frame.lines == nil {
		// The renderer copies the lines before the next Update, so the
		// slice is reused.
		m.frame.lines = append(append(m.frame.lines[:0], m.frame.header), m.frame.body...)
	}
	return m.frame.lines
}

// drawBelowHeader lays out everything under the header. Every part is at
// most the screen's width already, so they are only gathered, not measured.
func (m *Model) drawBelowHeader() []screen.Line {
	m.frame.inputRow = 0
	if m.tooSmall() {
		return m.tooSmallView()
	}
	lines := make([]screen.Line, 0, m.height)
	add := func(text ...string) {
		for _, t := range text {
			lines = append(lines, screen.Line{Text: t})
		}
	}
	add(m.rule)
	if m.helpOpen {
		lines = append(lines, m.helpView(m.height-4)...)
		add(m.rule, m.footerView())
		return lines
	}
	// A status of several lines takes them from the conversation, which
	// keeps a line at least, and then from the share panel, which says
	// less. The input's rows beyond its first are taken first of all.
	status := m.statusLines()
	panel, conv := m.panel, m.conv.view()
	below := m.height - fixedLines - (m.inputShown - 1) + 1 // for the panel, the conversation and the status
	room := below - len(status)                             // for the panel and the conversation
	if len(panel) > room-1 {
		panel = m.sharePanelWithin(room - 1)
	}
	shown := max(room-len(panel), 1)
	status = status[:min(len(status), below-len(panel)-shown)]
	if len(conv) < shown {
		conv = append(make([]string, shown-len(conv)), conv...)
	}
	// The blank lines under a conversation shorter than its window go
	// first, then its oldest lines.
	for len(conv) > shown && conv[len(conv)-1] == "" {
		conv = conv[:len(conv)-1]
	}
	lines = append(lines, panel...)
	add(conv[len(conv)-shown:]...)
	add(m.lowerRule())
	add(status...)
	input, cursorRow := m.inputView()
	m.frame.inputRow = 1 + len(lines) + cursorRow // under the header
	lines = append(lines, input...)
	add(m.footerView())
	return lines
}

// tooSmallView replaces the layout on a terminal too small for it: what
// is on it would not fit, and a layout cut short misleads.
func (m *Model) tooSmallView() []screen.Line {
	height := min(m.termHeight, 500) - 1 // under the header
	if height <= 0 {
		return nil
	}
	text := fmt.Sprintf("Make the window larger: the chat needs at least %d×%d (this one is %d×%d). Until then keys do nothing but %s (leave).",
		minWidth, minHeight, m.termWidth, m.termHeight, keys.Leave.Help().Key)
	lines := make([]screen.Line, height)
	for i, t := range wrapWords(text, max(m.termWidth, 1)) {
		if i+1 >= height {
			break
		}
		lines[i+1] = screen.Line{Text: m.styles.notice.Render(t)}
	}
	return lines
}

// headerView is drawn every second, for every screen in the process, so
// it costs nothing to make: the title is this screen's, drawn once, and
// the countdown against the right edge comes from a table shared by every
// screen with the same colours.
func (m *Model) headerView(secs, width int) screen.Line {
	labelled := m.styles.countdowns.get(secs, true)
	switch rightWidth := len(destructsIn) + countdownWidth(secs); {
	case width-m.titleWidth-rightWidth >= 1:
		return screen.Line{Text: m.title, Right: labelled}
	case rightWidth <= width:
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

// sharePanel is shown while nobody else is in the room: the command to
// share while the room is open, or, while the partner is away, that their
// seat waits for them. It leaves the conversation a line at least, and
// says less on a short terminal rather than more cut short.
func (m *Model) sharePanel() []screen.Line {
	return m.sharePanelWithin(m.height - fixedLines - (m.inputShown - 1) - 1)
}

// sharePanelWithin is the share panel in room lines at most.
func (m *Model) sharePanelWithin(room int) []screen.Line {
	if m.partner != nil {
		return nil
	}
	var options [][]screen.Line
	if m.away != nil {
		name := safetext.Sanitize(m.away.Name)
		kept := m.text(m.styles.notice, name+" is away. Their seat is kept for them: only they can come back, with their own command.")
		reopen := m.text(m.styles.help, "If they lost it, ctrl+o gives their seat to someone new.")
		options = [][]screen.Line{join(kept, reopen, blank), join(kept, reopen), kept, reopen}
	} else {
		intro := m.text(m.styles.plain, "Your private room is ready. Share this command with ONE person:")
		command := m.command(m.shareCommand())
		waiting := m.text(m.styles.notice, "Waiting for them to join… ctrl+y copies the command.")
		short := m.text(m.styles.notice, "ctrl+y copies it")
		options = [][]screen.Line{
			join(intro, blank, command, blank, waiting, blank),
			join(intro, command, waiting),
			join(command, waiting),
			join(command, short),
			command,
		}
	}
	for _, lines := range options {
		if len(lines) <= room {
			return lines
		}
	}
	return nil
}

// shareCommand is the room's command as the panel shows it: whole where
// it fits, else in its narrow form, which fits more often (at 40 columns,
// "ssh -p2222 <room>@localhost").
func (m *Model) shareCommand() string {
	if m.narrow != "" && ansi.StringWidth(m.join) > m.width {
		return m.narrow
	}
	return m.join
}

var blank = []screen.Line{{}}

func join(parts ...[]screen.Line) []screen.Line {
	var out []screen.Line
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// text is words wrapped to the screen, each line styled.
func (m *Model) text(style lipgloss.Style, words string) []screen.Line {
	var out []screen.Line
	for _, line := range wrapWords(words, m.width) {
		out = append(out, screen.Line{Text: style.Render(line)})
	}
	return out
}

// command is a command to copy on a line of its own, never broken: too
// wide for the screen, it runs on into the blank lines below it, which
// the terminal wraps it onto (and most terminals copy as one line).
func (m *Model) command(cmd string) []screen.Line {
	width := ansi.StringWidth(cmd)
	switch {
	case width+2 <= m.width:
		return []screen.Line{{Text: "  " + m.styles.command.Render(cmd)}}
	case width <= m.width:
		return []screen.Line{{Text: m.styles.command.Render(cmd)}}
	}
	lines := make([]screen.Line, (width+m.width-1)/m.width)
	lines[0] = screen.Line{Text: m.styles.command.Render(cmd), Overflow: true}
	return lines
}

// lowerRule closes the conversation: it says who is typing and, while the
// reader is scrolled up, what is below.
func (m *Model) lowerRule() string {
	var left, right string
	if m.typing.partner && m.partner != nil {
		left = safetext.Sanitize(m.partner.Name) + " is typing…"
	}
	if !m.conv.atBottom() {
		switch {
		case m.unread == 1:
			right = "↓ 1 new message · end"
		case m.unread > 1:
			right = fmt.Sprintf("↓ %d new messages · end", m.unread)
		default:
			right = "↓ more below · end"
		}
	}
	if left == "" && right == "" {
		return m.rule
	}
	// "── name is typing… ────── ↓ 2 new messages · end ──"
	room := m.width - 4
	if right != "" {
		room -= ansi.StringWidth(right) + 2
	}
	if left != "" && ansi.StringWidth(left) > room {
		left = "typing…"
	}
	var b strings.Builder
	used := 0
	if left != "" {
		b.WriteString(m.styles.rule.Render("── "))
		b.WriteString(m.styles.notice.Render(left))
		b.WriteString(" ")
		used = 4 + ansi.StringWidth(left)
	}
	fill := m.width - used
	if right != "" {
		fill -= ansi.StringWidth(right) + 4
	}
	b.WriteString(m.styles.rule.Render(strings.Repeat("─", max(fill, 1))))
	if right != "" {
		b.WriteString(" ")
		b.WriteString(m.styles.notice.Render(right))
		b.WriteString(m.styles.rule.Render(" ──"))
	}
	return ansi.Truncate(b.String(), m.width, "")
}

// statusLines is the status under the messages, wrapped between words:
// never cut, it takes as many lines as it needs (see drawBelowHeader).
func (m *Model) statusLines() []string {
	text, style := m.statusText()
	if text == "" {
		return []string{""}
	}
	lines := wrapWords(text, m.width)
	for i, l := range lines {
		lines[i] = style.Render(l)
	}
	return lines
}

// statusText is what the status line says, and how it looks.
func (m *Model) statusText() (string, lipgloss.Style) {
	switch m.confirm {
	case confirmDestroy:
		return "Destroy this room and every message in it, for both of you? y/n", m.styles.warning
	case confirmReopen:
		name := "your partner"
		if m.away != nil {
			name = safetext.Sanitize(m.away.Name)
		}
		// What matters most before answering: the seat comes with the
		// conversation.
		return "Reopen " + name + "'s seat? Whoever takes it sees this chat. y/n", m.styles.warning
	}
	if m.reconnecting {
		text := "Reconnecting to the room… what you send waits and goes out when it is back."
		switch n := len(m.outbox); {
		case n == 1:
			text = "Reconnecting to the room… your message waits and goes out when it is back."
		case n >= maxWaiting:
			text = fmt.Sprintf("Reconnecting to the room… your %d messages wait (no more fit) and go out when it is back.", n)
		case n > 1:
			text = fmt.Sprintf("Reconnecting to the room… your %d messages wait and go out when it is back.", n)
		}
		return text, m.styles.warning
	}
	if m.now.Before(m.droppedUntil) {
		return "Too much input at once: some of what you sent was dropped.", m.styles.warning
	}
	if m.status == "" {
		return "", m.styles.notice
	}
	style := m.styles.notice
	if m.statusKind.isError() {
		style = m.styles.warning
	}
	return m.status, style
}

// counterView is the input's count of characters, against the limit.
func (m *Model) counterView() string {
	n := m.inputCount
	counter := strconv.Itoa(n) + "/" + strconv.Itoa(safetext.MaxMessageRunes)
	style := m.styles.counter
	if n > safetext.MaxMessageRunes || m.inputBytes > safetext.MaxMessageBytes {
		style = m.styles.warning
	}
	return style.Render(counter)
}

// The footers of the questions, which say what y and n do.
var (
	destroyAnswers = bindings{withHelp(keys.Confirm, "y", "destroy it"), withHelp(keys.Cancel, "n/esc", "keep it")}
	reopenAnswers  = bindings{withHelp(keys.Confirm, "y", "give it up"), withHelp(keys.Cancel, "n/esc", "keep it for them")}
	helpFooter     = bindings{keys.CloseHelp, keys.ScrollUp, keys.Leave}
)

// withHelp is b described otherwise.
func withHelp(b key.Binding, k, desc string) key.Binding {
	return key.NewBinding(key.WithKeys(b.Keys()...), key.WithHelp(k, desc))
}

// footerView is the key help, drawn again only when what it shows changes.
func (m *Model) footerView() string {
	fk := footerKey{
		width: m.width, confirm: m.confirm, help: m.helpOpen, bell: m.bell,
		alone: m.partner == nil && !m.sealed, away: m.away != nil,
	}
	if m.frame.footerKey == fk && m.frame.footer != "" {
		return m.frame.footer
	}
	var shown bindings
	switch {
	case fk.confirm == confirmDestroy:
		shown = destroyAnswers
	case fk.confirm == confirmReopen:
		shown = reopenAnswers
	case fk.help:
		shown = helpFooter
	default:
		// The keys nobody would guess come first; a narrow terminal cuts
		// the line short.
		shown = bindings{keys.Help}
		if fk.alone {
			shown = append(shown, keys.Copy)
		}
		if fk.away {
			shown = append(shown, keys.Reopen)
		}
		shown = append(shown, keys.Destroy, keys.Leave)
		if fk.bell {
			shown = append(shown, keys.BellOn)
		} else {
			shown = append(shown, keys.BellOff)
		}
		shown = append(shown, keys.ScrollUp)
	}
	bar := m.styles.helpBar // a copy: its width is this screen's
	bar.Width = m.width
	// help adds an item that does not fit whenever its ellipsis does not
	// fit either, so cut the line to the screen here.
	m.frame.footer, m.frame.footerKey = ansi.Truncate(bar.View(shown), m.width, "…"), fk
	return m.frame.footer
}
