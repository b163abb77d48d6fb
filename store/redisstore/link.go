package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
)

// outcome is what a Redis call's error says about Redis.
type outcome int

const (
	// answered: Redis answered (success, or an error reply about the
	// call itself).
	answered outcome = iota
	// unreachable: no answer, or Redis cannot serve right now (loading
	// its data, failing over): the call may or may not have run.
	unreachable
	// full: Redis is out of memory and refused the call before running it.
	full
	// cancelled: the caller gave up; that says nothing about Redis.
	cancelled
)

// transientReplies are error replies that mean "not now" rather than "no".
var transientReplies = []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "BUSY", "NOREPLICAS", "MOVED", "ASK"}

func classify(err error) outcome {
	if err == nil || errors.Is(err, redis.Nil) {
		return answered
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		msg := reply.Error()
		if strings.HasPrefix(msg, "OOM ") {
			return full
		}
		for _, prefix := range transientReplies {
			if strings.HasPrefix(msg, prefix+" ") || msg == prefix {
				return unreachable
			}
		}
		return answered
	}
	if errors.Is(err, context.Canceled) {
		return cancelled
	}
	return unreachable
}

// failure turns a failed call's error into what the store's callers act
// on: ErrUnavailable, ErrServiceFull, or the error itself.
func failure(err error) error {
	switch classify(err) {
	case unreachable:
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	case full:
		return store.ErrServiceFull
	}
	return err
}

// link is the state of this replica's connection to Redis: two ways in
// (commands, and the Pub/Sub connection), either of which can fail.
type link struct {
	log       *slog.Logger
	tolerance time.Duration
	// onChange is told when the link as a whole goes down or comes back,
	// one call at a time, ending with the state the link is in.
	onChange func(down bool)

	mu         sync.Mutex
	down       [2]bool // by path
	isDown     bool
	downSince  time.Time
	cause      error
	lastAnswer time.Time // when Redis last answered anything, on either path

	announce  sync.Mutex // serialises onChange
	announced bool       // the state onChange was last told (guarded by announce)
}

type path int

const (
	pathCommands path = iota
	pathPubSub
)

// note records the outcome of a call on p.
func (l *link) note(p path, err error) {
	switch classify(err) {
	case answered, full:
		l.set(p, true, nil)
	case unreachable:
		if isLate(err) {
			l.late(p)
		} else {
			l.set(p, false, err)
		}
	case cancelled:
	}
}

// late records that a caller stopped waiting for a reply that is still
// on its way. A Redis that answers late is not down: the link goes down
// only when nothing at all has answered for lateGrace, so replies a few
// seconds late make no storm of reconnections, while a Redis that went
// silent is noticed within lateGrace.
func (l *link) late(p path) {
	l.mu.Lock()
	silent := time.Since(l.lastAnswer) > lateGrace
	l.mu.Unlock()
	if silent {
		l.set(p, false, errNoReply)
	}
}

func (l *link) set(p path, up bool, cause error) {
	l.mu.Lock()
	if up {
		l.lastAnswer = time.Now()
	}
	l.down[p] = !up
	down := l.down[pathCommands] || l.down[pathPubSub]
	changed := down != l.isDown
	l.isDown = down
	if changed && down {
		l.downSince, l.cause = time.Now(), cause
	}
	l.mu.Unlock()
	if changed {
		l.tell()
	}
}

// tell brings onChange up to date. Concurrent changes may be told late,
// never out of order: each call tells the state as it is now.
func (l *link) tell() {
	l.announce.Lock()
	defer l.announce.Unlock()
	l.mu.Lock()
	down, since, cause := l.isDown, l.downSince, l.cause
	l.mu.Unlock()
	if down == l.announced {
		return
	}
	l.announced = down
	if down {
		l.log.Warn("redis unreachable; sessions wait for it", "err", cause, "tolerance", l.tolerance)
	} else {
		l.log.Info("redis reachable again", "outage", time.Since(since).Round(time.Millisecond))
	}
	if l.onChange != nil {
		l.onChange(down)
	}
}

// state reports whether the link is down, and for how long.
func (l *link) state() (down bool, downFor time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.isDown {
		return false, 0
	}
	return true, time.Since(l.downSince)
}

// fullLog reports refusals of a full Redis at most once a second, with
// how many there were, and its recovery once.
type fullLog struct {
	log *slog.Logger

	mu        sync.Mutex
	isFull    bool
	lastLine  time.Time
	unlogged  int // refusals since the last line
	refusals  int // refusals since Redis filled up
	fullSince time.Time
}

const fullLogEvery = time.Second

// refused counts one refusal.
func (f *fullLog) refused(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.isFull {
		f.isFull, f.fullSince = true, time.Now()
	}
	f.unlogged++
	f.refusals++
	f.flushLocked(op)
}

// flush logs the refusals not yet logged, if a line is due.
func (f *fullLog) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flushLocked("")
}

func (f *fullLog) flushLocked(op string) {
	if f.unlogged == 0 || time.Since(f.lastLine) < fullLogEvery {
		return
	}
	attrs := []any{"refused", f.unlogged, "refused_since_full", f.refusals}
	if op != "" {
		attrs = append(attrs, "op", op)
	}
	f.log.Warn("redis is full: new rooms and messages are refused", attrs...)
	f.lastLine, f.unlogged = time.Now(), 0
}

// wrote notes that Redis took a write that needs memory: it has room.
func (f *fullLog) wrote() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.isFull {
		return
	}
	f.flushLocked("")
	f.log.Info("redis has room again", "refused", f.refusals, "full_for", time.Since(f.fullSince).Round(time.Millisecond))
	f.isFull, f.refusals, f.unlogged = false, 0, 0
}

// backoff is the wait before the failures-th retry: exponential up to a
// cap, with jitter so replicas that lost Redis together do not come back
// in lockstep.
func backoff(failures int) time.Duration {
	d := min(50*time.Millisecond<<min(failures, 6), 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

// jitter spreads d by up to a tenth either way.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// errNoReply is a call whose reply did not come within opTimeout.
var errNoReply = fmt.Errorf("no reply from redis within %v: %w", opTimeout, context.DeadlineExceeded)

// isLate reports whether err is a reply that did not come in time (or a
// connection that did not come free in time, calls awaiting late replies
// holding them all), as opposed to a Redis that refused or dropped the
// connection: late is not down.
func isLate(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) || isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
