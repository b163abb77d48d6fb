package screen

import (
	"strings"
	"unicode"

	"github.com/charmbracelet/x/ansi"
	"github.com/mattn/go-runewidth"
	"github.com/rivo/uniseg"
)

// Terminals disagree on how wide some characters are. One that knows
// grapheme clusters draws 👍🏽 two cells wide, as the server counts it; one
// that does not (tmux) draws each code point on its own, 👍 and 🏽 two
// cells each. A line measured one way and drawn the other runs past the
// screen's edge and wraps onto the row below, which the screen believes
// unchanged. So text whose width is uncertain is laid out for the widest
// a terminal may draw it, and never reaches the last column.

// perRune measures code points on their own, as a terminal that knows
// nothing of clusters does, whatever the server's locale.
var perRune = &runewidth.Condition{}

// Cells is how many cells s (which may hold escape sequences) takes at most
// on any terminal, and whether every terminal agrees on it. Text that is
// not sure is laid out one cell short of the edge (see Fits).
func Cells(s string) (cells int, sure bool) {
	if simple(s) {
		return ansi.StringWidth(s), true
	}
	plain := ansi.Strip(s)
	counted := ansi.StringWidth(plain)
	widest, state := 0, -1
	for plain != "" {
		var cluster string
		var width int
		cluster, plain, width, state = uniseg.FirstGraphemeClusterInString(plain, state)
		widest += max(width, clusterCells(cluster))
	}
	widest = max(widest, counted)
	return widest, widest == counted
}

// Fits reports whether s can be drawn in width cells on every terminal: at
// its widest, and short of the last column if its width is uncertain.
func Fits(s string, width int) bool {
	cells, sure := Cells(s)
	return FitsCells(cells, sure, width)
}

// FitsCells is Fits for text that Cells measured.
func FitsCells(cells int, sure bool, width int) bool {
	if !sure {
		cells++
	}
	return cells <= width
}

// clusterCells is how wide a terminal that draws code points one by one
// draws cluster.
func clusterCells(cluster string) int {
	cells := 0
	for _, r := range cluster {
		switch {
		case r == '\u200d' || (r >= '\ufe00' && r <= '\ufe0f') || unicode.In(r, unicode.Mn, unicode.Me):
			// Joiners, variation selectors and combining marks take no
			// cell of their own anywhere.
		case (r >= 0x1f1e6 && r <= 0x1f1ff) || (r >= 0x1f3fb && r <= 0x1f3ff):
			// Regional indicators and skin tones: two cells each where
			// they stand alone.
			cells += 2
		default:
			cells += max(perRune.RuneWidth(r), 1)
		}
	}
	return cells
}

// simple reports text in which every character is a cluster of its own
// whose width terminals agree on: ASCII, Latin, and the punctuation,
// arrows and box drawing the screen draws itself. It spares measuring
// nearly every line twice.
func simple(s string) bool {
	for _, r := range s {
		if r < 0x300 || (r >= 0x2010 && r < 0x20d0) || (r >= 0x2100 && r < 0x2600) {
			continue
		}
		return false
	}
	return true
}

// Cut shortens s so that it fits in width cells on every terminal (see
// Fits), whole clusters only. Its styling is dropped when it is cut: it is
// the last defence against a line laid out too wide, not a layout.
func Cut(s string, width int) string {
	if Fits(s, width) {
		return s
	}
	plain := ansi.Strip(s)
	var b strings.Builder
	used, sure, state := 0, true, -1
	for plain != "" {
		var cluster string
		var w int
		cluster, plain, w, state = uniseg.FirstGraphemeClusterInString(plain, state)
		cells, clusterSure := Cells(cluster)
		cells = max(cells, w)
		if !FitsCells(used+cells, sure && clusterSure, width) {
			break
		}
		used += cells
		sure = sure && clusterSure
		b.WriteString(cluster)
	}
	return b.String()
}
