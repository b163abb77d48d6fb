// Package redislimits keeps the per-address limits in the Redis that the
// replicas share, so that behind a load balancer they hold per person
// rather than per replica: the open chats of an address are one counter
// whatever replica serves them, and so are its rates of new connections,
// rooms and failed joins, and its byte budget.
//
// Redis never sees an address in clear. Every key names a keyed hash
// (HMAC-SHA-256) of the client's address (its /64 for IPv6), under a
// secret the replicas share through Redis and replace every rotation
// period; the one before stays readable for one more period, so counts
// carry over a rotation (rates and budgets start afresh once a period).
// Whoever holds a dump of Redis together with its current secret can test
// whether a given address is among those active lately, and nothing more:
// the secret of an earlier period is gone with its keys.
//
// As Redis fills, the byte budget keeps headroom for newcomers (see
// reserveAt): the limiter watches Redis's memory from the background and
// refuses the heaviest writers first.
//
// When Redis cannot answer (down, full, a malformed reply), the limits
// fall back to this replica's own counts for that decision, as without
// Redis: nobody is turned away because the limits cannot be looked up,
// and nobody gets more than a replica would give them alone. No decision
// waits on another: the shared secret and Redis's memory are looked up in
// the background, and no lock is held across a Redis call.
package redislimits

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
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

	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/limits/local"
)

const (
	// keyPrefix starts every key of these limits.
	keyPrefix = "chat:v2:lim:"
	// DefaultRotation is how long one secret names the addresses.
	DefaultRotation = time.Hour
	// CallTimeout bounds a decision's wait for Redis: a connection is not
	// held up for long by its limits.
	CallTimeout = 500 * time.Millisecond
	// DefaultHold is how long an open chat's count lasts at most, should
	// its replica die before giving it back and no other replica find it
	// dead: a little above the longest session.
	DefaultHold = 13 * time.Minute
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
	// limits.DefaultConfig's).
	Limits limits.Config
	// Replica names this replica in the counts it holds.
	Replica Replica
	// Hold bounds how long an open chat counts; zero means DefaultHold.
	// Set it a little above the longest session.
	Hold time.Duration
	// Rotation is how long one secret names the addresses; zero means
	// DefaultRotation.
	Rotation time.Duration
	// MemoryEvery is how often Redis's memory is looked at; zero means
	// DefaultMemoryEvery.
	MemoryEvery time.Duration
	// Logger hears when the limits fall back to this replica's counts
	// (at most once a minute). Never an address.
	Logger *slog.Logger
}

