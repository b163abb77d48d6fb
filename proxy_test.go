package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Behind a load balancer every connection comes from its address; with
// the PROXY protocol the per-address limits apply to the real client.
func TestPerAddressLimitsUseTheClientNamedByTrustedProxies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := newLockedBuffer()
	args := []string{"-listen", "127.0.0.1:0", "-host-key", filepath.Join(t.TempDir(), "id_ed25519"),
		"-trusted-proxies", "127.0.0.1/32"}
	returned := make(chan error, 1)
	go func() { returned <- run(ctx, args, func(string) string { return "" }, logs) }()
	listening := regexp.MustCompile(`msg=listening addr=(127\.0\.0\.1:\d+)`)
	addr := logs.waitFor(t, func(s string) string {
		if m := listening.FindStringSubmatch(s); m != nil {
			return m[1]
		}
		return ""
	})

	// connectAs opens a TCP connection that the "load balancer" announces
	// as coming from client, and returns it with the server's first line.
	connectAs := func(client string) (net.Conn, string) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "PROXY TCP4 %s 127.0.0.1 40000 2222\r\n", client)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line := make([]byte, 256)
		n, _ := c.Read(line)
		return c, string(line[:n])
	}
	const limit = 8 // the default per-address limit
	for i := range limit {
		if _, greeting := connectAs("203.0.113.7"); !strings.HasPrefix(greeting, "SSH-2.0-") {
			t.Fatalf("connection %d from 203.0.113.7 got %q", i+1, greeting)
		}
	}
	over, greeting := connectAs("203.0.113.7")
	if text := refusalInside(t, over, greeting, addr); !strings.Contains(text, "Too many connections from your address at once") {
		t.Fatalf("connection %d from one client was told %q, want the limit", limit+1, text)
	}
	// Another client behind the same balancer is not affected, and can chat.
	c, greeting := connectAs("203.0.113.8")
	if !strings.HasPrefix(greeting, "SSH-2.0-") {
		t.Fatalf("another client got %q", greeting)
	}
	_ = c.SetReadDeadline(time.Time{})
	conn, chans, reqs, err := gossh.NewClientConn(&replayConn{Conn: c, first: []byte(greeting)}, addr,
		&gossh.ClientConfig{User: "carol", HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatalf("ssh through the PROXY header: %v", err)
	}
	gossh.NewClient(conn, chans, reqs).Close()

	// Without the header, the balancer's own connection is refused: the
	// header is required from trusted addresses.
	plain, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "x", HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err == nil {
		plain.Close()
		t.Fatal("a trusted proxy's connection without a PROXY header was accepted")
	}
	cancel()
	if err := <-returned; err != nil {
		t.Fatalf("run: %v", err)
	}
}

// refusalInside completes the SSH handshake on c, whose server greeting
// was already read, asks for a chat and returns what the server answers.
func refusalInside(t *testing.T, c net.Conn, greeting, addr string) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Time{})
	conn, chans, reqs, err := gossh.NewClientConn(&replayConn{Conn: c, first: []byte(greeting)}, addr,
		&gossh.ClientConfig{User: "x", HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	client := gossh.NewClient(conn, chans, reqs)
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := session.RequestPty("xterm", 30, 100, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	out, _ := session.CombinedOutput("")
	return string(out)
}

// replayConn gives back bytes already read from the connection first.
type replayConn struct {
	net.Conn
	first []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
