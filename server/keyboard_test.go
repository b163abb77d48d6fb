package server

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// readAll drains k the way Bubble Tea does, with a 256-byte buffer,
// checking no read fills it.
func readAll(t *testing.T, k *keyboard) string {
	t.Helper()
	var out bytes.Buffer
	buf := make([]byte, 256)
	for {
		n, err := k.Read(buf)
		if n >= len(buf) {
			t.Fatalf("a read filled the parser's buffer (%d bytes): it would wait for more", n)
		}
		out.Write(buf[:n])
		if err == io.EOF {
			return out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeyboardEndsRunawayPastes(t *testing.T) {
	long := strings.Repeat("z", maxPasteBytes+1000)
	for name, c := range map[string]struct{ in, want string }{
		"short paste untouched":   {pasteStart + "hello" + pasteEnd + "x", pasteStart + "hello" + pasteEnd + "x"},
		"runaway paste is ended":  {pasteStart + long, pasteStart + long[:maxPasteBytes] + pasteEnd + long[maxPasteBytes:]},
		"plain text untouched":    {long, long},
		"second paste also bound": {pasteStart + "a" + pasteEnd + pasteStart + long, pasteStart + "a" + pasteEnd + pasteStart + long[:maxPasteBytes] + pasteEnd + long[maxPasteBytes:]},
	} {
		t.Run(name, func(t *testing.T) {
			// Reads of every size split the markers in every way.
			for _, chunk := range []int{1, 3, 7, 255} {
				k := newKeyboard(&chunked{data: []byte(c.in), size: chunk}, 1<<30, 1<<30)
				if got := readAll(t, k); got != c.want {
					t.Fatalf("chunks of %d: got %d bytes, want %d", chunk, len(got), len(c.want))
				}
			}
		})
	}
}

// chunked returns data size bytes at a time, as a network would.
type chunked struct {
	data []byte
	size int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.data)
	c.data = c.data[n:]
	return n, nil
}

// Every key costs a redraw, so tiny keys are throttled by count, not only
// by bytes; a bracketed paste is one key however long.
func TestKeyboardThrottlesKeysNotJustBytes(t *testing.T) {
	const perSecond = 100
	for name, c := range map[string]struct {
		in      string
		atLeast time.Duration
	}{
		"typed and erased": {strings.Repeat("a\x7f", 1000), (2000 - 256) * time.Second / perSecond},
		"one long paste":   {pasteStart + strings.Repeat("word ", 2000) + pasteEnd, 0},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				k := newKeyboard(&chunked{data: []byte(c.in), size: 255}, 1<<30, perSecond)
				start := time.Now()
				readAll(t, k)
				took := time.Since(start)
				if took < c.atLeast || (c.atLeast == 0 && took > time.Second) {
					t.Fatalf("took %v (fake time), want at least %v", took, c.atLeast)
				}
			})
		})
	}
}
