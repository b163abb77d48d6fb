package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/ssh-burn/chat/internal/safetext"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultLease is how long a seat outlives the server holding it: the bound
// on "ghost" members after a server is killed.
const DefaultLease = 10 * time.Second

const (
	// streamMaxLen bounds a room's log, which servers read to catch up
	// (a seat never holds more than eventBuffer unread events). History
	// has a stream of its own, bounded at HistoryLimit.
	streamMaxLen = 2 * HistoryLimit
	// readBatch is how many log entries one catch-up read fetches.
	readBatch = 128
	// opTimeout bounds every background Redis call, so a Redis that stopped
	// answering delays the store but never hangs it.
	opTimeout = 3 * time.Second
	// dialTimeout bounds connecting to Redis.
	dialTimeout = 2 * time.Second
	// vanishGrace is how long a room found missing waits for the destroy
	// notice that usually follows, to say who destroyed it.
	vanishGrace = time.Second
)

// RedisConfig configures NewRedis.
type RedisConfig struct {
	// Client reaches the shared Redis: one server or a cluster. Make it
	// with NewRedisClient, which sets the timeouts the store relies on. The
	// store does not close it.
	Client redis.UniversalClient
	// TTL is how long rooms created here live.
	TTL time.Duration
	// Lease is how long a seat survives without this server renewing it.
	// Zero means DefaultLease.
	Lease time.Duration
	// Logger receives operational events; never message text or room IDs.
	Logger *slog.Logger
}

// Redis is a Store shared by any number of servers through one Redis (or
// Redis Cluster). Redis holds the truth: seats, deadlines and each room's
// log, a stream that every server reads from its last seen entry. One
// Pub/Sub connection per process says which rooms have news; servers then
// read the stream, so a lost notification delays a message but never drops
// it. Room IDs and text never reach Redis in clear (see roomSecrets).
type Redis struct {
	rdb    redis.UniversalClient
	ttl    time.Duration
	lease  time.Duration
	health time.Duration
	log    *slog.Logger
	done   chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	rooms    map[string]*redisRoom // by channel
	closed   bool
	linkDown [2]bool // by link
	down     bool    // last state announced to seats

	// psMu serialises everything done to the Pub/Sub connection, which can
	// block on the network, apart from mu.
	psMu       sync.Mutex
	ps         *redis.PubSub
	subscribed map[string]bool
}

type link int

const (
	linkPubSub link = iota
	linkCommands
)

var _ Store = (*Redis)(nil)

// NewRedis connects a store to Redis. It fails if Redis cannot be reached,
// so a misconfigured server stops at start rather than at its first room.
func NewRedis(ctx context.Context, cfg RedisConfig) (*Redis, error) {
	if cfg.Lease == 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("reach redis: %w", err)
	}
	s := &Redis{
		rdb:        cfg.Client,
		ttl:        cfg.TTL,
		lease:      cfg.Lease,
		health:     min(cfg.Lease/5, 2*time.Second),
		log:        cfg.Logger,
		done:       make(chan struct{}),
		rooms:      make(map[string]*redisRoom),
		subscribed: make(map[string]bool),
		ps:         cfg.Client.Subscribe(ctx),
	}
	s.wg.Add(2)
	go s.supervise("pubsub listener", s.listen)
	go s.supervise("lease keeper", s.keep)
	return s, nil
}

// NewRedisClient makes a client from a URL: redis://[user:pass@]host:port[/db],
// rediss://… for TLS, or a cluster as redis://host1:port?addr=host2:port&addr=….
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("redis URL: scheme must be redis or rediss, not %q", u.Scheme)
	}
	// Deadlines come from each call's context, so a Redis that stopped
	// answering costs a bounded wait. Nothing is retried: a retried script
	// whose first run did happen would post a message twice.
	if u.Query().Has("addr") {
		opts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis cluster URL: %w", err)
		}
		opts.ContextTimeoutEnabled, opts.MaxRetries, opts.DialTimeout = true, -1, dialTimeout
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %w", err)
	}
	opts.ContextTimeoutEnabled, opts.MaxRetries, opts.DialTimeout = true, -1, dialTimeout
	return redis.NewClient(opts), nil
}

