package server_test

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/ssh-burn/chat/limits/local"
	"github.com/ssh-burn/chat/server"
	"github.com/ssh-burn/chat/store/memstore"
)

// panicOnDemand is a chat screen that panics when its person types one of
// the keys below: in Update, in View, in a command Bubble Tea runs in a
// goroutine of its own, or in one of a batch of commands.
type panicOnDemand struct {
	tea.Model
	viewPanics bool
}

const (
	panicInUpdate  = "¹"
	panicInView    = "²"
	panicInCommand = "³"
	panicInBatch   = "⁴"
)

func (p *panicOnDemand) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if key, ok := msg.(tea.KeyMsg); ok {
		switch string(key.Runes) {
		case panicInUpdate:
			panic("on demand, in Update")
		case panicInView:
			p.viewPanics = true
			return p, nil
		case panicInCommand:
			return p, func() tea.Msg { panic("on demand, in a command") }
		case panicInBatch:
			return p, tea.Batch(func() tea.Msg { return nil }, func() tea.Msg { panic("on demand, in a batch") })
		}
	}
	next, cmd := p.Model.Update(msg)
	p.Model = next
	return p, cmd
}

func (p *panicOnDemand) View() string {
	if p.viewPanics {
		panic("on demand, in View")
	}
	return p.Model.View()
}

// A panic anywhere in a session's screen goes to the server's log with its
// stack, ends that session alone with a line that says so (its terminal
// restored), and prints nothing on the process's own stdout or stderr,
// which are not the logs.
func TestAPanicAnywhereInAScreenEndsOnlyItsSession(t *testing.T) {
	printed := captureProcessOutput(t)
	l := generousLimits()
	ts := startServerShared(t, memstore.New(ttl), l.Limits, local.New(l.addr), func(s *server.Server) {
		server.WrapScreens(s, func(m tea.Model) tea.Model { return &panicOnDemand{Model: m} })
	})
	bys := startBystanders(t, ts)
	for i, tc := range []struct{ key, where, what string }{
		{panicInUpdate, "update", "in Update"},
		{panicInView, "view", "in View"},
		{panicInCommand, "command", "in a command"},
		{panicInBatch, "command", "in a batch"},
	} {
		c := ts.dialWith(t, "victim", dialOptions{from: attacker})
		c.roomID()
		c.typeText(tc.key)
		waitUntil(t, "the person is told", func() bool { return strings.Contains(c.screen.Raw(), "Something went wrong on our side") })
		if c.exitCode() == 0 {
			t.Errorf("%s: exit 0", tc.where)
		}
		wantRestored(t, c.screen.Raw())
		logged := `msg="session panicked" in=` + tc.where + ` panic="on demand, ` + tc.what + `" stack=`
		waitUntil(t, "the panic is logged", func() bool { return strings.Contains(ts.logs.String(), logged) })
		if n := strings.Count(ts.logs.String(), `msg="session panicked"`); n != i+1 {
			t.Errorf("%d panics logged after %d", n, i+1)
		}
		if !strings.Contains(ts.logs.String(), "panicOnDemand") {
			t.Errorf("%s: the stack logged does not show where the panic was raised", tc.where)
		}
		bys.check()
	}
	if out := printed(); out != "" {
		t.Errorf("the process printed outside its log:\n%s", out)
	}
}

// wantRestored checks that a session's output ends by giving the person
// their terminal back: their own screen, the cursor shown, pastes arriving
// as keys again.
func wantRestored(t *testing.T, raw string) {
	t.Helper()
	for _, restored := range []string{"\x1b[?1049l", "\x1b[?25h", "\x1b[?2004l"} {
		if !strings.Contains(raw, restored) {
			t.Errorf("the terminal was not restored: no %q in the output", restored)
		}
	}
}

// captureProcessOutput sends what the process writes to its stdout and
// stderr into a pipe until the test ends, or until what it returns is
// called, which returns it.
func captureProcessOutput(t *testing.T) (printed func() string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = w, w
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&out, r)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			os.Stdout, os.Stderr = stdout, stderr
			w.Close()
			<-copied
			r.Close()
		})
	}
	t.Cleanup(stop)
	return func() string {
		stop()
		return out.String()
	}
}
