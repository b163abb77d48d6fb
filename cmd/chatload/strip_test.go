package main

import (
	"strings"
	"testing"
	"time"
)

func TestStripper(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "hello\r\nworld\t!", "hello\r\nworld\t!"},
		{"csi", "\x1b[1;38;5;212mbold\x1b[0m \x1b[?1049h\x1b[2J\x1b[H", "bold "},
		{"csi with intermediate", "a\x1b[2 qb", "ab"},
		{"osc ended by bel", "a\x1b]0;title\x07b", "ab"},
		{"osc ended by st", "a\x1b]8;;https://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"},
		{"dcs apc pm sos", "a\x1bPq#0\x1b\\b\x1b_apc\x1b\\c\x1b^pm\x1b\\d\x1bXsos\x1b\\e", "abcde"},
		{"two-byte and charset", "a\x1b7b\x1b8c\x1b(Bd\x1b=e", "abcde"},
		{"other controls dropped", "a\x07b\x08c\x7fd", "abcd"},
		{"unterminated osc then csi", "a\x1b]0;t\x1b[31mb", "ab"},
		{"can aborts", "a\x1b[12\x18b", "ab"},
		{"utf-8 kept", "\x1b[2m╭─\x1b[0m héllo", "╭─ héllo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Every split into two writes must give the same text.
			for cut := 0; cut <= len(tc.in); cut++ {
				var s stripper
				got := s.strip(nil, []byte(tc.in[:cut]))
				got = s.strip(got, []byte(tc.in[cut:]))
				if string(got) != tc.want {
					t.Fatalf("split at %d: got %q, want %q", cut, got, tc.want)
				}
			}
		})
	}
}

// Awaited texts and the share command are found however the output is
// split into writes, escape sequences inside them included, and each
// awaited text is reported once.
func TestWatcherFindsSplitText(t *testing.T) {
	stream := "\x1b[?1049h\x1b[H" + strings.Repeat("x", 100) +
		"ssh -p 2222 \x1b[1mk7m2-q9xw-4p3f-h8n2\x1b[0m@localhost\r\n" + strings.Repeat("y", 100) +
		"12:34 \x1b[1manon:\x1b[0m m1\x1b[0mx2q00ff\x1b[K\r\n" + strings.Repeat("z", 5000) + "m1x2q00ff"
	for cut := 0; cut <= len(stream); cut++ {
		w := newWatcher(true)
		found := 0
		w.expect("m1x2q00ff", time.Now(), func(time.Time, time.Time) { found++ })
		_, _ = w.Write([]byte(stream[:cut]))
		_, _ = w.Write([]byte(stream[cut:]))
		if found != 1 {
			t.Fatalf("split at %d: token reported %d times", cut, found)
		}
		if _, id := w.firstScreen(); id != "k7m2-q9xw-4p3f-h8n2" {
			t.Fatalf("split at %d: room ID %q", cut, id)
		}
	}
}
