// Package faultproxy is a TCP proxy between a client (a replica) and a
// server (a real redis-server) that its caller can make slow, hold replies,
// partition or cut, to show what a gray failure does where stopping the
// server cannot: a server that answers, but late. Tests and the load
// command (cmd/chatload) both use it, so it imports nothing of testing.
//
// Bytes are forwarded in chunks, one read at a time: a client request or a
// server reply usually arrives as one chunk, but nothing guarantees it, so
// matching a request (HoldReplies) is a best effort that holds for the
// short requests of a Redis client.
package faultproxy

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// queueDepth bounds the chunks a direction holds back: past it the proxy
// stops reading, and the sender feels it as TCP back-pressure.
const queueDepth = 256

// chunkSize is the most one read forwards.
const chunkSize = 32 << 10

// Proxy forwards every connection made to Addr to its target, with the
// faults its caller set. Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	mu         sync.Mutex
	changed    chan struct{} // closed, and replaced, whenever a fault changes
	delayMin   time.Duration
	delayMax   time.Duration
	holdMatch  func(request []byte) bool
	holdFor    time.Duration
	loseMatch  func(request []byte) bool
	blackholed bool
	closed     bool
	conns      map[*pair]struct{}
}

// pair is one proxied connection: the client's side and the target's.
type pair struct {
	client, server net.Conn
	closeOnce      sync.Once
	done           chan struct{} // closed with the connection

	// holdUntil delays every reply written to the client until then
	// (guarded by Proxy.mu).
	holdUntil time.Time
}

func (c *pair) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.client.Close()
		c.server.Close()
	})
}

// chunk is bytes read from one side, due on the other at release.
type chunk struct {
	data    []byte
	release time.Time
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: listen: %w", err)
	}
	p := &Proxy{target: target, ln: ln, changed: make(chan struct{}), conns: make(map[*pair]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// DelayReplies holds every chunk the target sends for a random time in
// [min, max] from its arrival, keeping the order of each connection (a
// chunk never overtakes the one before it). DelayReplies(0, 0) ends it;
// chunks already held keep their time.
func (p *Proxy) DelayReplies(min, max time.Duration) {
	if max < min {
		max = min
	}
	p.mu.Lock()
	p.delayMin, p.delayMax = min, max
	p.notifyLocked()
	p.mu.Unlock()
}

// HoldReplies makes a connection whose client sends a chunk that match
// accepts hold every reply from then for d, as a late reply holds up the
// replies behind it: the request itself goes through at once. A nil match
// ends it (holds in progress run out).
func (p *Proxy) HoldReplies(match func(request []byte) bool, d time.Duration) {
	p.mu.Lock()
	p.holdMatch, p.holdFor = match, d
	p.mu.Unlock()
}

// LoseRequests drops every client chunk that match accepts before it
// reaches the target, as a request written just before its connection
// broke is lost: the client waits for a reply that never comes. A nil
// match ends it.
func (p *Proxy) LoseRequests(match func(request []byte) bool) {
	p.mu.Lock()
	p.loseMatch = match
	p.mu.Unlock()
}

// Blackhole, while on, lets nothing pass in either direction and closes
// nothing, as a network partition that drops packets silently: both sides
// see a connection that has gone quiet. Bytes sent meanwhile are held
// (TCP would retransmit them) and pass once it is off.
func (p *Proxy) Blackhole(on bool) {
	p.mu.Lock()
	p.blackholed = on
	p.notifyLocked()
	p.mu.Unlock()
}

// DropConnections closes every open connection now, as a restart of the
// target or a reset by a middlebox would. New connections are accepted.
func (p *Proxy) DropConnections() {
	p.mu.Lock()
	conns := make([]*pair, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
}

// Close stops listening, closes every connection and waits until nothing
// of the proxy runs. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	p.notifyLocked()
	p.mu.Unlock()
	err := p.ln.Close()
	p.DropConnections()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// notifyLocked wakes every writer waiting for a fault to change.
func (p *Proxy) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &pair{client: client, server: server, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.close()
			return
		}
		p.conns[c] = struct{}{}
		// Four goroutines a connection: a reader and a writer each way.
		p.wg.Add(4)
		p.mu.Unlock()
		up, down := make(chan chunk, queueDepth), make(chan chunk, queueDepth)
		go p.read(c, c.client, up, true)
		go p.write(c, c.server, up, false)
		go p.read(c, c.server, down, false)
		go p.write(c, c.client, down, true)
	}
}

// read forwards what src sends into q, stamped with when it is due.
func (p *Proxy) read(c *pair, src net.Conn, q chan<- chunk, fromClient bool) {
	defer p.wg.Done()
	defer close(q)
	var last time.Time // the release of the chunk before: order is kept
	for {
		buf := make([]byte, chunkSize)
		n, err := src.Read(buf)
		if n > 0 {
			now := time.Now()
			release := now
			p.mu.Lock()
			lost := fromClient && p.loseMatch != nil && p.loseMatch(buf[:n])
			if fromClient {
				if p.holdMatch != nil && p.holdMatch(buf[:n]) {
					if until := now.Add(p.holdFor); until.After(c.holdUntil) {
						c.holdUntil = until
					}
				}
			} else if p.delayMax > 0 {
				release = now.Add(p.delayMin + rand.N(p.delayMax-p.delayMin+1))
			}
			p.mu.Unlock()
			if release.Before(last) {
				release = last
			}
			last = release
			if !lost {
				q <- chunk{data: buf[:n], release: release}
			}
		}
		if err != nil {
			// Either side's end ends the connection: the writer drains what
			// is queued only while the other side still takes it.
			c.close()
			return
		}
	}
}

// write sends each chunk of q to dst once it is due, no hold applies and
// no blackhole is on.
func (p *Proxy) write(c *pair, dst net.Conn, q <-chan chunk, toClient bool) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.close()
		for range q { // let the reader finish
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ch := range q {
		for {
			p.mu.Lock()
			blocked, closed, changed := p.blackholed, p.closed, p.changed
			due := ch.release
			if toClient && c.holdUntil.After(due) {
				due = c.holdUntil
			}
			p.mu.Unlock()
			if closed {
				return
			}
			wait := time.Until(due)
			if !blocked && wait <= 0 {
				break
			}
			var fire <-chan time.Time
			if !blocked {
				timer.Reset(wait)
				fire = timer.C
			}
			select {
			case <-changed:
			case <-fire:
			case <-c.done:
				return
			}
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		if _, err := dst.Write(ch.data); err != nil {
			return
		}
	}
}
