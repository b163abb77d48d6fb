package server

import (
	"sync/atomic"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Bounds on what one session may ask for before its shell starts.
const (
	maxEnvRequests = 32
	maxEnvBytes    = 1024 // name and value of one variable
)

// sessionOpened marks a connection that already has its one session.
type sessionOpenedKey struct{}

// rawSessionKey holds the session's *rawSession.
type rawSessionKey struct{}

// rawSession is what the server takes of a session's channel before the
// library sees it.
type rawSession struct {
	windows *windowChanges
	// channel is the session's SSH channel itself. The screen writes to
	// it directly: the library's emulated PTY copies every write twice to
	// turn \n into \r\n, and frames hold no \n.
	channel gossh.Channel
}

// sessionChannel accepts one "session" channel per connection and passes
// the library only the requests the chat needs. Everything else a client
// can ask of a session (agent forwarding, X11, signals, endless
// environment variables) is refused here, before the library would
// accept or buffer it.
func (s *Server) sessionChannel(srv *ssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	opened, _ := ctx.Value(sessionOpenedKey{}).(*atomic.Bool)
	if opened == nil || !opened.CompareAndSwap(false, true) {
		_ = newChan.Reject(gossh.Prohibited, "one session per connection")
		return
	}
	guard, _ := ctx.Value(guardKey{}).(*guardedConn)
	raw := &rawSession{windows: newWindowChanges()}
	ctx.SetValue(rawSessionKey{}, raw)
	ssh.DefaultSessionHandler(srv, conn, filteredChannel{newChan, guard, raw}, ctx)
}

// filteredChannel hands the library a request stream with the disallowed
// requests already answered. The handshake bound holds until the client
// asks for its shell (or a command or subsystem, which are refused): a
// session channel that never gets that far is cut off with the handshake.
// Window changes are taken here, not by the library, which would need a
// goroutine per session to wait for them.
type filteredChannel struct {
	gossh.NewChannel
	guard *guardedConn
	raw   *rawSession
}

func (c filteredChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return nil, nil, err
	}
	// Set before the library starts the session's handler, which reads it.
	c.raw.channel = ch
	allowed := make(chan *gossh.Request)
	go func() {
		defer close(allowed)
		envs := 0
		for req := range reqs {
			switch req.Type {
			case "shell", "exec", "subsystem":
				// exec and subsystem get a clear refusal from the chain.
				if c.guard != nil {
					c.guard.handshakeDone()
				}
				allowed <- req
			case "pty-req":
				allowed <- req
			case "window-change":
				_ = req.Reply(c.raw.windows.request(req.Payload), nil)
			case "env":
				envs++
				if envs > maxEnvRequests || len(req.Payload) > maxEnvBytes {
					_ = req.Reply(false, nil)
					continue
				}
				allowed <- req
			default:
				// auth-agent-req@openssh.com, x11-req, signal, break, ...
				_ = req.Reply(false, nil)
			}
		}
	}()
	return ch, allowed, nil
}
