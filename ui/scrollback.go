package ui

import (
	"github.com/charmbracelet/x/ansi"
)

// The scrollback is bounded in bytes as well as in entries: a partner who
// sends the largest messages as fast as allowed must not make a screen keep
// megabytes (a thousand of them, drawn, once took 8 MB a session).
const (
	// scrollbackBytes bounds what the entries hold: their text and their
	// drawn lines (see entry.measure). The largest message, drawn on the
	// narrowest screen, holds up to 12 KiB, so 22 of them or more stay to
	// scroll back to, and ordinary talk (a few hundred bytes an entry)
	// reaches maxEntries first. A screen flooded with them keeps 0.26-0.27
	// MiB of live heap, 0.3-0.43 MiB of heap in use (see
	// BenchmarkScrollbackMemory), where a thousand entries took 10 MiB:
	// with the rest of a session (~125 KiB idle), a session stays well
	// under 1 MiB.
	scrollbackBytes = 256 << 10
	// entryOverhead is what an entry holds besides its text and lines:
	// itself, its message and the headers of its strings.
	entryOverhead = 256
	// lineOverhead is what a drawn line holds besides its bytes: its
	// string header in the entry and again in the conversation, and the
	// slack of their slices and of the line's allocation.
	lineOverhead = 48
)

// forgottenText heads the conversation once older entries were let go. It
// fits the narrowest screen (minWidth).
const forgottenText = "· older messages are no longer kept here"

// measure is what e holds as drawn, in bytes.
func (e *entry) measure() int {
	n := entryOverhead + len(e.notice) + len(e.drawn)*lineOverhead
	if e.msg != nil {
		n += len(e.msg.ID) + len(e.msg.From.ID) + len(e.msg.From.Name) + len(e.msg.Body)
	}
	for _, line := range e.drawn {
		n += len(line)
	}
	return n
}

// drawEntry draws e at the screen's width, unless it is drawn already.
func (m *Model) drawEntry(e *entry) {
	if e.drawnWidth == m.width {
		return
	}
	e.drawn, e.drawnWidth = m.renderEntry(*e), m.width
	m.kept -= e.cost
	e.cost = e.measure()
	m.kept += e.cost
}

// addEntry appends e to the conversation, letting the oldest entries go
// while there are too many, or they hold too much.
func (m *Model) addEntry(e entry) {
	m.entries = append(m.entries, e)
	if m.width == 0 {
		return // not laid out yet: the layout draws it
	}
	added := &m.entries[len(m.entries)-1]
	m.drawEntry(added)
	// The others are drawn already: only the new one's lines are added,
	// and the lines of those that go are dropped.
	over, lines := 0, 0
	for kept, n := m.kept, len(m.entries); over < n-1 && (n-over > maxEntries || kept > scrollbackBytes); over++ {
		kept -= m.entries[over].cost
		lines += len(m.entries[over].drawn)
	}
	if over > 0 {
		m.forget(over)
		m.conv.drop(lines, m.forgottenLine())
	}
	m.conv.add(added.drawn)
}

// refreshConversation gathers the lines of the entries, drawing those not
// yet drawn at this width, newest first: the oldest that no longer fit
// (the width changed, or a joiner's history is long) go undrawn.
func (m *Model) refreshConversation() {
	first, kept := 0, 0
	for i := len(m.entries) - 1; i >= 0; i-- {
		e := &m.entries[i]
		m.drawEntry(e)
		if kept += e.cost; i < len(m.entries)-1 && (len(m.entries)-i > maxEntries || kept > scrollbackBytes) {
			first = i + 1
			break
		}
	}
	m.forget(first)
	// Once entries were let go, the conversation says so at its top.
	noticed := m.conv.noticed || first > 0
	var lines []string
	if noticed {
		lines = append(lines, m.forgottenLine())
	}
	for i := range m.entries {
		lines = append(lines, m.entries[i].drawn...)
	}
	m.conv.set(lines, noticed)
}

// forget lets the oldest n entries go.
func (m *Model) forget(n int) {
	if n == 0 {
		return
	}
	for i := range m.entries[:n] {
		m.kept -= m.entries[i].cost
	}
	clear(m.entries[:n])
	m.entries = m.entries[n:]
}

// forgottenLine is forgottenText as drawn at the screen's width.
func (m *Model) forgottenLine() string {
	return m.styles.system.Render(ansi.Truncate(forgottenText, m.width, "…"))
}
