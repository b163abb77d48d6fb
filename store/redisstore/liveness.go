package redisstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ssh-burn/chat/store"
)

// liveness is this replica's heartbeat and what the last one said about
// the others. Its Redis work is one call a period, whatever the number of
// seats.
type liveness struct {
	s *Store
	// period is how often the replica beats; gap is the silence (from
	// every replica together) that counts as an outage of Redis itself.
	period, gap time.Duration

	mu    sync.Mutex
	alive map[string]bool
	dead  []string
}

func newLiveness(s *Store) *liveness {
	return &liveness{s: s, period: s.lease / 4, gap: s.lease * 3 / 4, alive: map[string]bool{}}
}

// beat records that this replica lives and learns who else does.
func (l *liveness) beat(ctx context.Context) error {
	res, err := l.s.call(ctx, heartbeatScript, liveKeys, l.s.replica,
		l.s.lease.Milliseconds(), l.gap.Milliseconds(), max(liveRetention, 2*l.s.lease).Milliseconds())
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
	l.alive = make(map[string]bool, len(alive))
	for _, rid := range alive {
		l.alive[rid] = true
	}
	l.dead = dead
	l.mu.Unlock()
	return nil
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

// depart says this replica holds nothing any more.
func (l *liveness) depart(ctx context.Context) error {
	if _, err := l.s.call(ctx, departScript, liveKeys[:1], l.s.replica); err != nil {
		return fmt.Errorf("leave the replica registry: %w", failure(err))
	}
	return nil
}

// keep is the store's one periodic job: the heartbeat, freeing the seats
// of partners whose replica died, giving up seats Redis has not heard of
// yet, and ending seats here once Redis has been out of reach for longer
// than the outage tolerance.
func (s *Store) keep() {
	timer := time.NewTimer(jitter(s.live.period))
	defer timer.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-timer.C:
		}
		if err := s.live.beat(s.bg); err == nil {
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
