// Package safetext decides what text may reach another person's terminal.
// It is neither storage nor screen: the stores apply it before they keep a
// message, and the chat screen again before it draws anything, so neither
// has to trust the other.
package safetext

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// MaxMessageRunes is the longest message, in characters as people see
// them (as RuneCount counts them), a room accepts.
const MaxMessageRunes = 1000

// MaxMessageLines is the most lines a message has once sanitised: lines
// beyond it are joined onto the last (see Sanitize).
const MaxMessageLines = 20

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
	// maxIndent caps a line's indentation, in spaces; tabWidth is a
	// tab's.
	maxIndent = 16
	tabWidth  = 4
)

// Sanitize returns the part of s that is safe to put on another person's
// terminal. It is an allowlist: letters, marks (capped per character),
// numbers, punctuation, symbols, single spaces and line breaks pass;
// everything else either becomes white space or is dropped (C0/C1 controls
// and with them every escape sequence's introducer, DEL, format characters
// such as bidi overrides and zero-width characters, private-use and
// unassigned code points, invisible filler letters). Invalid UTF-8 becomes
// U+FFFD.
//
// What people really write passes whole: a zero-width joiner, a variation
// selector or an emoji tag is kept inside the emoji sequence it belongs to
// (👨‍👩‍👧, ❤️, 1️⃣, 🏴󠁧󠁢󠁳󠁣󠁴󠁿) and dropped anywhere else (see joiners).
//
// Lines: CR, LF, CRLF, VT, FF and the line and paragraph separators each
// end a line. A run of blank lines becomes one blank line, and blank lines
// at either end go. A line keeps its indentation (a tab is four spaces, at
// most maxIndent in all) but for the first, whose leading spaces go as
// everyone's do; inside a line, runs of white space collapse to one space,
// and trailing ones go. From the MaxMessageLines-th line on, further lines
// are joined onto it with a space: a message of thousands of line breaks
// is never thousands of lines.
//
// The result is capped at maxSanitizedRunes characters. Sanitize runs
// before text is stored and again before it is drawn, and is idempotent,
// so applying it twice is harmless.
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(min(len(s), maxSanitizedRunes*utf8.UTFMax))
	runes, marks, lines := 0, 0, 1
	base := false // a character that marks may sit on comes just before
	pendingSpace, breaks, indent := false, 0, 0
	joined := false // a joiner was kept, for joiners to judge
	for i := 0; i < len(s) && runes < maxSanitizedRunes; {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch classOf(r) {
		case lineBreak:
			if r == '\r' && i < len(s) && s[i] == '\n' {
				i++
			}
			if runes > 0 {
				breaks++
			}
			pendingSpace, indent, base, marks = false, 0, false, 0
			continue
		case space:
			if breaks > 0 {
				indent = min(indent+spaceWidth(r), maxIndent)
			} else {
				pendingSpace = runes > 0
			}
			base, marks = false, 0
			continue
		case joiner:
			if base {
				b.WriteRune(r)
				joined = true
			}
			continue
		case mark:
			if !base || marks >= maxMarksPerBase {
				continue
			}
			marks++
			b.WriteRune(r)
			// A mark is not a character of its own for the length cap.
			continue
		case dropped:
			continue
		}
		switch {
		case breaks > 0 && lines < MaxMessageLines:
			b.WriteByte('\n')
			lines++
			runes++
			if breaks > 1 && lines < MaxMessageLines {
				b.WriteByte('\n')
				lines++
				runes++
			}
			for range indent {
				b.WriteByte(' ')
			}
			runes += indent
		case breaks > 0, pendingSpace:
			b.WriteByte(' ')
			runes++
		}
		pendingSpace, breaks, indent = false, 0, 0
		if runes >= maxSanitizedRunes {
			break
		}
		b.WriteRune(r)
		runes++
		base, marks = true, 0
	}
	out := strings.TrimRight(b.String(), " \n")
	if !joined {
		return out
	}
	return joiners(out, false)
}

// Clean is what the input shows of text being typed: it drops exactly what
// Sanitize drops, turns line breaks into LF and any other white space into
// plain spaces (a tab into four), but leaves runs of spaces, blank lines
// and both ends alone, so that the text stays where its writer put it.
// What they see is what is sent: Sanitize(Clean(s)) == Sanitize(s). A
// joiner at the very end is kept: what it joins may be on its way.
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
	joined := false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch classOf(r) {
		case lineBreak:
			if r == '\r' && i < len(s) && s[i] == '\n' {
				i++
			}
			b.WriteByte('\n')
			base, marks = false, 0
			continue
		case space:
			for range spaceWidth(r) {
				b.WriteByte(' ')
			}
			base, marks = false, 0
			continue
		case joiner:
			if base {
				b.WriteRune(r)
				joined = true
			}
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
	if !joined {
		return b.String()
	}
	return joiners(b.String(), true)
}

