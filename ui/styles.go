package ui

import "github.com/charmbracelet/lipgloss"

// styles are built from the session's own renderer, never lipgloss's global
// one, which describes the server's terminal rather than the client's. The
// colours are mid-tones that read on dark and light backgrounds alike, so
// nothing has to ask the client's terminal for its background colour.
type styles struct {
	header     lipgloss.Style
	countdown  lipgloss.Style
	lastMinute lipgloss.Style
	rule       lipgloss.Style
	time       lipgloss.Style
	me         lipgloss.Style
	partner    lipgloss.Style
	system     lipgloss.Style
	share      lipgloss.Style
	command    lipgloss.Style
	notice     lipgloss.Style
	warning    lipgloss.Style
	counter    lipgloss.Style
	prompt     lipgloss.Style
	help       lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	const (
		cyan    = lipgloss.Color("6")
		magenta = lipgloss.Color("5")
		red     = lipgloss.Color("1")
		yellow  = lipgloss.Color("3")
		grey    = lipgloss.Color("8")
	)
	return styles{
		header:     r.NewStyle().Bold(true),
		countdown:  r.NewStyle().Bold(true),
		lastMinute: r.NewStyle().Bold(true).Foreground(red),
		rule:       r.NewStyle().Foreground(grey),
		time:       r.NewStyle().Foreground(grey),
		me:         r.NewStyle().Bold(true).Foreground(cyan),
		partner:    r.NewStyle().Bold(true).Foreground(magenta),
		system:     r.NewStyle().Italic(true).Foreground(grey),
		share:      r.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(cyan).Padding(0, 2),
		command:    r.NewStyle().Bold(true).Foreground(cyan),
		notice:     r.NewStyle().Foreground(yellow),
		warning:    r.NewStyle().Bold(true).Foreground(red),
		counter:    r.NewStyle().Foreground(grey),
		prompt:     r.NewStyle().Foreground(cyan),
		help:       r.NewStyle().Foreground(grey),
	}
}
