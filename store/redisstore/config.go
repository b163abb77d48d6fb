package redisstore

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	// DefaultLease is how long a seat outlives the replica holding it: the
	// bound on "ghost" members after a replica is killed.
	DefaultLease = 10 * time.Second
	// DefaultOutageTolerance is how long an outage of Redis (a pause, a
	// restart that keeps the data, a failover) may last before the seats
	// of a replica that cannot reach it are given up.
	DefaultOutageTolerance = time.Minute
)

const (
	// opTimeout bounds every Redis call, so a Redis that stopped answering
	// delays the store but never hangs it.
	opTimeout = 3 * time.Second
	// dialTimeout bounds connecting to Redis.
	dialTimeout = 2 * time.Second
	// replyWait is how long a call's connection keeps waiting for the
	// reply after its caller stopped waiting (opTimeout). A call cut off
	// mid-reply costs its connection, and a new connection's handshake
	// waits for Redis too: against a Redis that answers a few seconds late,
	// cutting calls off at opTimeout would leave no connection that works.
	replyWait = 3 * opTimeout
	// lateGrace is how long nothing may answer, on either way to Redis,
	// before a late reply counts as the link being down.
	lateGrace = 2 * opTimeout
	// joinPatience bounds how long a join repeats itself while Redis does
	// not answer, beside the caller's context.
	joinPatience = replyWait
)

// Config configures New.
type Config struct {
	// Client reaches the shared Redis: one server or a cluster. Make it
	// with NewClient, which sets the timeouts the store relies on. The
	// store does not close it: close it after the store.
	Client redis.UniversalClient
	// TTL is how long rooms created here live.
	TTL time.Duration
	// Lease is how long the seats of a replica that stopped beating (killed,
	// or cut off from Redis on its own) stay taken. Zero means DefaultLease.
	Lease time.Duration
	// OutageTolerance is how long this replica keeps its seats while it
	// cannot reach Redis. An outage of Redis itself costs nobody a seat
	// for that long; past it, the seats here end (EndLeaseLost) and are
	// given up once Redis answers again. Zero means
	// DefaultOutageTolerance.
	OutageTolerance time.Duration
	// Logger receives operational events; never message text, room IDs or
	// client addresses.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.OutageTolerance == 0 {
		c.OutageTolerance = DefaultOutageTolerance
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// NewClient makes a client from a URL: redis://[user:pass@]host:port[/db],
// rediss://… for TLS, or a cluster as redis://host1:port?addr=host2:port&addr=….
// Its errors never hold the URL's password (they end up in logs): they
// show the URL redacted (see shown), or nothing of a URL that cannot be
// parsed.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %s", parseProblem(err))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redis URL %s: scheme must be redis or rediss, not %q", shown(u), u.Scheme)
	}
	// Deadlines come from each call's context, so a Redis that stopped
	// answering costs a bounded wait. The client retries nothing: the store
	// decides what may be repeated (a message, under its ID) and what not
	// (a join, which would take a second seat).
	if u.Query().Has("addr") {
		opts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis cluster URL %s: %w", shown(u), withoutPassword(err, u))
		}
		opts.ContextTimeoutEnabled, opts.MaxRetries, opts.DialTimeout = true, -1, dialTimeout
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %s: %w", shown(u), withoutPassword(err, u))
	}
	opts.ContextTimeoutEnabled, opts.MaxRetries, opts.DialTimeout = true, -1, dialTimeout
	return redis.NewClient(opts), nil
}

// shown is u as an error may show it: without its password, and without
// its query, whose values are anyone's guess.
func shown(u *url.URL) string {
	c := *u
	c.RawQuery, c.Fragment, c.RawFragment = "", "", ""
	return c.Redacted()
}

// parseProblem says what is wrong with a URL that url.Parse refused,
// without quoting it: url's errors quote the whole URL, and even the
// piece they complain of may be part of a password.
func parseProblem(err error) string {
	var escape url.EscapeError
	if errors.As(err, &escape) {
		return "a % is not followed by two hex digits (a % in a password is written %25)"
	}
	var host url.InvalidHostError
	if errors.As(err, &host) {
		return "the host holds a character a host name cannot"
	}
	return "cannot be parsed (in a password, / ? # @ and % are written %2F %3F %23 %40 %25)"
}

// withoutPassword is err, its text without u's password, should go-redis
// have quoted part of the URL that holds it.
func withoutPassword(err error, u *url.URL) error {
	password, ok := u.User.Password()
	if !ok || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "xxxxx"))
}
