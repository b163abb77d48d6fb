package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// BenchmarkIdleSessionCPU measures what open, idle chat sessions cost the
// server: a real server process, idleSessions real SSH sessions, each
// alone in its room with its countdown running, and the process's own CPU
// time (from /proc) over a few seconds. It reports CPU milliseconds per
// session per second, by terminal size, since the size sets the price of a
// redraw. -max-sessions and the per-address limits are the defaults.
func BenchmarkIdleSessionCPU(b *testing.B) {
	for _, size := range [][2]int{{80, 24}, {400, 150}, {1000, 500}} {
		b.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(b *testing.B) {
			addr, server := startReplicaProcess(b, nil)
			sessions := openIdleSessions(b, addr, size[0], size[1])
			var perSessionSecond []float64
			for b.Loop() {
				before, wall := cpuTime(b, server.Process.Pid), time.Now()
				time.Sleep(3 * time.Second) // the measurement window
				used := cpuTime(b, server.Process.Pid) - before
				perSessionSecond = append(perSessionSecond, float64(used.Milliseconds())/float64(sessions)/time.Since(wall).Seconds())
			}
			sum := 0.0
			for _, v := range perSessionSecond {
				sum += v
			}
			b.ReportMetric(sum/float64(len(perSessionSecond)), "cpu-ms/session/s")
		})
	}
}

const idleSessions = 100

// openIdleSessions opens idleSessions chats from distinct loopback
// addresses (eight each, the per-address limit) and waits for each one's
// first screen.
func openIdleSessions(b *testing.B, addr string, width, height int) int {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, idleSessions)
	for i := range idleSessions {
		from := net.IPv4(127, 10, byte(i/8/250), byte(i/8%250+1))
		wg.Go(func() {
			if err := openIdleSession(b, addr, from, width, height); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return idleSessions
}

func openIdleSession(b *testing.B, addr string, from net.IP, width, height int) error {
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 20 * time.Second}
	var conn net.Conn
	var err error
	// New connections per address are rate limited (burst 10): wait out
	// a refusal rather than fail.
	for range 50 {
		if conn, err = dialer.Dial("tcp", addr); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	c, chans, reqs, err := gossh.NewClientConn(conn, addr, &gossh.ClientConfig{User: "idle", HostKeyCallback: gossh.InsecureIgnoreHostKey()})
	if err != nil {
		return fmt.Errorf("ssh from %v: %w", from, err)
	}
	client := gossh.NewClient(c, chans, reqs)
	b.Cleanup(func() { client.Close() })
	session, err := client.NewSession()
	if err != nil {
		return err
	}
	shown := &firstScreen{seen: make(chan struct{})}
	session.Stdout = shown
	if err := session.RequestPty("xterm-256color", height, width, gossh.TerminalModes{}); err != nil {
		return err
	}
	if err := session.Shell(); err != nil {
		return err
	}
	select {
	case <-shown.seen:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("no first screen from %v", from)
	}
}

// firstScreen discards a session's output, noting when the help line of
// the first screen has arrived.
type firstScreen struct {
	mu   sync.Mutex
	tail []byte
	seen chan struct{}
	done bool
}

func (f *firstScreen) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.done {
		f.tail = append(f.tail, p...)
		if bytes.Contains(f.tail, []byte("destroy room")) {
			f.done = true
			close(f.seen)
		}
		f.tail = f.tail[max(len(f.tail)-64, 0):]
	}
	return len(p), nil
}

// cpuTime is the user and system CPU time process pid has used.
func cpuTime(b *testing.B, pid int) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 a second on Linux).
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
