package redisstore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
)

// Notifications are sharded Pub/Sub (SPUBLISH / SSUBSCRIBE, Redis 7): a
// room's channel is in its hash slot, so on a cluster a notification goes
// to the one node that owns the room, where a classic PUBLISH is copied to
// every node. This replica keeps one subscription connection, a shard,
// per master that owns a room it has seats in (one in all on a single
// Redis), and subscribes one channel per command.
//
// go-redis's PubSub is used, but never trusted to subscribe again on its
// own: after a reconnect it sends all its channels in one SSUBSCRIBE,
// which a cluster refuses (CROSSSLOT) once they span slots, on the node
// of whichever channel comes first. So a shard whose connection fails is
// dropped, and each of its channels subscribed again on the node that
// owns it by then. A node that loses a slot (resharding) tells its
// subscribers with an sunsubscribe; those channels move the same way. A
// subscription confirmed anew reads the room's log, so nothing published
// meanwhile is lost or repeated: the log is the truth.

// shard is one sharded Pub/Sub connection, to one node.
type shard struct {
	addr string // the node's address; "" on a single Redis
	ps   *redis.PubSub
}

const (
	// homeShard is the key of the one shard on a single Redis.
	homeShard = ""
	// moveWait is how long a channel whose slot moved waits before it is
	// subscribed again: the client reloads its map of slots in the
	// background, and subscribing before that would ask the old owner.
	moveWait = 100 * time.Millisecond
	// moveTries bounds how often a moved channel waits for the client to
	// learn where its slot went (see moveChannels): a few seconds.
	moveTries = 8
	// subscribeRetry is how soon a subscription that found no node to
	// go to (the cluster's slots unknown) is tried again.
	subscribeRetry = time.Second
)

// listen receives what sh's node sends. It pings when the line is quiet,
// and replaces the connection when a ping goes unanswered for replyWait,
// because a silently dropped TCP connection would otherwise look idle
// forever. A pong that is merely late (a slow Redis) is waited for:
// replacing the connection then would only add a resubscription, whose
// answers are late too, to the wait.
func (s *Store) listen(sh *shard) {
	awaitingPong, answered := false, false
	var pinged time.Time
	for {
		msg, err := sh.ps.ReceiveTimeout(s.bg, s.pingEvery)
		select {
		case <-s.done:
			return
		default:
		}
		if err != nil {
			if isTimeout(err) && !awaitingPong {
				awaitingPong, pinged = true, time.Now()
				pctx, cancel := context.WithTimeout(s.bg, s.pingEvery)
				_ = sh.ps.Ping(pctx)
				cancel()
				continue
			}
			if isTimeout(err) && time.Since(pinged) < replyWait {
				if time.Since(pinged) > opTimeout {
					s.link.late(pathPubSub)
				}
				continue
			}
			if slot, ok := movedSlot(err); ok {
				// An SSUBSCRIBE or SUNSUBSCRIBE sent to a node that no
				// longer owns the slot: the connection itself is fine.
				s.noteShard(sh, nil)
				s.slotMoved(sh, slot)
				continue
			}
			if s.dropped(sh) {
				return
			}
			var reply redis.Error
			if errors.As(err, &reply) {
				s.noteShard(sh, nil) // Redis answered, if not as asked
			} else {
				s.noteShard(sh, unreachableErr(err))
			}
			s.replace(sh)
			return
		}
		awaitingPong = false
		s.noteShard(sh, nil)
		if !answered {
			answered = true
			s.psMu.Lock()
			delete(s.shardFailures, sh.addr)
			s.psMu.Unlock()
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			switch m.Kind {
			case "ssubscribe":
				s.confirmSubscribed(sh, m.Channel)
				// Anything posted before the subscription took effect is
				// in the log: read it.
				s.poke(m.Channel)
			case "sunsubscribe":
				// Unasked (this replica forgets a channel before it
				// unsubscribes): the slot moved to another node.
				s.psMu.Lock()
				moved := s.detachLocked(sh, func(ch string) bool { return ch == m.Channel })
				s.dropIfIdleLocked(sh)
				s.psMu.Unlock()
				s.resubscribeSoon(sh.addr, moved)
			}
		case *redis.Message:
			s.dispatch(m)
		}
	}
}

