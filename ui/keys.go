package ui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key the chat reacts to; the help line is built from it,
// so what is shown is what works.
type keyMap struct {
	Send       key.Binding
	ScrollUp   key.Binding
	ScrollDown key.Binding
	Destroy    key.Binding
	Leave      key.Binding
	Confirm    key.Binding
	Cancel     key.Binding
}

// keys is every screen's key map; nothing changes it.
var keys = keyMap{
	Send:       key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
	ScrollUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup/pgdn", "scroll")),
	ScrollDown: key.NewBinding(key.WithKeys("pgdown")),
	Destroy:    key.NewBinding(key.WithKeys("ctrl+x"), key.WithHelp("ctrl+x", "destroy room")),
	Leave:      key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "leave")),
	Confirm:    key.NewBinding(key.WithKeys("y", "Y"), key.WithHelp("y", "destroy it")),
	Cancel:     key.NewBinding(key.WithKeys("n", "N", "esc"), key.WithHelp("n/esc", "keep it")),
}

// ShortHelp implements help.KeyMap for the chatting state. A narrow
// terminal cuts the line short, so the keys nobody would guess come first.
func (k keyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.Destroy, k.Leave, k.Send, k.ScrollUp}
}

// FullHelp implements help.KeyMap.
func (k keyMap) FullHelp() [][]key.Binding { return [][]key.Binding{k.ShortHelp()} }

// confirmKeys is the help shown while a destroy waits for confirmation.
type confirmKeys keyMap

func (k confirmKeys) ShortHelp() []key.Binding  { return []key.Binding{k.Confirm, k.Cancel} }
func (k confirmKeys) FullHelp() [][]key.Binding { return [][]key.Binding{k.ShortHelp()} }
