//go:build !linux

package server

import (
	"net"
	"time"
)

// dropWhenUnacked does nothing here: TCP_USER_TIMEOUT is Linux's; keepalives
// still find clients that vanished.
func dropWhenUnacked(net.Conn, time.Duration) {}
