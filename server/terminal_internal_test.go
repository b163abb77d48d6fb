package server

import (
	"testing"

	"github.com/muesli/termenv"
)

// Every terminal type shows where one types: with reverse video where it
// has it and can hide its own cursor, with its own cursor otherwise; and
// keeps bold and underline where it has them, colours or not.
func TestEveryTerminalLooksAsItCan(t *testing.T) {
	for _, c := range []struct {
		env  []string
		term string
		want look
	}{
		{nil, "xterm-256color", look{profile: termenv.ANSI256}},
		{[]string{"COLORTERM=truecolor"}, "xterm-256color", look{profile: termenv.TrueColor}},
		{[]string{"NO_COLOR=1"}, "xterm-256color", look{profile: termenv.ANSI256, noColor: true}},
		{nil, "linux", look{profile: termenv.ANSI}},
		{[]string{"NO_COLOR=1"}, "linux", look{profile: termenv.ANSI, noColor: true}},
		// termenv finds no colour in these names, and would drop the
		// attributes with the colours.
		{nil, "screen", look{profile: termenv.ANSI, noColor: true}},
		{nil, "tmux", look{profile: termenv.ANSI, noColor: true}},
		{nil, "st", look{profile: termenv.ANSI, noColor: true}},
		{nil, "vt220", look{profile: termenv.ANSI, noColor: true}},
		// A VT100 has reverse video but cannot hide its cursor.
		{nil, "vt100", look{profile: termenv.ANSI, noColor: true, ownCursor: true}},
		{[]string{"NO_COLOR=1"}, "vt100", look{profile: termenv.ANSI, noColor: true, ownCursor: true}},
		{nil, "ansi", look{profile: termenv.ANSI, ownCursor: true}},
		// Nothing known of it: no escape beyond the layout's, its own
		// cursor in the input.
		{nil, "", look{profile: termenv.Ascii, ownCursor: true}},
		{nil, "unknown", look{profile: termenv.Ascii, ownCursor: true}},
		{nil, "vt52", look{profile: termenv.Ascii, ownCursor: true}},
	} {
		if got := lookOf(c.env, c.term); got != c.want {
			t.Errorf("TERM=%q %v: %+v, want %+v", c.term, c.env, got, c.want)
		}
	}
}