// roomKeys names a room's keys and channel. The braces make every key of a
// room hash to one cluster slot, so each script touches a single node.
func roomKeys(tag string) (keys []string, channel string) {
	keys = make([]string, keyCount)
	for i, part := range [keyCount]string{keyMeta: "meta", keySeats: "seats", keyNames: "names", keyLog: "log", keyHistory: "history"} {
		keys[i] = "chat:{" + tag + "}:" + part
	}
	return keys, "chat:{" + tag + "}"
}

// Create implements Store.
func (s *Redis) Create(ctx context.Context) (Room, error) {
	if s.isClosed() {
		return Room{}, ErrClosed
	}
	for {
		id := NewRoomID()
		secrets, err := deriveRoomSecrets(id)
		if err != nil {
			return Room{}, fmt.Errorf("create room: %w", err)
		}
		keys, _ := roomKeys(secrets.tag)
		times, err := createScript.Run(ctx, s.rdb, keys, s.ttl.Milliseconds()).Int64Slice()
		if errors.Is(err, redis.Nil) {
			continue // the ID is taken: draw another
		}
		s.noteResult(err)
		if err != nil {
			return Room{}, fmt.Errorf("create room: %w", unavailable(err))
		}
		return Room{ID: id, CreatedAt: time.UnixMilli(times[0]), ExpiresAt: time.UnixMilli(times[1])}, nil
	}
}

// Join implements Store.
func (s *Redis) Join(ctx context.Context, id RoomID) (Seat, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	secrets, err := deriveRoomSecrets(id)
	if err != nil {
		return nil, fmt.Errorf("join room: %w", err)
	}
	keys, channel := roomKeys(secrets.tag)
	// The name cannot be checked against the partner's before the atomic
	// join; with 40 animals and 32⁴ suffixes a clash is a one-in-40-million
	// curiosity, not a confusion worth a second round trip.
	me := Member{ID: newMemberID(), Name: newMemberName()}
	sealedName := secrets.seal("name", me.Name)
	started := time.Now()
	reply, err := joinScript.Run(ctx, s.rdb, keys, me.ID, sealedName, s.lease.Milliseconds(),
		Capacity, streamMaxLen, channel, HistoryLimit).Slice()
	s.noteResult(err)
	if err != nil {
		return nil, fmt.Errorf("join room: %w", unavailable(err))
	}
	switch status(reply) {
	case "gone":
		return nil, fmt.Errorf("join room: %w", ErrNotFound)
	case "full":
		return nil, fmt.Errorf("join room: %w", ErrFull)
	case "ok":
	default:
		return nil, fmt.Errorf("join room: unexpected reply %v", reply)
	}
	if len(reply) != 6 {
		return nil, fmt.Errorf("join room: unexpected reply of %d parts", len(reply))
	}
	created, _ := reply[1].(int64)
	deadline, _ := reply[2].(int64)
	joinID, _ := reply[3].(string)
	room := Room{ID: id, CreatedAt: time.UnixMilli(created), ExpiresAt: time.UnixMilli(deadline)}
	seat := &redisSeat{
		snapshot:   Snapshot{Room: room, Me: me},
		sealedName: sealedName,
		events:     make(chan Event, eventBuffer),
		cursor:     joinID,
	}
	pairs, _ := reply[4].([]any)
	for i := 0; i+1 < len(pairs); i += 2 {
		memberID, _ := pairs[i].(string)
		sealed, _ := pairs[i+1].(string)
		seat.snapshot.Others = append(seat.snapshot.Others, secrets.member(memberID, sealed))
	}
	newestFirst, _ := reply[5].([]any)
	for _, raw := range newestFirst {
		e, ok := parseEntry(raw)
		if !ok || e.fields["t"] != "m" {
			continue
		}
		if msg, ok := secrets.message(e); ok {
			seat.snapshot.History = append(seat.snapshot.History, msg)
		}
		if len(seat.snapshot.History) == HistoryLimit {
			break
		}
	}
	slices.Reverse(seat.snapshot.History)

	if err := s.seat(seat, secrets, keys, channel, started); err != nil {
		// Closed while joining: give the seat back rather than leave a ghost.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		_ = leaveScript.Run(lctx, s.rdb, keys, me.ID, streamMaxLen, channel).Err()
		return nil, err
	}
	return seat, nil
}

