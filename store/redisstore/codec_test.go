package redisstore

import (
	"strings"
	"testing"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
)

// Redis learns a message's size class, not its length, and every name has
// one length; what is opened is exactly what was sealed.
func TestSealedLengthsSayOnlyTheClass(t *testing.T) {
	sec, err := deriveRoomSecrets(store.NewRoomID())
	if err != nil {
		t.Fatal(err)
	}
	classes := map[int]int{} // size class -> sealed length
	for _, body := range []string{
		"a", "hello", strings.Repeat("x", 64),
		strings.Repeat("x", 65), strings.Repeat("é", 100), strings.Repeat("x", 256),
		strings.Repeat("x", 257), strings.Repeat("世", 300),
		strings.Repeat("x", 1025), strings.Repeat("e\u0301", 600),
		strings.Repeat("a\u0301\u0302\u0303", 300), strings.Repeat("a\u0301\u0302\u0303", safetext.MaxMessageBytes/7),
	} {
		sealed := sec.sealBody(body)
		class := store.BodyCost(body)
		if n, seen := classes[class]; seen && n != len(sealed) {
			t.Errorf("a body of %d bytes sealed to %d bytes, another of its class (%d) to %d", len(body), len(sealed), class, n)
		}
		classes[class] = len(sealed)
		if got, err := sec.open("body", sealed); err != nil || got != body {
			t.Errorf("a body of %d bytes opened as %d bytes (%v)", len(body), len(got), err)
		}
	}
	if len(classes) != 5 {
		t.Errorf("bodies fell in %d classes, want all 5 covered", len(classes))
	}
	short, long := sec.sealName("anonymous-fox-abcd"), sec.sealName("anonymous-dolphin-abcd")
	if len(short) != len(long) {
		t.Errorf("sealed names of %d and %d bytes", len(short), len(long))
	}
	if got := sec.member("m", long).Name; got != "anonymous-dolphin-abcd" {
		t.Errorf("name opened as %q", got)
	}
}
