package server_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssh-burn/chat/internal/latency"
	"github.com/ssh-burn/chat/store/redistest"
)

// BenchmarkSSHMessageLatency measures what a person sees: the time from
// writing a message and Enter into the sender's SSH stdin until the text
// arrives on the receiver's terminal, through the whole stack (SSH, input
// parsing, Bubble Tea, the store, rendering, SSH back). Messages go one at
// a time; every sample is recorded and p50, p99 and max are reported.
// memory-line-mode is the same between two people without a terminal
// (ssh -T), who get the chat in lines: the floor the full screen is
// measured against.
func BenchmarkSSHMessageLatency(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		ts := startServer(b, time.Hour)
		benchSSHLatency(b, ts, ts, false)
	})
	b.Run("memory-line-mode", func(b *testing.B) {
		ts := startServer(b, time.Hour)
		benchSSHLatency(b, ts, ts, true)
	})
	b.Run("redis", func(b *testing.B) {
		addr := redistest.Start(b).Addr
		b.Run("cross-replica", func(b *testing.B) {
			replicas := startReplicas(b, addr, 2, time.Hour)
			benchSSHLatency(b, replicas[0], replicas[1], false)
		})
	})
}

// jitter bounds the random pause before each timed message, so that
// messages cannot lock onto the phase of any timer on the way (a frame
// clock, a countdown tick), as a person typing would not.
const jitter = 20 * time.Millisecond

// roomMessages is how many timed messages one room carries before the
// benchmark moves to a fresh room. The chat screen's cost per message grows
// a little with the conversation on it (ui's BenchmarkIncomingMessage), so
// without a bound the percentiles would depend on -benchtime; with it,
// every run measures conversations of the same length.
const roomMessages = 100

// benchSSHLatency times messages typed by a sender on one server until the
// receiver's terminal, on another (or the same) server, shows them; in
// line mode, without terminals.
func benchSSHLatency(b *testing.B, senderServer, receiverServer *testServer, lineMode bool) {
	// Unique bodies: a per-run tag and a fixed-width counter, so no body
	// is a part of another.
	tag := fmt.Sprintf("%08x", rand.Uint32())
	i := 0
	var sender, receiver *client
	var watch *textWatch
	say := func() time.Duration {
		text := fmt.Sprintf("lat-%s-%07d", tag, i)
		i++
		shown := watch.expect(text)
		start := time.Now()
		if _, err := io.WriteString(sender.stdin, text+"\r"); err != nil {
			b.Fatalf("type: %v", err)
		}
		deadline := time.NewTimer(waitLimit)
		defer deadline.Stop()
		select {
		case at := <-shown:
			// The screen was fed these bytes before the watch saw them.
			// (Lines without a terminal are not drawn for one: the
			// emulator wraps them where it likes.)
			if !lineMode && !strings.Contains(receiver.screen.String(), text) {
				b.Fatalf("%q arrived but is not on the screen:\n%s", text, receiver.screen)
			}
			return at.Sub(start)
		case <-deadline.C:
			b.Fatalf("receiver never showed %q:\n%s\nsender:\n%s", text, receiver.screen, sender.screen)
		}
		return 0
	}

	var samples []time.Duration
	for b.Loop() {
		b.StopTimer()
		if len(samples)%roomMessages == 0 {
			if sender != nil {
				sender.conn.Close() // hang up; the room lives on
				receiver.conn.Close()
			}
			sender, receiver, watch = benchRoom(b, senderServer, receiverServer, lineMode)
			// Warm up the connections and the first full redraws.
			for range 3 {
				say()
			}
		}
		// A pause of random length, untimed, gives each message a random
		// phase, as a person typing has.
		time.Sleep(rand.N(jitter))
		b.StartTimer()
		samples = append(samples, say())
	}
	latency.Report(b, samples, time.Millisecond, "ms")
}

// benchRoom opens a room: the sender creates it and the receiver joins,
// with a watch on what the receiver's terminal receives.
func benchRoom(b *testing.B, senderServer, receiverServer *testServer, lineMode bool) (sender, receiver *client, watch *textWatch) {
	b.Helper()
	sender = senderServer.dialWith(b, "sender", dialOptions{noPTY: lineMode})
	watch = &textWatch{}
	receiver = receiverServer.dialWith(b, sender.roomID(), dialOptions{tee: watch, noPTY: lineMode})
	receiver.waitFor("you joined")
	sender.waitFor(" joined")
	return sender, receiver, watch
}

// textWatch is an io.Writer on a session's output that reports when one
// awaited text arrives, even split across writes. It notices the text in
// the write that completes it, so a sample carries no polling delay.
type textWatch struct {
	mu    sync.Mutex
	want  []byte
	seen  []byte // the end of the output so far, shorter than want
	found chan time.Time
}

// expect arms the watch for text and returns where its arrival time is sent.
func (w *textWatch) expect(text string) <-chan time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.want, w.seen = []byte(text), w.seen[:0]
	w.found = make(chan time.Time, 1)
	return w.found
}

func (w *textWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.want) == 0 {
		return len(p), nil
	}
	w.seen = append(w.seen, p...)
	if bytes.Contains(w.seen, w.want) {
		w.found <- time.Now()
		w.want, w.seen = nil, w.seen[:0]
		return len(p), nil
	}
	if keep := len(w.want) - 1; len(w.seen) > keep {
		w.seen = append(w.seen[:0], w.seen[len(w.seen)-keep:]...)
	}
	return len(p), nil
}
