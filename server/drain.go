package server

import (
	"errors"
	"net"
	"sync"
)

// connSet is the connections this server has taken in, so that a shutdown
// waits for them itself. The SSH library's own wait (ssh.Server.Shutdown)
// races with a connection that finishes its handshake as the wait begins
// (it counts connections in a sync.WaitGroup, added to after Wait started);
// here no connection is taken in once closing, those still in their
// handshake are ended, and the library's wait runs only when none is left.
type connSet struct {
	mu      sync.Mutex
	live    map[*guardedConn]struct{}
	closing bool
	drained chan struct{} // closed once closing and none is live
	done    bool          // drained is closed
}

// add takes g in, unless the server is closing.
func (c *connSet) add(g *guardedConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if c.live == nil {
		c.live = make(map[*guardedConn]struct{})
	}
	c.live[g] = struct{}{}
	return true
}

// remove lets g go; removing it again does nothing.
func (c *connSet) remove(g *guardedConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.live, g)
	c.drainedLocked()
}

func (c *connSet) drainedLocked() {
	if c.closing && len(c.live) == 0 && !c.done {
		c.done = true
		close(c.drained)
	}
}

// close stops taking connections in and ends those that have not started
// a session (still in their handshake, or authenticated without a shell):
// a server going away starts nothing new. It returns a channel closed once
// every connection is gone.
func (c *connSet) close() <-chan struct{} {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.drained = make(chan struct{})
		c.drainedLocked()
	}
	var starting []*guardedConn
	for g := range c.live {
		if g.inHandshake() {
			starting = append(starting, g)
		}
	}
	drained := c.drained
	c.mu.Unlock()
	for _, g := range starting {
		_ = g.Conn.Close() // the library then closes g, which removes it
	}
	return drained
}

// isClosing reports whether close was called.
func (c *connSet) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// closedListener reports whether err is what Serve gets from a listener
// that Shutdown closed.
func (c *connSet) closedListener(err error) bool {
	return c.isClosing() && errors.Is(err, net.ErrClosed)
}
