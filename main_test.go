package main

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ssh-burn/chat/server"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.listen != ":2222" || cfg.hostKey != ".ssh/id_ed25519" || cfg.roomTTL != 10*time.Minute ||
		cfg.redisURL != "" || cfg.publicAddr != (server.PublicAddr{}) ||
		cfg.seatLease != 10*time.Second || cfg.outageTolerance != time.Minute ||
		cfg.httpListen != "" || cfg.pprof || cfg.logFormat != "text" || cfg.logLevel != slog.LevelInfo || cfg.drainTimeout != 10*time.Second ||
		cfg.addressBudget != 64<<10 {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestParseConfigFlagsBeatEnvironment(t *testing.T) {
	cfg, err := parseConfig([]string{"-room-ttl", "30s"}, env(map[string]string{
		"CHAT_ROOM_TTL": "5m", "CHAT_LISTEN": "127.0.0.1:22", "CHAT_PUBLIC_ADDR": "chat.example.com",
		"CHAT_HOST_KEY": "/keys/host", "CHAT_REDIS_OUTAGE_TOLERANCE": "90s", "CHAT_ADDRESS_BUDGET": "128",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.roomTTL != 30*time.Second || cfg.listen != "127.0.0.1:22" || cfg.hostKey != "/keys/host" || cfg.outageTolerance != 90*time.Second ||
		cfg.addressBudget != 128<<10 {
		t.Errorf("cfg = %+v", cfg)
	}
	if got := cfg.publicAddr.Command("ID"); got != "ssh ID@chat.example.com" {
		t.Errorf("port 22 must not be spelled out: %q", got)
	}
}

func TestDerivePublicAddrFromTheListener(t *testing.T) {
	for listen, want := range map[string]string{
		":2222":        "ssh -p 2222 ID@localhost",
		"0.0.0.0:22":   "ssh ID@localhost",
		"[::]:2200":    "ssh -p 2200 ID@localhost",
		"10.1.2.3:222": "ssh -p 222 ID@10.1.2.3",
	} {
		addr, err := net.ResolveTCPAddr("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := derivePublicAddr(addr).Command("ID"); got != want {
			t.Errorf("listening on %s: share command %q, want %q", listen, got, want)
		}
	}
}

func TestParseConfigRejectsBadValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-room-ttl", "0"}, nil, "between 1s and 24h"},
		{[]string{"-room-ttl", "-5m"}, nil, "between 1s and 24h"},
		{nil, map[string]string{"CHAT_ROOM_TTL": "soon"}, "CHAT_ROOM_TTL \"soon\""},
		{[]string{"-room-ttl", "soon"}, nil, "-room-ttl \"soon\""},
		{[]string{"-listen", "2222"}, nil, "want host:port"},
		{[]string{"-listen", ":http-ish"}, nil, "port must be a number"},
		{[]string{"-public-addr", "chat.example.com:0"}, nil, "port must be 1-65535"},
		{[]string{"-public-addr", "evil@host"}, nil, "needs a host name"},
		{[]string{"-host-key", ""}, nil, "path is required"},
		{[]string{"-redis", "http://localhost:6379"}, nil, "scheme must be redis or rediss"},
		{nil, map[string]string{"CHAT_REDIS_URL": "redis://localhost:6379/notadb"}, "CHAT_REDIS_URL: redis URL"},
		{[]string{"-redis", "redis://a:1?addr=b:2&bogus=1"}, nil, "redis cluster URL"},
		{[]string{"-seat-lease", "100ms"}, nil, "between 1s and 1m"},
		{[]string{"-redis-outage-tolerance", "500ms"}, nil, "-redis-outage-tolerance 500ms: must be between 1s and 1h"},
		{nil, map[string]string{"CHAT_REDIS_OUTAGE_TOLERANCE": "a while"}, "CHAT_REDIS_OUTAGE_TOLERANCE \"a while\""},
		{[]string{"-max-sessions", "0"}, nil, "-max-sessions \"0\": want a whole number"},
		{nil, map[string]string{"CHAT_MAX_SESSIONS": "lots"}, "CHAT_MAX_SESSIONS \"lots\""},
		{[]string{"-address-budget", "4"}, nil, "-address-budget \"4\": want a whole number of KiB from 8 to 65536"},
		{nil, map[string]string{"CHAT_ADDRESS_BUDGET": "64KiB"}, "CHAT_ADDRESS_BUDGET \"64KiB\""},
		{[]string{"-trusted-proxies", "10.0.0.0/8,lb.internal"}, nil, "want an address or CIDR"},
		{[]string{"-http", "9090"}, nil, "-http \"9090\": want host:port"},
		{[]string{"-http", ":2222"}, nil, "a port of its own, not the SSH port"},
		{[]string{"-pprof", "true"}, nil, "set -http too"},
		{nil, map[string]string{"CHAT_PPROF": "yes please"}, "CHAT_PPROF \"yes please\": want true or false"},
		{[]string{"-log-format", "xml"}, nil, "want text or json"},
		{nil, map[string]string{"CHAT_LOG_LEVEL": "loud"}, "CHAT_LOG_LEVEL \"loud\""},
		{[]string{"-drain-timeout", "0s"}, nil, "between 1s and 10m"},
		{[]string{"extra"}, nil, "unexpected argument"},
		{[]string{"-nope"}, nil, "flag provided but not defined"},
	} {
		_, err := parseConfig(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%q, %v) = %v, want an error containing %q", tc.args, tc.env, err, tc.want)
		}
	}
}

// go-redis's reports reach the log at most a few at once and then a line
// a second, saying how many were left out: an outage does not flood it.
func TestRedisReportsAreLoggedSparingly(t *testing.T) {
	var out strings.Builder
	log := newRedisLog(slog.New(slog.NewTextHandler(&out, nil)))
	for range 100 {
		log.Printf(t.Context(), "redis: connection pool: failed to dial after %d attempts", 5)
	}
	if lines := strings.Count(out.String(), "failed to dial"); lines < 1 || lines > 3 {
		t.Fatalf("%d lines for 100 reports at once:\n%s", lines, out.String())
	}
}
