package server

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/store/memstore"
)

// A fresh server's registry already holds every known series of its
// counter vectors, at 0, so that rate() and alerts see it from the start.
func TestEveryCounterSeriesExistsFromTheStart(t *testing.T) {
	key, err := LoadOrCreateHostKey(filepath.Join(t.TempDir(), "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	rooms := memstore.New(time.Minute)
	defer rooms.Close()
	registry := prometheus.NewRegistry()
	srv, err := New(Config{Store: rooms, HostKey: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: ops.NewMetrics(registry)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	scraped := map[string]map[string]float64{} // family -> label value -> value
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if scraped[f.GetName()] == nil {
					scraped[f.GetName()] = map[string]float64{}
				}
				scraped[f.GetName()][l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string][]string{
		"chat_connections_refused_total": labels(connRefusals),
		"chat_joins_refused_total":       labels(joinRefusals),
		"chat_store_errors_total":        labels(storeOps),
		"chat_messages_refused_total":    labels(messageRefusals),
		"chat_sessions_ended_total":      labels(sessionEndings),
	}
	for family, values := range want {
		if len(scraped[family]) != len(values) {
			t.Errorf("%s has %d series, want %d", family, len(scraped[family]), len(values))
		}
		for _, v := range values {
			got, ok := scraped[family][v]
			switch {
			case !ok:
				t.Errorf("%s{%q} is missing from a fresh server", family, v)
			case got != 0:
				t.Errorf("%s{%q} = %g on a fresh server", family, v, got)
			}
		}
	}
}

func labels[T ~string](values []T) []string {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return s
}

// Every constant of a label type, here and in the screen (ui.Ending), is
// in its list, and every refusal of the per-address limits is counted
// somewhere: a new reason cannot be added without its series.
func TestLabelListsHoldEveryConstant(t *testing.T) {
	consts := typedConsts(t, ".")
	screen := typedConsts(t, "../ui")
	for typ, list := range map[string][]string{
		"connRefusal":    labels(connRefusals),
		"joinRefusal":    labels(joinRefusals),
		"storeOp":        labels(storeOps),
		"messageRefusal": labels(messageRefusals),
	} {
		if len(consts[typ]) == 0 {
			t.Errorf("no constants of type %s found: the test reads the source wrongly", typ)
		}
		for _, v := range consts[typ] {
			if !slices.Contains(list, v) {
				t.Errorf("%s %q is not in its list", typ, v)
			}
		}
	}
	endings := labels(sessionEndings)
	for _, v := range append(screen["Ending"], consts["ui.Ending"]...) {
		if !slices.Contains(endings, v) {
			t.Errorf("ending %q is not in sessionEndings", v)
		}
	}
	if len(screen["Ending"]) == 0 || len(consts["ui.Ending"]) == 0 {
		t.Error("no endings found: the test reads the source wrongly")
	}
	counted := append(append(labels(connRefusals), labels(joinRefusals)...), labels(messageRefusals)...)
	for _, v := range limits.Refusals() {
		if !slices.Contains(counted, v.Reason()) {
			t.Errorf("the per-address limits' %q is counted nowhere", v.Reason())
		}
	}
}

// typedConsts reads the Go files (not tests) of dir for string constants
// declared with an explicit type, by type name ("Ending", "ui.Ending").
func typedConsts(t *testing.T, dir string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string][]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				var typ string
				switch x := vs.Type.(type) {
				case *ast.Ident:
					typ = x.Name
				case *ast.SelectorExpr:
					if pkg, ok := x.X.(*ast.Ident); ok {
						typ = pkg.Name + "." + x.Sel.Name
					}
				}
				for _, v := range vs.Values {
					if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING && typ != "" {
						s, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						found[typ] = append(found[typ], s)
					}
				}
			}
		}
	}
	return found
}
