package plain

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func texts(lines []line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return out
}

func TestEditorMakesLines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		feeds []string
		want  []string
	}{
		{"newlines", []string{"one\ntwo\n"}, []string{"one", "two"}},
		{"crlf is one end", []string{"one\r\ntwo\r", "\nthree\r"}, []string{"one", "two", "three"}},
		{"empty lines stay", []string{"\n\n"}, []string{"", ""}},
		{"arrow keys and a paste's brackets are dropped", []string{"a\x1b[Db\x1b[200~c\x1b[201~\x1bOAd\n"}, []string{"abcd"}},
		{"a title sequence is dropped whole", []string{"x\x1b]0;evil\x07y\n"}, []string{"xy"}},
		{"an escape string that never ends stops at the line's end", []string{"x\x1b]52;c;AAAA\nnext\n"}, []string{"x", "next"}},
		{"controls are dropped, tab is a space", []string{"a\x00\x07b\tc\n"}, []string{"ab c"}},
		{"C1 controls are dropped", []string{"a\u009bb\n"}, []string{"ab"}},
		{"a character split across reads", []string{"caf\xc3", "\xa9\n"}, []string{"café"}},
		{"backspace takes a character", []string{"héllo\x7f\x7fp\n"}, []string{"hélp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e editor
			var got []line
			for _, f := range tc.feeds {
				lines, echo := e.feed([]byte(f))
				if echo != "" {
					t.Errorf("echoed %q without echo", echo)
				}
				got = append(got, lines...)
			}
			if strings.Join(texts(got), "|") != strings.Join(tc.want, "|") {
				t.Errorf("lines %q, want %q", texts(got), tc.want)
			}
		})
	}
}

func TestEditorEchoesAsATerminalWould(t *testing.T) {
	e := editor{echo: true}
	lines, echo := e.feed([]byte("helo\x7flo 世\x7f!\r"))
	if want := "helo\b \blo 世\b \b\b \b!\n"; echo != want {
		t.Errorf("echo %q, want %q", echo, want)
	}
	if len(lines) != 1 || lines[0].text != "hello !" {
		t.Errorf("lines %q", texts(lines))
	}
	if _, echo := e.feed([]byte("gone\x15")); echo != "gone\n" {
		t.Errorf("ctrl+u echo %q", echo)
	}
	if e.pending() != "" {
		t.Errorf("ctrl+u left %q", e.pending())
	}
	e.feed([]byte("\x04"))
	if !e.eof {
		t.Error("ctrl+d on an empty line did not end the input")
	}
}

func TestEditorCapsALine(t *testing.T) {
	var e editor
	lines, _ := e.feed([]byte(strings.Repeat("x", maxLineBytes+10) + "\nnext\n"))
	if len(lines) != 2 || !lines[0].over || len(lines[0].text) != maxLineBytes || lines[1].over || lines[1].text != "next" {
		t.Fatalf("got %d lines, first over=%v len %d", len(lines), lines[0].over, len(lines[0].text))
	}
}

func TestEditorDropsALineWhoseMiddleWasLost(t *testing.T) {
	e := editor{echo: true}
	e.feed([]byte("kept\nthe head of"))
	if echo := e.lose(); echo != "\n" {
		t.Errorf("lose echo %q", echo)
	}
	lines, _ := e.feed([]byte(" a lost line\nwhole\n"))
	if strings.Join(texts(lines), "|") != "whole" {
		t.Errorf("lines after a loss %q, want only the whole one", texts(lines))
	}
}

// Whatever a client sends, the echo holds no control but line ends and
// backspaces.
func TestEditorEchoesNoControl(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	e := editor{echo: true}
	for range 2000 {
		data := make([]byte, r.IntN(64))
		for i := range data {
			data[i] = byte(r.IntN(256))
			if r.IntN(4) == 0 {
				data[i] = "\x1b[]\x07\x7f\r\n\x15"[r.IntN(8)]
			}
		}
		_, echo := e.feed(data)
		for _, c := range echo {
			if (c < 0x20 && c != '\n' && c != '\b') || c == 0x7f || (c >= 0x80 && c <= 0x9f) {
				t.Fatalf("echo of %q holds %U: %q", data, c, echo)
			}
		}
	}
}

func TestInboxMarksWhereInputWasLost(t *testing.T) {
	b := newInbox()
	b.enqueue([]byte("first\n"))
	b.enqueue(make([]byte, maxQueuedInput)) // does not fit
	b.enqueue([]byte("after\n"))
	data, lost, _ := b.take(1 << 20)
	if string(data) != "first\n" || lost {
		t.Fatalf("took %q lost=%v", data, lost)
	}
	data, lost, _ = b.take(1 << 20)
	if string(data) != "after\n" || !lost {
		t.Fatalf("took %q lost=%v, want what came after, marked lost", data, lost)
	}
	b.enqueue([]byte("abcdef"))
	if data, _, _ := b.take(4); string(data) != "abcd" {
		t.Fatalf("took %q, want at most 4 bytes", data)
	}
	b.end()
	if data, _, ended := b.take(4); string(data) != "ef" || ended {
		t.Fatalf("took %q ended=%v", data, ended)
	}
	if _, _, ended := b.take(4); !ended {
		t.Fatal("not ended")
	}
}
