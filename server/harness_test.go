package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hinshun/vt10x"
	gossh "golang.org/x/crypto/ssh"

	"github.com/ssh-burn/chat/internal/waitfor"
	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/limits/local"
	"github.com/ssh-burn/chat/server"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/memstore"
)

// waitLimit bounds every wait for something to appear on a screen.
const waitLimit = 10 * time.Second

// testServer is a real server on a loopback port.
type testServer struct {
	addr  string
	port  int
	store store.Store
	srv   *server.Server
	logs  *syncBuffer
}

// memoryRooms is the number of rooms an in-memory test server holds.
func (ts *testServer) memoryRooms() int { return ts.store.(*memstore.Store).Len() }

// startServer starts a server with an in-memory store whose rooms live ttl.
func startServer(t testing.TB, ttl time.Duration) *testServer {
	t.Helper()
	return startServerOn(t, memstore.New(ttl))
}

// testLimits are a test server's limits: the server's own, and those of
// each client address.
type testLimits struct {
	server.Limits
	addr limits.Config
}

// generousLimits keep the per-address limits out of the way of tests that
// open many connections from 127.0.0.1; the hardening tests set their own.
func generousLimits() testLimits {
	l := testLimits{Limits: server.DefaultLimits(), addr: limits.DefaultConfig()}
	l.addr.ConnsPerAddr, l.addr.NewConnsPerSecond, l.addr.NewConnsBurst = 1000, 1000, 1000
	l.addr.RoomsPerMinute, l.addr.FailedJoins = 1000, 1000
	l.addr.BudgetBurst, l.addr.BudgetRefill = 1<<30, 1<<30
	l.MessagesPerSecond, l.MessageBurst = 1000, 1000
	return l
}

// startServerOn starts a server on rooms, which it closes at cleanup.
func startServerOn(t testing.TB, rooms store.Store) *testServer {
	t.Helper()
	return startServerWith(t, rooms, generousLimits())
}

// startServerWith starts a server on rooms with the given limits, the
// per-address ones kept in the server's memory.
func startServerWith(t testing.TB, rooms store.Store, l testLimits) *testServer {
	t.Helper()
	return startServerShared(t, rooms, l.Limits, local.New(l.addr))
}

