package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
)

// A seat key is one person's own way back into a room: 15 random characters
// of the room-ID alphabet (75 bits from crypto/rand) and a check character.
// With the room ID in front it makes the rejoin name,
// "k7m2-q9xw-4p3f-h8n2-abcd-efgh-jkmn-pqrs", an SSH username as it stands.
// The check character covers the room ID too, so a typo anywhere, or the
// halves of two different commands put together, reads as a typo rather
// than as a wrong key.
//
// Stores keep only Digest, never the key: a dump of a store does not let
// anyone back into a seat.
type SeatKey struct{ chars string }

// rejoinNameLen is the length of a rejoin name: eight groups of four.
const rejoinNameLen = 2*idChars + 2*idChars/idGroup - 1

// NewSeatKey returns a fresh key for a seat in room id.
func NewSeatKey(id RoomID) SeatKey {
	var v [idChars]byte
	_, _ = rand.Read(v[:idRandomChars]) // never fails (crypto/rand)
	for i := range idRandomChars {
		v[i] &= 31
	}
	v[idRandomChars] = keyCheckValue(roomValues(id), v[:idRandomChars])
	var b strings.Builder
	for _, x := range v {
		b.WriteByte(idAlphabet[x])
	}
	return SeatKey{b.String()}
}

// IsZero reports whether k is no key at all.
func (k SeatKey) IsZero() bool { return k.chars == "" }

// String never shows the key: a key that reaches a log or an error message
// by mistake reveals nothing. RejoinName is the one way to spell it out.
func (k SeatKey) String() string { return "[seat key]" }

// GoString keeps the key out of %#v as well.
func (k SeatKey) GoString() string { return "store.SeatKey{[seat key]}" }

// LogValue keeps the key out of logs.
func (k SeatKey) LogValue() slog.Value { return slog.StringValue("[seat key]") }

// Digest is what a store keeps of k for room id: an HMAC-SHA-256 under a
// key derived from the room ID, so the digests of two rooms cannot be
// compared and a digest does not lead back to its key.
func (k SeatKey) Digest(id RoomID) string {
	roomKey := sha256.Sum256([]byte("ssh-burn chat: seat key digest v1\x00" + string(id)))
	mac := hmac.New(sha256.New, roomKey[:])
	mac.Write([]byte(k.chars))
	return hex.EncodeToString(mac.Sum(nil))
}

// RejoinName is the SSH username that brings the holder of k back into
// room id, in their own seat.
func RejoinName(id RoomID, k SeatKey) string {
	var b strings.Builder
	b.Grow(rejoinNameLen)
	b.WriteString(string(id))
	for i := 0; i < len(k.chars); i++ {
		if i%idGroup == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(k.chars[i])
	}
	return b.String()
}

// ParseRejoinName reads an SSH username as a rejoin name. Like ParseRoomID
// it returns ErrNotRoomID when s is not shaped like one and
// ErrMistypedRoomID when a check character is wrong, and forgives case and
// o, i, l typed for 0 and 1. It looks at nothing but s: whether the key
// opens a seat is for the store to say.
func ParseRejoinName(s string) (RoomID, SeatKey, error) {
	if len(s) != rejoinNameLen || s[idChars+idChars/idGroup-1] != '-' {
		return "", SeatKey{}, ErrNotRoomID
	}
	id, err := ParseRoomID(s[:idChars+idChars/idGroup-1])
	if err != nil {
		return "", SeatKey{}, err
	}
	rest := s[idChars+idChars/idGroup:]
	var v [idChars]byte
	n := 0
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if i%(idGroup+1) == idGroup {
			if c != '-' {
				return "", SeatKey{}, ErrNotRoomID
			}
			continue
		}
		x := idValue[c]
		if x < 0 {
			return "", SeatKey{}, ErrNotRoomID
		}
		v[n] = byte(x)
		n++
	}
	if keyCheckValue(roomValues(id), v[:idRandomChars]) != v[idRandomChars] {
		return "", SeatKey{}, ErrMistypedRoomID
	}
	var b strings.Builder
	for _, x := range v {
		b.WriteByte(idAlphabet[x])
	}
	return id, SeatKey{b.String()}, nil
}

// roomValues is a canonical room ID's characters as alphabet values.
func roomValues(id RoomID) []byte {
	v := make([]byte, 0, idChars)
	for i := 0; i < len(id); i++ {
		if id[i] != '-' {
			v = append(v, byte(idValue[id[i]]))
		}
	}
	return v
}

func keyCheckValue(room, key []byte) byte {
	h := sha256.New()
	h.Write([]byte("seat key\x00"))
	h.Write(room)
	h.Write(key)
	return h.Sum(nil)[0] & 31
}