// spaceWidth is how many spaces white space r becomes where it indents.
func spaceWidth(r rune) int {
	if r == '\t' {
		return tabWidth
	}
	return 1
}

// class is what Sanitize and Clean do with a character, so that the two
// cannot disagree on it.
type class int

const (
	kept      class = iota // a graphic character, shown as it is
	space                  // white space within a line: a space
	lineBreak              // ends a line
	joiner                 // binds an emoji sequence: kept only inside one
	mark                   // a combining mark: kept on a base, capped
	dropped                // controls, format and private-use characters
)

// classOf classes r. Invalid UTF-8 arrives as U+FFFD, a symbol, and is
// kept: it shows that something was there.
func classOf(r rune) class {
	if r < utf8.RuneSelf {
		// Most text is ASCII: no table to look it up in.
		switch {
		case r > ' ' && r < 0x7f:
			return kept
		case r == ' ', r == '\t':
			return space
		case isLineBreak(r):
			return lineBreak
		}
		return dropped
	}
	switch {
	case isLineBreak(r):
		return lineBreak
	case isSpace(r):
		return space
	case isJoiner(r):
		return joiner
	case unicode.Is(unicode.M, r):
		return mark
	case !allowedGraphic(r):
		return dropped
	}
	return kept
}

// The characters that join or modify emoji but draw nothing of their own.
const (
	zwj        = '\u200d'     // zero-width joiner: 👨 ZWJ 💻 is 👨‍💻
	vs15       = '\ufe0e'     // text presentation: ❤︎
	vs16       = '\ufe0f'     // emoji presentation: ❤️
	blackFlag  = '\U0001f3f4' // the base of a flag spelt in tags
	tagFirst   = '\U000e0020'
	tagCancel  = '\U000e007f' // ends a tag sequence
	keycapMark = '\u20e3'
)

// isJoiner reports the characters that are text only inside an emoji
// sequence (see joiners).
func isJoiner(r rune) bool {
	return r == zwj || r == vs15 || r == vs16 || (r >= tagFirst && r <= tagCancel)
}

// Bounds on one emoji sequence: the longest recommended ones (a kiss with
// two skin tones, a family of four, a subdivision flag) fit; longer chains
// would draw as many emoji as they join while counting as one character.
const (
	maxJoinsPerSequence = 3
	maxTagsPerFlag      = 6 // gbsct and the cancel tag
)

// joiners keeps each joiner of s (whose other characters are sanitised
// already, and which holds no joiner that follows no base) only where
// Unicode's grapheme rules (UAX #29, as rivo/uniseg implements them) make
// it part of an emoji sequence:
//   - a ZWJ between two emoji (GB11: an extended pictographic character,
//     its modifiers, ZWJ, another), at most maxJoinsPerSequence times in
//     one sequence;
//   - a variation selector (VS15/VS16) right after an emoji, or after a
//     digit, # or * (a keycap: 1️⃣);
//   - tags right after a black flag, ending with the cancel tag (🏴󠁧󠁢󠁷󠁬󠁳󠁿).
//
// keepEnd keeps a ZWJ that ends s after an emoji, where its second half
// may still be typed.
func joiners(s string, keepEnd bool) string {
	var b strings.Builder
	b.Grow(len(s))
	state := -1
	for rest := s; rest != ""; {
		var cluster string
		cluster, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		tags := flagTags(cluster)
		joins := 0
		prev := rune(-1) // the last rune written of this cluster
		for i, r := range cluster {
			switch {
			case r == zwj:
				after := cluster[i+utf8.RuneLen(zwj):]
				next, _ := utf8.DecodeRuneInString(after)
				switch {
				case after != "" && joins < maxJoinsPerSequence && pictographic(prev, next):
					joins++
				case after == "" && rest == "" && keepEnd && joinable(prev):
				default:
					joins = 0 // what follows starts a sequence of its own
					continue
				}
			case r == vs15, r == vs16:
				if prev < 0 || !(isPictographic(prev) || isKeycapBase(prev)) {
					continue
				}
			case r >= tagFirst && r <= tagCancel:
				if !tags {
					continue
				}
			}
			b.WriteRune(r)
			prev = r
		}
	}
	return b.String()
}

