package server

import (
	"encoding/binary"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"golang.org/x/time/rate"
)

// Window sizes are clamped to this, whatever the client claims.
const (
	maxCols = 1000
	maxRows = 500
)

// Resizes reach the screen at most this often; each one redraws it whole.
const (
	resizesPerSecond = 10
	resizeBurst      = 3
)

// windowChanges takes a session's window-change requests straight from
// the SSH request loop, which must never wait, and hands the newest size
// to the chat at most resizesPerSecond: while a size waits for its turn,
// newer ones replace it, so a storm of changes costs a few redraws. A size
// is handed on from a goroutine that lives only while it waits for the
// chat to take it; no goroutine waits for changes that rarely come.
type windowChanges struct {
	turns *rate.Limiter

	mu      sync.Mutex
	newest  tea.WindowSizeMsg
	pending bool          // newest has not been handed on
	busy    bool          // a size is on its way: one at a time keeps them in order
	send    func(tea.Msg) // nil until the chat runs, and after it ended
}

func newWindowChanges() *windowChanges {
	return &windowChanges{turns: rate.NewLimiter(resizesPerSecond, resizeBurst)}
}

// request handles the payload of a window-change request and reports
// whether it was well-formed.
func (w *windowChanges) request(payload []byte) bool {
	// RFC 4254 6.7: columns, rows, width and height in pixels.
	if len(payload) < 16 {
		return false
	}
	cols, rows := binary.BigEndian.Uint32(payload), binary.BigEndian.Uint32(payload[4:])
	width, height := clampWindow(int(min(cols, maxCols)), int(min(rows, maxRows)))
	w.mu.Lock()
	defer w.mu.Unlock()
	w.newest, w.pending = tea.WindowSizeMsg{Width: width, Height: height}, true
	w.kickLocked()
	return true
}

// deliverTo starts handing sizes to send (nil stops it). A size that
// arrived before is handed on at once.
func (w *windowChanges) deliverTo(send func(tea.Msg)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.send = send
	w.kickLocked()
}

// kickLocked sends the newest size on its way when it may go.
func (w *windowChanges) kickLocked() {
	if w.send == nil || w.busy || !w.pending {
		return
	}
	w.busy = true
	time.AfterFunc(w.turns.Reserve().Delay(), w.deliver)
}

func (w *windowChanges) deliver() {
	w.mu.Lock()
	size, send := w.newest, w.send
	w.pending = false
	w.mu.Unlock()
	if send != nil {
		send(size) // a no-op once the program has ended
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy = false
	w.kickLocked()
}

func clampWindow(width, height int) (int, int) {
	return min(max(width, 0), maxCols), min(max(height, 0), maxRows)
}
