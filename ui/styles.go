package ui

import (
	"io"
	"strings"
	"sync"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// styles are what a screen is drawn with. They are built for the client's
// colour profile, never from lipgloss's global renderer, which describes
// the server's terminal rather than the client's. The colours are
// mid-tones that read on dark and light backgrounds alike, so nothing has
// to ask the client's terminal for its background colour.
//
// Every screen with the same profile shares one set: they are several
// kilobytes, and a server holds thousands of screens.
type styles struct {
	plain      lipgloss.Style
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
	// helpBar draws the key help; a screen copies it to set its width.
	helpBar help.Model
	// countdowns is the header's right part for every second left.
	countdowns *countdowns
}

// destructsIn comes before the countdown.
const destructsIn = "self-destructs in "

// countdowns are the countdown's texts, styled, made once for each second
// left and shared by every screen with the same colours: a countdown is
// drawn every second on every screen.
type countdowns struct {
	label, normal, lastMinute wrapping

	mu       sync.RWMutex
	labelled []string // by seconds left: "self-destructs in 9:59"
	bare     []string // "9:59"
}

// wrapping is what a style puts around a text, for texts drawn too often
// to style each time. It holds for styles without width, padding or
// borders, which make the wrapping depend on the text.
type wrapping struct{ open, close string }

func wrapOf(style lipgloss.Style) wrapping {
	const mark = "@" // never part of an escape sequence
	open, close, _ := strings.Cut(style.Render(mark), mark)
	return wrapping{open, close}
}

// maxCountdowns bounds the table: rooms live 10 minutes by default; a
// countdown of hours is drawn each time until its last hour.
const maxCountdowns = 3600

// get returns the countdown for secs, with its label or without.
func (c *countdowns) get(secs int, labelled bool) string {
	if secs >= maxCountdowns {
		return c.render(secs, labelled)
	}
	c.mu.RLock()
	if secs < len(c.bare) {
		defer c.mu.RUnlock()
		if labelled {
			return c.labelled[secs]
		}
		return c.bare[secs]
	}
	c.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for n := len(c.bare); n <= secs; n++ {
		c.bare = append(c.bare, c.render(n, false))
		c.labelled = append(c.labelled, c.render(n, true))
	}
	if labelled {
		return c.labelled[secs]
	}
	return c.bare[secs]
}

func (c *countdowns) render(secs int, labelled bool) string {
	wrap := c.normal
	if secs <= 60 {
		wrap = c.lastMinute
	}
	bare := wrap.open + formatSeconds(secs) + wrap.close
	if !labelled {
		return bare
	}
	return c.label.open + destructsIn + c.label.close + bare
}

var sharedStyles sync.Map // termenv.Profile -> *styles

// stylesFor returns the styles for profile, built once per process.
func stylesFor(profile termenv.Profile) *styles {
	if st, ok := sharedStyles.Load(profile); ok {
		return st.(*styles)
	}
	// Rendering only reads the renderer's profile; it never writes to its
	// output, so one renderer serves every screen.
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(profile)
	r.SetHasDarkBackground(true)
	st, _ := sharedStyles.LoadOrStore(profile, newStyles(r))
	return st.(*styles)
}

func newStyles(r *lipgloss.Renderer) *styles {
	const (
		cyan    = lipgloss.Color("6")
		magenta = lipgloss.Color("5")
		red     = lipgloss.Color("1")
		yellow  = lipgloss.Color("3")
		grey    = lipgloss.Color("8")
	)
	st := &styles{
		plain:      r.NewStyle(),
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
	st.countdowns = &countdowns{label: wrapOf(st.help), normal: wrapOf(st.countdown), lastMinute: wrapOf(st.lastMinute)}
	st.helpBar = help.New()
	st.helpBar.Styles = help.Styles{
		ShortKey:       st.help.Bold(true),
		ShortDesc:      st.help,
		ShortSeparator: st.help,
		Ellipsis:       st.help,
		FullKey:        st.help.Bold(true),
		FullDesc:       st.help,
		FullSeparator:  st.help,
	}
	return st
}