// seat attaches a freshly joined seat to this server's view of its room.
func (s *Redis) seat(seat *redisSeat, secrets roomSecrets, keys []string, channel string, renewed time.Time) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	r := s.rooms[channel]
	if r == nil || r.ended {
		r = &redisRoom{
			s:        s,
			secrets:  secrets,
			keys:     keys,
			channel:  channel,
			deadline: seat.snapshot.Room.ExpiresAt,
			wake:     make(chan struct{}, 1),
			stop:     make(chan struct{}),
			renewed:  renewed,
		}
		r.expiry = time.AfterFunc(time.Until(r.deadline), r.expire)
		s.rooms[channel] = r
		s.wg.Add(1)
		go s.supervise("room follower", r.follow)
	}
	r.mu.Lock()
	seat.room = r
	r.seats = append(r.seats, seat)
	if s.down {
		seat.push(ReconnectingEvent{})
		r.announce = true
	}
	r.mu.Unlock()
	s.mu.Unlock()

	s.syncSubscription(channel)
	r.poke()
	return nil
}

// syncSubscription makes the Pub/Sub subscription to channel match whether
// this server still has the room. Called after every change, it converges
// whatever order concurrent changes happen in.
func (s *Redis) syncSubscription(channel string) {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	s.mu.Lock()
	_, want := s.rooms[channel]
	s.mu.Unlock()
	if want == s.subscribed[channel] {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var err error
	if want {
		s.subscribed[channel] = true
		err = s.ps.Subscribe(ctx, channel)
	} else {
		delete(s.subscribed, channel)
		err = s.ps.Unsubscribe(ctx, channel)
	}
	// The connection remembers its channels: a failed write is redone when
	// the listener reconnects.
	if err != nil {
		s.log.Debug("pubsub subscription change failed", "err", err)
	}
}

// release forgets r once no seat of this server is in it.
func (s *Redis) release(r *redisRoom) {
	s.mu.Lock()
	r.mu.Lock()
	idle := len(r.seats) == 0
	if idle {
		r.ended = true
	}
	r.mu.Unlock()
	mine := s.rooms[r.channel] == r
	if idle && mine {
		delete(s.rooms, r.channel)
	}
	s.mu.Unlock()
	if !idle {
		return
	}
	r.stopOnce.Do(func() {
		r.expiry.Stop()
		close(r.stop)
	})
	if mine {
		s.syncSubscription(r.channel)
	}
}

// Close gives up every seat held here (partners on other servers see them
// leave) and stops. The rooms themselves live on in Redis.
func (s *Redis) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := slices.Collect(maps.Values(s.rooms))
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, r := range rooms {
		wg.Go(func() { r.shutdown(ctx) })
	}
	wg.Wait()

	close(s.done)
	s.psMu.Lock()
	err := s.ps.Close()
	s.psMu.Unlock()
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("close pubsub: %w", err)
	}
	return nil
}

func (s *Redis) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// listen is the one Pub/Sub connection of this process. It pings when the
// line is quiet, and replaces the connection when a ping goes unanswered,
// because a silently dropped TCP connection would otherwise look idle
// forever.
func (s *Redis) listen() {
	ctx := context.Background()
	awaitingPong := false
	failures := 0
	for {
		s.psMu.Lock()
		ps := s.ps
		s.psMu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, s.health)
		select {
		case <-s.done:
			return
		default:
		}
		if err != nil {
			if isTimeout(err) && !awaitingPong {
				awaitingPong = true
				pctx, cancel := context.WithTimeout(ctx, s.health)
				_ = ps.Ping(pctx)
				cancel()
				continue
			}
			awaitingPong = false
			s.setLink(linkPubSub, false, err)
			failures++
			select {
			case <-s.done:
				return
			case <-time.After(backoff(failures)):
			}
			s.reconnectPubSub(ps)
			continue
		}
		failures, awaitingPong = 0, false
		s.setLink(linkPubSub, true, nil)
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// Anything posted before the subscription took effect is
				// in the log: read it.
				s.poke(m.Channel)
			}
		case *redis.Message:
			s.dispatch(m)
		}
	}
}

