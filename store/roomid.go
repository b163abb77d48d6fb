package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
)

// A room ID reads like "k7m2-q9xw-4p3f-h8n2": four groups of four characters
// from a 32-letter alphabet without i, l, o and u (so nothing can be misread),
// 15 random characters (75 bits from crypto/rand) and one check character, so a
// mistyped ID is recognised as such instead of silently creating a new room.
// It is a valid SSH username as it stands.
const (
	idAlphabet    = "0123456789abcdefghjkmnpqrstvwxyz"
	idRandomChars = 15
	idChars       = idRandomChars + 1
	idGroup       = 4
)

// Errors from ParseRoomID.
var (
	// ErrNotRoomID: the text does not have the shape of a room ID at all
	// (for example the local login name OpenSSH sends by default).
	ErrNotRoomID = errors.New("not a room ID")
	// ErrMistypedRoomID: the text has the shape of a room ID but its check
	// character does not match, so it was copied or typed wrongly.
	ErrMistypedRoomID = errors.New("room ID has a typo")
)

// RoomID identifies a room. A RoomID value is always in canonical form.
type RoomID string

// idValue maps a character to its value in idAlphabet, or -1. Upper case and
// the look-alikes o→0, i/l→1 are accepted, as people retype IDs by hand.
var idValue = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i, c := range []byte(idAlphabet) {
		t[c] = int8(i)
		if c >= 'a' && c <= 'z' {
			t[c-'a'+'A'] = int8(i)
		}
	}
	for _, alias := range []struct{ from, to byte }{{'o', '0'}, {'O', '0'}, {'i', '1'}, {'I', '1'}, {'l', '1'}, {'L', '1'}} {
		t[alias.from] = t[alias.to]
	}
	return t
}()

// NewRoomID returns a fresh random room ID.
func NewRoomID() RoomID {
	var v [idChars]byte
	// crypto/rand.Read never returns an error (it crashes the program if the
	// system's randomness is unavailable), so there is nothing to handle.
	_, _ = rand.Read(v[:idRandomChars])
	for i := range idRandomChars {
		v[i] &= 31
	}
	v[idRandomChars] = checkValue(v[:idRandomChars])
	return format(v[:])
}

// ParseRoomID reads an SSH username as a room ID. It returns ErrNotRoomID
// when s is not shaped like one and ErrMistypedRoomID when the check
// character is wrong. The dashes must be where the share command puts them:
// a plain 16-letter login name such as "christopherjames" is a person's name
// (OpenSSH sends it when no user is given), not a room ID with a typo. Case
// does not matter, and o, i and l read as 0 and 1.
func ParseRoomID(s string) (RoomID, error) {
	// Bound the work on hostile input before looking at it closely.
	if len(s) != idChars+idChars/idGroup-1 {
		return "", ErrNotRoomID
	}
	var v [idChars]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i%(idGroup+1) == idGroup {
			if c != '-' {
				return "", ErrNotRoomID
			}
			continue
		}
		x := idValue[c]
		if x < 0 {
			return "", ErrNotRoomID
		}
		v[n] = byte(x)
		n++
	}
	if checkValue(v[:idRandomChars]) != v[idRandomChars] {
		return "", ErrMistypedRoomID
	}
	return format(v[:]), nil
}

// Misshapen reports whether s, which is neither a room ID nor a rejoin
// name, is one with a single slip in copying: four groups (a room ID) or
// seven to nine (a rejoin name, a group lost or doubled) of ID characters
// between dashes, every group of four but at most one of three or five (a
// character lost or doubled). Login names with dashes ("dev-ops-team-bot")
// are not shaped so. rejoin: it has the length of a rejoin name.
func Misshapen(s string) (mistyped, rejoin bool) {
	if len(s) > rejoinNameLen+2*idGroup {
		return false, false
	}
	groups, odd := 0, 0
	for group := range strings.SplitSeq(s, "-") {
		switch len(group) {
		case idGroup:
		case idGroup - 1, idGroup + 1:
			odd++
		default:
			return false, false
		}
		for i := 0; i < len(group); i++ {
			if idValue[group[i]] < 0 {
				return false, false
			}
		}
		groups++
	}
	const idGroups = idChars / idGroup
	switch {
	case odd > 1:
		return false, false
	case groups == idGroups:
		return true, false
	case groups >= 2*idGroups-1 && groups <= 2*idGroups+1:
		return true, true
	}
	return false, false
}

// checkValue derives the check character from the random ones. A hash makes
// every single-character typo and every transposition change it with
// probability 31/32.
func checkValue(v []byte) byte {
	sum := sha256.Sum256(v)
	return sum[0] & 31
}

func format(v []byte) RoomID {
	var b strings.Builder
	for i, x := range v {
		if i > 0 && i%idGroup == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(idAlphabet[x])
	}
	return RoomID(b.String())
}

// String returns the canonical form.
func (id RoomID) String() string { return string(id) }

// LogValue makes slog write a short one-way hash instead of the ID, so a log
// line can be correlated with others of the same room but never reveals how to
// join it. Logging a RoomID is therefore always safe.
func (id RoomID) LogValue() slog.Value {
	sum := sha256.Sum256([]byte("room-log:" + id))
	return slog.StringValue(hex.EncodeToString(sum[:6]))
}
