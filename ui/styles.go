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
// colour profile and background, never from lipgloss's global renderer,
// which describes the server's terminal rather than the client's. The
// background is what the client declares (COLORFGBG), dark unless it says
// otherwise: nothing asks the client's terminal.
//
// Every screen with the same profile and background shares one set: they
// are several kilobytes, and a server holds thousands of screens.
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
	command    lipgloss.Style
	notice     lipgloss.Style
	warning    lipgloss.Style
	counter    lipgloss.Style
	prompt     lipgloss.Style
	help       lipgloss.Style
	key        lipgloss.Style
	// placeholder is the input's hint while nothing is typed, and
	// placeholderText the hint: without colour, it is in brackets, so it
	// cannot pass for typed text.
	placeholder     lipgloss.Style
	placeholderText string
	// helpBar draws the key help; a screen copies it to set its width.
	helpBar help.Model
	// countdowns is the header's right part for every second left.
	countdowns *countdowns
}

// shade is one colour as each colour profile shows it; "" leaves the
// terminal's own foreground.
type shade struct{ trueColor, ansi256, ansi string }

// tone is a colour role on either background. The 16-colour values are
// indexes into the terminal's own palette, so they are chosen for contrast
// with the common palettes' black and white (see the contrast test).
type tone struct{ dark, light shade }

var (
	accent   = tone{dark: shade{"#5fd7ff", "81", "14"}, light: shade{"#005f87", "24", "4"}}
	partnerC = tone{dark: shade{"#ff87d7", "212", "13"}, light: shade{"#870087", "90", "5"}}
	muted    = tone{dark: shade{"#8a8a8a", "245", "8"}, light: shade{"#626262", "241", "8"}}
	alert    = tone{dark: shade{"#ff5f5f", "203", "9"}, light: shade{"#af0000", "124", "1"}}
	// No yellow of the 16 reads on white: there notices take the
	// terminal's own colour, in bold.
	noticeC = tone{dark: shade{"#ffd75f", "221", "11"}, light: shade{"#875f00", "94", ""}}
)

// tones lists every colour role, for the contrast test.
var tones = map[string]tone{"accent": accent, "partner": partnerC, "muted": muted, "alert": alert, "notice": noticeC}

// pick is t's colour for profile on the background, "" for none.
func (t tone) pick(profile termenv.Profile, light bool) string {
	sh := t.dark
	if light {
		sh = t.light
	}
	switch profile {
	case termenv.TrueColor:
		return sh.trueColor
	case termenv.ANSI256:
		return sh.ansi256
	case termenv.ANSI:
		return sh.ansi
	}
	return ""
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

// look is what a set of styles is made for: the terminal's profile, its
// background, and whether its person asked for no colour (NO_COLOR), which
// drops the colours and keeps bold, italics and the cursor's reverse video.
type look struct {
	profile termenv.Profile
	light   bool
	noColor bool
}

// colour is t's colour in this look, "" for none.
func (l look) colour(t tone) string {
	if l.noColor {
		return ""
	}
	return t.pick(l.profile, l.light)
}

var sharedStyles sync.Map // look -> *styles

// stylesFor returns the styles for a look, built once per process.
func stylesFor(key look) *styles {
	if st, ok := sharedStyles.Load(key); ok {
		return st.(*styles)
	}
	// Rendering only reads the renderer's profile; it never writes to its
	// output, so one renderer serves every screen.
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(key.profile)
	r.SetHasDarkBackground(!key.light)
	st, _ := sharedStyles.LoadOrStore(key, newStyles(r, key))
	return st.(*styles)
}

func newStyles(r *lipgloss.Renderer, l look) *styles {
	colour := func(style lipgloss.Style, t tone) lipgloss.Style {
		if c := l.colour(t); c != "" {
			return style.Foreground(lipgloss.Color(c))
		}
		return style
	}
	st := &styles{
		plain:      r.NewStyle(),
		header:     r.NewStyle().Bold(true),
		countdown:  r.NewStyle().Bold(true),
		lastMinute: colour(r.NewStyle().Bold(true), alert),
		rule:       colour(r.NewStyle(), muted),
		time:       colour(r.NewStyle(), muted),
		me:         colour(r.NewStyle().Bold(true), accent),
		partner:    colour(r.NewStyle().Bold(true), partnerC),
		system:     colour(r.NewStyle().Italic(true), muted),
		command:    colour(r.NewStyle().Bold(true), accent),
		notice:     colour(r.NewStyle(), noticeC),
		warning:    colour(r.NewStyle().Bold(true), alert),
		counter:    colour(r.NewStyle(), muted),
		prompt:     colour(r.NewStyle(), accent),
		help:       colour(r.NewStyle(), muted),
		key:        colour(r.NewStyle().Bold(true), muted),
	}
	st.placeholder, st.placeholderText = st.help, "type a message, enter to send"
	if l.colour(muted) == "" {
		st.placeholder, st.placeholderText = st.help.Faint(true), "(type a message, enter to send)"
	}
	if l.colour(noticeC) == "" {
		st.notice = st.notice.Bold(true)
	}
	if l.colour(alert) == "" {
		// Without colour what is urgent still stands out: the last
		// minute in reverse video, warnings underlined.
		st.lastMinute = st.lastMinute.Reverse(true)
		st.warning = st.warning.Underline(true)
	}
	st.countdowns = &countdowns{label: wrapOf(st.help), normal: wrapOf(st.countdown), lastMinute: wrapOf(st.lastMinute)}
	st.helpBar = help.New()
	st.helpBar.Styles = help.Styles{
		ShortKey:       st.key,
		ShortDesc:      st.help,
		ShortSeparator: st.help,
		Ellipsis:       st.help,
		FullKey:        st.key,
		FullDesc:       st.help,
		FullSeparator:  st.help,
	}
	return st
}
