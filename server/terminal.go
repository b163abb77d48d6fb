package server

import (
	"strings"

	"github.com/muesli/termenv"
)

// look is what the client's terminal can show, decided from what the
// client declared and nothing else: the terminal is never asked (some
// never answer, and the first screen must not wait).
type look struct {
	profile termenv.Profile
	// noColor: attributes (bold, underline, reverse video) but no
	// colours, asked for (NO_COLOR) or all the terminal has (a VT100).
	noColor bool
	// ownCursor: the terminal's own cursor marks the input, for
	// terminals that draw no reverse video, or cannot hide their cursor.
	ownCursor bool
}

// lookOf is the look of a terminal that declared env and term.
//
// termenv gives colours only to terminal types whose names say so, and
// its no-colour profile drops every attribute, the cursor's reverse video
// with them: TERM=vt100, screen or tmux showed nowhere where one types. A
// type known to draw attributes keeps them, without colours; one not known
// to (or that cannot hide its cursor, as a VT100 cannot) gets the
// terminal's own cursor in the input.
func lookOf(env []string, term string) look {
	profile, noColor := colorProfile(env, term)
	family := termFamily(term)
	attributes := profile != termenv.Ascii || attributeTerms[family]
	if profile == termenv.Ascii && attributes {
		profile, noColor = termenv.ANSI, true
	}
	return look{profile: profile, noColor: noColor, ownCursor: !attributes || cursorStays[family]}
}

// termFamily is the terminal type without its variant: xterm for
// xterm-256color, screen for screen.xterm-256color, vt100 for vt100-am.
func termFamily(term string) string {
	term = strings.ToLower(term)
	if i := strings.IndexAny(term, "-."); i >= 0 {
		term = term[:i]
	}
	return term
}

// attributeTerms are the terminal families whose terminfo entries have
// bold, underline and reverse video (bold, smul, rev), colours or not.
var attributeTerms = map[string]bool{
	"xterm": true, "screen": true, "tmux": true, "rxvt": true, "urxvt": true, "linux": true,
	"vt100": true, "vt102": true, "vt220": true, "vt320": true, "vt420": true, "vt520": true,
	"ansi": true, "cons25": true, "pcansi": true, "wsvt25": true, "putty": true, "konsole": true,
	"gnome": true, "vte": true, "alacritty": true, "kitty": true, "foot": true, "wezterm": true,
	"st": true, "iterm": true, "iterm2": true, "eterm": true, "mlterm": true, "cygwin": true,
	"mintty": true, "ms": true, "contour": true, "termite": true, "terminator": true,
}

// cursorStays are the families whose terminfo entries cannot hide the
// cursor (no civis): it shows wherever the last line ended unless it is
// put in the input.
var cursorStays = map[string]bool{"vt100": true, "vt102": true, "ansi": true, "cons25": true, "pcansi": true}
