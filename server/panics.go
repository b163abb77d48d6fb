package server

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sync/atomic"

	tea "github.com/charmbracelet/bubbletea"
)

// errScreenPanicked ends a session whose program panicked; the panic was
// logged, with its stack, where it was caught.
var errScreenPanicked = errors.New("the chat screen panicked")

// A session's program runs without Bubble Tea's own panic handler, which
// prints to the process's stdout, outside the logs, and restores a terminal
// the process does not have. A programGuard catches instead every panic of
// the session's code that the program runs: in Update, View and Init, in
// the message filter, and in every command, which Bubble Tea runs in
// goroutines of their own where an uncaught panic would end the process.
// Each goes to the server's log with its stack and ends the program (only
// this session's); the model that panicked gets nothing more.
type programGuard struct {
	log    *slog.Logger
	end    context.CancelFunc // ends the program: cancels its context
	failed atomic.Bool
}

// newProgramGuard guards a program run with the context it returns.
func newProgramGuard(ctx context.Context, log *slog.Logger) (*programGuard, context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	return &programGuard{log: log, end: cancel}, ctx
}

// recovered logs a panic recovered in where and ends the program. Called
// from the deferred function that recovered it, so the stack shows where
// it was raised.
func (g *programGuard) recovered(where string, r any) {
	g.failed.Store(true)
	g.log.Error("session panicked", "in", where, "panic", r, "stack", string(debug.Stack()))
	g.end()
}

// panicked reports whether anything of the program panicked.
func (g *programGuard) panicked() bool { return g.failed.Load() }

// model wraps the program's model.
func (g *programGuard) model(m tea.Model) tea.Model { return &guardedModel{inner: m, guard: g} }

// filter wraps the program's message filter, which is given the model the
// guard wraps, and takes over the loop's work for the messages it can.
func (g *programGuard) filter(f func(tea.Model, tea.Msg) tea.Msg) func(tea.Model, tea.Msg) tea.Msg {
	return func(m tea.Model, msg tea.Msg) (out tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				g.recovered("filter", r)
				out = nil
			}
		}()
		gm, ok := m.(*guardedModel)
		if ok {
			m = gm.inner
		}
		out = f(m, msg)
		if !ok || !inline(out) {
			return out
		}
		// Bubble Tea hands every Update's command, even none, to a
		// goroutine of its own and waits until that takes it: a thread
		// woken per message for nothing. A message whose Update has no
		// command is taken here, on the same goroutine and in the same
		// order, and drawn; only a command goes on to Bubble Tea.
		if _, cmd := gm.Update(out); cmd != nil {
			return pendingCmd{cmd}
		}
		gm.View()
		return nil
	}
}

// pendingCmd carries the command of an Update the filter ran to Bubble
// Tea's loop, which runs it and then draws the model.
type pendingCmd struct{ cmd tea.Cmd }

// teaPkg is Bubble Tea's package path: its own messages (tea.Quit's, a
// batch's) are for its loop to act on.
var teaPkg = reflect.TypeFor[tea.QuitMsg]().PkgPath()

// inline reports whether msg may be given to Update in the filter: it is
// not Bubble Tea's own, except the keys and sizes that its loop only
// passes on.
func inline(msg tea.Msg) bool {
	switch msg.(type) {
	case nil:
		return false
	case tea.KeyMsg, tea.WindowSizeMsg:
		return true
	}
	t := reflect.TypeOf(msg)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.PkgPath() != teaPkg
}

// cmdType is tea.Cmd's type, for commands batched or sequenced.
var cmdType = reflect.TypeFor[tea.Cmd]()

// command wraps cmd, and the commands its message batches or sequences.
func (g *programGuard) command(cmd tea.Cmd) tea.Cmd {
	if cmd == nil {
		return nil
	}
	return func() (msg tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				g.recovered("command", r)
				msg = nil
			}
		}()
		msg = cmd()
		// tea.Batch's message (BatchMsg) and tea.Sequence's (of an
		// unexported type) are slices of commands that Bubble Tea runs
		// in goroutines of their own: each is wrapped in turn.
		v := reflect.ValueOf(msg)
		if v.Kind() != reflect.Slice || v.Type().Elem() != cmdType {
			return msg
		}
		wrapped := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			wrapped.Index(i).Set(reflect.ValueOf(g.command(v.Index(i).Interface().(tea.Cmd))))
		}
		return wrapped.Interface()
	}
}

// guardedModel is a program's model with its panics caught.
type guardedModel struct {
	inner tea.Model
	guard *programGuard
}

func (m *guardedModel) Init() (cmd tea.Cmd) {
	defer func() {
		if r := recover(); r != nil {
			m.guard.recovered("init", r)
			cmd = nil
		}
	}()
	return m.guard.command(m.inner.Init())
}

func (m *guardedModel) Update(msg tea.Msg) (model tea.Model, cmd tea.Cmd) {
	if m.guard.panicked() {
		// Its state is whatever the panic left: nothing more reaches it
		// while the program ends.
		return m, nil
	}
	defer func() {
		if r := recover(); r != nil {
			m.guard.recovered("update", r)
			model, cmd = m, nil
		}
	}()
	if p, ok := msg.(pendingCmd); ok {
		return m, p.cmd // guarded when its Update ran
	}
	next, cmd := m.inner.Update(msg)
	m.inner = next
	return m, m.guard.command(cmd)
}

func (m *guardedModel) View() (view string) {
	if m.guard.panicked() {
		return ""
	}
	defer func() {
		if r := recover(); r != nil {
			m.guard.recovered("view", r)
			view = ""
		}
	}()
	return m.inner.View()
}
