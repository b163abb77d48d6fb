package safetext_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/ssh-burn/chat/internal/safetext"
)

func TestSanitize(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "hello, world", "hello, world"},
		{"emoji and CJK", "héllo 世界 🎉", "héllo 世界 🎉"},
		{"CSI clear screen", "a\x1b[2Jb", "a[2Jb"},
		{"OSC title with BEL", "a\x1b]0;pwned\x07b", "a]0;pwnedb"},
		{"OSC 52 clipboard", "\x1b]52;c;ZWNobw==\x1b\\x", "]52;c;ZWNobw==\\x"},
		{"DCS and APC", "\x1bPq#0\x1b\\\x1b_Gf=1\x1b\\", "Pq#0\\_Gf=1\\"},
		{"C0 controls", "a\x00b\x07c\x08d\x7fe", "abcde"},
		{"C1 controls", "a\u0085b\u009bc\u0090d", "abcd"},
		{"CR overwrite", "safe\rEVIL", "safe EVIL"},
		{"newlines become one space", "a\n\n\n\nb\r\nc", "a b c"},
		{"tabs and odd spaces", "a\tb\u00a0c\u2003d", "a b c d"},
		{"line and paragraph separators", "a\u2028b\u2029c", "a b c"},
		{"bidi override and isolates", "a\u202eb\u2066c\u2069d\u200fe", "abcde"},
		{"zero width", "a\u200bb\u200cc\u200dd\ufeffe\u2060f", "abcdef"},
		{"invisible fillers", "a\u3164b\u115fc", "abc"},
		{"invalid utf-8", "a\xffb\xc3", "a\ufffdb\ufffd"},
		{"zalgo capped", "a" + strings.Repeat("\u0301", 300) + "b", "a\u0301\u0301\u0301b"},
		{"leading mark dropped", "\u0301a", "a"},
		{"trimmed", "  hi  ", "hi"},
		{"private use", "a\ue000b", "ab"},
		{"tag characters", "a\U000e0041b", "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := safetext.Sanitize(tc.in); got != tc.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestSanitizeBoundsHugeInput(t *testing.T) {
	huge := strings.Repeat("x", 10<<20)
	got := safetext.Sanitize(huge)
	if n := safetext.RuneCount(got); n > 4*safetext.MaxMessageRunes {
		t.Fatalf("%d characters survived", n)
	}
	if n := safetext.RuneCount(got); n <= safetext.MaxMessageRunes {
		t.Fatalf("cut to %d characters: an over-long message must stay over the limit so it is reported", n)
	}
}

// checkSanitized holds the properties every output must have.
func checkSanitized(t *testing.T, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("invalid UTF-8 out of %q: %q", in, out)
	}
	if again := safetext.Sanitize(out); again != out {
		t.Fatalf("not idempotent on %q: %q then %q", in, out, again)
	}
	if safetext.RuneCount(out) > 4*safetext.MaxMessageRunes {
		t.Fatalf("%d characters out", safetext.RuneCount(out))
	}
	// Bounded width: at most two cells per character kept.
	if w := ansi.StringWidth(out); w > 2*4*safetext.MaxMessageRunes {
		t.Fatalf("%d cells wide", w)
	}
	marks := 0
	for _, r := range out {
		switch {
		case r < 0x20, r >= 0x7f && r < 0xa0:
			t.Fatalf("control %U survived in %q", r, out)
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Co, r), unicode.Is(unicode.Cs, r):
			t.Fatalf("format/private character %U survived in %q", r, out)
		case unicode.IsSpace(r) && r != ' ':
			t.Fatalf("white space %U survived in %q", r, out)
		case unicode.Is(unicode.M, r):
			if marks++; marks > 3 {
				t.Fatalf("more than 3 marks on one character in %q", out)
			}
		default:
			marks = 0
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		"hello", "\x1b[2J\x1b[H", "\x1b]0;title\x07", "\x1b]52;c;Zm9v\x1b\\", "\x1bP+q\x1b\\",
		"\x9b31m", "a\u202eb", "\u2066\u2069", "\u200b\u200d\ufeff", "a\u2028b",
		"e" + strings.Repeat("\u0301", 50), "\xff\xfe\xc3", strings.Repeat("\n", 100), "🎉世界",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkSanitized(t, s, safetext.Sanitize(s))
	})
}

func BenchmarkSanitize1MB(b *testing.B) {
	in := strings.Repeat("hello \x1b[31mworld\x1b[0m \u202e ", 1<<20/25)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		safetext.Sanitize(in)
	}
}

func TestSqueezeSpaceSqueezesWhatSanitizeSqueezes(t *testing.T) {
	for in, want := range map[string]string{
		"  a\n\n\tb \u2028 c  ": " a b c ",
		"no runs":               "no runs",
		"x\u3000\u00a0y":        "x y",
		"\x1b[2J keep":          "\x1b[2J keep", // only white space is its business
	} {
		if got := safetext.SqueezeSpace(in); got != want {
			t.Errorf("SqueezeSpace(%q) = %q, want %q", in, got, want)
		}
		if safetext.Sanitize(safetext.SqueezeSpace(in)) != safetext.Sanitize(in) {
			t.Errorf("squeezing %q changes the message it makes", in)
		}
	}
}

func TestCleanShowsWhatSanitizeSends(t *testing.T) {
	for in, want := range map[string]string{
		"plain text  with runs ":          "plain text  with runs ",
		"a\u202eb\u2066c\U000e0041d":      "abcd",
		"tab\there\u2028":                 "tab here ",
		"\x1b]52;c;Zm9v\x07x":             "]52;c;Zm9vx",
		"e" + strings.Repeat("\u0301", 9): "e\u0301\u0301\u0301",
		" \u0301a\u200b\u0301":            " a\u0301",
		"世界 🎉":                            "世界 🎉",
	} {
		got := safetext.Clean(in)
		if got != want {
			t.Errorf("Clean(%q) = %q, want %q", in, got, want)
		}
		if safetext.Sanitize(got) != safetext.Sanitize(in) {
			t.Errorf("Clean(%q) = %q sends %q, not %q", in, got, safetext.Sanitize(got), safetext.Sanitize(in))
		}
	}
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"hello", "a\u202eb", " \u0301x", "e" + strings.Repeat("\u0301", 5), "\xff\x1b[2J", "  a  b  "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		clean := safetext.Clean(s)
		if safetext.Sanitize(clean) != safetext.Sanitize(s) {
			t.Fatalf("Clean(%q) = %q sends %q, not %q", s, clean, safetext.Sanitize(clean), safetext.Sanitize(s))
		}
		if safetext.Clean(clean) != clean {
			t.Fatalf("Clean is not idempotent on %q", s)
		}
		checkSanitized(t, s, safetext.Sanitize(clean))
	})
}
