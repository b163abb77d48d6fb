package ui

import (
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// recallKey brings the last message back into an empty input: the one
// last sent, or a draft erased since (whichever came later), to send again
// or to fix.
var recallKey = tea.KeyUp

// remember keeps text as what recallKey brings back.
func (m *Model) remember(text string) {
	if text != "" {
		m.recall = text
	}
}

// recallLast puts the remembered message into the input, if it is empty
// and there is one, and reports whether it did.
func (m *Model) recallLast() bool {
	if m.input.Value() != "" || m.recall == "" {
		return false
	}
	m.input.SetValue(m.recall)
	m.input.CursorEnd()
	m.updateInputStatus()
	m.typing.lastKey = time.Now()
	return true
}