// unreachableErr makes sure a failed receive counts as the link being down,
// whatever error it came with.
func unreachableErr(err error) error {
	if classify(err) == unreachable {
		return err
	}
	return &pubsubError{err}
}

type pubsubError struct{ err error }

func (e *pubsubError) Error() string { return "pubsub: " + e.err.Error() }

// noteShard records what a receive on sh says about the link: Pub/Sub is
// up while no shard is down.
func (s *Store) noteShard(sh *shard, err error) {
	// Under healthMu, so that concurrent notes of two shards reach the
	// link in the order of the set they were computed from.
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if err != nil {
		s.shardsDown[sh] = true
		s.link.note(pathPubSub, err)
		return
	}
	delete(s.shardsDown, sh)
	if len(s.shardsDown) == 0 {
		s.link.note(pathPubSub, nil)
	}
}

// replace drops sh, whose connection failed, and after a backoff
// subscribes its channels again, each on whichever node owns it by then.
func (s *Store) replace(sh *shard) {
	s.psMu.Lock()
	if s.shards[sh.addr] == sh {
		delete(s.shards, sh.addr)
	}
	channels := s.detachLocked(sh, func(string) bool { return true })
	s.shardFailures[sh.addr]++
	failures := s.shardFailures[sh.addr]
	s.psMu.Unlock()
	_ = sh.ps.Close()
	// The shards that take its channels say whether Pub/Sub is up.
	s.healthMu.Lock()
	delete(s.shardsDown, sh)
	s.healthMu.Unlock()

	wait := time.NewTimer(backoff(failures))
	select {
	case <-s.done:
		wait.Stop()
		return
	case <-wait.C:
	}
	s.reloadSlots()
	for _, ch := range channels {
		s.syncSubscription(ch)
	}
	if _, cluster := s.rdb.(*redis.ClusterClient); !cluster {
		s.ensureHomeShard()
		return
	}
	s.psMu.Lock()
	none := len(s.shards) == 0
	s.psMu.Unlock()
	if none {
		s.noteShard(sh, nil) // no room here needs Pub/Sub
	}
}

// ensureHomeShard makes the one shard of a single Redis, which is kept
// whatever it carries: its pings are how a lost Redis is noticed.
func (s *Store) ensureHomeShard() {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	if s.isClosed() {
		return
	}
	if _, err := s.shardForLocked(s.bg, homeShard); err != nil {
		s.log.Debug("pubsub shard", "err", err)
	}
}

// slotMoved moves the channels of slot, which sh's node refused, to their
// new owner.
func (s *Store) slotMoved(sh *shard, slot int) {
	s.psMu.Lock()
	moved := s.detachLocked(sh, func(ch string) bool { return slotOf(ch) == slot })
	s.dropIfIdleLocked(sh)
	s.psMu.Unlock()
	s.resubscribeSoon(sh.addr, moved)
}

// dropIfIdleLocked closes sh if slots moved off its node left it no
// channel: that node may be a replica now, or own nothing this replica
// needs. (A shard emptied by rooms that ended stays: the next room on its
// node would only dial it again.)
func (s *Store) dropIfIdleLocked(sh *shard) {
	if sh.addr == homeShard || s.shards[sh.addr] != sh {
		return
	}
	for _, on := range s.where {
		if on == sh {
			return
		}
	}
	delete(s.shards, sh.addr)
	// Its listener, its receive cut short, finds it dropped and ends.
	_ = sh.ps.Close()
}

// dropped reports whether sh was closed on purpose (dropIfIdleLocked),
// forgetting its health if so: its receive fails, but no node did.
func (s *Store) dropped(sh *shard) bool {
	s.psMu.Lock()
	gone := s.shards[sh.addr] != sh
	s.psMu.Unlock()
	if !gone {
		return false
	}
	s.healthMu.Lock()
	delete(s.shardsDown, sh)
	s.healthMu.Unlock()
	return true
}

