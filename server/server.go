// Package server is the SSH transport: it accepts anonymous SSH sessions,
// routes each to a room by its username and runs the chat screen on it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/prometheus/client_golang/prometheus"
	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/internal/ops"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/limits/local"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui"
	"github.com/ssh-burn/chat/ui/screen"
)

// idleWriters is how many goroutines wait to write the next frames of the
// sessions (see screen.Writers): enough for the screens one tick of the
// countdown's clock wakes at once on a full replica.
const idleWriters = 16

// Config is what a Server needs.
type Config struct {
	Store      store.Store
	HostKey    gossh.Signer
	PublicAddr PublicAddr
	Logger     *slog.Logger
	// Limits bound sessions and the server; zero fields take
	// DefaultLimits.
	Limits Limits
	// AddrLimits enforces the per-address limits. Nil keeps the default
	// ones in this process (limits/local); with several replicas give one
	// they share (limits/redis), or each replica counts alone. The server
	// does not close it.
	AddrLimits limits.Limiter
	// Metrics are what the server counts; nil counts into a registry
	// nobody reads.
	Metrics *ops.Metrics
}

// Server serves the chat over SSH.
type Server struct {
	store    store.Store
	public   PublicAddr
	log      *slog.Logger
	ssh      *ssh.Server
	limits   Limits
	addrs    limits.Limiter
	metrics  *ops.Metrics
	sessions atomic.Int64 // open chat sessions
	// conns are the connections taken in, for Shutdown to wait for;
	// listener is what Serve accepts them from, for Shutdown to close.
	conns      connSet
	listenerMu sync.Mutex
	listener   net.Listener
	// clock ticks every session's countdown.
	clock *ui.Clock
	// writers write every session's frames.
	writers *screen.Writers

	// Refusals are caused by clients, so their log lines are limited: a
	// flood of refused connections must not become a flood of lines.
	refusalLog       *rate.Limiter
	refusalsUnlogged atomic.Int64

	// wrapScreen, if set, wraps every session's screen before it runs: a
	// test seam (see export_test.go), nil in production.
	wrapScreen func(tea.Model) tea.Model
}

// New returns a server ready to Serve.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.HostKey == nil || cfg.Logger == nil {
		return nil, errors.New("server: Store, HostKey and Logger are required")
	}
	sessionLimits := cfg.Limits.WithDefaults()
	addrs := cfg.AddrLimits
	if addrs == nil {
		addrs = local.New(limits.DefaultConfig())
	}
	metrics := cfg.Metrics
	if metrics == nil {
		metrics = ops.NewMetrics(prometheus.NewRegistry())
	}
	initCounters(metrics)
	s := &Server{
		store: cfg.Store, public: cfg.PublicAddr, log: cfg.Logger, limits: sessionLimits, addrs: addrs, metrics: metrics,
		refusalLog: rate.NewLimiter(sessionLimits.RefusalLogsPerSecond, sessionLimits.RefusalLogBurst),
		clock:      ui.NewClock(),
		writers:    screen.NewWriters(idleWriters),
	}
	srv, err := wish.NewServer(
		func(srv *ssh.Server) error {
			srv.AddHostKey(cfg.HostKey)
			srv.ConnCallback = s.acceptConn
			// Only sessions: no port forwarding (direct-tcpip), and, with no
			// request handlers, no remote forwarding (tcpip-forward) either.
			srv.ChannelHandlers = map[string]ssh.ChannelHandler{"session": s.sessionChannel}
			srv.RequestHandlers = map[string]ssh.RequestHandler{}
			// A backstop: sessions end themselves at MaxSession, politely.
			srv.MaxTimeout = sessionLimits.MaxSession + time.Minute
			return nil
		},
		// No password, keyboard-interactive or public-key handler is
		// installed, so the server offers "none" authentication only:
		// nobody signs up, and no client key (which could identify a
		// person across rooms) is ever asked for or seen.
		wish.WithVersion("chat"),
		wish.WithMiddleware(s.middleware()...),
		func(srv *ssh.Server) error {
			// Without a handler the library turns subsystems (sftp, and
			// scp, which uses it) down without a word; through the chain
			// that WithMiddleware just built they get the same one-line
			// refusal as commands.
			srv.SubsystemHandlers = map[string]ssh.SubsystemHandler{"default": ssh.SubsystemHandler(srv.Handler)}
			return nil
		},
	)
	if err != nil {
		s.clock.Stop()
		s.writers.Close()
		return nil, fmt.Errorf("ssh server: %w", err)
	}
	s.ssh = srv
	return s, nil
}

