// Package screentest emulates terminals for tests of what a screen shows,
// including terminals that draw some characters wider than the server
// counts them, as real ones do.
package screentest

import (
	"strings"
	"sync"

	"github.com/charmbracelet/x/ansi"
	"github.com/hinshun/vt10x"
	"github.com/mattn/go-runewidth"
)

// Widths is how many cells a terminal draws a grapheme cluster in.
type Widths func(cluster string) int

// Clusters is a terminal that knows grapheme clusters: it draws each as
// wide as the server counts it.
func Clusters(cluster string) int { return ansi.StringWidth(cluster) }

// CodePoints is a terminal that does not (tmux 3.3): it draws each code
// point on its own, 👍🏽 as 👍 and 🏽, two cells each.
func CodePoints(cluster string) int {
	cells := 0
	for _, r := range cluster {
		if r == '\u200d' || (r >= '\ufe00' && r <= '\ufe0f') {
			continue
		}
		cells += runewidth.RuneWidth(r)
	}
	return cells
}

// VisibleJoiners is wider still than any terminal in use: it draws code
// points on their own and gives joiners and variation selectors a cell of
// their own too. No layout can plan for it; the screen must still leave
// no trace of it on the rows around.
func VisibleJoiners(cluster string) int {
	cells := 0
	for _, r := range cluster {
		cells += max(runewidth.RuneWidth(r), 1)
	}
	return cells
}

// Terminal is an emulated terminal: vt10x, which gives every code point one
// cell, fed text in which every cluster wider than a cell became a head and
// fillers, one per cell that Widths gives it.
type Terminal struct {
	mu       sync.Mutex
	vt       vt10x.Terminal
	widths   Widths
	pending  []byte   // bytes not yet fed: a write may end inside a cluster
	clusters []string // what each head stands for
	index    map[string]int
	all      strings.Builder
}

// Private-use code points stand for the clusters: a head for each cluster
// (the first of its cells), a filler for each of its other cells.
const (
	headBase = 0xf0000
	filler   = 0xe000
)

// New returns a terminal of cols×rows cells that draws clusters as wide as
// widths says.
func New(cols, rows int, widths Widths) *Terminal {
	return &Terminal{vt: vt10x.New(vt10x.WithSize(cols, rows)), widths: widths, index: map[string]int{}}
}

// Write takes what a program writes to the terminal. It is drawn when the
// screen is read: a frame may arrive in several writes.
func (t *Terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = append(t.pending, p...)
	t.all.Write(p)
	return len(p), nil
}

// Output is everything written so far, raw.
func (t *Terminal) Output() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.all.String()
}

// flush feeds vt10x what was written since the last read.
func (t *Terminal) flush() {
	var out []byte
	var state byte
	in := t.pending
	for len(in) > 0 {
		seq, _, n, next := ansi.DecodeSequence(in, state, nil)
		state = next
		in = in[n:]
		if len(seq) == 0 || seq[0] < 0x80 {
			out = append(out, seq...)
			continue
		}
		cluster := string(seq)
		k, ok := t.index[cluster]
		if !ok {
			k = len(t.clusters)
			t.clusters = append(t.clusters, cluster)
			t.index[cluster] = k
		}
		cells := t.widths(cluster)
		if cells == 0 {
			continue
		}
		out = append(out, string(rune(headBase+k))...)
		for range cells - 1 {
			out = append(out, string(rune(filler))...)
		}
	}
	t.pending = t.pending[:0]
	_, _ = t.vt.Write(out)
}

// Rows is what the terminal shows, row by row, without trailing blanks.
func (t *Terminal) Rows() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush()
	t.vt.Lock()
	defer t.vt.Unlock()
	cols, rows := t.vt.Size()
	out := make([]string, rows)
	for y := range rows {
		var b strings.Builder
		for x := range cols {
			switch c := t.vt.Cell(x, y).Char; {
			case c == filler:
			case c >= headBase && int(c-headBase) < len(t.clusters):
				b.WriteString(t.clusters[c-headBase])
			case c == 0:
				b.WriteByte(' ')
			default:
				b.WriteRune(c)
			}
		}
		out[y] = strings.TrimRight(b.String(), " ")
	}
	return out
}

// Resize makes the terminal cols×rows cells, as a person resizing the
// window does.
func (t *Terminal) Resize(cols, rows int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush()
	t.vt.Resize(cols, rows)
}

// Cursor is where the terminal's cursor is, in cells from the top left,
// and whether it is shown.
func (t *Terminal) Cursor() (row, col int, shown bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush()
	t.vt.Lock()
	defer t.vt.Unlock()
	c := t.vt.Cursor()
	return c.Y, c.X, t.vt.CursorVisible()
}

// Reverse reports whether the cell at row and col is drawn in reverse video.
func (t *Terminal) Reverse(row, col int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.flush()
	t.vt.Lock()
	defer t.vt.Unlock()
	const attrReverse = 1 // vt10x's first attribute bit
	return t.vt.Cell(col, row).Mode&attrReverse != 0
}
