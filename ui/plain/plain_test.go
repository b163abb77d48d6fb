package plain

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
	"github.com/ssh-burn/chat/ui"
)

type transcript struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (t *transcript) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.Write(p)
}

func (t *transcript) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}

func seats(t *testing.T) (a, b store.Seat) {
	t.Helper()
	s := memstore.New(10 * time.Minute)
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	r, err := s.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, err = s.Join(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if b, err = s.Join(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// What a hostile partner sends reaches the line mode as text: no escape,
// no control, and no line of it passes for an event of its own.
func TestHostileMessagesArriveAsText(t *testing.T) {
	a, b := seats(t)
	out := &transcript{}
	in, typed := io.Pipe()
	defer typed.Close()
	chat := New(Config{Seat: a, JoinCommand: "ssh -p 2222 ROOM@localhost", Location: time.UTC, InputBytesPerSecond: 1 << 20}, out)
	type result struct {
		outcome ui.Outcome
		err     error
	}
	done := make(chan result, 1)
	go func() {
		outcome, err := chat.Run(context.Background(), in)
		done <- result{outcome, err}
	}()
	ctx := context.Background()
	for _, body := range []string{
		"\x1b[2J\x1b[H\x1b]0;title\x07\x1b]52;c;QUFBQQ==\x07clear",
		"fake\n12:00 * Room destroyed. Every message in it is gone.",
		"\u202eevil\u202c \u0085\u009b31m\x07bell\x00\x7f",
	} {
		if err := b.Send(ctx, store.NewMessageID(), body); err != nil {
			t.Fatal(err)
		}
	}
	waitfor.Condition(t, waitfor.Timeout, "the messages", func() bool { return strings.Contains(out.String(), "bell") })
	if err := b.Destroy(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.outcome.Ending != ui.EndingDestroyedByPartner {
		t.Fatalf("ended %+v, %v", r.outcome, r.err)
	}
	got := out.String()
	for _, c := range got {
		if (c < 0x20 && c != '\n') || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == '\u202e' {
			t.Fatalf("output holds %U:\n%q", c, got)
		}
	}
	for line := range strings.Lines(got) {
		if strings.HasPrefix(line, "12:00 * Room destroyed") {
			t.Errorf("a message passed for an event: %q", line)
		}
	}
}

// A message of several lines shows them under its first, indented.
func TestMessageLinesHang(t *testing.T) {
	a, _ := seats(t)
	out := &transcript{}
	chat := New(Config{Seat: a, Location: time.UTC}, out)
	chat.message(store.Message{From: store.Member{ID: "x", Name: "anonymous-otter-k3f9"}, Body: "one\ntwo", At: time.Date(2026, 1, 1, 12, 1, 0, 0, time.UTC)})
	if err := chat.out.close(); err != nil {
		t.Fatal(err)
	}
	if want := "12:01 anonymous-otter-k3f9: one\n                            two\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// panickySeat is a seat whose Send panics: a bug in a store.
type panickySeat struct{ store.Seat }

func (panickySeat) Send(context.Context, store.MessageID, string) error { panic("a store bug") }

// A store call that panics fails that call, said as a line; the chat
// goes on.
func TestAPanickingCallFailsOnlyItself(t *testing.T) {
	a, _ := seats(t)
	out := &transcript{}
	in, typed := io.Pipe()
	recovered := make(chan string, 1)
	chat := New(Config{Seat: panickySeat{a}, InputBytesPerSecond: 1 << 20, Recover: func(what string) {
		if r := recover(); r != nil {
			recovered <- what
		}
	}}, out)
	done := make(chan error, 1)
	go func() {
		_, err := chat.Run(context.Background(), in)
		done <- err
	}()
	if _, err := io.WriteString(typed, "hello\n"); err != nil {
		t.Fatal(err)
	}
	if what := <-recovered; what != "plain send" {
		t.Errorf("recovered in %q", what)
	}
	waitfor.Condition(t, waitfor.Timeout, "the failure said", func() bool {
		return strings.Contains(out.String(), "Not sent: something went wrong. Send them again:\n  hello\n")
	})
	if _, err := io.WriteString(typed, "/leave\n"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	typed.Close()
}

// A question waits for y or n; a line that is neither is not sent, and
// leaving needs no answer first.
func TestQuestionsWaitForAnAnswer(t *testing.T) {
	a, b := seats(t)
	out := &transcript{}
	in, typed := io.Pipe()
	defer typed.Close()
	chat := New(Config{Seat: a, JoinCommand: "ssh ROOM@host", InputBytesPerSecond: 1 << 20}, out)
	done := make(chan ui.Outcome, 1)
	go func() {
		outcome, err := chat.Run(context.Background(), in)
		if err != nil {
			t.Error(err)
		}
		done <- outcome
	}()
	say := func(line, want string) {
		t.Helper()
		if _, err := io.WriteString(typed, line+"\n"); err != nil {
			t.Fatal(err)
		}
		waitfor.Condition(t, waitfor.Timeout, want, func() bool { return strings.Contains(out.String(), want) })
	}
	say("/reopen", "/reopen gives the seat kept for an away partner to someone new; nobody's is kept now.")
	say("/destroy", "Destroy this room and every message in it, for both of you?")
	say("not an answer", "Nothing was sent: type y or n first.")
	say("n", "The room lives on.")
	say("/copy", "Line mode has no clipboard; copy the room's command from here:\nssh ROOM@host\n")
	say("/destroy", "Type y to destroy it")
	if _, err := io.WriteString(typed, "/leave\n"); err != nil {
		t.Fatal(err)
	}
	if outcome := <-done; outcome.Ending != ui.EndingLeft {
		t.Errorf("ended %+v, want left", outcome)
	}
	// Run leaves the seat to its caller.
	if err := a.Leave(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The partner's events up to a's leaving hold no message.
	for {
		ev := <-b.Events()
		if _, ok := ev.(store.MessageEvent); ok {
			t.Errorf("the partner got a message: %+v", ev)
		}
		if _, ok := ev.(store.LeftEvent); ok {
			break
		}
	}
}
