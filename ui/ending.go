package ui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// Exit codes of a chat, by how it ended: what a script (or a person
// reading $?) can tell without parsing the last words. 1 is every refusal
// before the chat began (no such room, sealed, full, limits, errors).
const (
	ExitLeft             = 0 // you left (ctrl+c); the room lives on, your seat kept
	ExitRefused          = 1 // no chat: refused or failed before it began
	ExitDestroyedBySelf  = 2 // you destroyed the room
	ExitDestroyedByOther = 3 // your partner destroyed the room
	ExitExpired          = 4 // the room's time was up
	ExitRoomGone         = 5 // the room vanished or was lost
	ExitDisconnected     = 6 // you were disconnected (idle, too long, fell behind, seat lost); the room lives on
	ExitReplaced         = 7 // you came back from another connection, which took over
	ExitShutdown         = 8 // the server shut down
)

// ExitCode is the exit status of a session that ended so.
func (e Ending) ExitCode() int {
	switch e {
	case EndingLeft:
		return ExitLeft
	case EndingDestroyedBySelf:
		return ExitDestroyedBySelf
	case EndingDestroyedByPartner:
		return ExitDestroyedByOther
	case EndingExpired:
		return ExitExpired
	case EndingRoomVanished, EndingRoomLost:
		return ExitRoomGone
	case EndingIdle, EndingMaxSession, EndingFellBehind, EndingSeatLost:
		return ExitDisconnected
	case EndingReplaced:
		return ExitReplaced
	case EndingShutdown:
		return ExitShutdown
	}
	return ExitRefused
}

// Wrapped is the outcome's text broken between words for the terminal it
// is printed on (its width when the chat ended): the terminal would break
// words anywhere. A word wider than the terminal (a command to copy) stays
// whole on a line of its own.
func (o Outcome) Wrapped() string {
	if o.width <= 0 {
		return o.Text
	}
	var out []string
	for para := range strings.SplitSeq(o.Text, "\n") {
		out = append(out, wrapWhole(para, o.width)...)
	}
	return strings.Join(out, "\n")
}

// wrapWhole breaks text into lines at most width cells wide, between
// words only: a word wider than that gets a line of its own, unbroken.
func wrapWhole(text string, width int) []string {
	var lines []string
	var line strings.Builder
	used := 0
	for word := range strings.SplitSeq(text, " ") {
		w := ansi.StringWidth(word)
		if line.Len() > 0 && used+1+w > width {
			lines = append(lines, line.String())
			line.Reset()
			used = 0
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
			used++
		}
		line.WriteString(word)
		used += w
	}
	return append(lines, line.String())
}