// resubscribeSoon subscribes channels, which the node at from gave up,
// again once the client knows where their slots went.
func (s *Store) resubscribeSoon(from string, channels []string) {
	if len(channels) == 0 {
		return
	}
	s.reloadSlots()
	s.afterFunc(jitter(moveWait), func() { s.moveChannels(from, channels, 1) })
}

// moveChannels subscribes channels again, each on the node that owns it
// now. The client reloads its map of slots in the background, from
// whichever node answers first, which may not have heard of the move yet
// (a failover spreads by gossip): while the map still names from, a
// channel waits and the map is reloaded again, moveTries times at most.
// (The old master of a failover, now a replica, would even take the
// subscription, and pass its shard's messages on; but it is not where
// this replica's other channels of that shard are.)
func (s *Store) moveChannels(from string, channels []string, try int) {
	var later []string
	for _, ch := range channels {
		if try < moveTries && s.ownerAddr(ch) == from {
			later = append(later, ch)
			continue
		}
		s.syncSubscription(ch)
	}
	if len(later) > 0 {
		s.reloadSlots()
		s.afterFunc(backoff(try), func() { s.moveChannels(from, later, try+1) })
	}
}

// ownerAddr is the address of the master that owns channel's slot as the
// client knows it, or "" if it cannot tell.
func (s *Store) ownerAddr(channel string) string {
	c, ok := s.rdb.(*redis.ClusterClient)
	if !ok {
		return homeShard
	}
	ctx, cancel := context.WithTimeout(s.bg, opTimeout)
	defer cancel()
	node, err := c.MasterForKey(ctx, channel)
	if err != nil {
		return ""
	}
	return node.Options().Addr
}

// reloadSlots has a cluster client learn again which node owns which slot.
func (s *Store) reloadSlots() {
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		c.ReloadState(s.bg)
	}
}

// detachLocked forgets that the channels of sh that match are subscribed
// there, and returns them: they are to be subscribed again, and until
// that is confirmed a join waits for it.
func (s *Store) detachLocked(sh *shard, match func(string) bool) []string {
	var out []string
	for ch, on := range s.where {
		if on != sh || !match(ch) {
			continue
		}
		delete(s.where, ch)
		if ready, ok := s.subscribed[ch]; ok && isClosed(ready) {
			s.subscribed[ch] = make(chan struct{})
		}
		out = append(out, ch)
	}
	return out
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// syncSubscription makes the subscription to channel match whether this
// replica still has the room. Called after every change, it converges
// whatever order concurrent changes happen in.
func (s *Store) syncSubscription(channel string) {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	s.mu.Lock()
	_, want := s.rooms[channel]
	closed := s.closed
	s.mu.Unlock()
	if closed {
		// Closing drops the connections, and every subscription with them.
		return
	}
	sh, have := s.where[channel]
	ctx, cancel := context.WithTimeout(s.bg, opTimeout)
	defer cancel()
	if !want {
		if _, ok := s.subscribed[channel]; ok {
			s.markConfirmedLocked(channel) // nobody waits for a channel given up
			delete(s.subscribed, channel)
		}
		if have {
			delete(s.where, channel) // before the reply: see listen's sunsubscribe
			if err := sh.ps.SUnsubscribe(ctx, channel); err != nil {
				// A broken connection is replaced, without this channel.
				s.log.Debug("pubsub unsubscribe failed", "err", err)
			}
		}
		return
	}
	if _, ok := s.subscribed[channel]; !ok {
		s.subscribed[channel] = make(chan struct{})
	}
	if have {
		return
	}
	sh, err := s.shardForLocked(ctx, channel)
	if err != nil {
		s.log.Debug("pubsub shard", "err", err)
		s.afterFunc(jitter(subscribeRetry), func() { s.syncSubscription(channel) })
		return
	}
	s.where[channel] = sh
	// A failed write breaks the connection, whose listener then replaces
	// it and subscribes this channel again.
	if err := sh.ps.SSubscribe(ctx, channel); err != nil {
		s.log.Debug("pubsub subscribe failed", "err", err)
	}
}

// shardForLocked is the shard of the node that owns channel (on a single
// Redis, the one shard), made if there is none yet.
func (s *Store) shardForLocked(ctx context.Context, channel string) (*shard, error) {
	var node redis.UniversalClient = s.rdb
	addr := homeShard
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		n, err := c.MasterForKey(ctx, channel)
		if err != nil {
			return nil, err
		}
		node, addr = n, n.Options().Addr
	}
	if sh := s.shards[addr]; sh != nil {
		return sh, nil
	}
	// With no channels yet: nothing is sent, nor dialled, until the first
	// subscription or the listener's first receive.
	sh := &shard{addr: addr, ps: node.SSubscribe(s.bg)}
	if !s.spawn("pubsub listener", func() { s.listen(sh) }) {
		_ = sh.ps.Close()
		return nil, store.ErrClosed
	}
	s.shards[addr] = sh
	return sh, nil
}