// Limiter is a limits.Limiter on Redis. Close stops its background
// lookups.
type Limiter struct {
	rdb      redis.UniversalClient
	rates    *redis_rate.Limiter
	cfg      limits.Config
	replica  Replica
	rotation time.Duration
	hold     time.Duration
	local    *local.Limiter
	log      *slog.Logger
	fallback rate.Sometimes
	tokens   atomic.Uint64

	secret   secretCache
	pressure atomic.Uint64 // math.Float64bits of the fullest master's used/max memory

	// Open chats that ended, to take out of their addresses' counts (see
	// releaseOpen).
	releaseMu sync.Mutex
	released  []openChat
	wake      chan struct{}

	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// openChat is one open chat's token in its address's set.
type openChat struct{ key, token string }

var _ limits.Limiter = (*Limiter)(nil)

// New returns a limiter on cfg.Client, and starts looking up the shared
// secret and Redis's memory in the background until Close.
func New(cfg Config) *Limiter {
	if cfg.Rotation == 0 {
		cfg.Rotation = DefaultRotation
	}
	if cfg.Hold == 0 {
		cfg.Hold = DefaultHold
	}
	if cfg.MemoryEvery == 0 {
		cfg.MemoryEvery = DefaultMemoryEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	lim := cfg.Limits.WithDefaults()
	ctx, stop := context.WithCancel(context.Background())
	l := &Limiter{
		rdb:      cfg.Client,
		rates:    redis_rate.NewLimiter(cfg.Client),
		cfg:      lim,
		replica:  cfg.Replica,
		rotation: cfg.Rotation,
		hold:     cfg.Hold,
		local:    local.New(lim),
		log:      cfg.Logger,
		fallback: rate.Sometimes{Interval: time.Minute},
		stop:     stop,
		wake:     make(chan struct{}, 1),
	}
	l.secret.init()
	l.wg.Add(3)
	go l.refreshSecrets(ctx)
	go l.watchMemory(ctx, cfg.MemoryEvery)
	go l.releaseOpen(ctx)
	return l
}

// Close implements limits.Limiter: it stops the background lookups and
// waits for them. Decisions after it use the secret and the memory
// pressure last seen.
func (l *Limiter) Close() error {
	l.closeOnce.Do(func() {
		l.stop()
		l.wg.Wait()
	})
	return nil
}

// admitScript KEYS: the open chats of an address (a sorted set of tokens
// scored by when they lapse). ARGV: token, limit, hold ms, chats counted
// under the previous secret, dead replicas... Drops lapsed tokens and
// those of dead replicas, and adds token unless the address holds limit
// chats. Returns 1 if added, else 0. It runs on a full Redis too (a few
// bytes per open chat): the limits must hold across the replicas then
// most of all, not fall back to each replica's own counts.
var admitScript = redis.NewScript(`#!lua flags=allow-oom
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

// budgetScript KEYS: an address's byte budget, as the time (µs on Redis's
// clock) at which it is whole again: a token bucket in the GCRA form, as
// redis_rate keeps one, with a reserve. ARGV: cost, reserve, burst (bytes),
// µs a byte takes to come back. Takes cost only if at least reserve of the
// burst is left after it. Returns 1 if taken; 0 if the budget cannot pay
// cost at all; -1 if it could, but not while keeping reserve. Like
// admitScript it runs on a full Redis (one small key an address), so the
// refusal there is the headroom rule's, with its reason.
var budgetScript = redis.NewScript(`#!lua flags=allow-oom
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost, reserve = tonumber(ARGV[1]), tonumber(ARGV[2])
local burst, per = tonumber(ARGV[3]), tonumber(ARGV[4])
local whole = tonumber(redis.call('GET', KEYS[1]) or 0)
if whole < now then whole = now end
local after = whole + cost * per
local left = burst - (after - now) / per
if left < 0 then return 0 end
if left < reserve then return -1 end
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1)
return 1
`)

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

// Admit implements limits.Limiter.
func (l *Limiter) Admit(ctx context.Context, client netip.Prefix) (limits.Verdict, func()) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	sec, err := l.secret.get(ctx)
	if err != nil {
		l.fellBack("admit", err)
		return l.local.Admit(ctx, client)
	}
	h := name(sec.cur, client)
	// Rate first: it bounds the handshakes over-limit clients get.
	if perSecond := l.cfg.NewConnsPerSecond; perSecond != rate.Inf {
		res, err := l.allow(ctx, h+":new", redis_rate.Limit{
			Rate: 1, Period: time.Duration(float64(time.Second) / float64(perSecond)), Burst: l.cfg.NewConnsBurst,
		}, 1)
		if err != nil {
			l.fellBack("admit", err)
			return l.local.Admit(ctx, client)
		}
		if res.Allowed == 0 {
			return limits.TooManyNew, func() {}
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
	args := []any{token, l.cfg.ConnsPerAddr, l.hold.Milliseconds(), before}
	for _, rid := range l.replica.DeadReplicas() {
		args = append(args, rid)
	}
	added, err := admitScript.Run(ctx, l.rdb, []string{key}, args...).Int64()
	if err != nil {
		l.fellBack("admit", err)
		return l.local.Admit(ctx, client)
	}
	if added == 0 {
		return limits.TooManyOpen, func() {}
	}
	var once sync.Once
	return limits.Admitted, func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), CallTimeout)
			err := l.rdb.ZRem(ctx, key, token).Err()
			cancel()
			if err == nil {
				return
			}
			// Given back in the background, where it may wait longer.
			l.releaseMu.Lock()
			l.released = append(l.released, openChat{key, token})
			l.releaseMu.Unlock()
			select {
			case l.wake <- struct{}{}:
			default:
			}
		})
	}
}

const (
	// releaseWait bounds one batch of releases. Nobody waits for them, so
	// they may wait for a slow Redis longer than a decision does: a
	// release given up leaves its address a chat short until its hold
	// lapses.
	releaseWait = 5 * time.Second
	// releaseBatch is how many releases go to Redis in one pipeline.
	releaseBatch = 512
)

// releaseOpen takes the chats whose release failed out of their
// addresses' counts, in pipelined batches, until ctx is done, and then
// once more. Chats end in bursts (a replica draining, a network blip, a
// load balancer's restart), and a burst of calls, each within a
// decision's timeout, leaves some failed that would otherwise stay counted
// until their hold lapses.
func (l *Limiter) releaseOpen(ctx context.Context) {
	defer l.wg.Done()
	for {
		select {
		case <-ctx.Done():
			// Chats that ended while the replica stopped.
			final, cancel := context.WithTimeout(context.Background(), CallTimeout)
			l.releaseNow(final)
			cancel()
			return
		case <-l.wake:
		}
		call, cancel := context.WithTimeout(ctx, releaseWait)
		l.releaseNow(call)
		cancel()
	}
}

// releaseNow sends every release queued so far; should a batch fail, its
// counts lapse with their hold.
func (l *Limiter) releaseNow(ctx context.Context) {
	l.releaseMu.Lock()
	todo := l.released
	l.released = nil
	l.releaseMu.Unlock()
	for len(todo) > 0 {
		batch := todo[:min(len(todo), releaseBatch)]
		todo = todo[len(batch):]
		_, err := l.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, c := range batch {
				p.ZRem(ctx, c.key, c.token)
			}
			return nil
		})
		if err != nil {
			l.log.Debug("release open chats", "chats", len(batch), "err", err)
		}
	}
}

// AllowRoom implements limits.Limiter.
func (l *Limiter) AllowRoom(ctx context.Context, client netip.Prefix) limits.Verdict {
	return l.perMinute(ctx, client, ":rooms", l.cfg.RoomsPerMinute, 1, limits.TooManyRooms, l.local.AllowRoom)
}

// MayTryJoin implements limits.Limiter.
func (l *Limiter) MayTryJoin(ctx context.Context, client netip.Prefix) limits.Verdict {
	return l.perMinute(ctx, client, ":failed", l.cfg.FailedJoins, 0, limits.TooManyFailedJoins, l.local.MayTryJoin)
}

// FailedJoin implements limits.Limiter.
func (l *Limiter) FailedJoin(ctx context.Context, client netip.Prefix) {
	l.perMinute(ctx, client, ":failed", l.cfg.FailedJoins, 1, limits.TooManyFailedJoins, func(ctx context.Context, client netip.Prefix) limits.Verdict {
		l.local.FailedJoin(ctx, client)
		return limits.Admitted
	})
}

// Spend implements limits.Limiter. The reserve it keeps grows with
// Redis's memory use (reserveAt).
func (l *Limiter) Spend(ctx context.Context, client netip.Prefix, cost int) limits.Verdict {
	if cost <= 0 {
		return limits.Admitted
	}
	burst := l.cfg.BudgetBurst
	if cost > burst {
		return limits.OverBudget
	}
	reserve := reserveAt(l.Pressure(), burst)
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	sec, err := l.secret.get(ctx)
	if err != nil {
		l.fellBack("spend", err)
		return l.local.Spend(ctx, client, cost)
	}
	perByte := 1e6 / l.cfg.BudgetPerSecond() // µs
	res, err := budgetScript.Run(ctx, l.rdb, []string{keyPrefix + name(sec.cur, client) + ":bytes"},
		cost, reserve, burst, strconv.FormatFloat(perByte, 'f', -1, 64)).Int64()
	if err != nil {
		l.fellBack("spend", err)
		return l.local.Spend(ctx, client, cost)
	}
	switch res {
	case 1:
		return limits.Admitted
	case 0:
		return limits.OverBudget
	}
	return limits.Headroom
}

// perMinute spends cost of the client's per-minute budget named what (or,
// with cost 0, checks that one is left), answering refused when it cannot.
func (l *Limiter) perMinute(ctx context.Context, client netip.Prefix, what string, perMinute, cost int, refused limits.Verdict,
	local func(context.Context, netip.Prefix) limits.Verdict) limits.Verdict {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	sec, err := l.secret.get(ctx)
	if err != nil {
		l.fellBack(what, err)
		return local(ctx, client)
	}
	res, err := l.allow(ctx, name(sec.cur, client)+what, redis_rate.PerMinute(perMinute), cost)
	if err != nil {
		l.fellBack(what, err)
		return local(ctx, client)
	}
	if (cost == 0 && res.Remaining >= 1) || (cost > 0 && res.Allowed > 0) {
		return limits.Admitted
	}
	return refused
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
