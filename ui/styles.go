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
	// The header's right part, styled in advance: it is drawn every
	// second for every screen.
	destructsIn                   string
	countdownWrap, lastMinuteWrap wrapping
}

// destructsIn comes before the countdown.
const destructsIn = "self-destructs in "

// wrapping is what a style puts around a text, for texts drawn too often
// to style each time. It holds for styles without width, padding or
// borders, which make the wrapping depend on the text.
type wrapping struct{ open, close string }

func wrapOf(style lipgloss.Style) wrapping {
	const mark = "@" // never part of an escape sequence
	open, close, _ := strings.Cut(style.Render(mark), mark)
	return wrapping{open, close}
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
	st.destructsIn = st.help.Render(destructsIn)
	st.countdownWrap, st.lastMinuteWrap = wrapOf(st.countdown), wrapOf(st.lastMinute)
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
