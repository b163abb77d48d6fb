package server

import (
	"bytes"
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
