package server

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// PublicAddr is the address people type after "ssh": a host and a port.
type PublicAddr struct {
	Host string
	Port int
}

// ParsePublicAddr reads "host" or "host:port" (port 22 when absent).
func ParsePublicAddr(s string) (PublicAddr, error) {
	if s == "" {
		return PublicAddr{}, fmt.Errorf("public address is empty")
	}
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		// No port: the whole thing is the host (an IPv6 literal may be
		// bracketed).
		host, portText = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "22"
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return PublicAddr{}, fmt.Errorf("public address %q: port must be 1-65535", s)
	}
	if host == "" || strings.ContainsAny(host, " \t@/") {
		return PublicAddr{}, fmt.Errorf("public address %q: needs a host name or IP address", s)
	}
	return PublicAddr{Host: host, Port: port}, nil
}

// Command is the ssh command line that reaches this server as user (no user:
// a new room), with extra options such as "-t" before the destination.
func (a PublicAddr) Command(user string, options ...string) string {
	return a.command(user, false, options)
}

// NarrowCommand is Command in as few characters as ssh takes ("-p2222"),
// for a screen too narrow for Command on one line.
func (a PublicAddr) NarrowCommand(user string, options ...string) string {
	return a.command(user, true, options)
}

func (a PublicAddr) command(user string, narrow bool, options []string) string {
	parts := append([]string{"ssh"}, options...)
	switch {
	case a.Port == 22:
	case narrow:
		parts = append(parts, "-p"+strconv.Itoa(a.Port))
	default:
		parts = append(parts, "-p", strconv.Itoa(a.Port))
	}
	dest := a.Host
	if user != "" {
		dest = user + "@" + a.Host
	}
	return strings.Join(append(parts, dest), " ")
}
