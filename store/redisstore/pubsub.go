package redisstore

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
)

// listen is the one Pub/Sub connection of this replica. It pings when the
// line is quiet, and replaces the connection when a ping goes unanswered
// for replyWait, because a silently dropped TCP connection would otherwise
// look idle forever. A pong that is merely late (a slow Redis) is waited
// for: replacing the connection then would only add a resubscription,
// whose answers are late too, to the wait.
func (s *Store) listen() {
	awaitingPong := false
	var pinged time.Time
	failures := 0
	for {
		s.psMu.Lock()
		ps := s.ps
		s.psMu.Unlock()
		msg, err := ps.ReceiveTimeout(s.bg, s.pingEvery)
		select {
		case <-s.done:
			return
		default:
		}
		if err != nil {
			if isTimeout(err) && !awaitingPong {
				awaitingPong, pinged = true, time.Now()
				pctx, cancel := context.WithTimeout(s.bg, s.pingEvery)
				_ = ps.Ping(pctx)
				cancel()
				continue
			}
			if isTimeout(err) && time.Since(pinged) < replyWait {
				if time.Since(pinged) > opTimeout {
					s.link.late(pathPubSub)
				}
				continue
			}
			awaitingPong = false
			s.link.note(pathPubSub, unreachableErr(err))
			failures++
			wait := time.NewTimer(backoff(failures))
			select {
			case <-s.done:
				wait.Stop()
				return
			case <-wait.C:
			}
			s.reconnectPubSub(ps)
			continue
		}
		failures, awaitingPong = 0, false
		s.link.note(pathPubSub, nil)
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.confirmSubscribed(m.Channel)
				// Anything posted before the subscription took effect is
				// in the log: read it.
				s.poke(m.Channel)
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

// reconnectPubSub swaps a broken Pub/Sub connection for a new one with the
// same channels, unless the store is closing.
func (s *Store) reconnectPubSub(broken *redis.PubSub) {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	select {
	case <-s.done:
		return // Close closes s.ps, under psMu, after done
	default:
	}
	if s.ps != broken {
		return
	}
	_ = broken.Close()
	s.ps = s.rdb.Subscribe(s.bg)
	if len(s.subscribed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.bg, opTimeout)
	defer cancel()
	// A failure here surfaces as the listener's next receive error.
	_ = s.ps.Subscribe(ctx, slices.Collect(maps.Keys(s.subscribed))...)
}

// syncSubscription makes the Pub/Sub subscription to channel match whether
// this replica still has the room. Called after every change, it converges
// whatever order concurrent changes happen in.
func (s *Store) syncSubscription(channel string) {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	s.mu.Lock()
	_, want := s.rooms[channel]
	closed := s.closed
	s.mu.Unlock()
	if _, have := s.subscribed[channel]; closed || want == have {
		// Closing drops the connection, and every subscription with it.
		return
	}
	ctx, cancel := context.WithTimeout(s.bg, opTimeout)
	defer cancel()
	var err error
	if want {
		s.subscribed[channel] = make(chan struct{})
		err = s.ps.Subscribe(ctx, channel)
	} else {
		s.markConfirmedLocked(channel) // nobody waits for a channel given up
		delete(s.subscribed, channel)
		err = s.ps.Unsubscribe(ctx, channel)
	}
	// The connection remembers its channels: a failed write is redone when
	// the listener reconnects.
	if err != nil {
		s.log.Debug("pubsub subscription change failed", "err", err)
	}
}

// confirmSubscribed records that Redis confirmed the subscription to
// channel (again, after a reconnect).
func (s *Store) confirmSubscribed(channel string) {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	s.markConfirmedLocked(channel)
}

func (s *Store) markConfirmedLocked(channel string) {
	if ready := s.subscribed[channel]; ready != nil {
		select {
		case <-ready:
		default:
			close(ready)
		}
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
