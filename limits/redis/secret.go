package redislimits

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// refreshEvery is how often a replica looks up the shared secret.
	refreshEvery = time.Minute
	// retryEvery is how soon a failed lookup is tried again.
	retryEvery = time.Second
)

// secrets are the shared secrets as last looked up.
type secrets struct {
	cur, prev []byte
	fetched   time.Time
	// rotates is when the current one is due to be replaced.
	rotates time.Time
}

// usable reports whether s still names the addresses at now.
func (s secrets) usable(now time.Time) bool { return s.cur != nil && now.Before(s.rotates) }

// secretCache holds the shared secrets. One goroutine (refreshSecrets)
// looks them up; decisions read them under a lock held for no Redis call,
// and when they have none to use, wait for the lookup under way for at
// most their own deadline.
type secretCache struct {
	kick chan struct{} // asks for a lookup now; holds one request

	mu      sync.Mutex
	current secrets
	lastErr error
	// looked is closed when the next lookup ends, then replaced.
	looked chan struct{}
}

func (c *secretCache) init() {
	c.kick = make(chan struct{}, 1)
	c.looked = make(chan struct{})
}

// get returns secrets to name addresses with. Stale ones (older than
// refreshEvery) are used while a fresh lookup runs; without usable ones it
// waits for the lookup, or for ctx.
func (c *secretCache) get(ctx context.Context) (secrets, error) {
	now := time.Now()
	c.mu.Lock()
	s, looked := c.current, c.looked
	c.mu.Unlock()
	if s.usable(now) && now.Sub(s.fetched) < refreshEvery {
		return s, nil
	}
	select {
	case c.kick <- struct{}{}:
	default: // a lookup is already asked for
	}
	if s.usable(now) {
		return s, nil
	}
	select {
	case <-looked:
	case <-ctx.Done():
		return secrets{}, fmt.Errorf("look up the address secret: %w", ctx.Err())
	}
	c.mu.Lock()
	s, err := c.current, c.lastErr
	c.mu.Unlock()
	if !s.usable(time.Now()) {
		if err == nil {
			err = errors.New("look up the address secret: none yet")
		}
		return secrets{}, err
	}
	return s, nil
}

// store records the outcome of a lookup and wakes those waiting for it.
func (c *secretCache) store(s secrets, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.current = s
	}
	c.lastErr = err
	close(c.looked)
	c.looked = make(chan struct{})
}

// refreshSecrets looks up the shared secret at once, then whenever it is
// due or a decision asks, until ctx ends.
func (l *Limiter) refreshSecrets(ctx context.Context) {
	defer l.wg.Done()
	next := time.NewTimer(0)
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-next.C:
		case <-l.secret.kick:
		}
		s, err := l.lookup(ctx)
		l.secret.store(s, err)
		wait := retryEvery
		if err == nil {
			wait = max(min(refreshEvery, time.Until(s.rotates)), 10*time.Millisecond)
		}
		next.Reset(wait)
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

// lookup asks Redis for the shared secrets, within CallTimeout.
func (l *Limiter) lookup(ctx context.Context) (secrets, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	now := time.Now()
	fresh := make([]byte, 32)
	rand.Read(fresh) // never returns an error (crypto/rand)
	res, err := secretScript.Run(ctx, l.rdb, []string{keyPrefix + "secret"}, hex.EncodeToString(fresh), l.rotation.Milliseconds()).Result()
	if err != nil {
		return secrets{}, fmt.Errorf("look up the address secret: %w", err)
	}
	parts, ok := res.([]any)
	if !ok || len(parts) != 3 {
		return secrets{}, fmt.Errorf("look up the address secret: malformed reply %T", res)
	}
	curHex, ok1 := parts[0].(string)
	prevHex, ok2 := parts[1].(string)
	left, ok3 := parts[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return secrets{}, errors.New("look up the address secret: malformed reply")
	}
	cur, err1 := hex.DecodeString(curHex)
	prev, err2 := hex.DecodeString(prevHex)
	if err := errors.Join(err1, err2); err != nil || len(cur) == 0 {
		return secrets{}, fmt.Errorf("look up the address secret: malformed secret: %w", err)
	}
	return secrets{cur: cur, prev: prev, fetched: now, rotates: now.Add(time.Duration(left) * time.Millisecond)}, nil
}