// confirmSubscribed records that sh's node confirmed the subscription to
// channel (again, after a move or a reconnect).
func (s *Store) confirmSubscribed(sh *shard, channel string) {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	if s.where[channel] == sh {
		s.markConfirmedLocked(channel)
	}
}

func (s *Store) markConfirmedLocked(channel string) {
	if ready := s.subscribed[channel]; ready != nil && !isClosed(ready) {
		close(ready)
	}
}

// awaitSubscribed waits, for an operation's time at most, until Redis has
// confirmed this replica's subscription to channel. A join waits for it
// because hints such as typing are published, not logged: one published
// before the subscription took effect never arrives. (Messages are in the
// log, and the confirmation reads it.)
func (s *Store) awaitSubscribed(ctx context.Context, channel string) {
	s.psMu.Lock()
	ready := s.subscribed[channel]
	s.psMu.Unlock()
	if ready == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	select {
	case <-ready:
	case <-ctx.Done():
	case <-s.done:
	}
}

// movedSlot reads the slot out of a MOVED or ASK reply.
func movedSlot(err error) (int, bool) {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return 0, false
	}
	f := strings.Fields(reply.Error())
	if len(f) < 2 || (f[0] != "MOVED" && f[0] != "ASK") {
		return 0, false
	}
	slot, perr := strconv.Atoi(f[1])
	return slot, perr == nil
}

// slotOf is the cluster hash slot of key, as Redis computes it: CRC16
// (XMODEM) of its hash tag, or of the whole key if it has none.
func slotOf(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}

// dispatch acts on a notification: "n" says the room's log has news; "m"
// is news that is a message, carried whole (see parseNews); "d"
// followed by a member ID and a sealed name that the room was destroyed,
// by whom; "t", 1 or 0, a member ID and a sealed name that they are
// typing, or no longer.
func (s *Store) dispatch(m *redis.Message) {
	s.mu.Lock()
	r := s.rooms[m.Channel]
	s.mu.Unlock()
	if r == nil {
		return
	}
	switch {
	case m.Payload == "n":
		r.poke()
	case strings.HasPrefix(m.Payload, "m"):
		if prev, e, ok := parseNews(m.Payload[1:]); ok {
			r.news(prev, e)
		} else {
			r.poke() // the log has it
		}
	case strings.HasPrefix(m.Payload, "d") && len(m.Payload) >= 1+store.MemberIDLen:
		by := r.secrets.member(m.Payload[1:1+store.MemberIDLen], m.Payload[1+store.MemberIDLen:])
		r.end(store.EndedEvent{Reason: store.EndDestroyed, By: by})
	case strings.HasPrefix(m.Payload, "t") && len(m.Payload) >= 2+store.MemberIDLen:
		who := r.secrets.member(m.Payload[2:2+store.MemberIDLen], m.Payload[2+store.MemberIDLen:])
		r.typing(store.TypingEvent{Member: who, Typing: m.Payload[1] == '1'})
	}
}

func (s *Store) poke(channel string) {
	s.mu.Lock()
	r := s.rooms[channel]
	s.mu.Unlock()
	if r != nil {
		r.poke()
	}
}
