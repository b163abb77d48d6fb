package ui

// conversation is the scrolling part of the screen: the lines of every
// entry, already drawn, and a window of height lines onto them. It does
// what bubbles' viewport would, without measuring and padding every line
// on each change: on a big terminal that cost more than all else together.
type conversation struct {
	lines  []string
	height int
	top    int // the first line shown
	// noticed: the first line says that older lines were let go.
	noticed bool
}

// set replaces the lines, staying at the bottom when the reader was there
// and keeping their place when they had scrolled up. noticed: the first
// line says that older ones were let go.
func (c *conversation) set(lines []string, noticed bool) {
	follow := c.atBottom()
	c.lines, c.noticed = lines, noticed
	if follow {
		c.top = c.maxTop()
	}
	c.top = min(c.top, c.maxTop())
}

// add appends lines, following them when the reader was at the bottom.
func (c *conversation) add(lines []string) {
	follow := c.atBottom()
	c.lines = append(c.lines, lines...)
	if follow {
		c.top = c.maxTop()
	}
}

// drop removes the first n lines (n ≥ 1) but the notice, and puts notice,
// which says so, at the top in their place; the reader keeps their place.
func (c *conversation) drop(n int, notice string) {
	start := 0
	if c.noticed {
		start = 1
	}
	n = min(n, len(c.lines)-start)
	if n < 1 {
		return
	}
	clear(c.lines[start : start+n])
	// The notice takes the place of the last line dropped.
	skip := start + n - 1
	c.lines = c.lines[skip:]
	c.lines[0], c.noticed = notice, true
	c.top = max(c.top-skip, 0)
}

func (c *conversation) setHeight(h int) {
	follow := c.atBottom()
	c.height = h
	if follow {
		c.top = c.maxTop()
	}
	c.top = min(c.top, c.maxTop())
}

func (c conversation) maxTop() int { return max(len(c.lines)-c.height, 0) }

func (c conversation) atBottom() bool { return c.top >= c.maxTop() }

// scroll moves the window by n lines, down for n > 0.
func (c *conversation) scroll(n int) { c.top = min(max(c.top+n, 0), c.maxTop()) }

// view is the window: exactly height lines.
func (c conversation) view() []string {
	shown := c.lines[c.top:min(c.top+c.height, len(c.lines))]
	return append(shown[:len(shown):len(shown)], make([]string, c.height-len(shown))...)
}

// toBottom shows the newest lines.
func (c *conversation) toBottom() { c.top = c.maxTop() }
