package server

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/ssh-burn/chat/limits"
)

type guardKey struct{}

// refusalKey holds the per-address limits' verdict that the connection's
// session is to be refused with, inside SSH.
type refusalKey struct{}

// guardedConn enforces deadlines the SSH library cannot undo. The library
// sets a connection's deadline on every read and write (to none, unless it
// has its own idle timeout, which every byte would reset), so a client
// trickling one byte at a time could hold a handshake open forever. Here
// every deadline the library asks for is capped by ours.
type guardedConn struct {
	net.Conn
	release func()
	// timedOut is told when the connection closes still bound by the
	// handshake, past it.
	timedOut func()

	mu sync.Mutex
	// hard is the latest any deadline may be: the handshake bound until
	// the session's shell is asked for, then none (the session has its
	// own limits).
	hard time.Time
	// asked is what the library last asked for.
	asked time.Time
}

func newGuardedConn(c net.Conn, hard time.Time, release, timedOut func()) *guardedConn {
	g := &guardedConn{Conn: c, release: release, timedOut: timedOut, hard: hard}
	_ = c.SetDeadline(g.hard)
	return g
}

func (g *guardedConn) SetDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked = t
	return g.Conn.SetDeadline(g.effectiveLocked())
}

func (g *guardedConn) SetReadDeadline(t time.Time) error  { return g.SetDeadline(t) }
func (g *guardedConn) SetWriteDeadline(t time.Time) error { return g.SetDeadline(t) }

func (g *guardedConn) effectiveLocked() time.Time {
	if g.hard.IsZero() || (!g.asked.IsZero() && g.asked.Before(g.hard)) {
		return g.asked
	}
	return g.hard
}

// inHandshake reports whether g is still bound by the handshake: its
// session has not asked for its shell.
func (g *guardedConn) inHandshake() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.hard.IsZero()
}

// handshakeDone lifts the handshake bound once a session has its shell.
func (g *guardedConn) handshakeDone() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hard = time.Time{}
	_ = g.Conn.SetDeadline(g.effectiveLocked())
}

func (g *guardedConn) Close() error {
	g.mu.Lock()
	timedOut := !g.hard.IsZero() && !time.Now().Before(g.hard)
	g.hard = time.Time{} // counted once, however often it is closed
	g.mu.Unlock()
	if timedOut {
		g.timedOut()
	}
	g.release()
	return g.Conn.Close()
}

// acceptConn is the first thing every TCP connection meets. The
// handshake's bound is set before anything else, and nothing done for the
// connection (the per-address limits' Redis calls included) outlives it.
// Connections over the rate limits are refused before any SSH work is
// done: a line of text (which SSH allows before its version string, and
// `ssh -v` and `nc` show) and a close. One over the limit of open
// connections is let through uncounted, to be told why inside SSH.
func (s *Server) acceptConn(ctx ssh.Context, conn net.Conn) net.Conn {
	hard := time.Now().Add(s.limits.HandshakeTimeout)
	_ = conn.SetDeadline(hard)
	admitCtx, cancel := context.WithDeadline(ctx, hard)
	verdict, release := s.addrs.Admit(admitCtx, limits.ClientKey(conn.RemoteAddr()))
	cancel()
	var refuseNow string
	switch verdict {
	case limits.Admitted:
	case limits.TooManyOpen:
		ctx.SetValue(refusalKey{}, verdict)
	case limits.TooManyNew:
		refuseNow = "too many new connections from your address; try again in a few seconds"
	default:
		refuseNow = "the server is busy; try again in a minute"
	}
	if refuseNow != "" {
		s.refusedConnection(connVerdict(verdict))
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write([]byte("chat: " + refuseNow + "\r\n"))
		return nil
	}
	dropWhenUnacked(conn, s.limits.UnackedTimeout)
	var g *guardedConn
	g = newGuardedConn(conn, hard, func() {
		release()
		s.conns.remove(g)
	}, func() { s.refusedConnection(refusedHandshakeTimeout) })
	if !s.conns.add(g) {
		release() // shutting down: nothing new starts
		return nil
	}
	ctx.SetValue(guardKey{}, g)
	ctx.SetValue(sessionOpenedKey{}, new(atomic.Bool))
	return g
}

// keepAlive asks the client every interval whether it is still there and
// closes the connection when two intervals pass without an answer, so a
// client that vanished without closing TCP is noticed and its seat freed.
// Between asks it is a timer, not a goroutine.
func (s *Server) keepAlive(sess ssh.Session) (stop func()) {
	conn, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn)
	if !ok {
		return func() {}
	}
	k := &keepalive{}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.next = time.AfterFunc(s.limits.KeepaliveInterval, func() { s.ask(conn, k) })
	return k.stop
}

type keepalive struct {
	mu      sync.Mutex
	next    *time.Timer
	stopped bool
}

func (s *Server) ask(conn gossh.Conn, k *keepalive) {
	defer s.recoverGoroutine("keepalive")
	overdue := time.AfterFunc(2*s.limits.KeepaliveInterval, func() {
		s.log.Info("connection dropped", "reason", "no keepalive answer")
		_ = conn.Close()
	})
	_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
	overdue.Stop()
	if err != nil {
		return // the connection is gone
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.stopped {
		k.next.Reset(s.limits.KeepaliveInterval)
	}
}

func (k *keepalive) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stopped = true
	k.next.Stop()
}
