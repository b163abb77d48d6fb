package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Terminal the simulated people declare.
const (
	termName = "xterm-256color"
	termCols = 80
	termRows = 24
)

const (
	// handshakeTimeout bounds the TCP dial and the SSH handshake.
	handshakeTimeout = 10 * time.Second
	// dialAttempts is how often a failed dial or handshake is tried.
	dialAttempts = 4
	// firstBackoff is the wait before the first retry; it doubles after.
	firstBackoff = 250 * time.Millisecond
	// screenTimeout bounds the wait for a screen to show what is expected.
	screenTimeout = 30 * time.Second
)

// shareCommand is the command a room's creator is shown; its room ID is
// what the partner dials as the SSH username.
var shareCommand = regexp.MustCompile(`ssh (?:-p \d+ )?([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})@`)

// nextAddr numbers the loopback addresses handed out. It is process-wide
// because the server's per-address budgets outlive a run: no address may
// be used twice in one invocation, whatever run or server it is for.
var nextAddr atomic.Int64

// newSourceAddr returns a loopback address no other session of this process
// has used: i -> 127.(1+i/62500).(i/250%250).(i%250+1). It never returns
// 127.0.0.1, so the tool's people do not share a budget with anything else.
func newSourceAddr() net.IP {
	i := nextAddr.Add(1) - 1
	return net.IPv4(127, byte(1+i/62500), byte(i/250%250), byte(i%250+1))
}

// session is one simulated person: an SSH connection from its own loopback
// address with a terminal and the chat running in it.
type session struct {
	client *ssh.Client
	stdin  io.Writer
	out    *watcher
	errOut *tailBuffer
	// ended is closed when the server ends the session or the connection
	// is closed.
	ended chan struct{}
	// dialed is when the first dial attempt started; shellUp is when the
	// server accepted the shell request.
	dialed, shellUp time.Time
	// retries counts failed dial or handshake attempts before success.
	retries int
}

// openSession connects to addr as user from a fresh loopback address and
// starts the chat with a terminal. It retries a failed dial or handshake
// with backoff; refusals the server makes inside SSH show up later, as the
// session ending (see waitScreen). The output goes to out, whose
// expectations can so be armed before anything arrives.
func openSession(ctx context.Context, addr, user string, out *watcher) (*session, error) {
	return openSessionFrom(ctx, addr, user, newSourceAddr(), out)
}

// openSessionFrom is openSession from a given loopback address, for
// several sessions of one person (one address's budget).
func openSessionFrom(ctx context.Context, addr, user string, from net.IP, out *watcher) (*session, error) {
	s := &session{dialed: time.Now(), out: out, errOut: &tailBuffer{max: 512}, ended: make(chan struct{})}
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		client, err := dialSSH(ctx, addr, user, from)
		if err == nil {
			s.client = client
			break
		}
		if attempt == dialAttempts || ctx.Err() != nil {
			return nil, fmt.Errorf("connect from %v after %d attempts: %w", from, attempt, err)
		}
		s.retries++
		if err := pause(ctx, backoff); err != nil {
			return nil, err
		}
		backoff *= 2
	}
	if err := s.startChat(); err != nil {
		s.client.Close()
		return nil, fmt.Errorf("start chat from %v: %w", from, err)
	}
	return s, nil
}

