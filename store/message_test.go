package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
)

// Sanitize bounds characters, not bytes: within MaxMessageRunes its output
// can exceed MaxMessageBytes (marks and long encodings), and then
// CleanMessage refuses it. Whatever it returns is within both limits, what
// Sanitize made of the input, and fits a size class.
func FuzzCleanMessage(f *testing.F) {
	for _, s := range []string{
		"hello", "", " \x00\x1b ", strings.Repeat("e\u0301\u0302\u0303", 700), strings.Repeat("x", 1001),
		strings.Repeat("🎉", 1000), strings.Repeat("👍🏽", 600), strings.Repeat("a\u0301\u0302\u0303\u0304", 600),
		strings.Repeat("世", 1000) + "!", strings.Repeat("\xff", 1500),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		body, err := store.CleanMessage(s)
		clean := safetext.Sanitize(s)
		switch {
		case err == nil:
			if len(body) > safetext.MaxMessageBytes || safetext.RuneCount(body) > safetext.MaxMessageRunes {
				t.Fatalf("CleanMessage kept %d bytes, %d characters", len(body), safetext.RuneCount(body))
			}
			if body != clean {
				t.Fatalf("CleanMessage kept %q, not what Sanitize made (%q)", body, clean)
			}
			if store.BodyCost(body) > safetext.MaxMessageBytes {
				t.Fatalf("a kept body of %d bytes costs %d", len(body), store.BodyCost(body))
			}
		case errors.Is(err, store.ErrMessageTooLong):
			if len(clean) <= safetext.MaxMessageBytes && safetext.RuneCount(clean) <= safetext.MaxMessageRunes {
				t.Fatalf("refused as too long: %d bytes, %d characters", len(clean), safetext.RuneCount(clean))
			}
		case errors.Is(err, store.ErrEmptyMessage):
			if clean != "" {
				t.Fatalf("refused as empty: %q", clean)
			}
		default:
			t.Fatalf("CleanMessage: %v", err)
		}
	})
}
