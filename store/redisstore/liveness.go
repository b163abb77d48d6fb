package redisstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
)

// liveness is this replica's heartbeat and what the last one said about
// the others. Its Redis work is one call a period, whatever the number of
// seats.
//
// A replica is dead when Redis has not seen it beat for a lease, so the
// beat must reach Redis every period whatever else this replica is doing:
// it has a goroutine of its own (heartbeat), never waits for the reply to
// the beat before (a slow Redis answers it late, but has recorded it on
// arrival), and has connections of its own, so that it never queues for
// one behind calls awaiting late replies.
type liveness struct {
	s   *Store
	rdb redis.UniversalClient // the beats' own client, or the store's
	own bool                  // rdb is this store's to close
	// period is how often the replica beats; gap is the silence (from
	// every replica together) that counts as an outage of Redis itself.
	period, gap time.Duration

	mu      sync.Mutex
	sent    uint64 // beats sent so far
	applied uint64 // the latest beat whose reply was taken in
	alive   map[string]bool
	dead    []string
	lastOK  time.Time // when a beat was last answered
}

// beatsInFlight bounds the beats awaiting replies: each waits a lease at
// most, and one goes out every period, so this many never skip one.
const beatsInFlight = 5

func newLiveness(s *Store, client redis.UniversalClient) *liveness {
	l := &liveness{s: s, rdb: client, period: s.lease / 4, gap: s.lease * 3 / 4, alive: map[string]bool{}}
	if own := ownPool(client, beatsInFlight+1); own != nil {
		l.rdb, l.own = own, true
	}
	return l
}

// ownPool is a client of its own on the Redis that c reaches, with size
// connections, or nil for a kind of client it cannot copy. The options
// are c's as its client resolved them; what that client made of them for
// itself (its push processor) is not shared, and retries stay off as
// NewClient set them (resolved, -1 reads as 0, which a new client takes
// for its default).
func ownPool(c redis.UniversalClient, size int) redis.UniversalClient {
	switch c := c.(type) {
	case *redis.Client:
		opts := *c.Options()
		opts.PoolSize, opts.MinIdleConns, opts.MaxIdleConns, opts.MaxActiveConns = size, 0, size, 0
		opts.PushNotificationProcessor, opts.MaxRetries = nil, -1
		return redis.NewClient(&opts)
	case *redis.ClusterClient:
		opts := *c.Options()
		opts.PoolSize, opts.MinIdleConns, opts.MaxIdleConns, opts.MaxActiveConns = size, 0, size, 0
		opts.PushNotificationProcessor, opts.MaxRetries = nil, -1
		return redis.NewClusterClient(&opts)
	}
	return nil
}

// close closes the beats' own client, if they have one.
func (l *liveness) close() error {
	if !l.own {
		return nil
	}
	return l.rdb.Close()
}

// beat records that this replica lives and learns who else does. It waits
// for the reply for a lease at most: a later one says nothing current, and
// Redis recorded the beat when it arrived.
func (l *liveness) beat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.s.lease)
	defer cancel()
	l.mu.Lock()
	l.sent++
	seq := l.sent
	l.mu.Unlock()
	type result struct {
		res any
		err error
	}
	done := make(chan result, 1)
	if !l.s.goOnce(func() {
		res, err := heartbeatScript.Run(ctx, l.rdb, liveKeys, l.s.replica,
			l.s.lease.Milliseconds(), l.gap.Milliseconds(), l.retention().Milliseconds()).Result()
		l.s.link.note(pathCommands, err)
		done <- result{res, err}
	}) {
		return store.ErrClosed
	}
	late := time.NewTimer(opTimeout)
	defer late.Stop()
	var r result
	select {
	case r = <-done:
	case <-late.C:
		// Tell the link, as a caller who gave up would, and wait on for
		// what the beat says.
		l.s.link.late(pathCommands)
		r = <-done
	}
	res, err := r.res, r.err
	if err != nil {
		return failure(err)
	}
	parts, err := asSlice("heartbeat reply", res)
	if err != nil {
		return err
	}
	if len(parts) != 2 {
		return fmt.Errorf("%w: heartbeat reply of %d parts", errMalformed, len(parts))
	}
	alive, err1 := asStrings("alive replicas", parts[0])
	dead, err2 := asStrings("dead replicas", parts[1])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastOK = time.Now()
	if seq < l.applied {
		return nil // a newer beat was answered first: its news is fresher
	}
	l.applied = seq
	l.alive = make(map[string]bool, len(alive))
	for _, rid := range alive {
		l.alive[rid] = true
	}
	l.dead = dead
	return nil
}

