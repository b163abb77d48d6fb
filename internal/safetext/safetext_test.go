package safetext_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
	"github.com/rivo/uniseg"

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
		{"CR overwrite", "safe\rEVIL", "safe\nEVIL"},
		{"blank line runs collapse", "a\n\n\n\nb\r\nc", "a\n\nb\nc"},
		{"tabs and odd spaces", "a\tb\u00a0c\u2003d", "a b c d"},
		{"line and paragraph separators", "a\u2028b\u2029c", "a\nb\nc"},
		{"bidi override and isolates", "a\u202eb\u2066c\u2069d\u200fe", "abcde"},
		{"zero width", "a\u200bb\u200cc\u200dd\ufeffe\u2060f", "abcdef"},
		{"invisible fillers", "a\u3164b\u115fc", "abc"},
		{"invalid utf-8", "a\xffb\xc3", "a\ufffdb\ufffd"},
		{"zalgo capped", "a" + strings.Repeat("\u0301", 300) + "b", "a\u0301\u0301\u0301b"},
		{"leading mark dropped", "\u0301a", "a"},
		{"trimmed", "  hi  ", "hi"},
		{"private use", "a\ue000b", "ab"},
		{"tag characters", "a\U000e0041b", "ab"},
		{"ZWJ family", "👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧"},
		{"ZWJ profession", "👨\u200d💻 ok", "👨\u200d💻 ok"},
		{"skin tones", "👍🏽👍🏽", "👍🏽👍🏽"},
		{"ZWJ with skin tones", "👩🏻\u200d❤\ufe0f\u200d💋\u200d👨🏼", "👩🏻\u200d❤\ufe0f\u200d💋\u200d👨🏼"},
		{"flags", "🇫🇷🇯🇵", "🇫🇷🇯🇵"},
		{"subdivision flag", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"},
		{"tags without their flag", "🎉\U000e0067\U000e0062\U000e007f", "🎉"},
		{"unclosed tags", "🏴\U000e0067\U000e0062", "🏴"},
		{"variation selector on emoji", "❤\ufe0f ☺\ufe0e", "❤\ufe0f ☺\ufe0e"},
		{"keycap", "1\ufe0f\u20e3#\ufe0f\u20e3", "1\ufe0f\u20e3#\ufe0f\u20e3"},
		{"combining accents", "e\u0301 n\u0303", "e\u0301 n\u0303"},
		{"ZWJ between letters", "a\u200db", "ab"},
		{"ZWJ after emoji before letter", "😀\u200da", "😀a"},
		{"ZWJ at either end", "\u200d😀\u200d", "😀"},
		{"ZWJ doubled", "😀\u200d\u200d😀", "😀😀"},
		{"ZWJ before a mark", "😀\u200d\u0301", "😀\u0301"},
		{"ZWJ after a space", "😀 \u200d😀", "😀 😀"},
		{"ZWJ chain capped", strings.Repeat("😀\u200d", 6) + "😀", "😀\u200d😀\u200d😀\u200d😀😀\u200d😀\u200d😀"},
		{"VS16 on a letter", "a\ufe0fb", "ab"},
		{"VS16 alone", "\ufe0f", ""},
		{"VS16 doubled", "❤\ufe0f\ufe0f", "❤\ufe0f"},
		{"bidi inside a sequence", "👨\u202e\u200d💻", "👨\u200d💻"},
		{"indentation kept after the first line", "  def f():\n\treturn 1\n        x", "def f():\n    return 1\n        x"},
		{"indentation capped", "a\n" + strings.Repeat(" ", 100) + "b", "a\n" + strings.Repeat(" ", 16) + "b"},
		{"trailing spaces and blank lines", "a   \n\n \n\nb  \n\n", "a\n\nb"},
		{"blank lines at the start", "\n\n  \na", "a"},
		{"lines beyond the limit joined", strings.Repeat("x\n", 25), strings.Repeat("x\n", 19) + "x x x x x x"},
		{"thousands of newlines", "a" + strings.Repeat("\n", 5000) + "b", "a\n\nb"},
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
	lines := strings.Split(out, "\n")
	if len(lines) > safetext.MaxMessageLines {
		t.Fatalf("%d lines out of %q", len(lines), in)
	}
	for i, line := range lines {
		blank := line == ""
		switch {
		case blank && (i == 0 || i == len(lines)-1):
			if out != "" {
				t.Fatalf("blank line at an end of %q", out)
			}
		case blank && lines[i-1] == "":
			t.Fatalf("two blank lines in a row in %q", out)
		case strings.HasSuffix(line, " "), strings.TrimLeft(line, " ") == "" && !blank:
			t.Fatalf("line %d ends in white space in %q", i, out)
		}
	}
	checkMarks(t, out)
	checkJoiners(t, out)
}

