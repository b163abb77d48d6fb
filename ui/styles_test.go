package ui

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/muesli/termenv"
)

// xterm16 is xterm's default 16-colour palette, the reference for what
// the 16 colour indexes look like (terminals' themes vary around it).
var xterm16 = [16][3]uint8{
	{0x00, 0x00, 0x00}, {0xcd, 0x00, 0x00}, {0x00, 0xcd, 0x00}, {0xcd, 0xcd, 0x00},
	{0x00, 0x00, 0xee}, {0xcd, 0x00, 0xcd}, {0x00, 0xcd, 0xcd}, {0xe5, 0xe5, 0xe5},
	{0x7f, 0x7f, 0x7f}, {0xff, 0x00, 0x00}, {0x00, 0xff, 0x00}, {0xff, 0xff, 0x00},
	{0x5c, 0x5c, 0xff}, {0xff, 0x00, 0xff}, {0x00, 0xff, 0xff}, {0xff, 0xff, 0xff},
}

// rgb is what a colour value of profile shows, on xterm's palette.
func rgb(t *testing.T, profile termenv.Profile, value string) [3]uint8 {
	t.Helper()
	if profile == termenv.TrueColor {
		var c [3]uint8
		if _, err := fmt.Sscanf(value, "#%02x%02x%02x", &c[0], &c[1], &c[2]); err != nil {
			t.Fatalf("colour %q: %v", value, err)
		}
		return c
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 0 || n > 255 || (profile == termenv.ANSI && n > 15) {
		t.Fatalf("colour %q is not a colour of %v", value, profile)
	}
	switch {
	case n < 16:
		return xterm16[n]
	case n < 232:
		level := func(i int) uint8 { return [6]uint8{0, 95, 135, 175, 215, 255}[i] }
		n -= 16
		return [3]uint8{level(n / 36), level(n / 6 % 6), level(n % 6)}
	}
	g := uint8(8 + 10*(n-232))
	return [3]uint8{g, g, g}
}

// luminance is WCAG 2's relative luminance.
func luminance(c [3]uint8) float64 {
	lin := func(v uint8) float64 {
		s := float64(v) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c[0]) + 0.7152*lin(c[1]) + 0.0722*lin(c[2])
}

func contrast(a, b [3]uint8) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

// Every colour the screen uses reads on the background it is chosen for:
// WCAG's 4.5:1 for text, against black for dark backgrounds and white for
// light ones. In the 16-colour palette, whose colours each terminal theme
// redefines, the reference is xterm's, and the grey of secondary text
// (time stamps, rules, key help) may go down to 3.5:1, more than WCAG's
// 3:1 for large text: no grey of those 16 does better on white.
func TestEveryColourIsLegibleOnItsBackground(t *testing.T) {
	black, white := [3]uint8{0, 0, 0}, [3]uint8{255, 255, 255}
	for name, tone := range tones {
		for _, light := range []bool{false, true} {
			bg := black
			if light {
				bg = white
			}
			for _, profile := range []termenv.Profile{termenv.ANSI, termenv.ANSI256, termenv.TrueColor} {
				value := tone.pick(profile, light)
				if value == "" {
					continue // the terminal's own foreground
				}
				want := 4.5
				if profile == termenv.ANSI && name == "muted" {
					want = 3.5
				}
				if got := contrast(rgb(t, profile, value), bg); got < want {
					t.Errorf("%s on a %s background in %v (%s): contrast %.2f, want at least %.1f",
						name, map[bool]string{false: "dark", true: "light"}[light], profile, value, got, want)
				}
			}
		}
	}
}

// Without colour (NO_COLOR) nothing is coloured, and the urgent still
// stands out: the last minute in reverse video, warnings underlined.
func TestNoColorKeepsTheUrgentApart(t *testing.T) {
	st := stylesFor(look{termenv.ANSI256, false, true})
	for name, got := range map[string]string{
		"last minute": st.lastMinute.Render("0:59"), "warning": st.warning.Render("Not sent"),
		"accent": st.me.Render("you"), "notice": st.notice.Render("Bell on"),
	} {
		for _, p := range sgrParams(got) {
			if p == "38" || (len(p) == 2 && (p[0] == '3' || p[0] == '9')) {
				t.Errorf("%s is coloured: %q", name, got)
			}
		}
	}
	if got := sgrParams(st.lastMinute.Render("0:59")); !slices.Contains(got, "7") {
		t.Errorf("the last minute is not in reverse video: %q", got)
	}
	if got := sgrParams(st.warning.Render("Not sent")); !slices.Contains(got, "4") {
		t.Errorf("a warning is not underlined: %q", got)
	}
}

var sgr = regexp.MustCompile(`\x1b\[([0-9;]*)m`)

// sgrParams lists the parameters of every SGR sequence in s.
func sgrParams(s string) []string {
	var out []string
	for _, m := range sgr.FindAllStringSubmatch(s, -1) {
		out = append(out, strings.Split(m[1], ";")...)
	}
	return out
}