// reconnectPubSub swaps a broken Pub/Sub connection for a new one with the
// same channels.
func (s *Redis) reconnectPubSub(broken *redis.PubSub) {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	if s.ps != broken {
		return
	}
	_ = broken.Close()
	s.ps = s.rdb.Subscribe(context.Background())
	if len(s.subscribed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	// A failure here surfaces as the listener's next receive error.
	_ = s.ps.Subscribe(ctx, slices.Collect(maps.Keys(s.subscribed))...)
}

// supervise runs loop until it returns, restarting it after a panic (a bug
// must not take every room of this server down with it).
func (s *Redis) supervise(what string, loop func()) {
	defer s.wg.Done()
	for s.panicked(what, loop) {
		select {
		case <-s.done:
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *Redis) panicked(what string, loop func()) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("store goroutine panicked; restarting it", "goroutine", what, "panic", r, "stack", string(debug.Stack()))
			panicked = true
		}
	}()
	loop()
	return false
}

func backoff(failures int) time.Duration {
	return min(50*time.Millisecond<<min(failures, 6), 2*time.Second)
}

func (s *Redis) dispatch(m *redis.Message) {
	s.mu.Lock()
	r := s.rooms[m.Channel]
	s.mu.Unlock()
	if r == nil {
		return
	}
	switch {
	case m.Payload == "n":
		r.poke()
	case strings.HasPrefix(m.Payload, "d") && len(m.Payload) >= 1+memberIDLen:
		by := r.secrets.member(m.Payload[1:1+memberIDLen], m.Payload[1+memberIDLen:])
		r.end(EndedEvent{Reason: EndDestroyed, By: by})
	}
}

func (s *Redis) poke(channel string) {
	s.mu.Lock()
	r := s.rooms[channel]
	s.mu.Unlock()
	if r != nil {
		r.poke()
	}
}

// keep renews the leases of every seat held here and, as a safety net,
// re-reads every room's log.
func (s *Redis) keep() {
	ticker := time.NewTicker(s.lease / 3)
	defer ticker.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-ticker.C:
		}
		s.mu.Lock()
		rooms := slices.Collect(maps.Values(s.rooms))
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), s.lease/3)
		var wg sync.WaitGroup
		for _, r := range rooms {
			wg.Go(func() { r.renew(ctx) })
		}
		wg.Wait()
		cancel()
	}
}

// noteResult tracks whether Redis answers commands. Any reply, even an error
// reply, means it does.
func (s *Redis) noteResult(err error) {
	var reply redis.Error
	switch {
	case err == nil, errors.As(err, &reply):
		s.setLink(linkCommands, true, nil)
	case errors.Is(err, context.Canceled):
		// The caller gave up; that says nothing about Redis.
	default:
		s.setLink(linkCommands, false, err)
	}
}

// setLink records one link's state and tells every seat here when the
// store as a whole goes down or comes back.
func (s *Redis) setLink(l link, up bool, cause error) {
	s.mu.Lock()
	s.linkDown[l] = !up
	down := s.linkDown[linkPubSub] || s.linkDown[linkCommands]
	changed := down != s.down && !s.closed
	s.down = down
	var rooms []*redisRoom
	if changed {
		rooms = slices.Collect(maps.Values(s.rooms))
	}
	s.mu.Unlock()
	if !changed {
		return
	}
	if down {
		s.log.Warn("redis unreachable; sessions wait for it", "err", cause)
	} else {
		s.log.Info("redis reachable again")
	}
	for _, r := range rooms {
		r.linkChanged(down)
	}
}

func unavailable(err error) error {
	var reply redis.Error
	if errors.As(err, &reply) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func status(reply []any) string {
	if len(reply) == 0 {
		return ""
	}
	s, _ := reply[0].(string)
	return s
}

// redisRoom is this server's view of a room it has seats in.
type redisRoom struct {
	s        *Redis
	secrets  roomSecrets
	keys     []string
	channel  string
	deadline time.Time
	wake     chan struct{} // a read of the log is due
	stop     chan struct{} // closed once the room is released
	stopOnce sync.Once
	expiry   *time.Timer

	mu       sync.Mutex
	seats    []*redisSeat
	ended    bool
	renewed  time.Time   // when the last successful lease renewal was sent
	announce bool        // seats were told of a lost link and await its return
	vanish   *time.Timer // pending end of a room found missing
}

// redisSeat implements Seat. Its mutable fields are guarded by room.mu.
type redisSeat struct {
	room       *redisRoom
	snapshot   Snapshot
	sealedName string
	events     chan Event
	cursor     string // the last log entry this seat has seen
	gone       bool
}

func (r *redisRoom) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// follow reads the room's log whenever poked, until the room is released.
func (r *redisRoom) follow() {
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		}
		r.catchUp()
	}
}

