package abusetext

import (
	"errors"
	"testing"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
)

// The abusers' paste is as large as a room accepts, in bytes, after
// sanitising: one byte more is refused.
func TestLargestIsTheLargestMessage(t *testing.T) {
	for _, token := range []string{"t", "z12x345q", "a79x1234q0f3e"} {
		msg := Largest(token)
		clean, err := store.CleanMessage(msg)
		if err != nil {
			t.Fatalf("token %q: %v", token, err)
		}
		if clean != msg || len(clean) != safetext.MaxMessageBytes || safetext.RuneCount(clean) > safetext.MaxMessageRunes {
			t.Fatalf("token %q: sanitised to %d bytes, %d characters, unchanged: %v", token, len(clean), safetext.RuneCount(clean), clean == msg)
		}
		if _, err := store.CleanMessage(msg + "x"); !errors.Is(err, store.ErrMessageTooLong) {
			t.Fatalf("token %q: one byte more: %v, want ErrMessageTooLong", token, err)
		}
	}
}

// Issue 15's paste is within the character limit and refused for its
// bytes.
func TestOversizeIsTooLongInBytesOnly(t *testing.T) {
	msg := Oversize("a79x1234q0f3e")
	clean := safetext.Sanitize(msg)
	if clean != msg || safetext.RuneCount(clean) > safetext.MaxMessageRunes || len(clean) < 15000 {
		t.Fatalf("sanitised to %d bytes, %d characters, unchanged: %v", len(clean), safetext.RuneCount(clean), clean == msg)
	}
	if _, err := store.CleanMessage(msg); !errors.Is(err, store.ErrMessageTooLong) {
		t.Fatalf("CleanMessage: %v, want ErrMessageTooLong", err)
	}
}
