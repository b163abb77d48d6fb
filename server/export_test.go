package server

import tea "github.com/charmbracelet/bubbletea"

// WrapScreens makes s run every session's screen wrapped by wrap: a seam
// for tests whose screens misbehave on demand. Call it before Serve.
func WrapScreens(s *Server, wrap func(tea.Model) tea.Model) { s.wrapScreen = wrap }

// IdleWriters is how many goroutines a server keeps waiting to write
// frames (see screen.Writers).
const IdleWriters = idleWriters
