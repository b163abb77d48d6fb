package server

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A client whose machine vanished is dropped by the kernel once what the
// server sent goes unacknowledged: the option is on every accepted
// connection.
func TestConnectionsAreDroppedWhenDataGoesUnacknowledged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dropWhenUnacked(conn, 30*time.Second)
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		got, optErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil || optErr != nil {
		t.Fatal(err, optErr)
	}
	if got != 30000 {
		t.Fatalf("TCP_USER_TIMEOUT is %d ms, want 30000", got)
	}
}
