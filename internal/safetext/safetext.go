// Package safetext decides what text may reach another person's terminal.
// It is neither storage nor screen: the stores apply it before they keep a
// message, and the chat screen again before it draws anything, so neither
// has to trust the other.
package safetext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessageRunes is the longest message, in characters (as RuneCount
// counts them), a room accepts.
const MaxMessageRunes = 1000

// MaxMessageBytes is the longest message in bytes, after sanitising, a room
// accepts: combining marks and long encodings count. 1,000 characters of
// most scripts, or of emoji, fit; a message piled with marks does not.
const MaxMessageBytes = 4096

// Limits the sanitiser enforces on any text, whatever its later use.
const (
	// maxSanitizedRunes bounds the output of Sanitize. It is well above
	// MaxMessageRunes so that an over-long message is reported as too long
	// rather than silently cut.
	maxSanitizedRunes = 4 * MaxMessageRunes
	// maxMarksPerBase caps combining marks on one character ("zalgo" text
	// that would paint over the lines above and below). Three covers real
	// scripts such as Vietnamese and Indic vowel signs.
	maxMarksPerBase = 3
)

// Sanitize returns the part of s that is safe to put on another person's
// terminal. It is an allowlist: letters, marks (capped per character),
// numbers, punctuation, symbols and single spaces pass; everything else
// either becomes a space (any white space, including newlines and line
// separators) or is dropped (C0/C1 controls and with them every escape
// sequence's introducer, DEL, format characters such as bidi overrides and
// zero-width characters, private-use and unassigned code points, invisible
// filler letters). Invalid UTF-8 becomes U+FFFD. Runs of white space collapse
// to one space and the result is trimmed and capped at maxSanitizedRunes.
//
// It runs before text is stored and again before it is drawn, and is
// idempotent, so applying it twice is harmless.
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), maxSanitizedRunes*utf8.UTFMax))
	runes, marks := 0, 0
	pendingSpace := false
	for i := 0; i < len(s) && runes < maxSanitizedRunes; {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch classOf(r) {
		case space:
			pendingSpace = runes > 0
			marks = 0
			continue
		case mark:
			if runes == 0 || pendingSpace || marks >= maxMarksPerBase {
				continue
			}
			marks++
			b.WriteRune(r)
			// A mark is not a character of its own for the length cap.
			continue
		case dropped:
			continue
		}
		if pendingSpace {
			b.WriteByte(' ')
			runes++
			pendingSpace = false
			if runes == maxSanitizedRunes {
				break
			}
		}
		b.WriteRune(r)
		runes++
		marks = 0
	}
	return strings.TrimRight(b.String(), " ")
}

// Clean is what the input line shows of text being typed: it drops
// exactly what Sanitize drops and turns any white space into a plain
// space, but leaves runs of spaces and both ends alone, so that the text
// stays where its writer put it. What they see is what is sent:
// Sanitize(Clean(s)) == Sanitize(s).
func Clean(s string) string {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		plain = s[i] >= 0x20 && s[i] < 0x7f
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	marks := 0
	base := false // a character that marks may sit on comes just before
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch classOf(r) {
		case space:
			b.WriteByte(' ')
			base, marks = false, 0
			continue
		case mark:
			if base && marks < maxMarksPerBase {
				marks++
				b.WriteRune(r)
			}
			continue
		case dropped:
			continue
		}
		b.WriteRune(r)
		base, marks = true, 0
	}
	return b.String()
}

// class is what Sanitize and Clean do with a character, so that the two
// cannot disagree on it.
type class int

const (
	kept    class = iota // a graphic character, shown as it is
	space                // any white space: a space
	mark                 // a combining mark: kept on a base, capped
	dropped              // controls, format and private-use characters
)

// classOf classes r. Invalid UTF-8 arrives as U+FFFD, a symbol, and is
// kept: it shows that something was there.
func classOf(r rune) class {
	switch {
	case isSpace(r):
		return space
	case unicode.Is(unicode.M, r):
		return mark
	case !allowedGraphic(r):
		return dropped
	}
	return kept
}

// SqueezeSpace turns every run of white space in s into one space, as
// Sanitize does, and leaves everything else as it is: text being typed
// can take the shape it will have as a message.
func SqueezeSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	inSpace := false
	for _, r := range s {
		if isSpace(r) {
			if !inSpace {
				b.WriteByte(' ')
			}
			inSpace = true
			continue
		}
		inSpace = false
		b.WriteRune(r)
	}
	return b.String()
}

// isSpace reports white space of any kind, including line and paragraph
// separators, which are shown as a plain space.
func isSpace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' ||
		unicode.Is(unicode.Zs, r) || r == '\u2028' || r == '\u2029'
}

// allowedGraphic is the allowlist for characters that are not white space or
// marks.
func allowedGraphic(r rune) bool {
	if !unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) {
		// Cc, Cf, Co, Cs and unassigned code points.
		return false
	}
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0': // Hangul fillers: letters that draw nothing
		return false
	}
	return true
}

// RuneCount is the length of text as MaxMessageRunes counts it: combining
// marks belong to the character before them.
func RuneCount(s string) int {
	n := 0
	for _, r := range s {
		if !unicode.Is(unicode.M, r) {
			n++
		}
	}
	return n
}