// catchUp delivers every log entry that some seat here has not seen.
func (r *redisRoom) catchUp() {
	for {
		r.mu.Lock()
		var from string
		for _, seat := range r.seats {
			if from == "" || streamIDLess(seat.cursor, from) {
				from = seat.cursor
			}
		}
		r.mu.Unlock()
		if from == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		reply, err := readScript.Run(ctx, r.s.rdb, r.keys, from, readBatch).Slice()
		cancel()
		r.s.noteResult(err)
		if err != nil {
			// Retried on the next poke: every lease renewal and every
			// reconnection pokes.
			r.s.log.Debug("read room log", "err", err)
			return
		}
		if status(reply) == "gone" {
			r.vanished()
			return
		}
		var entries []any
		if len(reply) == 2 {
			entries, _ = reply[1].([]any)
		}
		r.mu.Lock()
		for _, raw := range entries {
			if e, ok := parseEntry(raw); ok {
				r.deliverLocked(e)
			}
		}
		caughtUp := len(entries) < readBatch
		if caughtUp && r.announce && !r.s.isDown() {
			r.announce = false
			for _, seat := range r.seats {
				r.pushLocked(seat, ReconnectedEvent{})
			}
		}
		r.mu.Unlock()
		r.releaseIfIdle()
		if caughtUp {
			return
		}
	}
}

func (s *Redis) isDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.down
}

// deliverLocked hands e to every seat that has not seen it.
func (r *redisRoom) deliverLocked(e entry) {
	ev := r.secrets.event(e)
	for _, seat := range slices.Clone(r.seats) {
		if !streamIDLess(seat.cursor, e.id) {
			continue
		}
		seat.cursor = e.id
		switch ev := ev.(type) {
		case nil: // unreadable: skipped, never shown half-decoded
		case LeftEvent:
			if ev.Member.ID == seat.snapshot.Me.ID {
				// Freed behind this server's back: the lease ran out.
				r.endSeatLocked(seat, EndedEvent{Reason: EndLeaseLost, RoomLivesOn: true})
				continue
			}
			r.pushLocked(seat, ev)
		default:
			r.pushLocked(seat, ev)
		}
	}
}

// pushLocked delivers ev without blocking. A seat that fell a whole buffer
// behind is evicted rather than allowed to hold up the room.
func (r *redisRoom) pushLocked(seat *redisSeat, ev Event) {
	if seat.push(ev) {
		return
	}
	r.endSeatLocked(seat, EndedEvent{Reason: EndEvicted, RoomLivesOn: true})
	r.s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		_ = leaveScript.Run(ctx, r.s.rdb, r.keys, seat.snapshot.Me.ID, streamMaxLen, r.channel).Err()
	})
}

// push queues ev unless that would take the slot kept for the EndedEvent.
// It reports false only when a live seat has no room left.
func (seat *redisSeat) push(ev Event) bool {
	switch {
	case seat.gone:
		return true
	case len(seat.events) >= cap(seat.events)-1:
		return false
	}
	seat.events <- ev
	return true
}

// endSeatLocked ends one seat's stream with ev (none if nil) and drops it.
func (r *redisRoom) endSeatLocked(seat *redisSeat, ev Event) {
	if seat.gone {
		return
	}
	seat.gone = true
	if ev != nil {
		seat.events <- ev // the reserved slot
	}
	close(seat.events)
	r.seats = slices.DeleteFunc(r.seats, func(s *redisSeat) bool { return s == seat })
}

func (r *redisRoom) releaseIfIdle() {
	r.mu.Lock()
	idle := len(r.seats) == 0
	r.mu.Unlock()
	if idle {
		r.s.release(r)
	}
}

// end ends every seat here with ev: the room itself is over.
func (r *redisRoom) end(ev EndedEvent) {
	r.mu.Lock()
	for _, seat := range slices.Clone(r.seats) {
		r.endSeatLocked(seat, ev)
	}
	r.ended = true
	if r.vanish != nil {
		r.vanish.Stop()
	}
	r.mu.Unlock()
	r.s.release(r)
}

