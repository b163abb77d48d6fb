package ui

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
)

// Bodies of the most bytes a message may have, as a flood sends them.
var (
	// markedBody is letters under three combining marks each (7 bytes a
	// character), in words, up to MaxMessageBytes.
	markedBody = fill("e\u0301\u0302\u0303e\u0301\u0302\u0303 ")
	// plainBody is ASCII words up to MaxMessageRunes characters.
	plainBody = strings.TrimSpace(strings.Repeat("abcd ", safetext.MaxMessageRunes/5))
	// wideBody is wide emoji, two cells and four bytes each, up to
	// MaxMessageRunes.
	wideBody = fill("🎉")
)

// fill repeats unit as often as a message takes it.
func fill(unit string) string {
	body := ""
	for {
		if _, err := store.CleanMessage(body + unit); err != nil {
			return strings.TrimSpace(body)
		}
		body += unit
	}
}

func floodMessage(i int, body string) store.MessageEvent {
	return store.MessageEvent{Message: store.Message{
		ID: store.MessageID(fmt.Sprintf("m%015d", i)), From: goldenPartner, Body: body, At: time.Now(),
	}}
}

// checkScrollback checks what the scrollback's bookkeeping says against
// what it holds: the bytes counted are the entries' as drawn, within the
// budget, and the conversation is their lines under the notice, if any.
func checkScrollback(t *testing.T, m *Model) {
	t.Helper()
	kept := 0
	var lines []string
	if m.conv.noticed {
		lines = append(lines, m.forgottenLine())
	}
	for i := range m.entries {
		e := &m.entries[i]
		if e.drawnWidth != m.width || e.cost != e.measure() {
			t.Fatalf("entry %d is drawn at %d for a screen %d wide, cost %d for %d", i, e.drawnWidth, m.width, e.cost, e.measure())
		}
		kept += e.cost
		lines = append(lines, e.drawn...)
	}
	if kept != m.kept || kept > scrollbackBytes || len(m.entries) > maxEntries {
		t.Fatalf("%d entries hold %d bytes, counted %d; the budget is %d bytes, %d entries", len(m.entries), kept, m.kept, scrollbackBytes, maxEntries)
	}
	if strings.Join(lines, "\n") != strings.Join(m.conv.lines, "\n") {
		t.Fatalf("the conversation's %d lines are not the entries' %d", len(m.conv.lines), len(lines))
	}
}

// A flood of the largest messages keeps the scrollback within its budget
// in bytes, oldest first, and the top of the conversation says that older
// messages went; the newest stay in view, and the reader scrolled up keeps
// their place.
func TestTheScrollbackIsBoundedInBytes(t *testing.T) {
	for _, body := range []string{markedBody, plainBody, wideBody} {
		m := New(Config{Seat: &scriptedSeat{snap: store.Snapshot{Me: goldenMe}}, Profile: termenv.TrueColor, Width: minWidth, Height: minHeight})
		m, _ = step(t, m, store.JoinedEvent{Member: goldenPartner})
		for i := range 200 {
			m, _ = step(t, m, floodMessage(i, body))
			if i%37 == 0 {
				checkScrollback(t, m)
			}
		}
		checkScrollback(t, m)
		if !m.conv.noticed || len(m.entries) >= 200 || m.kept < scrollbackBytes*3/4 {
			t.Fatalf("after 200 messages of %d bytes, %d entries hold %d bytes, noticed %v", len(body), len(m.entries), m.kept, m.conv.noticed)
		}
		if shown, newest := m.conv.view(), m.entries[len(m.entries)-1].drawn; shown[len(shown)-1] != newest[len(newest)-1] {
			t.Errorf("the newest message is not in view:\n%s", m.View())
		}
		// Scrolled up, the reader keeps their place while older lines go.
		m, _ = step(t, m, press(tea.KeyPgUp))
		before := m.conv.view()
		m, _ = step(t, m, floodMessage(200, body))
		checkScrollback(t, m)
		if got := m.conv.view(); strings.Join(got, "\n") != strings.Join(before, "\n") {
			t.Errorf("the view moved while scrolled up:\n%s\nnow:\n%s", strings.Join(before, "\n"), strings.Join(got, "\n"))
		}
		for range len(m.conv.lines) {
			m, _ = step(t, m, press(tea.KeyPgUp))
		}
		if v := m.View(); !strings.Contains(v, forgottenText) {
			t.Errorf("the top of the scrollback does not say that older messages went:\n%s", v)
		}
		// A wider screen draws fewer lines, a narrower one more: the
		// budget holds across resizes.
		for _, width := range []int{200, minWidth, 57} {
			m, _ = step(t, m, tea.WindowSizeMsg{Width: width, Height: 30})
			checkScrollback(t, m)
		}
	}
}