// pictographic reports whether a ZWJ between prev and next joins two
// emoji: prev ends one, and next is one.
func pictographic(prev, next rune) bool { return joinable(prev) && isPictographic(next) }

// joinable reports whether a ZWJ after r may join what follows to it: r is
// an emoji, or its skin tone or selector (GB11's Extend*).
func joinable(r rune) bool { return r >= 0 && (isPictographic(r) || isEmojiExtend(r)) }

// isEmojiExtend reports what may sit between an emoji and the ZWJ that
// joins it to the next: a skin tone or a variation selector.
func isEmojiExtend(r rune) bool {
	return r == vs16 || r == vs15 || (r >= '\U0001f3fb' && r <= '\U0001f3ff')
}

// isPictographic reports Extended_Pictographic characters, as the
// grapheme rules know them: only after one of them does a ZWJ join the
// next (GB11), so a ZWJ between a known emoji and r joins them into one
// cluster exactly when r is one, unless r is one of what joins anything
// (an Extend character, a spacing mark, a ZWJ), which then follows any
// letter as well.
func isPictographic(r rune) bool {
	if r < 0xa9 || isJoiner(r) {
		return false
	}
	var buf [2 * utf8.UTFMax]byte
	joined := func(base rune) bool {
		s := utf8.AppendRune(utf8.AppendRune(buf[:0], base), zwj)
		s = utf8.AppendRune(s, r)
		_, rest, _, _ := uniseg.FirstGraphemeCluster(s, -1)
		return len(rest) == 0
	}
	return joined('\u2764') && !joined('a')
}

// isKeycapBase reports the characters a keycap is made of (1️⃣, #️⃣).
func isKeycapBase(r rune) bool { return r >= '0' && r <= '9' || r == '#' || r == '*' }

// flagTags reports whether cluster is a black flag and tags closed by the
// cancel tag, and nothing else: a subdivision flag.
func flagTags(cluster string) bool {
	rest, ok := strings.CutPrefix(cluster, string(blackFlag))
	if !ok || rest == "" {
		return false
	}
	n := 0
	for _, r := range rest {
		if r < tagFirst || r > tagCancel {
			return false
		}
		n++
	}
	last, _ := utf8.DecodeLastRuneInString(rest)
	return last == tagCancel && n <= maxTagsPerFlag+1 && n >= 2
}

// SqueezeSpace gives the white space of s the shape Sanitize gives it,
// and leaves everything else as it is, so that text being typed takes the
// shape it will have as a message: runs of spaces within a line become one
// space (a line's indentation is kept, capped), line breaks become LF and
// runs of blank lines one blank line.
func SqueezeSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	inSpace, lineStart := false, false
	breaks, indent := 0, 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case isLineBreak(r):
			if r == '\r' && i < len(s) && s[i] == '\n' {
				i++
			}
			if breaks < 2 {
				b.WriteByte('\n')
			}
			breaks++
			inSpace, lineStart, indent = false, true, 0
		case isSpace(r) && lineStart:
			// Written with what it indents: a blank line has none.
			indent = min(indent+spaceWidth(r), maxIndent)
		case isSpace(r):
			if !inSpace {
				b.WriteByte(' ')
			}
			inSpace = true
		default:
			for range indent {
				b.WriteByte(' ')
			}
			inSpace, lineStart, breaks, indent = false, false, 0, 0
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isLineBreak reports what ends a line.
func isLineBreak(r rune) bool {
	return r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == '\u2028' || r == '\u2029'
}

// isSpace reports white space within a line, which is shown as a plain
// space.
func isSpace(r rune) bool {
	return r == '\t' || unicode.Is(unicode.Zs, r)
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

// RuneCount is the length of text as MaxMessageRunes counts it: in
// characters as people see them (grapheme clusters), so that a letter with
// its accents, an emoji with its skin tone, a flag or a family joined into
// one emoji each count once, and a line break counts as one.
func RuneCount(s string) int {
	n, state := 0, -1
	for s != "" {
		n++
		if s[0] < utf8.RuneSelf && s[0] != '\r' && (len(s) == 1 || s[1] < utf8.RuneSelf) {
			// Two ASCII characters but CR LF are two clusters: most
			// text needs no segmenting.
			s, state = s[1:], -1
			continue
		}
		_, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
	}
	return n
}