// dialSSH opens an SSH connection from the local address from, with the
// "none" authentication the server offers.
func dialSSH(ctx context.Context, addr, user string, from net.IP) (*ssh.Client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: handshakeTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	// The handshake must not hang on a server that accepted and went quiet.
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User:            user,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a test server's fresh key
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// startChat opens the session channel, asks for a terminal and the shell.
func (s *session) startChat() error {
	sess, err := s.client.NewSession()
	if err != nil {
		return fmt.Errorf("open session: %w", err)
	}
	// A pipe rather than a nil Stdin: the library would send EOF at once
	// for a nil one, and it needs no goroutine.
	if s.stdin, err = sess.StdinPipe(); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	sess.Stdout, sess.Stderr = s.out, s.errOut
	if err := sess.RequestPty(termName, termRows, termCols, ssh.TerminalModes{}); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	if err := sess.Shell(); err != nil {
		return fmt.Errorf("shell: %w", err)
	}
	s.shellUp = time.Now()
	go func() {
		_ = sess.Wait()
		close(s.ended)
	}()
	return nil
}

// waitScreen waits until signal is closed (something awaited appeared in
// the output), failing if the session ends first or nothing comes in time.
func (s *session) waitScreen(ctx context.Context, signal <-chan struct{}, what string) error {
	timeout := time.NewTimer(screenTimeout)
	defer timeout.Stop()
	select {
	case <-signal:
		return nil
	case <-s.ended:
		// The output may have completed just as the session ended.
		select {
		case <-signal:
			return nil
		default:
		}
		return fmt.Errorf("session ended before %s appeared: %q", what, bytes.TrimSpace(s.errOut.bytes()))
	case <-timeout.C:
		return fmt.Errorf("no %s within %v; the screen's text ends with %q", what, screenTimeout, s.out.recentText())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send types text and Enter, registering the token on the receiver first
// so that its arrival is timed from the moment before the write. With a
// gap, each key of the text is typed on its own, gap apart, and the
// arrival is timed from the Enter.
func (s *session) send(ctx context.Context, token string, gap time.Duration, receiver *watcher, arrived func(sent, at time.Time)) error {
	last := token + "\r"
	if gap > 0 {
		for i := range len(token) {
			if _, err := io.WriteString(s.stdin, token[i:i+1]); err != nil {
				return fmt.Errorf("type: %w", err)
			}
			if err := pause(ctx, gap); err != nil {
				return err
			}
		}
		last = "\r"
	}
	receiver.expect(token, time.Now(), arrived)
	if _, err := io.WriteString(s.stdin, last); err != nil {
		return fmt.Errorf("type: %w", err)
	}
	return nil
}

// close hangs up.
func (s *session) close() {
	s.client.Close()
}

// maxExpected bounds the length of awaited texts; the watcher keeps this
// much of the previous output so that a text split across writes is found.
const maxExpected = 64

// recentKeep is how much recent plain text a watched session keeps, to
// show what its screen said when something does not arrive.
const recentKeep = 2048

// watcher is the io.Writer a session's output goes to. It strips escape
// sequences, finds the room ID of the first screen, and reports the
// arrival of awaited texts.
type watcher struct {
	// keep: go on watching after the first screen; otherwise drain.
	keep bool

	mu     sync.Mutex
	strip  stripper
	recent []byte // the end of the plain text so far
	plain  []byte // scratch for one write's plain text
	// firstAt is when the share command appeared; roomID is its room ID.
	firstAt  time.Time
	roomID   string
	first    chan struct{} // closed when the share command has appeared
	expected []*expectation
	patterns []*patternWatch
}

type expectation struct {
	text    string
	sent    time.Time
	arrived func(sent, at time.Time)
}

// patternWatch waits for a regular expression in the text that arrives
// after it was armed, and only there: a status drawn before it does not
// count again.
type patternWatch struct {
	re    *regexp.Regexp
	since []byte
	found chan string // receives the match, once
}

// patternKeep bounds the text a patternWatch searches: the longest
// status line and then some.
const patternKeep = 1024

func newWatcher(keep bool) *watcher {
	return &watcher{keep: keep, first: make(chan struct{})}
}

func (w *watcher) Write(p []byte) (int, error) {
	at := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.firstAt.IsZero() && !w.keep {
		return len(p), nil
	}
	w.plain = w.strip.strip(w.plain[:0], p)
	// Search the new text together with the end of the old, where an
	// awaited text may have begun.
	from := max(len(w.recent)-maxExpected, 0)
	w.recent = append(w.recent, w.plain...)
	window := w.recent[from:]
	if w.firstAt.IsZero() {
		if m := shareCommand.FindSubmatch(window); m != nil {
			w.firstAt, w.roomID = at, string(m[1])
			close(w.first)
			if !w.keep {
				w.recent, w.plain = nil, nil
				return len(p), nil
			}
		}
	}
	kept := w.expected[:0]
	for _, e := range w.expected {
		if bytes.Contains(window, []byte(e.text)) {
			e.arrived(e.sent, at)
		} else {
			kept = append(kept, e)
		}
	}
	clear(w.expected[len(kept):])
	w.expected = kept
	keptPatterns := w.patterns[:0]
	for _, pw := range w.patterns {
		pw.since = append(pw.since, w.plain...)
		if len(pw.since) > 2*patternKeep {
			pw.since = append(pw.since[:0], pw.since[len(pw.since)-patternKeep:]...)
		}
		if m := pw.re.Find(pw.since); m != nil {
			pw.found <- string(m)
		} else {
			keptPatterns = append(keptPatterns, pw)
		}
	}
	clear(w.patterns[len(keptPatterns):])
	w.patterns = keptPatterns
	if len(w.recent) > 2*recentKeep {
		w.recent = append(w.recent[:0], w.recent[len(w.recent)-recentKeep:]...)
	}
	return len(p), nil
}

// expect calls arrived (from the output's goroutine, once) when text next
// appears in the output.
func (w *watcher) expect(text string, sent time.Time, arrived func(sent, at time.Time)) {
	w.expectCancel(text, sent, arrived)
}

// expectCancel is expect, with a function that takes the expectation back
// (for a text that may never come).
func (w *watcher) expectCancel(text string, sent time.Time, arrived func(sent, at time.Time)) (cancel func()) {
	if len(text) > maxExpected {
		panic("chatload: expected text longer than maxExpected")
	}
	e := &expectation{text: text, sent: sent, arrived: arrived}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expected = append(w.expected, e)
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.expected = slices.DeleteFunc(w.expected, func(x *expectation) bool { return x == e })
	}
}

// await returns a channel closed when text next appears in the output.
// Arm it before whatever makes the text appear.
func (w *watcher) await(text string) <-chan struct{} {
	seen, _ := w.awaitCancel(text)
	return seen
}

// awaitCancel is await, with a function that takes it back.
func (w *watcher) awaitCancel(text string) (<-chan struct{}, func()) {
	seen := make(chan struct{})
	cancel := w.expectCancel(text, time.Now(), func(time.Time, time.Time) { close(seen) })
	return seen, cancel
}

// awaitMatch returns a channel that receives the first match of re in the
// output that arrives from now on, and a function that takes it back.
func (w *watcher) awaitMatch(re *regexp.Regexp) (<-chan string, func()) {
	pw := &patternWatch{re: re, found: make(chan string, 1)}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.patterns = append(w.patterns, pw)
	return pw.found, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.patterns = slices.DeleteFunc(w.patterns, func(x *patternWatch) bool { return x == pw })
	}
}

// firstScreen returns when the share command appeared and its room ID.
func (w *watcher) firstScreen() (time.Time, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstAt, w.roomID
}

// recentText is the end of the plain text, for error messages.
func (w *watcher) recentText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.recent[max(len(w.recent)-400, 0):])
}

// tailBuffer keeps the last max bytes written to it (a refusal is a line
// on stderr).
type tailBuffer struct {
	max int
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf)
}

// pause waits for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