// checkMarks holds the allowlist: no control, format or private
// character but the joiners of an emoji sequence, no white space but
// spaces and line breaks, at most three marks on a character.
func checkMarks(t *testing.T, out string) {
	t.Helper()
	marks := 0
	for _, r := range out {
		switch {
		case r == '\n':
			marks = 0
		case r < 0x20, r >= 0x7f && r < 0xa0:
			t.Fatalf("control %U survived in %q", r, out)
		case r == '\u200d', r >= '\U000e0020' && r <= '\U000e007f':
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Co, r), unicode.Is(unicode.Cs, r):
			t.Fatalf("format/private character %U survived in %q", r, out)
		case unicode.IsSpace(r) && r != ' ':
			t.Fatalf("white space %U survived in %q", r, out)
		case r == '\ufe0f', r == '\ufe0e':
		case unicode.Is(unicode.M, r):
			if marks++; marks > 3 {
				t.Fatalf("more than 3 marks on one character in %q", out)
			}
		default:
			marks = 0
		}
	}
}

// checkJoiners holds that every ZWJ, variation selector and tag left
// stands inside an emoji sequence: a ZWJ joins what follows it into its
// grapheme cluster (by UAX #29's GB11), a selector follows the emoji or
// keycap base it selects for, and tags follow a black flag.
func checkJoiners(t *testing.T, out string) {
	t.Helper()
	for cluster := range graphemes(out) {
		runes := []rune(cluster)
		joins := 0
		for i, r := range runes {
			switch {
			case r == '\u200d':
				joins++
				if i == 0 || i == len(runes)-1 || unicode.Is(unicode.M, runes[i+1]) || runes[i+1] == '\u200d' || isModifier(runes[i+1]) {
					t.Fatalf("ZWJ outside a sequence in %q (cluster %q)", out, cluster)
				}
			case r == '\ufe0f', r == '\ufe0e':
				if i == 0 || runes[i-1] == '\ufe0f' || runes[i-1] == '\ufe0e' || runes[i-1] == '\u200d' || isModifier(runes[i-1]) || (runes[i-1] < 0xa9 && !strings.ContainsRune("0123456789#*", runes[i-1])) {
					t.Fatalf("variation selector outside a sequence in %q (cluster %q)", out, cluster)
				}
			case r >= '\U000e0020' && r <= '\U000e007f':
				if runes[0] != '\U0001f3f4' || runes[len(runes)-1] != '\U000e007f' {
					t.Fatalf("tag outside a flag in %q (cluster %q)", out, cluster)
				}
			}
		}
		if joins > 3 {
			t.Fatalf("%d joins in one sequence in %q", joins, out)
		}
	}
}

func isModifier(r rune) bool { return r >= '\U0001f3fb' && r <= '\U0001f3ff' }

// graphemes yields the grapheme clusters of s.
func graphemes(s string) func(func(string) bool) {
	return func(yield func(string) bool) {
		state := -1
		for s != "" {
			var cluster string
			cluster, s, _, state = uniseg.FirstGraphemeClusterInString(s, state)
			if !yield(cluster) {
				return
			}
		}
	}
}

func TestSanitizeBoundsLines(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("\n\r\u2028y", 5000),
		strings.Repeat("a\n\n", 3000),
		strings.Repeat("\t\n", 10000) + "x",
		strings.Repeat("word\r\n", 100),
	} {
		out := safetext.Sanitize(in)
		if n := strings.Count(out, "\n") + 1; n > safetext.MaxMessageLines {
			t.Errorf("%d lines", n)
		}
		checkSanitized(t, in, out)
	}
}

