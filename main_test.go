package main

import (
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/server"
	"github.com/ssh-burn/chat/store/redistest"
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

// No error path prints a secret: a Redis URL's password (unparsable, a bad
// port, path or query, Redis unreachable or refusing it, the URL given
// without its flag) or a host key pasted where its path belongs. What
// run returns is printed on stderr, which container logs keep.
func TestNoSecretIsEverPrinted(t *testing.T) {
	const secret = "s3cr3t-PASS"
	wrongPassword := redistest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: wrongPassword.Addr})
	if err := admin.ConfigSet(t.Context(), "requirepass", "another-one").Err(); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	hostKey := filepath.Join(t.TempDir(), "id_ed25519")
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{args: []string{"-redis", "redis://user:" + secret + "@127.0.0.1:1/%zz"}},
		{args: []string{"-redis", "redis://user:" + secret + "@127.0.0.1:port"}},
		{args: []string{"-redis", "redis://user:" + secret + "/x@127.0.0.1:1"}},
		{args: []string{"-redis", "redis://user:" + secret + "@127.0.0.1:1/notadb"}},
		{args: []string{"-redis", "redis://user:" + secret + "@127.0.0.1:1?dial_timeout=soon"}},
		{args: []string{"-redis", "redis://user:" + secret + "@127.0.0.1:1?addr=127.0.0.1:2&bogus=" + secret}},
		{args: []string{"-redis", "redis://user:" + secret + "@[::1"}},
		{args: []string{"-redis", "http://user:" + secret + "@127.0.0.1:1"}},
		{env: map[string]string{"CHAT_REDIS_URL": "redis://user:" + secret + "@127.0.0.1:1/%zz"}},
		{args: []string{"redis://user:" + secret + "@127.0.0.1:1"}},
		// Parsed, then refused on the way in: no such host, nobody
		// listens, or Redis takes another password.
		{args: []string{"-redis", "redis://user:" + secret + "@redis.invalid:6379"}},
		{args: []string{"-redis", "redis://user:" + secret + "@127.0.0.1:1"}},
		{args: []string{"-redis", "redis://default:" + secret + "@" + wrongPassword.Addr}},
		{args: []string{"-host-key", "-----BEGIN OPENSSH PRIVATE KEY-----\n" + secret + "\n-----END OPENSSH PRIVATE KEY-----\n"}},
	} {
		var out strings.Builder
		args := append([]string{"-listen", "127.0.0.1:0", "-host-key", hostKey}, tc.args...)
		err := run(t.Context(), args, env(tc.env), &out)
		if err == nil {
			t.Fatalf("run(%q, %v) served", tc.args, tc.env)
		}
		printed := "chat: " + err.Error() + "\n" + out.String()
		if strings.Contains(printed, secret) || strings.Contains(printed, "PRIVATE KEY") {
			t.Errorf("run(%q, %v) printed the secret:\n%s", tc.args, tc.env, printed)
		}
		t.Logf("%s", printed)
	}
}
