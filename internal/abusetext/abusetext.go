// Package abusetext makes the messages that the abuse test and the load
// command paste: the largest message a room accepts, and issue 15's paste,
// which is far over the byte limit. Each ends with " TOKEN" (ASCII, after
// a space), so a screen's word wrap keeps the token whole on one line and
// a single-line input, which shows the end of what is typed, shows it too.
package abusetext

import (
	"strings"

	"github.com/ssh-burn/chat/internal/safetext"
)

// Largest is the largest message a room accepts, ending with " token": it
// is exactly safetext.MaxMessageBytes bytes, and at most
// safetext.MaxMessageRunes characters, after sanitising, so that bytes
// and not characters are the limit (most letters carry up to three
// combining marks). Words of ten letters keep it wrapping like text.
func Largest(token string) string {
	tail := " " + token
	chars := safetext.MaxMessageRunes - len(tail)
	// Every character takes a byte; marks (two bytes each) make up the
	// rest, and an odd byte left over goes to a two-byte letter first.
	extra := safetext.MaxMessageBytes - len(tail) - chars
	var b strings.Builder
	if extra%2 == 1 {
		b.WriteRune('é')
		extra--
		chars--
	}
	marks := extra / 2
	for i := range chars {
		if i%11 == 10 {
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(byte('a' + i%26))
		for k := 0; k < 3 && marks > 0; k++ {
			b.WriteRune(rune(0x0300 + (i+k)%0x70))
			marks--
		}
	}
	b.WriteString(tail)
	return b.String()
}

// issueChars is how many characters of Oversize come before its token:
// with the token within the character limit, so that only its bytes are
// too many.
const issueChars = safetext.MaxMessageRunes - 15

// Oversize is the paste of issue 15's first row: characters of four bytes
// each carrying three marks of four bytes (16 bytes a character), ending
// with " token"; about 16,000 bytes, far over the byte limit, in fewer
// characters than the character limit.
func Oversize(token string) string {
	var b strings.Builder
	for i := range issueChars {
		b.WriteRune(rune(0x1D400 + i%26)) // mathematical bold capitals
		b.WriteString("\U0001D167\U0001D168\U0001D169")
	}
	b.WriteString(" " + token)
	return b.String()
}