// expire runs at the deadline, on this server's own clock.
func (r *redisRoom) expire() {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	err := expireScript.Run(ctx, r.s.rdb, r.keys).Err()
	r.s.noteResult(err)
	r.end(EndedEvent{Reason: EndExpired})
}

// vanished handles a room that is missing from Redis: past its deadline it
// expired; otherwise it was destroyed (the notice naming who is normally a
// moment away) or Redis lost it.
func (r *redisRoom) vanished() {
	if !time.Now().Before(r.deadline) {
		r.expire()
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.vanish == nil && !r.ended {
		r.vanish = time.AfterFunc(vanishGrace, func() { r.end(EndedEvent{Reason: EndVanished}) })
	}
}

// renew extends the leases of this server's seats in r.
func (r *redisRoom) renew(ctx context.Context) {
	r.mu.Lock()
	args := []any{r.s.lease.Milliseconds(), streamMaxLen, r.channel}
	for _, seat := range r.seats {
		args = append(args, seat.snapshot.Me.ID)
	}
	renewed := r.renewed
	r.mu.Unlock()
	if len(args) == 3 {
		return
	}
	sent := time.Now()
	reply, err := refreshScript.Run(ctx, r.s.rdb, r.keys, args...).Slice()
	r.s.noteResult(err)
	switch {
	case err != nil:
		if sent.Sub(renewed) > r.s.lease {
			// Cut off for longer than a lease: Redis has freed these
			// seats, or will the moment it is asked.
			r.mu.Lock()
			for _, seat := range slices.Clone(r.seats) {
				r.endSeatLocked(seat, EndedEvent{Reason: EndLeaseLost, RoomLivesOn: true})
			}
			r.mu.Unlock()
			r.releaseIfIdle()
		}
		return
	case status(reply) == "gone":
		r.vanished()
		return
	}
	r.mu.Lock()
	r.renewed = sent
	if len(reply) == 2 {
		lost, _ := reply[1].([]any)
		for _, id := range lost {
			for _, seat := range slices.Clone(r.seats) {
				if seat.snapshot.Me.ID == id {
					r.endSeatLocked(seat, EndedEvent{Reason: EndLeaseLost, RoomLivesOn: true})
				}
			}
		}
	}
	r.mu.Unlock()
	r.releaseIfIdle()
	r.poke()
}

func (r *redisRoom) linkChanged(down bool) {
	r.mu.Lock()
	if down && !r.announce {
		r.announce = true
		for _, seat := range slices.Clone(r.seats) {
			r.pushLocked(seat, ReconnectingEvent{})
		}
	}
	r.mu.Unlock()
	if !down {
		r.poke() // catch up, then announce the return
	}
}

// shutdown ends this server's seats in r and gives them up in Redis.
func (r *redisRoom) shutdown(ctx context.Context) {
	r.mu.Lock()
	seats := slices.Clone(r.seats)
	for _, seat := range seats {
		r.endSeatLocked(seat, EndedEvent{Reason: EndShutdown, RoomLivesOn: true})
	}
	r.mu.Unlock()
	for _, seat := range seats {
		_ = leaveScript.Run(ctx, r.s.rdb, r.keys, seat.snapshot.Me.ID, streamMaxLen, r.channel).Err()
	}
	r.s.release(r)
}

func (seat *redisSeat) Snapshot() Snapshot   { return seat.snapshot }
func (seat *redisSeat) Events() <-chan Event { return seat.events }

func (seat *redisSeat) isGone() bool {
	seat.room.mu.Lock()
	defer seat.room.mu.Unlock()
	return seat.gone
}

func (seat *redisSeat) Send(ctx context.Context, body string) error {
	body = safetext.Sanitize(body)
	switch {
	case body == "":
		return ErrEmptyMessage
	case safetext.RuneCount(body) > safetext.MaxMessageRunes:
		return ErrMessageTooLong
	}
	if seat.isGone() {
		return fmt.Errorf("send message: %w", ErrEnded)
	}
	r := seat.room
	reply, err := sendScript.Run(ctx, r.s.rdb, r.keys, seat.snapshot.Me.ID, seat.sealedName,
		r.secrets.seal("body", body), streamMaxLen, r.channel, HistoryLimit).Slice()
	r.s.noteResult(err)
	if err != nil {
		return fmt.Errorf("send message: %w", unavailable(err))
	}
	switch status(reply) {
	case "ok":
		r.poke() // deliver here without waiting for the notification
		return nil
	case "unseated":
		r.mu.Lock()
		r.endSeatLocked(seat, EndedEvent{Reason: EndLeaseLost, RoomLivesOn: true})
		r.mu.Unlock()
		r.releaseIfIdle()
	default:
		r.vanished()
	}
	return fmt.Errorf("send message: %w", ErrEnded)
}

func (seat *redisSeat) Destroy(ctx context.Context) error {
	if seat.isGone() {
		return fmt.Errorf("destroy room: %w", ErrEnded)
	}
	r := seat.room
	n, err := destroyScript.Run(ctx, r.s.rdb, r.keys, seat.snapshot.Me.ID, r.channel, seat.sealedName).Int()
	r.s.noteResult(err)
	if err != nil {
		return fmt.Errorf("destroy room: %w", unavailable(err))
	}
	if n == 0 {
		return fmt.Errorf("destroy room: %w", ErrEnded)
	}
	r.end(EndedEvent{Reason: EndDestroyed, By: seat.snapshot.Me})
	return nil
}

func (seat *redisSeat) Leave(ctx context.Context) error {
	r := seat.room
	r.mu.Lock()
	if seat.gone {
		r.mu.Unlock()
		return nil
	}
	r.endSeatLocked(seat, nil)
	r.mu.Unlock()
	r.releaseIfIdle()
	// Even when the caller's context is done (its session hung up), the
	// seat must be given back now rather than when the lease runs out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	err := leaveScript.Run(ctx, r.s.rdb, r.keys, seat.snapshot.Me.ID, streamMaxLen, r.channel).Err()
	r.s.noteResult(err)
	if err != nil {
		return fmt.Errorf("leave room: %w", unavailable(err))
	}
	return nil
}

// entry is one record of a room's log.
type entry struct {
	id     string
	fields map[string]string
}

func parseEntry(raw any) (entry, bool) {
	pair, ok := raw.([]any)
	if !ok || len(pair) != 2 {
		return entry{}, false
	}
	id, _ := pair[0].(string)
	flat, _ := pair[1].([]any)
	e := entry{id: id, fields: make(map[string]string, len(flat)/2)}
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		e.fields[k] = v
	}
	return e, id != ""
}

