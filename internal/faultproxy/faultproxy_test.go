package faultproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/internal/faultproxy"
	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/store/redistest"
	"github.com/ssh-burn/chat/store/storetest"
)

// start runs a proxy to a fresh redis-server, closed at cleanup, and a
// client straight to that server.
func start(t *testing.T) (*faultproxy.Proxy, *redis.Client) {
	t.Helper()
	srv := redistest.Start(t)
	p, err := faultproxy.Start(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	direct := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	t.Cleanup(func() { direct.Close() })
	return p, direct
}

// conn is one raw connection through the proxy, speaking inline commands.
type conn struct {
	t  *testing.T
	c  net.Conn
	in *bufio.Reader
}

func dial(t *testing.T, p *faultproxy.Proxy) *conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &conn{t: t, c: c, in: bufio.NewReader(c)}
}

func (c *conn) send(cmd string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(cmd + "\r\n")); err != nil {
		c.t.Fatalf("write %q: %v", cmd, err)
	}
}

// line reads one reply line within d; ok is false when none came.
func (c *conn) line(d time.Duration) (string, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	s, err := c.in.ReadString('\n')
	return strings.TrimSpace(s), err
}

func (c *conn) want(reply string) {
	c.t.Helper()
	got, err := c.line(waitfor.Timeout)
	if err != nil || got != reply {
		c.t.Fatalf("reply %q, %v; want %q", got, err, reply)
	}
}

func TestForwardsBothWays(t *testing.T) {
	t.Parallel()
	storetest.WithoutLeaks(t, func() {
		p, direct := start(t)
		c := dial(t, p)
		c.send("SET k v")
		c.want("+OK")
		if v := direct.Get(t.Context(), "k").Val(); v != "v" {
			t.Errorf("Redis holds %q", v)
		}
		// A real client through it, pipelining.
		client := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
		defer client.Close()
		cmds, err := client.Pipelined(t.Context(), func(pl redis.Pipeliner) error {
			for range 100 {
				pl.Incr(t.Context(), "n")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := cmds[99].(*redis.IntCmd).Val(); n != 100 {
			t.Errorf("last INCR = %d", n)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
}

// Delayed replies come no sooner than the least delay, and in the order
// Redis sent them.
func TestDelayRepliesKeepsOrder(t *testing.T) {
	t.Parallel()
	p, direct := start(t)
	const least = 200 * time.Millisecond
	p.DelayReplies(least, 3*least)
	c := dial(t, p)
	start := time.Now()
	c.send("PING")
	c.want("+PONG")
	if took := time.Since(start); took < least {
		t.Errorf("reply after %v, want at least %v", took, least)
	}
	// Requests that reach Redis one by one: each reply is a chunk of its
	// own with a delay of its own, and none overtakes another.
	for i := range 6 {
		c.send("RPUSH l x")
		waitfor.Condition(t, waitfor.Timeout, "the request to reach Redis", func() bool {
			return direct.LLen(context.Background(), "l").Val() == int64(i+1)
		})
	}
	for _, n := range []string{":1", ":2", ":3", ":4", ":5", ":6"} {
		c.want(n)
	}
	p.DelayReplies(0, 0)
	c.send("PING")
	c.want("+PONG")
}

// A request that matches goes through at once; the replies on its
// connection are held, other connections are not.
func TestHoldRepliesHoldsOnlyTheMatchingConnection(t *testing.T) {
	t.Parallel()
	p, direct := start(t)
	p.HoldReplies(func(req []byte) bool { return bytes.Contains(req, []byte("hold-me")) }, time.Hour)
	held, other := dial(t, p), dial(t, p)
	held.send("SET hold-me 1")
	waitfor.Condition(t, waitfor.Timeout, "the held request to run in Redis", func() bool {
		return direct.Get(context.Background(), "hold-me").Val() == "1"
	})
	other.send("PING")
	other.want("+PONG")
	if got, err := held.line(100 * time.Millisecond); err == nil {
		t.Fatalf("held reply came: %q", got)
	}
	// Head of line: what follows on the held connection waits too.
	held.send("PING")
	if got, err := held.line(100 * time.Millisecond); err == nil {
		t.Fatalf("reply behind the held one came: %q", got)
	}
	// Turning matching off leaves the hold in progress; dropping ends it.
	p.HoldReplies(nil, 0)
	other.send("SET hold-me 2")
	other.want("+OK")
	p.DropConnections()
	if _, err := held.line(waitfor.Timeout); !errors.Is(err, io.EOF) {
		t.Errorf("held connection after the drop: %v, want EOF", err)
	}
}

// A short hold ends by itself, and the replies held come in order.
func TestHoldRepliesEnds(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	const hold = 300 * time.Millisecond
	p.HoldReplies(func(req []byte) bool { return bytes.Contains(req, []byte("slow")) }, hold)
	c := dial(t, p)
	start := time.Now()
	c.send("ECHO slow")
	c.send("PING")
	c.want("$4")
	c.want("slow")
	c.want("+PONG")
	if took := time.Since(start); took < hold {
		t.Errorf("held replies came after %v, want at least %v", took, hold)
	}
}

// A blackhole passes nothing and closes nothing; once lifted, what was
// sent meanwhile arrives.
func TestBlackholeHoldsEverythingAndClosesNothing(t *testing.T) {
	t.Parallel()
	p, direct := start(t)
	c := dial(t, p)
	c.send("CLIENT SETNAME through-proxy")
	c.want("+OK")
	p.Blackhole(true)
	c.send("SET during 1")
	if got, err := c.line(200 * time.Millisecond); err == nil {
		t.Fatalf("reply through the blackhole: %q", got)
	}
	if v := direct.Exists(t.Context(), "during").Val(); v != 0 {
		t.Error("a request passed the blackhole")
	}
	if list := direct.ClientList(t.Context()).Val(); !strings.Contains(list, "name=through-proxy") {
		t.Errorf("the blackholed connection was closed:\n%s", list)
	}
	// New connections are accepted, and silent too.
	late := dial(t, p)
	late.send("PING")
	if got, err := late.line(100 * time.Millisecond); err == nil {
		t.Fatalf("reply through the blackhole: %q", got)
	}
	p.Blackhole(false)
	c.want("+OK")
	late.want("+PONG")
}

func TestDropConnectionsClosesThemAndAcceptsNew(t *testing.T) {
	t.Parallel()
	p, _ := start(t)
	old := dial(t, p)
	old.send("PING")
	old.want("+PONG")
	p.DropConnections()
	if _, err := old.line(waitfor.Timeout); !errors.Is(err, io.EOF) {
		t.Errorf("dropped connection: %v, want EOF", err)
	}
	fresh := dial(t, p)
	fresh.send("PING")
	fresh.want("+PONG")
}

// A lost request never reaches the target, and nothing answers it; the
// connection stays open, and requests that do not match pass.
func TestLoseRequestsDropsOnlyMatching(t *testing.T) {
	t.Parallel()
	p, direct := start(t)
	p.LoseRequests(func(req []byte) bool { return bytes.Contains(req, []byte("lost")) })
	c := dial(t, p)
	c.send("SET lost 1")
	if got, err := c.line(200 * time.Millisecond); err == nil {
		t.Fatalf("a lost request was answered: %q", got)
	}
	c.send("SET kept 1")
	c.want("+OK")
	if direct.Exists(t.Context(), "lost").Val() != 0 {
		t.Error("the lost request reached Redis")
	}
	p.LoseRequests(nil)
	c.send("SET lost 2")
	c.want("+OK")
}
