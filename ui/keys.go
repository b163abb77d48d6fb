package ui

import "github.com/charmbracelet/bubbles/key"

// keyMap is every key the chat reacts to; the footer and the help view are
// built from it, so what is shown is what works. None of them types text:
// function keys and control keys only.
type keyMap struct {
	Send       key.Binding
	Newline    key.Binding
	ScrollUp   key.Binding
	ScrollDown key.Binding
	Newest     key.Binding
	Help       key.Binding
	CloseHelp  key.Binding
	Copy       key.Binding
	BellOn     key.Binding // the same key as BellOff, described by state
	BellOff    key.Binding
	Reopen     key.Binding
	Destroy    key.Binding
	Leave      key.Binding
	Confirm    key.Binding
	Cancel     key.Binding
}

// keys is every screen's key map; nothing changes it.
var keys = keyMap{
	Send: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
	// ctrl+j for the terminals that send alt+enter as enter.
	Newline:    key.NewBinding(key.WithKeys("alt+enter", "ctrl+j"), key.WithHelp("alt+enter", "new line")),
	ScrollUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup/pgdn", "scroll")),
	ScrollDown: key.NewBinding(key.WithKeys("pgdown")),
	Newest:     key.NewBinding(key.WithKeys("end"), key.WithHelp("end", "newest")),
	// ctrl+/ arrives as ctrl+_ from most terminals, for those that keep
	// F1 for themselves.
	Help:      key.NewBinding(key.WithKeys("f1", "ctrl+_"), key.WithHelp("f1", "help")),
	CloseHelp: key.NewBinding(key.WithKeys("esc", "f1", "ctrl+_"), key.WithHelp("esc", "close help")),
	Copy:      key.NewBinding(key.WithKeys("ctrl+y"), key.WithHelp("ctrl+y", "copy command")),
	BellOn:    key.NewBinding(key.WithKeys("ctrl+g"), key.WithHelp("ctrl+g", "bell on")),
	BellOff:   key.NewBinding(key.WithKeys("ctrl+g"), key.WithHelp("ctrl+g", "bell off")),
	Reopen:    key.NewBinding(key.WithKeys("ctrl+o"), key.WithHelp("ctrl+o", "reopen seat")),
	Destroy:   key.NewBinding(key.WithKeys("ctrl+x"), key.WithHelp("ctrl+x", "destroy room")),
	Leave:     key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "leave")),
	Confirm:   key.NewBinding(key.WithKeys("y", "Y"), key.WithHelp("y", "yes")),
	Cancel:    key.NewBinding(key.WithKeys("n", "N", "esc"), key.WithHelp("n/esc", "no")),
}

// bindings is a footer: the keys that matter in one state of the screen,
// in the order they matter (a narrow terminal cuts the line short).
type bindings []key.Binding

// ShortHelp implements help.KeyMap.
func (b bindings) ShortHelp() []key.Binding { return b }

// FullHelp implements help.KeyMap.
func (b bindings) FullHelp() [][]key.Binding { return [][]key.Binding{b} }
