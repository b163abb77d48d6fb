package server

import (
	"bytes"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
)

// Commands that a batch or a sequence holds run in goroutines of Bubble
// Tea's own: each is wrapped, whatever the type of the message that holds
// them (tea.Sequence's is unexported), so a panic in any is caught.
func TestEveryCommandOfABatchOrSequenceIsGuarded(t *testing.T) {
	for name, group := range map[string]func(...tea.Cmd) tea.Cmd{"batch": tea.Batch, "sequence": tea.Sequence} {
		var logs bytes.Buffer
		g, ctx := newProgramGuard(t.Context(), slog.New(slog.NewTextHandler(&logs, nil)))
		ran := 0
		fine := func() tea.Msg { ran++; return ran }
		inner := group(fine, func() tea.Msg { panic("deep down") })
		msg := g.command(group(fine, inner))()
		// Run what the message holds, as Bubble Tea would, depth first.
		var run func(msg tea.Msg)
		run = func(msg tea.Msg) {
			if v := reflect.ValueOf(msg); v.Kind() == reflect.Slice && v.Type().Elem() == cmdType {
				for i := range v.Len() {
					run(v.Index(i).Interface().(tea.Cmd)())
				}
			}
		}
		run(msg)
		if ran != 2 || !g.panicked() || ctx.Err() == nil {
			t.Errorf("%s: %d commands ran, panicked %v, program ended %v", name, ran, g.panicked(), ctx.Err() != nil)
		}
		if !strings.Contains(logs.String(), `msg="session panicked" in=command panic="deep down" stack=`) {
			t.Errorf("%s: the panic was not logged:\n%s", name, logs.String())
		}
	}
}

// orderModel logs its Updates and Views; "cmd" returns a command, whose
// message "done" quits.
type orderModel struct{ log []string }

func (m *orderModel) Init() tea.Cmd { return nil }

func (m *orderModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	s, _ := msg.(string)
	m.log = append(m.log, "update "+s)
	switch s {
	case "cmd":
		return m, func() tea.Msg { return "done" }
	case "done":
		return m, tea.Quit
	}
	return m, nil
}

func (m *orderModel) View() string {
	m.log = append(m.log, "view")
	return ""
}

// The filter takes the messages whose Update has no command itself: each
// is still updated and drawn in turn, and a command still runs, in Bubble
// Tea's loop, as does its quitting.
func TestTheFilterUpdatesAndDrawsWhatHasNoCommand(t *testing.T) {
	g, ctx := newProgramGuard(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	m := &orderModel{}
	p := tea.NewProgram(g.model(m), tea.WithoutRenderer(), tea.WithInput(nil), tea.WithOutput(io.Discard),
		tea.WithContext(ctx), tea.WithoutSignalHandler(), tea.WithoutCatchPanics(),
		tea.WithFilter(g.filter(func(_ tea.Model, msg tea.Msg) tea.Msg { return msg })))
	go func() {
		for _, msg := range []string{"a", "b", "cmd"} {
			p.Send(msg)
		}
	}()
	if _, err := p.Run(); err != nil {
		t.Fatalf("run: %v", err)
	}
	log := strings.Join(m.log, ", ")
	want := "update a, view, update b, view, update cmd, view, update done, view"
	if !strings.Contains(log, want) || strings.Count(log, "update") != 4 {
		t.Errorf("got %q, want %q in it", log, want)
	}
}
