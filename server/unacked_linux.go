package server

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// dropWhenUnacked makes the kernel drop conn once data it sent has gone
// unacknowledged for d (TCP_USER_TIMEOUT). Connections that are not TCP
// (through the PROXY protocol, the balancer's) are left as they are.
func dropWhenUnacked(conn net.Conn, d time.Duration) {
	tcp, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tcp.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	})
}