// middleware is the whole per-session chain in one place. wish runs the last
// element first, so read it bottom-up:
//  1. closeConnection: a connection carries one chat; when it ends, so does
//     the connection, rather than idling until the client hangs up.
//  2. recoverPanics: a panic ends only its own session, and is logged.
//  3. refuseCommands: the chat runs no command or subsystem (a session
//     without a PTY gets the chat in lines, see plainMode).
//  4. limitSessions: the server-wide cap on open sessions, and the
//     per-address refusals that are told inside SSH.
//  5. runChat: route the username to a room and run the chat screen; it
//     logs the sessions that got a seat (refusals are logged, sparingly,
//     where they are made).
func (s *Server) middleware() []wish.Middleware {
	return []wish.Middleware{
		s.runChat,
		s.limitSessions,
		s.refuseCommands,
		s.recoverPanics,
		s.closeConnection,
	}
}

// Serve accepts connections on l until Shutdown or Close. A clean stop
// returns nil.
func (s *Server) Serve(l net.Listener) error {
	s.listenerMu.Lock()
	s.listener = l
	s.listenerMu.Unlock()
	if s.conns.isClosing() {
		return l.Close() // shut down before it started
	}
	if err := s.ssh.Serve(l); err != nil && !errors.Is(err, ssh.ErrServerClosed) && !s.conns.closedListener(err) {
		return fmt.Errorf("serve ssh: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for open sessions to end
// or for ctx to expire; then Close ends those left. A session ends when its
// person leaves (its seat is given up then), or when the store is closed
// under it: its screen says the server is shutting down, and the store's
// Close gives the seat up itself.
func (s *Server) Shutdown(ctx context.Context) error {
	drained := s.conns.close()
	s.listenerMu.Lock()
	if s.listener != nil {
		_ = s.listener.Close()
	}
	s.listenerMu.Unlock()
	select {
	case <-drained:
	case <-ctx.Done():
		return fmt.Errorf("shutdown ssh: %w", ctx.Err())
	}
	// Every connection is gone and none can come: the library's own
	// wait has nothing left to race with. (It closes the listener
	// again, if Serve has not let go of it yet.)
	if err := s.ssh.Shutdown(ctx); err != nil && !errors.Is(err, ssh.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("shutdown ssh: %w", err)
	}
	s.clock.Stop()
	s.writers.Close()
	return nil
}

// refusedConnection counts and logs a connection cut before its chat.
func (s *Server) refusedConnection(reason connRefusal) {
	s.metrics.ConnectionsRefused.WithLabelValues(string(reason)).Inc()
	s.logRefusal(slog.LevelInfo, "connection refused", string(reason))
}

// refusedSession counts and logs a session turned away before its chat.
func (s *Server) refusedSession(level slog.Level, reason joinRefusal) {
	s.metrics.JoinsRefused.WithLabelValues(string(reason)).Inc()
	s.logRefusal(level, "session refused", string(reason))
}

// Sessions is the number of chat sessions open now.
func (s *Server) Sessions() int64 { return s.sessions.Load() }

// logRefusal logs one refusal, unless too many were logged lately; the
// next line logged says how many were left out.
func (s *Server) logRefusal(level slog.Level, msg, reason string) {
	if !s.refusalLog.Allow() {
		s.refusalsUnlogged.Add(1)
		return
	}
	attrs := []any{"reason", reason}
	if n := s.refusalsUnlogged.Swap(0); n > 0 {
		attrs = append(attrs, "unlogged_refusals", n)
	}
	s.log.Log(context.Background(), level, msg, attrs...)
}

// recoverGoroutine, deferred first in every goroutine the server starts,
// keeps a bug in one session's helper from ending the process.
func (s *Server) recoverGoroutine(what string) {
	if r := recover(); r != nil {
		s.log.Error("goroutine panicked", "goroutine", what, "panic", r, "stack", string(debug.Stack()))
	}
}

// Close drops every connection at once.
func (s *Server) Close() error {
	defer s.writers.Close()
	defer s.clock.Stop()
	return s.ssh.Close()
}
