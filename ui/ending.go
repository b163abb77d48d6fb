package ui

import "strings"

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
// words anywhere.
func (o Outcome) Wrapped() string { return WrapEnd(o.Text, o.width, o.commands...) }

// WrapEnd is text, which a session prints as it ends, broken between
// words for a terminal width cells wide (0: not at all). Each of whole (a
// command to copy) is kept as one word, and a word wider than the terminal
// stays whole on a line of its own.
func WrapEnd(text string, width int, whole ...string) string {
	if width <= 0 {
		return text
	}
	for _, w := range whole {
		if w != "" {
			text = strings.ReplaceAll(text, w, strings.ReplaceAll(w, " ", keptSpace))
		}
	}
	var out []string
	for para := range strings.SplitSeq(text, "\n") {
		out = append(out, wrapWordsKeeping(para, width, true)...)
	}
	return strings.ReplaceAll(strings.Join(out, "\n"), keptSpace, " ")
}

// keptSpace holds the place of a space that must not break a line: no
// text that reaches an end line contains it (Sanitize drops NUL).
const keptSpace = "\x00"