func TestRuneCountCountsWhatPeopleSee(t *testing.T) {
	for in, want := range map[string]int{
		"👍🏽👍🏽":            2,
		"👨\u200d👩\u200d👧": 1,
		"🇫🇷🇯🇵":            2,
		"e\u0301":         1,
		"❤\ufe0f":         1,
		"1\ufe0f\u20e3":   1,
		"ab\ncd":          5,
		"hello":           5,
		"a\r\nb":          3,
		"ab\u0301c":       3,
		"x👍🏽y":            3,
		"🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f": 1,
	} {
		if got := safetext.RuneCount(in); got != want {
			t.Errorf("RuneCount(%q) = %d, want %d", in, got, want)
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		"hello", "\x1b[2J\x1b[H", "\x1b]0;title\x07", "\x1b]52;c;Zm9v\x1b\\", "\x1bP+q\x1b\\",
		"\x9b31m", "a\u202eb", "\u2066\u2069", "\u200b\u200d\ufeff", "a\u2028b",
		"e" + strings.Repeat("\u0301", 50), "\xff\xfe\xc3", strings.Repeat("\n", 100), "🎉世界",
		"👨\u200d👩\u200d👧", "👍🏽\u200d", "\u200d\ufe0f", "a\ufe0f", "❤\ufe0f\ufe0f", "1\ufe0f\u20e3",
		"🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "\U000e0067🏴\U000e007f",
		"👩🏻\u200d❤\ufe0f\u200d💋\u200d👨🏼", strings.Repeat("😀\u200d", 10), "🇫🇷🇯", " \n\t x\n\n\n y ",
		strings.Repeat("a\n", 40), "\r\n\r\n\u2028", "😀\u200d\u0301😀", "x\n\u200d😀",
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
		"  a\n\n\tb \u2028 c  ":               " a\n\n    b \n c ",
		"no runs":                             "no runs",
		"x\u3000\u00a0y":                      "x y",
		"\x1b[2J keep":                        "\x1b[2J keep", // only white space is its business
		"a\r\n\r\n\r\n\r\nb":                  "a\n\nb",
		"a\n" + strings.Repeat(" ", 40) + "b": "a\n" + strings.Repeat(" ", 16) + "b",
	} {
		if got := safetext.SqueezeSpace(in); got != want {
			t.Errorf("SqueezeSpace(%q) = %q, want %q", in, got, want)
		}
		if safetext.Sanitize(safetext.SqueezeSpace(in)) != safetext.Sanitize(in) {
			t.Errorf("squeezing %q changes the message it makes", in)
		}
	}
}

func FuzzSqueezeSpace(f *testing.F) {
	for _, s := range []string{"  a\n\n\tb \u2028 c  ", "a\r\n\r\nb", "\n \n x", "\t\t\t\t\t\ty"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if safetext.Sanitize(safetext.SqueezeSpace(s)) != safetext.Sanitize(s) {
			t.Fatalf("squeezing %q changes the message it makes", s)
		}
	})
}

func TestCleanShowsWhatSanitizeSends(t *testing.T) {
	for in, want := range map[string]string{
		"plain text  with runs ":          "plain text  with runs ",
		"a\u202eb\u2066c\U000e0041d":      "abcd",
		"tab\there\u2028":                 "tab    here\n",
		"a\r\nb\rc":                       "a\nb\nc",
		"👨\u200d👩\u200d👧 a\u200db":        "👨\u200d👩\u200d👧 ab",
		"typing 👨\u200d":                  "typing 👨\u200d",
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

// RuneCount counts as Unicode's grapheme rules do, whatever shortcut it
// takes for plain text.
func FuzzRuneCount(f *testing.F) {
	for _, s := range []string{"hello", "a\r\nb", "ab\u0301c", "x👍🏽y", "👨\u200d👩\u200d👧 \r", "\r\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := safetext.RuneCount(s), uniseg.GraphemeClusterCount(s); got != want {
			t.Fatalf("RuneCount(%q) = %d, want %d", s, got, want)
		}
	})
}

func FuzzClean(f *testing.F) {
	for _, s := range []string{"hello", "a\u202eb", " \u0301x", "e" + strings.Repeat("\u0301", 5), "\xff\x1b[2J", "  a  b  ",
		"👨\u200d👩\u200d👧", "😀\u200d", "a\n\n\n b", "❤\ufe0f\ufe0f", "🏴\U000e0067\U000e007f", "\t\r\n😀\u200d\u200d💻"} {
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

func BenchmarkSanitizeEmojiAndLines1MB(b *testing.B) {
	in := strings.Repeat("👨\u200d👩\u200d👧 👍🏽 ❤\ufe0f a\u200db\n  🇫🇷\r\n", 1<<20/60)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		safetext.Sanitize(in)
	}
}