// A joiner's history goes through the same budget: the newest of it is
// drawn, the oldest is let go undrawn, and the screen says so.
func TestAJoinersHistoryIsBoundedInBytes(t *testing.T) {
	snap := store.Snapshot{Me: goldenMe, Others: []store.Member{goldenPartner}}
	for i := range store.HistoryLimit {
		snap.History = append(snap.History, floodMessage(i, markedBody).Message)
	}
	m := New(Config{Seat: &scriptedSeat{snap: snap}, Profile: termenv.TrueColor, Width: 100, Height: 30})
	checkScrollback(t, m)
	if !m.conv.noticed || len(m.entries) >= store.HistoryLimit {
		t.Fatalf("%d of %d messages kept (%d bytes), noticed %v", len(m.entries), store.HistoryLimit, m.kept, m.conv.noticed)
	}
	if last := m.entries[len(m.entries)-1]; last.msg != nil || !strings.Contains(last.notice, "you joined") {
		t.Errorf("the newest entry is %+v, want the notice that you joined", last)
	}
	// A short conversation loses nothing, and says nothing of it.
	m = New(Config{Seat: &scriptedSeat{snap: store.Snapshot{Me: goldenMe, History: snap.History[:3]}}, Profile: termenv.TrueColor, Width: 100, Height: 30})
	checkScrollback(t, m)
	if m.conv.noticed || len(m.entries) != 3 {
		t.Errorf("%d entries, noticed %v", len(m.entries), m.conv.noticed)
	}
}

// The notice at the top of the scrollback, on the narrowest screen.
func TestGoldenForgottenScrollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := goldenModel(t, true, minWidth, minHeight)
		for i := range 100 {
			m, _ = step(t, m, floodMessage(i, markedBody))
		}
		for range len(m.conv.lines) {
			m, _ = step(t, m, press(tea.KeyPgUp))
		}
		wantGolden(t, m, "forgotten-40x10")
	})
}

// BenchmarkScrollbackMemory measures what a screen keeps of a flood of the
// largest messages: the heap after a collection, per screen, over screens
// that each took many times more than their scrollback holds, beside what
// the screen counts (Model.kept).
func BenchmarkScrollbackMemory(b *testing.B) {
	for _, tc := range []struct {
		name  string
		body  string
		width int
	}{
		{"marked-40", markedBody, minWidth}, {"marked-120", markedBody, 120},
		{"plain-40", plainBody, minWidth}, {"wide-40", wideBody, minWidth},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const screens, messages = 16, 400
			var retained, live, kept, entries float64
			for b.Loop() {
				models := make([]*Model, screens)
				before := heapAfterGC()
				for i := range models {
					m := New(Config{Seat: &scriptedSeat{snap: store.Snapshot{Me: goldenMe, Others: []store.Member{goldenPartner}}}, Profile: termenv.TrueColor, Width: tc.width, Height: 40})
					for j := range messages {
						// A copy of the body per message, as each arrives
						// from the store.
						m.Update(floodMessage(j, strings.Clone(tc.body)))
					}
					m.Lines()
					models[i] = m
				}
				after := heapAfterGC()
				retained = float64(after.HeapInuse-before.HeapInuse) / screens
				live = float64(after.HeapAlloc-before.HeapAlloc) / screens
				kept, entries = 0, 0
				for _, m := range models {
					kept += float64(m.kept) / screens
					entries += float64(len(m.entries)) / screens
				}
				runtime.KeepAlive(models)
			}
			b.ReportMetric(retained, "heap-B/screen")
			b.ReportMetric(live, "live-B/screen")
			b.ReportMetric(kept, "counted-B/screen")
			b.ReportMetric(entries, "entries/screen")
		})
	}
}

// heapAfterGC is the heap once garbage is collected: HeapInuse counts
// the spans that hold live objects, HeapAlloc the objects.
func heapAfterGC() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}