// retention is how long the registry remembers a replica that no longer
// beats.
func (l *liveness) retention() time.Duration { return max(liveRetention, 2*l.s.lease) }

// answeredWithin reports whether a beat was answered within d.
func (l *liveness) answeredWithin(d time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Since(l.lastOK) <= d
}

// knownAlive reports whether rid beat within a lease at the last heartbeat.
func (l *liveness) knownAlive(rid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.alive[rid]
}

// deadNow is who the last heartbeat found dead.
func (l *liveness) deadNow() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.dead)
}

// confirmDead asks Redis which of rids are dead now (unknown ones are).
func (l *liveness) confirmDead(ctx context.Context, rids []string) ([]string, error) {
	if len(rids) == 0 {
		return nil, nil
	}
	args := append([]any{l.s.lease.Milliseconds(), l.gap.Milliseconds()}, anys(rids)...)
	res, err := l.s.call(ctx, deadScript, liveKeys, args...)
	if err != nil {
		return nil, failure(err)
	}
	return asStrings("dead replicas", res)
}

// depart says this replica holds nothing any more: it is dead from now on,
// and stays known as dead (not forgotten) for as long as any dead replica,
// so the replicas of its partners free whatever seat its Close could not
// give up.
func (l *liveness) depart(ctx context.Context) error {
	if _, err := l.s.callOn(ctx, l.rdb, opTimeout, departScript, liveKeys, l.s.replica, l.s.lease.Milliseconds(), l.retention().Milliseconds()); err != nil {
		return fmt.Errorf("leave the replica registry: %w", failure(err))
	}
	return nil
}

// heartbeat beats every period, in a goroutine of its own, whatever became
// of the beats before: each is sent at once and waits for its reply apart.
func (s *Store) heartbeat() {
	slots := make(chan struct{}, beatsInFlight)
	timer := time.NewTimer(jitter(s.live.period))
	defer timer.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-timer.C:
		}
		select {
		case slots <- struct{}{}:
			if !s.goOnce(func() {
				defer func() { <-slots }()
				if err := s.live.beat(s.bg); err != nil {
					s.log.Debug("heartbeat", "err", err)
				}
			}) {
				return
			}
		default:
			// Every beat of the last lease still awaits its reply: Redis
			// is silent, which the link knows by now.
		}
		timer.Reset(jitter(s.live.period))
	}
}

// keep is the store's periodic housekeeping, apart from the heartbeat so
// that none of it can make a beat late: freeing the seats of partners
// whose replica died, giving up seats Redis has not heard of yet, and
// ending seats here once Redis has been out of reach for longer than the
// outage tolerance.
func (s *Store) keep() {
	timer := time.NewTimer(jitter(s.live.period))
	defer timer.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-timer.C:
		}
		if s.live.answeredWithin(s.lease) {
			s.reapDeadPartners(s.bg)
			s.releasePending(s.bg)
		}
		s.full.flush()
		if down, downFor := s.link.state(); down && downFor > s.tolerance {
			s.abandon(downFor)
		}
		timer.Reset(jitter(s.live.period))
	}
}

// reapDeadPartners frees, in every room here, the seats of replicas the
// heartbeat found dead: their people are gone, and their partners here
// must see them leave.
func (s *Store) reapDeadPartners(ctx context.Context) {
	dead := s.live.deadNow()
	if len(dead) == 0 {
		return
	}
	isDead := make(map[string]bool, len(dead))
	for _, rid := range dead {
		isDead[rid] = true
	}
	s.mu.Lock()
	rooms := slices.Collect(maps.Values(s.rooms))
	s.mu.Unlock()
	for _, r := range rooms {
		if ghosts := r.partnersOn(isDead); len(ghosts) > 0 {
			r.reap(ctx, ghosts)
		}
	}
}

// abandon ends every seat here: Redis has been out of reach for longer
// than the tolerance, so the people waiting are told, and the seats are
// given up once Redis answers again.
func (s *Store) abandon(downFor time.Duration) {
	s.mu.Lock()
	rooms := slices.Collect(maps.Values(s.rooms))
	s.mu.Unlock()
	n := 0
	for _, r := range rooms {
		leaves := r.endSeats(store.EndedEvent{Reason: store.EndLeaseLost, RoomLivesOn: true})
		n += len(leaves)
		s.giveUp(leaves...)
		s.release(r)
	}
	if n > 0 {
		s.log.Warn("redis out of reach beyond the outage tolerance; seats here ended", "seats", n,
			"outage", downFor.Round(time.Second), "tolerance", s.tolerance)
	}
}
