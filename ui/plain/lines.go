package plain

import (
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/ssh-burn/chat/internal/safetext"
)

// maxLineBytes bounds one line of input: above the message limit, so an
// over-long message is reported with its length, not cut; what comes
// after it until the line ends is counted, not kept.
const maxLineBytes = 4 * safetext.MaxMessageBytes

// line is one line of input as it ended.
type line struct {
	text string
	// over: the line ran past maxLineBytes and what followed was thrown
	// away.
	over bool
}

// editor turns the bytes a client sends into lines. Without echo the
// client's own terminal (or a script) shows and edits each line and sends
// it whole; with echo (the client asked for a terminal, which then sends
// every key as it is pressed) it does what a terminal's line discipline
// would: shows what is typed, and lets backspace and ctrl+u edit it. It
// drops escape sequences (arrow keys, a paste's brackets) and other
// controls, and echoes none: nothing it writes holds an escape.
type editor struct {
	echo bool

	buf     []byte // the line so far
	over    bool   // buf reached maxLineBytes
	esc     escState
	afterCR bool   // the last byte ended a line with \r: a \n after it ends nothing
	partial []byte // the start of a UTF-8 character split across reads
	eof     bool   // ctrl+d on an empty line: the person is done
	// skipping: input was lost within the line being typed, which is
	// dropped whole, to its end.
	skipping bool
}

// lose drops the line being typed, and the rest of it still to come:
// some of it was lost on its way.
func (e *editor) lose() (echo string) {
	hadText := len(e.buf) > 0
	e.buf, e.over, e.partial, e.esc, e.afterCR = e.buf[:0], false, nil, escNone, false
	e.skipping = true
	if e.echo && hadText {
		return "\n"
	}
	return ""
}

// escState is where the editor is in an escape sequence it drops.
type escState uint8

const (
	escNone   escState = iota
	escStart           // after ESC
	escCSI             // in ESC [ … or ESC O …, until its final byte
	escString          // in ESC ] … (or P, _, ^), until BEL or ESC \
)

// feed takes what the client sent, returning the lines it ended and what
// to echo.
func (e *editor) feed(data []byte) (lines []line, echo string) {
	var out strings.Builder
	if len(e.partial) > 0 {
		data = append(e.partial, data...)
		e.partial = nil
	}
	for len(data) > 0 {
		b := data[0]
		if e.skipping {
			data = data[1:]
			if b == '\r' || b == '\n' {
				e.skipping, e.afterCR = false, b == '\r'
			}
			continue
		}
		if e.esc != escNone {
			if b != '\r' && b != '\n' {
				e.skipEscape(b)
				data = data[1:]
				continue
			}
			// A sequence that never ends must not swallow the lines
			// after it.
			e.esc = escNone
		}
		if b >= utf8.RuneSelf {
			if !utf8.FullRune(data) {
				e.partial = append([]byte(nil), data...)
				break
			}
			r, size := utf8.DecodeRune(data)
			if r != utf8.RuneError && (r < 0x80 || r > 0x9f) {
				e.add(data[:size], &out)
			}
			data = data[size:]
			e.afterCR = false
			continue
		}
		data = data[1:]
		cr := e.afterCR
		e.afterCR = false
		switch {
		case b == '\r' || (b == '\n' && !cr):
			e.afterCR = b == '\r'
			lines = append(lines, line{text: string(e.buf), over: e.over})
			e.buf, e.over = e.buf[:0], false
			if e.echo {
				out.WriteString("\n")
			}
		case b == '\n':
		case b == 0x1b:
			e.esc = escStart
		case b == 0x7f || b == 0x08:
			e.erase(&out)
		case b == 0x15 && e.echo: // ctrl+u
			e.buf, e.over = e.buf[:0], false
			out.WriteString("\n")
		case b == 0x04 && e.echo && len(e.buf) == 0: // ctrl+d
			e.eof = true
		case b == '\t':
			e.add([]byte{' '}, &out)
		case b >= 0x20:
			e.add([]byte{b}, &out)
		}
	}
	if !e.echo {
		return lines, ""
	}
	return lines, out.String()
}

func (e *editor) skipEscape(b byte) {
	switch e.esc {
	case escStart:
		switch b {
		case '[', 'O':
			e.esc = escCSI
		case ']', 'P', '_', '^':
			e.esc = escString
		default:
			e.esc = escNone
		}
	case escCSI:
		if b >= 0x40 && b <= 0x7e {
			e.esc = escNone
		}
	case escString:
		if b == 0x07 || b == '\\' {
			e.esc = escNone
		}
	}
}

// add appends a character to the line, if it has room.
func (e *editor) add(char []byte, out *strings.Builder) {
	if len(e.buf)+len(char) > maxLineBytes {
		e.over = true
		return
	}
	e.buf = append(e.buf, char...)
	if e.echo {
		out.WriteString(safetext.Clean(string(char)))
	}
}

// erase takes the last character off the line, and off the screen: back,
// a space over it, back again, once per column it took.
func (e *editor) erase(out *strings.Builder) {
	if len(e.buf) == 0 {
		return
	}
	r, size := utf8.DecodeLastRune(e.buf)
	e.buf = e.buf[:len(e.buf)-size]
	if e.echo {
		out.WriteString(strings.Repeat("\b \b", ansi.StringWidth(safetext.Clean(string(r)))))
	}
}

// pending is the line typed so far, as echoed, for showing again after
// a line the chat printed over it.
func (e *editor) pending() string {
	if !e.echo {
		return ""
	}
	return safetext.Clean(string(e.buf))
}

// rest is what was typed after the last line ended, as a line of its
// own: the end of a script's input need not end with a newline.
func (e *editor) rest() (line, bool) {
	if len(e.buf) == 0 {
		return line{}, false
	}
	l := line{text: string(e.buf), over: e.over}
	e.buf, e.over = e.buf[:0], false
	return l, true
}
