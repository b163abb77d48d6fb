package server

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/ssh-burn/chat/store/memstore"
	"github.com/ssh-burn/chat/ui"
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

// feed queues data in chunks of size, as a client's reads would arrive,
// then ends the input; data must fit the queue.
func feed(t *testing.T, k *keyboard, data string, size int) {
	t.Helper()
	for len(data) > 0 {
		n := min(size, len(data))
		if !k.enqueue([]byte(data[:n])) {
			t.Fatal("the test's input does not fit the keyboard's queue")
		}
		data = data[n:]
	}
	k.end()
}

// ignore is a keyboard's tell for tests that do not listen.
func ignore(tea.Msg) {}

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
			for _, chunk := range []int{1, 3, 7, 255, 4096} {
				k := newKeyboard(1<<30, ignore)
				feed(t, k, c.in, chunk)
				if got := readAll(t, k); got != c.want {
					t.Fatalf("chunks of %d: got %d bytes, want %d", chunk, len(got), len(c.want))
				}
			}
		})
	}
}

// A paste whose end never comes would swallow every later key, Ctrl+C
// included: once the client goes quiet, the paste is ended for it.
func TestKeyboardEndsAPasteThatGoesQuiet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := newKeyboard(1<<30, ignore)
		k.enqueue([]byte(pasteStart + "abc"))
		buf := make([]byte, 256)
		n, _ := k.Read(buf)
		start := time.Now()
		m, _ := k.Read(buf[n:])
		if got := string(buf[:n+m]); got != pasteStart+"abc"+pasteEnd {
			t.Fatalf("got %q, want the paste ended", got)
		}
		if waited := time.Since(start); waited != pasteIdle {
			t.Fatalf("ended after %v, want %v", waited, pasteIdle)
		}
	})
}

// Every key costs a redraw, so keys are throttled by count, as the parser
// made them; Ctrl+C and what is not input pass at once.
func TestThrottleKeysCountsKeysAndLetsCtrlCThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const perSecond = 100
		filter := throttleKeys(t.Context(), perSecond)
		start := time.Now()
		for range 1000 {
			filter(nil, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("x")})
		}
		if took, want := time.Since(start), (1000-perSecond)*time.Second/perSecond; took < want {
			t.Fatalf("1000 keys passed in %v (fake time), want at least %v", took, want)
		}
		start = time.Now()
		for _, msg := range []tea.Msg{tea.KeyMsg{Type: tea.KeyCtrlC}, tea.WindowSizeMsg{Width: 80, Height: 24}, "a message of the chat's own"} {
			if got := filter(nil, msg); !reflect.DeepEqual(got, msg) {
				t.Fatalf("filter(%v) = %v", msg, got)
			}
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("Ctrl+C and non-input waited %v behind spent keys", waited)
		}
	})
}

// Keys that change nothing on the screen cost no redraw, so they are not
// held back: a flood into a full input drains at once.
func TestThrottleKeysLetsKeysThatChangeNothingThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rooms := memstore.New(time.Hour)
		defer rooms.Close()
		room, err := rooms.Create(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		seat, err := rooms.Join(t.Context(), room.ID)
		if err != nil {
			t.Fatal(err)
		}
		var model tea.Model = ui.New(ui.Config{Seat: seat, Width: 80, Height: 24})
		model, _ = model.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(strings.Repeat("x", 5000)), Paste: true})
		filter := throttleKeys(t.Context(), 1)
		start := time.Now()
		for range 1000 {
			filter(model, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("y")})
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("keys into a full input waited %v", waited)
		}
		seat.Leave(t.Context())
	})
}

// A flood is read off the connection and dropped beyond a bound, instead
// of waiting in the SSH window (2 MB of server memory a session); Ctrl+C
// is noticed at once, whatever is queued before it.
func TestKeyboardDropsFloodsButHearsCtrlC(t *testing.T) {
	told := make(chan tea.Msg, 10)
	k := newKeyboard(1, func(msg tea.Msg) { told <- msg }) // nothing is handed on in the meantime
	flood := strings.Repeat("x", 4*maxQueuedBytes) + "\x03"
	k.receive(strings.NewReader(flood))
	var interrupted, dropped bool
	for !interrupted || !dropped {
		select {
		case msg := <-told:
			switch msg := msg.(type) {
			case tea.KeyMsg:
				interrupted = msg.Type == tea.KeyCtrlC
			case ui.InputDropped:
				dropped = true
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("interrupted %v, dropped %v; want both told", interrupted, dropped)
		}
	}
	queued := 0
	for {
		chunk, ok := k.next()
		if !ok {
			break
		}
		queued += len(chunk)
	}
	if queued == 0 || queued > maxQueuedBytes {
		t.Fatalf("%d bytes were kept, want some, at most %d", queued, maxQueuedBytes)
	}
}

// Stopping the keyboard ends a read that waits for input or for its turn,
// so Bubble Tea's read loop never outlives the program.
func TestKeyboardStopEndsAWaitingRead(t *testing.T) {
	for name, in := range map[string]string{"no input": "", "a throttled flood": strings.Repeat(" ", 8000)} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				k := newKeyboard(1, ignore) // a byte a second, after the first read
				if in != "" {
					k.enqueue([]byte(in))
				}
				read := make(chan error)
				go func() {
					buf := make([]byte, 256)
					for {
						if _, err := k.Read(buf); err != nil {
							read <- err
							return
						}
					}
				}()
				synctest.Wait() // the read is waiting
				k.stop()
				if err := <-read; err != io.EOF {
					t.Fatalf("Read after stop = %v, want io.EOF", err)
				}
			})
		})
	}
}