// member opens a sealed name. What comes out of Redis is treated as hostile
// like anything else: a name that fails authentication is not shown, and
// one that passes is sanitised again.
func (sec roomSecrets) member(id, sealedName string) Member {
	name, err := sec.open("name", sealedName)
	if err != nil {
		name = "anonymous"
	}
	return Member{ID: id, Name: safetext.Sanitize(name)}
}

func (sec roomSecrets) message(e entry) (Message, bool) {
	body, err := sec.open("body", e.fields["b"])
	if err != nil {
		return Message{}, false
	}
	body = safetext.Sanitize(body)
	if body == "" {
		return Message{}, false
	}
	return Message{ID: e.id, From: sec.member(e.fields["m"], e.fields["n"]), Body: body, At: streamIDTime(e.id)}, true
}

// event turns a log entry into what seats receive; nil if it is unreadable.
func (sec roomSecrets) event(e entry) Event {
	switch e.fields["t"] {
	case "m":
		if msg, ok := sec.message(e); ok {
			return MessageEvent{Message: msg}
		}
	case "j":
		return JoinedEvent{Member: sec.member(e.fields["m"], e.fields["n"])}
	case "l":
		return LeftEvent{Member: sec.member(e.fields["m"], e.fields["n"])}
	}
	return nil
}

// Stream IDs are "milliseconds-sequence", ordered numerically.
func parseStreamID(id string) (ms, seq uint64) {
	a, b, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(a, 10, 64)
	seq, _ = strconv.ParseUint(b, 10, 64)
	return ms, seq
}

func streamIDLess(a, b string) bool {
	am, as := parseStreamID(a)
	bm, bs := parseStreamID(b)
	return am < bm || (am == bm && as < bs)
}

func streamIDTime(id string) time.Time {
	ms, _ := parseStreamID(id)
	return time.UnixMilli(int64(ms))
}
