// Package redislimits keeps the server's per-address limits in the Redis
// that the replicas share, so that behind a load balancer they hold per
// person rather than per replica: the open chats of an address are one
// counter whatever replica serves them, and so are its rates of new
// connections, rooms and failed joins.
//
// Redis never sees an address in clear. Every key names a keyed hash
// (HMAC-SHA-256) of the client's address (its /64 for IPv6), under a
// secret the replicas share through Redis and replace every rotation
// period; the one before stays readable for one more period, so counts
// carry over a rotation (rates start afresh once a period). Whoever holds
// a dump of Redis together with its current secret can test whether a
// given address is among those active lately, and nothing more: the
// secret of an earlier period is gone with its keys.
//
// When Redis cannot answer (down, full, a malformed reply), the limits
// fall back to this replica's own counts for that decision, as without
// Redis: nobody is turned away because the limits cannot be looked up,
// and nobody gets more than a replica would give them alone.
package redislimits

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/ssh-burn/chat/server"
)

const (
	// keyPrefix starts every key of these limits.
	keyPrefix = "chat:v2:lim:"
	// DefaultRotation is how long one secret names the addresses.
	DefaultRotation = time.Hour
	// refreshEvery is how often a replica looks up the shared secret.
	refreshEvery = time.Minute
	// callTimeout bounds a decision's wait for Redis: a connection is not
	// held up for long by its limits.
	callTimeout = 500 * time.Millisecond
	// holdExtra is how long an open chat's count outlives the longest
	// session, should its replica die before giving it back and no other
	// replica have found it dead.
	holdExtra = 2 * time.Minute
)

// Replica is this server replica as the store knows it: its ID, and the
// replicas found dead, whose open chats are closed whatever Redis says.
// redisstore.Store is one.
type Replica interface {
	ReplicaID() string
	DeadReplicas() []string
}

// Config configures New.
type Config struct {
	// Client is the shared Redis. The limiter does not close it.
	Client redis.UniversalClient
	// Limits are the per-address limits to enforce (zero fields take
	// server.DefaultLimits).
	Limits server.Limits
	// Replica names this replica in the counts it holds.
	Replica Replica
	// Rotation is how long one secret names the addresses; zero means
	// DefaultRotation.
	Rotation time.Duration
	// Logger hears when the limits fall back to this replica's counts
	// (at most once a minute). Never an address.
	Logger *slog.Logger
}

// Limiter is a server.AddrLimiter on Redis.
type Limiter struct {
	rdb      redis.UniversalClient
	rates    *redis_rate.Limiter
	limits   server.Limits
	replica  Replica
	rotation time.Duration
	hold     time.Duration
	local    server.AddrLimiter
	log      *slog.Logger
	fallback rate.Sometimes
	tokens   atomic.Uint64

	mu      sync.Mutex
	secrets secrets
}

var _ server.AddrLimiter = (*Limiter)(nil)

// secrets are the shared secrets as last looked up.
type secrets struct {
	cur, prev []byte
	fetched   time.Time
	// rotates is when the current one is due to be replaced.
	rotates time.Time
}

