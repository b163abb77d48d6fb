package ui

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// Issue 17's screens: emoji whose width terminals disagree on, in a
// message and in a draft long enough to scroll (both laid out at their
// widest, off the last column), and a draft typed before the window
// shrank (its counter and cursor drawn at once).
func TestGoldenUncertainWidthsAndShrinking(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {120, 40}, {minWidth, minHeight}} {
		name := func(scene string) string { return fmt.Sprintf("%s-%dx%d", scene, size[0], size[1]) }
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, _ := goldenModel(t, true, size[0], size[1])
				m, _ = step(t, m, message(goldenPartner, "thanks 👍🏽 the whole family 👨‍👩‍👧 says hi from 🇩🇪 "+
					strings.Repeat("👍🏽", 40), time.Now().Add(time.Minute)))
				m = typeText(t, m, strings.Repeat("👍🏽👨‍👩‍👧 ", 20))
				wantGolden(t, m, name("emoji"))

				m, _ = goldenModel(t, true, 120, 40)
				m = typeText(t, m, strings.Repeat("a draft typed before the window shrank ", 2))
				m, _ = step(t, m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
				wantGolden(t, m, name("shrunk"))
			})
		})
	}
}