// startServerShared starts a server on rooms with the given limits, addrs
// enforcing the per-address ones, after prepare has had it.
func startServerShared(t testing.TB, rooms store.Store, sessionLimits server.Limits, addrs limits.Limiter, prepare ...func(*server.Server)) *testServer {
	t.Helper()
	key, err := server.LoadOrCreateHostKey(filepath.Join(t.TempDir(), "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ts := &testServer{addr: ln.Addr().String(), port: port, store: rooms, logs: &syncBuffer{}}
	ts.srv, err = server.New(server.Config{
		Store:      ts.store,
		HostKey:    key,
		PublicAddr: server.PublicAddr{Host: "127.0.0.1", Port: port},
		Logger:     slog.New(slog.NewTextHandler(ts.logs, nil)),
		Limits:     sessionLimits,
		AddrLimits: addrs,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range prepare {
		p(ts.srv)
	}
	served := make(chan error, 1)
	go func() { served <- ts.srv.Serve(ln) }()
	t.Cleanup(func() {
		ts.store.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
			ts.srv.Close()
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ts
}

// client is one person at a real SSH client with a terminal.
type client struct {
	t       testing.TB
	name    string
	conn    *gossh.Client
	session *gossh.Session
	stdin   io.WriteCloser
	screen  *screen
	exited  chan error // receives the session's end once
	exitErr error
	done    bool
}

type dialOptions struct {
	noPTY   bool
	command string
	env     map[string]string
	// from is the loopback address to connect from (127.0.0.2, ...), so
	// one test can play several clients; empty means any.
	from string
	// tee also receives the session's output, after the screen has.
	tee io.Writer
}

func (ts *testServer) dial(t testing.TB, user string) *client {
	t.Helper()
	return ts.dialWith(t, user, dialOptions{})
}

func (ts *testServer) dialWith(t testing.TB, user string, opts dialOptions) *client {
	t.Helper()
	conn, err := ts.connect(user, opts.from)
	if err != nil {
		t.Fatalf("dial as %q: %v", user, err)
	}
	session, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, name: user, conn: conn, session: session, screen: newScreen(100, 30), exited: make(chan error, 1)}
	t.Cleanup(func() { conn.Close() })
	for k, v := range opts.env {
		if err := session.Setenv(k, v); err != nil {
			t.Fatalf("setenv: %v", err)
		}
	}
	session.Stdout = c.screen
	if opts.tee != nil {
		session.Stdout = io.MultiWriter(c.screen, opts.tee)
	}
	session.Stderr = c.screen
	if c.stdin, err = session.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if !opts.noPTY {
		if err := session.RequestPty("xterm-256color", 30, 100, gossh.TerminalModes{}); err != nil {
			t.Fatalf("pty: %v", err)
		}
	}
	if opts.command != "" {
		err = session.Start(opts.command)
	} else {
		err = session.Shell()
	}
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	go func() { c.exited <- session.Wait() }()
	return c
}

// connect opens an SSH connection as user from the given local address.
func (ts *testServer) connect(user, from string) (*gossh.Client, error) {
	dialer := net.Dialer{Timeout: waitLimit}
	if from != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	tcp, err := dialer.Dial("tcp", ts.addr)
	if err != nil {
		return nil, err
	}
	_ = tcp.SetDeadline(time.Now().Add(waitLimit))
	c, chans, reqs, err := gossh.NewClientConn(tcp, ts.addr, &gossh.ClientConfig{
		User:            user,
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
	})
	if err != nil {
		tcp.Close()
		return nil, err
	}
	_ = tcp.SetDeadline(time.Time{})
	return gossh.NewClient(c, chans, reqs), nil
}

// waitFor waits until the screen shows every one of texts.
func (c *client) waitFor(texts ...string) string {
	c.t.Helper()
	return c.screen.waitUntil(c.t, c.name, func(s string) bool {
		for _, text := range texts {
			if !strings.Contains(s, text) {
				return false
			}
		}
		return true
	}, fmt.Sprintf("%q", texts))
}

func (c *client) typeText(s string) {
	c.t.Helper()
	if _, err := c.stdin.Write([]byte(s)); err != nil {
		c.t.Fatalf("%s: type: %v", c.name, err)
	}
}

// say types a message and presses enter.
func (c *client) say(text string) { c.typeText(text + "\r") }

// destroyRoom asks to destroy the room and says yes once the question is
// on screen. A yes counts after a quiet moment with the question on screen
// (one sooner is ignored and starts the moment again), so one that did not
// count is said again after a pause.
func (c *client) destroyRoom() {
	c.t.Helper()
	c.typeText("\x18") // ctrl+x
	c.waitFor("Destroy this room and every message in it, for both of you? y/n")
	for range 10 {
		c.typeText("y")
		if waitfor.Within(time.Second, func() bool {
			s := c.screen.String()
			return strings.Contains(s, "Destroying the room") || strings.Contains(s, "Room destroyed")
		}) {
			return
		}
	}
	c.t.Fatalf("%s: no yes to destroy the room counted", c.name)
}

// exitCode waits for the session to end and returns its exit status.
func (c *client) exitCode() int {
	c.t.Helper()
	if !c.done {
		select {
		case c.exitErr = <-c.exited:
			c.done = true
		case <-time.After(waitLimit):
			c.t.Fatalf("%s: session did not end; screen:\n%s", c.name, c.screen)
		}
	}
	var exit *gossh.ExitError
	switch {
	case c.exitErr == nil:
		return 0
	case errors.As(c.exitErr, &exit):
		return exit.ExitStatus()
	}
	c.t.Fatalf("%s: session ended without a status: %v", c.name, c.exitErr)
	return -1
}

// inputLine is the input as the screen shows it: its rows, from the
// prompt's to the counter's.
func inputLine(screen string) string {
	var rows strings.Builder
	for line := range strings.Lines(screen) {
		// Its first row has the prompt, or an arrow once it is scrolled
		// past it; its last, the counter.
		if rows.Len() > 0 || strings.HasPrefix(line, "> ") || strings.HasPrefix(line, "↑ ") {
			rows.WriteString(line)
			if counter.MatchString(line) {
				break
			}
		}
	}
	return rows.String()
}

// counter is the input's count of characters, on its last row.
var counter = regexp.MustCompile(`\d+/1000\s*$`)

var shareCommand = regexp.MustCompile(`ssh -p (\d+) ([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})@127\.0\.0\.1`)

// roomID reads the room ID out of the share command on the screen.
func (c *client) roomID() string {
	c.t.Helper()
	s := c.screen.waitUntil(c.t, c.name, shareCommand.MatchString, "the share command")
	return shareCommand.FindStringSubmatch(s)[2]
}

// screen is a virtual terminal fed by a session's output.
type screen struct {
	mu      sync.Mutex
	term    vt10x.Terminal
	partial []byte // an incomplete UTF-8 sequence split across writes
	raw     bytes.Buffer
	changed chan struct{}
}

func newScreen(cols, rows int) *screen {
	return &screen{term: vt10x.New(vt10x.WithSize(cols, rows)), changed: make(chan struct{}, 1)}
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.raw.Write(p)
	data := append(s.partial, p...)
	// Hold back a trailing incomplete rune until its remaining bytes arrive.
	cut := len(data)
	for i := len(data) - 1; i >= 0 && i >= len(data)-utf8.UTFMax; i-- {
		if utf8.RuneStart(data[i]) {
			if !utf8.FullRune(data[i:]) {
				cut = i
			}
			break
		}
	}
	s.partial = append([]byte(nil), data[cut:]...)
	_, _ = s.term.Write(data[:cut])
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term.String()
}

// Raw is every byte the session wrote.
func (s *screen) Raw() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raw.String()
}

func (s *screen) waitUntil(t testing.TB, who string, ok func(string) bool, what string) string {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		text := s.String()
		if ok(text) {
			return text
		}
		select {
		case <-s.changed:
		case <-deadline.C:
			t.Fatalf("%s: screen never showed %s:\n%s", who, what, text)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