// New returns a limiter on cfg.Client. It reaches Redis only when asked
// to decide.
func New(cfg Config) *Limiter {
	if cfg.Rotation == 0 {
		cfg.Rotation = DefaultRotation
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	limits := cfg.Limits.WithDefaults()
	return &Limiter{
		rdb:      cfg.Client,
		rates:    redis_rate.NewLimiter(cfg.Client),
		limits:   limits,
		replica:  cfg.Replica,
		rotation: cfg.Rotation,
		hold:     limits.MaxSession + holdExtra,
		local:    server.NewLocalLimiter(limits),
		log:      cfg.Logger,
		fallback: rate.Sometimes{Interval: time.Minute},
	}
}

// secretScript ARGV: a fresh secret (hex), rotation ms. Returns {current,
// previous, ms until the current is replaced}, installing the fresh one
// when there is none or the current one's time is up.
var secretScript = redis.NewScript(`#!lua flags=allow-oom
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rotation = tonumber(ARGV[2])
local cur = redis.call('HGET', KEYS[1], 'cur')
local at = tonumber(redis.call('HGET', KEYS[1], 'at'))
local prev = redis.call('HGET', KEYS[1], 'prev') or ''
if not cur or not at or now - at >= rotation or now < at then
  prev = cur or ''
  cur = ARGV[1]
  at = now
  redis.call('HSET', KEYS[1], 'cur', cur, 'prev', prev, 'at', at)
  redis.call('PEXPIRE', KEYS[1], 2 * rotation)
end
return {cur, prev, rotation - (now - at)}
`)

// admitScript KEYS: the open chats of an address (a sorted set of tokens
// scored by when they lapse). ARGV: token, limit, hold ms, chats counted
// under the previous secret, dead replicas... Drops lapsed tokens and
// those of dead replicas, and adds token unless the address holds limit
// chats. Returns 1 if added, else 0.
var admitScript = redis.NewScript(`#!lua
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if #ARGV >= 5 then
  local dead = {}
  for i = 5, #ARGV do dead[ARGV[i]] = true end
  for _, token in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local rid = string.match(token, '^([^:]+):')
    if rid and dead[rid] then redis.call('ZREM', KEYS[1], token) end
  end
end
if redis.call('ZCARD', KEYS[1]) + tonumber(ARGV[4]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// openScript KEYS: the open chats of an address. Returns how many have
// not lapsed.
var openScript = redis.NewScript(`#!lua flags=no-writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
`)

// lookup returns the shared secrets, fetching them when due.
func (l *Limiter) lookup(ctx context.Context) (secrets, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.secrets.cur != nil && now.Sub(l.secrets.fetched) < refreshEvery && now.Before(l.secrets.rotates) {
		return l.secrets, nil
	}
	fresh := make([]byte, 32)
	rand.Read(fresh) // never returns an error (crypto/rand)
	res, err := secretScript.Run(ctx, l.rdb, []string{keyPrefix + "secret"}, hex.EncodeToString(fresh), l.rotation.Milliseconds()).Result()
	if err != nil {
		return l.secrets, fmt.Errorf("look up the address secret: %w", err)
	}
	parts, ok := res.([]any)
	if !ok || len(parts) != 3 {
		return l.secrets, fmt.Errorf("look up the address secret: malformed reply %T", res)
	}
	curHex, ok1 := parts[0].(string)
	prevHex, ok2 := parts[1].(string)
	left, ok3 := parts[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return l.secrets, errors.New("look up the address secret: malformed reply")
	}
	cur, err1 := hex.DecodeString(curHex)
	prev, err2 := hex.DecodeString(prevHex)
	if err := errors.Join(err1, err2); err != nil || len(cur) == 0 {
		return l.secrets, fmt.Errorf("look up the address secret: malformed secret: %w", err)
	}
	l.secrets = secrets{cur: cur, prev: prev, fetched: now, rotates: now.Add(time.Duration(left) * time.Millisecond)}
	return l.secrets, nil
}

// name is the keyed hash that stands for client in Redis.
func name(secret []byte, client netip.Prefix) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("ssh-burn chat: client v1\x00" + client.String()))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// openKey is the set of an address's open chats. The braces keep it in
// one cluster slot.
func openKey(h string) string { return keyPrefix + "{" + h + "}:open" }

// fellBack notes that a decision was made on this replica's counts.
func (l *Limiter) fellBack(what string, err error) {
	l.fallback.Do(func() {
		l.log.Warn("per-address limits use this replica's own counts: Redis did not answer", "decision", what, "err", err)
	})
}

// Admit implements server.AddrLimiter.
func (l *Limiter) Admit(ctx context.Context, client netip.Prefix) (server.Verdict, func()) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sec, err := l.lookup(ctx)
	if err != nil {
		l.fellBack("admit", err)
		return l.local.Admit(ctx, client)
	}
	h := name(sec.cur, client)
	// Rate first: it bounds the handshakes over-limit clients get.
	if perSecond := l.limits.NewConnsPerSecond; perSecond != rate.Inf {
		res, err := l.allow(ctx, h+":new", redis_rate.Limit{
			Rate: 1, Period: time.Duration(float64(time.Second) / float64(perSecond)), Burst: l.limits.NewConnsBurst,
		}, 1)
		if err != nil {
			l.fellBack("admit", err)
			return l.local.Admit(ctx, client)
		}
		if res.Allowed == 0 {
			return server.TooManyNew, func() {}
		}
	}
	// Chats opened under the previous secret still count, until they end.
	before := int64(0)
	if len(sec.prev) > 0 {
		n, err := openScript.Run(ctx, l.rdb, []string{openKey(name(sec.prev, client))}).Int64()
		if err != nil {
			l.fellBack("admit", err)
			return l.local.Admit(ctx, client)
		}
		before = n
	}
	token := l.replica.ReplicaID() + ":" + strconv.FormatUint(l.tokens.Add(1), 36)
	key := openKey(h)
	args := []any{token, l.limits.ConnsPerAddr, l.hold.Milliseconds(), before}
	for _, rid := range l.replica.DeadReplicas() {
		args = append(args, rid)
	}
	added, err := admitScript.Run(ctx, l.rdb, []string{key}, args...).Int64()
	if err != nil {
		l.fellBack("admit", err)
		return l.local.Admit(ctx, client)
	}
	if added == 0 {
		return server.TooManyOpen, func() {}
	}
	var once sync.Once
	return server.Admitted, func() {
		once.Do(func() {
			// Should this fail, the count lapses when the longest
			// session would have ended.
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			_ = l.rdb.ZRem(ctx, key, token).Err()
		})
	}
}

// AllowRoom implements server.AddrLimiter.
func (l *Limiter) AllowRoom(ctx context.Context, client netip.Prefix) bool {
	return l.perMinute(ctx, client, ":rooms", l.limits.RoomsPerMinute, 1, l.local.AllowRoom)
}

// MayTryJoin implements server.AddrLimiter.
func (l *Limiter) MayTryJoin(ctx context.Context, client netip.Prefix) bool {
	return l.perMinute(ctx, client, ":failed", l.limits.FailedJoins, 0, l.local.MayTryJoin)
}

// FailedJoin implements server.AddrLimiter.
func (l *Limiter) FailedJoin(ctx context.Context, client netip.Prefix) {
	l.perMinute(ctx, client, ":failed", l.limits.FailedJoins, 1, func(ctx context.Context, client netip.Prefix) bool {
		l.local.FailedJoin(ctx, client)
		return true
	})
}

// perMinute spends cost of the client's per-minute budget named what (or,
// with cost 0, checks that one is left).
func (l *Limiter) perMinute(ctx context.Context, client netip.Prefix, what string, perMinute, cost int,
	local func(context.Context, netip.Prefix) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	sec, err := l.lookup(ctx)
	if err != nil {
		l.fellBack(what, err)
		return local(ctx, client)
	}
	res, err := l.allow(ctx, name(sec.cur, client)+what, redis_rate.PerMinute(perMinute), cost)
	if err != nil {
		l.fellBack(what, err)
		return local(ctx, client)
	}
	if cost == 0 {
		return res.Remaining >= 1
	}
	return res.Allowed > 0
}

// allow runs redis_rate, whose replies are read with unchecked type
// assertions: a malformed one is an error here, never a panic.
func (l *Limiter) allow(ctx context.Context, key string, limit redis_rate.Limit, cost int) (res *redis_rate.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("malformed rate limit reply: %v", r)
		}
	}()
	return l.rates.AllowN(ctx, keyPrefix+key, limit, cost)
}
