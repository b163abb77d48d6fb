package server

import (
	"cmp"
	"runtime"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what one session and everybody together may use; what one
// client address may use is the limits package's (Config.AddrLimits).
// Zero fields take the defaults in DefaultLimits.
type Limits struct {
	// HandshakeTimeout bounds the time from TCP accept until the session
	// asks for its shell, however slowly a client trickles its bytes.
	HandshakeTimeout time.Duration
	// IdleTimeout ends a session that typed nothing for this long. The
	// server's own redraws do not count as activity.
	IdleTimeout time.Duration
	// MaxSession ends any session after this long; set it a little above
	// the room TTL.
	MaxSession time.Duration
	// KeepaliveInterval is how often a silent client is asked whether it is
	// still there; two unanswered asks end the connection. It finds
	// clients whose connection stays open without them (behind a proxy or
	// a NAT that went quiet); each ask costs a request and its answer
	// through both SSH layers, the largest part of an idle session's CPU
	// after its countdown.
	KeepaliveInterval time.Duration
	// UnackedTimeout drops a connection whose sent data has gone
	// unacknowledged this long (TCP_USER_TIMEOUT, on Linux): a client whose
	// machine vanished (a laptop closed, a network gone). The countdown
	// sends something every second, so it is noticed at once, at no cost.
	UnackedTimeout time.Duration

	// MaxSessions caps open chat sessions on this server.
	MaxSessions int

	// MessagesPerSecond and MessageBurst pace one session's messages:
	// generous for typing and pasting, short of a flood. The server
	// enforces them around the seat (see pacedSeat), where a message
	// beyond the burst waits its turn; the screen bounds what it has on
	// its way and shows any refusal.
	MessagesPerSecond rate.Limit
	MessageBurst      int
	// InputBytesPerSecond throttles raw keyboard input on its way to the
	// chat; what arrives faster waits in a small queue, and beyond that
	// queue is dropped (see keyboard).
	InputBytesPerSecond int
	// RefusalLogsPerSecond and RefusalLogBurst bound the log lines about
	// refused connections and sessions: refusals are caused by clients,
	// and a flood of them must not become a flood of lines. The next line
	// logged says how many were left out.
	RefusalLogsPerSecond rate.Limit
	RefusalLogBurst      int
	// KeysPerSecond throttles keys (a key, a word, a space; a bracketed
	// paste is one) as the parser makes them: every one costs the chat a
	// redraw, so a stream of tiny keys would otherwise cost a core.
	// Typing and key repeat stay far below it.
	KeysPerSecond int
}

// DefaultLimits are the production limits.
func DefaultLimits() Limits {
	return Limits{
		HandshakeTimeout:    10 * time.Second,
		IdleTimeout:         10 * time.Minute,
		MaxSession:          11 * time.Minute,
		KeepaliveInterval:   30 * time.Second,
		UnackedTimeout:      30 * time.Second,
		MaxSessions:         defaultMaxSessions(),
		MessagesPerSecond:   5,
		MessageBurst:        30,
		InputBytesPerSecond: 16 << 10,
		KeysPerSecond:       200,
		// Refusal log lines.
		RefusalLogsPerSecond: 5,
		RefusalLogBurst:      20,
	}
}

// WithDefaults returns l with every zero field set to DefaultLimits'.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	l.HandshakeTimeout = cmp.Or(l.HandshakeTimeout, d.HandshakeTimeout)
	l.IdleTimeout = cmp.Or(l.IdleTimeout, d.IdleTimeout)
	l.MaxSession = cmp.Or(l.MaxSession, d.MaxSession)
	l.KeepaliveInterval = cmp.Or(l.KeepaliveInterval, d.KeepaliveInterval)
	l.UnackedTimeout = cmp.Or(l.UnackedTimeout, d.UnackedTimeout)
	l.MaxSessions = cmp.Or(l.MaxSessions, d.MaxSessions)
	l.MessagesPerSecond = cmp.Or(l.MessagesPerSecond, d.MessagesPerSecond)
	l.MessageBurst = cmp.Or(l.MessageBurst, d.MessageBurst)
	l.InputBytesPerSecond = cmp.Or(l.InputBytesPerSecond, d.InputBytesPerSecond)
	l.KeysPerSecond = cmp.Or(l.KeysPerSecond, d.KeysPerSecond)
	l.RefusalLogsPerSecond = cmp.Or(l.RefusalLogsPerSecond, d.RefusalLogsPerSecond)
	l.RefusalLogBurst = cmp.Or(l.RefusalLogBurst, d.RefusalLogBurst)
	return l
}

// sessionsPerCPU is how many sessions a core serves. Measured with the
// load command (BENCHMARKS.md): an idle session costs about 0.07 ms of CPU
// a second, nearly all of it its countdown's redraw, and about 140 KiB; so
// 5,000 idle sessions take about a third of a core and 700 MiB, leaving
// the rest for the people who talk.
const sessionsPerCPU = 5000

// reservedFiles are the file descriptors kept for everything that is not
// a session: listeners, Redis connections, logs.
const reservedFiles = 128

// defaultMaxSessions is sessionsPerCPU a core, and never more than the
// process may open connections.
func defaultMaxSessions() int {
	perCPU := sessionsPerCPU * runtime.GOMAXPROCS(0)
	if files := openFilesLimit(); files > 0 {
		return max(min(perCPU, files-reservedFiles), 1)
	}
	return perCPU
}
