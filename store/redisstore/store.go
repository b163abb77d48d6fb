// Package redisstore is a store.Store shared by any number of server
// replicas through one Redis (or Redis Cluster).
//
// Redis holds the truth: seats, deadlines and each room's log, a stream
// every replica reads from the last entry it has seen. Sharded Pub/Sub,
// one connection per replica and node, says which rooms have news (see
// pubsub.go); replicas then read the stream, so a lost notification delays
// a message but never drops it.
// Room IDs, names and text never reach Redis in clear (see roomSecrets).
//
// Liveness is per replica, not per seat: a seat names the replica holding
// it, each replica beats once per period whatever it holds, and the seats
// of a replica that Redis has not seen beat for a lease are freed by the
// replicas that notice (its partners' replicas, or whoever joins). A beat
// waits behind nothing (its own goroutine and connections, never the
// reply to the beat before), so a Redis that answers a replica late does
// not make it dead, and a replica that closes is dead at once. Idle seats cost
// Redis nothing. An outage of Redis itself (a pause, a restart that keeps
// the data, a failover) starts a new epoch in which nobody is found dead
// before a lease has passed, so it costs no seat; a replica keeps its seats
// through an outage of up to its outage tolerance.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
)

const (
	// streamMaxLen bounds a room's log, which replicas read to catch up
	// (a seat never holds more than store.EventBuffer unread events). Its
	// entries are small and of bounded size (a message's only refers to
	// its history entry), so this bounds its bytes too. History has a
	// stream of its own, bounded at store.HistoryLimit messages and
	// store.HistoryBytes; a reader that falls behind what either keeps
	// is evicted (readScript's 'gap'), never left to skip.
	streamMaxLen = 2 * store.HistoryLimit
	// readBatch is how many log entries one catch-up read fetches.
	readBatch = 128
	// readRetry is how soon a read of a room's log that got no answer is
	// tried again.
	readRetry = time.Second
	// vanishGrace is how long a room found missing waits for the destroy
	// notice that usually follows, to say who destroyed it.
	vanishGrace = time.Second
	// idWindowExtra is how long past the outage tolerance a room remembers
	// the IDs of messages it stored: longer than anyone retries a send.
	idWindowExtra = 5 * time.Minute
	// liveRetention is how long a replica that stopped beating is
	// remembered as dead; after that it is unknown, which counts as dead
	// when asked about.
	liveRetention = 15 * time.Minute
)

// Store is a store.Store on Redis. Make it with New.
type Store struct {
	rdb       redis.UniversalClient
	ttl       time.Duration
	lease     time.Duration
	tolerance time.Duration
	log       *slog.Logger
	replica   string // this replica's ID, random, named by its seats
	pingEvery time.Duration
	link      *link
	full      *fullLog
	live      *liveness

	// done is closed when Close begins to stop the goroutines; bg, the
	// context of their calls to Redis, is cancelled then too.
	done     chan struct{}
	bg       context.Context
	cancelBg context.CancelFunc
	// wg counts every goroutine and timer callback of the store.
	wg       sync.WaitGroup
	lifeMu   sync.Mutex // guards stopping, and wg.Add against wg.Wait
	stopping bool

	mu     sync.Mutex
	rooms  map[string]*room // by channel
	closed bool

	pendMu  sync.Mutex // a leaf lock: taken under any other
	pending []leave    // seats given up here that Redis has not heard of yet

	// psMu serialises everything done to the Pub/Sub connections, which
	// can block on the network, apart from mu (see pubsub.go).
	psMu   sync.Mutex
	shards map[string]*shard // by node address
	where  map[string]*shard // by channel: the shard it is subscribed on
	// subscribed holds, per channel wanted, a channel closed once Redis
	// has confirmed the subscription.
	subscribed map[string]chan struct{}
	// shardFailures counts, by node, the shards that failed in a row.
	shardFailures map[string]int

	// healthMu orders the shards' notes to the link: nothing but the
	// link's own locks (and its onChange) is taken under it.
	healthMu   sync.Mutex
	shardsDown map[*shard]bool // shards whose last receive failed

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*Store)(nil)

// leave is a seat to give up in Redis.
type leave struct {
	keys    []string
	channel string
	member  string // for undoRejoin, the digest of the key that opens it
	value   string // the seat as Redis has it while it is this one's
	undo    undo
}

// undo says how a leave gives its seat up.
type undo int

const (
	// undoLeave gives up a seat someone held: leaveScript.
	undoLeave undo = iota
	// undoJoin withdraws a join nobody got the answer to: withdrawScript,
	// which leaves no trace of its member.
	undoJoin
	// undoRejoin withdraws a rejoin nobody got the answer to: its seat is
	// given up as by a leave, and a late copy of it takes nothing.
	undoRejoin
)

// eval queues the script that gives l up on p.
func (l leave) eval(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
	// EVAL, not EVALSHA: a pipeline cannot fall back when Redis has
	// forgotten the script (after a restart).
	switch l.undo {
	case undoJoin:
		return withdrawScript.Eval(ctx, p, l.keys, l.member, l.value, streamMaxLen, l.channel, 1)
	case undoRejoin:
		return withdrawScript.Eval(ctx, p, l.keys, l.member, l.value, streamMaxLen, l.channel, 0)
	}
	return leaveScript.Eval(ctx, p, l.keys, l.member, l.value, streamMaxLen, l.channel)
}

// New connects a store to Redis. It fails if Redis cannot be reached, so a
// misconfigured server stops at start rather than at its first room.
func New(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if cfg.Client == nil || cfg.TTL <= 0 {
		return nil, errors.New("redisstore: Client and TTL are required")
	}
	if err := checkVersion(ctx, cfg.Client); err != nil {
		return nil, err
	}
	s := &Store{
		rdb:        cfg.Client,
		ttl:        cfg.TTL,
		lease:      cfg.Lease,
		tolerance:  cfg.OutageTolerance,
		log:        cfg.Logger,
		replica:    store.NewMemberID(),
		pingEvery:  min(cfg.Lease/5, 2*time.Second),
		full:       &fullLog{log: cfg.Logger},
		done:       make(chan struct{}),
		rooms:      make(map[string]*room),
		subscribed: make(map[string]chan struct{}),

		shards:        make(map[string]*shard),
		where:         make(map[string]*shard),
		shardFailures: make(map[string]int),
		shardsDown:    make(map[*shard]bool),
	}
	s.bg, s.cancelBg = context.WithCancel(context.Background())
	s.link = &link{log: cfg.Logger, tolerance: cfg.OutageTolerance, onChange: s.linkChanged}
	s.live = newLiveness(s, cfg.Client)
	// The first heartbeat proves Redis answers, and registers this replica
	// before any seat names it.
	if err := s.live.beat(ctx); err != nil {
		s.cancelBg()
		return nil, errors.Join(fmt.Errorf("reach redis: %w", err), s.live.close())
	}
	if _, cluster := cfg.Client.(*redis.ClusterClient); !cluster {
		s.ensureHomeShard()
	}
	s.spawn("heartbeat", s.heartbeat)
	s.spawn("keeper", s.keep)
	return s, nil
}

// ReplicaID is this replica's ID, as its seats name it in Redis.
func (s *Store) ReplicaID() string { return s.replica }

// DeadReplicas are the replicas found dead at the last heartbeat: anything
// they held in Redis may be freed.
func (s *Store) DeadReplicas() []string { return s.live.deadNow() }

// Health is nil while Redis answers, or has not answered for less than the
// outage tolerance; past it, an error wrapping store.ErrUnavailable. After
// Close it is store.ErrClosed.
func (s *Store) Health() error {
	if s.isClosed() {
		return store.ErrClosed
	}
	if down, downFor := s.link.state(); down && downFor > s.tolerance {
		return fmt.Errorf("%w for %v", store.ErrUnavailable, downFor.Round(time.Second))
	}
	return nil
}

// call runs a script on the store's client, waiting opTimeout at most;
// see callOn.
func (s *Store) call(ctx context.Context, script *redis.Script, keys []string, args ...any) (any, error) {
	return s.callOn(ctx, s.rdb, opTimeout, script, keys, args...)
}

// callOn runs a script on rdb, waiting for its reply for wait at most; see
// patiently.
func (s *Store) callOn(ctx context.Context, rdb redis.Scripter, wait time.Duration, script *redis.Script, keys []string, args ...any) (any, error) {
	return s.patiently(ctx, wait, func(ctx context.Context) (any, error) {
		return script.Run(ctx, rdb, keys, args...).Result()
	})
}

// patiently runs one call to Redis and waits for its reply for wait at
// most (opTimeout where a person waits; up to replyWait), or until ctx is
// done, noting what the outcome says about the link. A caller that stops
// waiting does not cut the call off: its reply is awaited for replyWait
// in the background, so a Redis that answers late keeps its connections
// (see replyWait) and counts as slow, not down. Whether a call that
// returned no reply ran is unknown either way.
func (s *Store) patiently(ctx context.Context, wait time.Duration, call func(context.Context) (any, error)) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err // nothing was sent
	}
	type result struct {
		res any
		err error
	}
	done := make(chan result, 1)
	run := func(ctx context.Context) {
		res, err := call(ctx)
		s.link.note(pathCommands, err)
		done <- result{res, err}
	}
	if !s.goCall(run) {
		// Closing: nothing may outlive Close, so the caller's wait is the
		// call's.
		ctx, cancel := context.WithTimeout(ctx, min(wait, opTimeout))
		defer cancel()
		run(ctx)
		r := <-done
		return r.res, r.err
	}
	waited := time.NewTimer(wait)
	defer waited.Stop()
	select {
	case r := <-done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-waited.C:
		s.link.late(pathCommands)
		return nil, errNoReply
	}
}

// goCall runs a call in a goroutine of the store, bounded by replyWait
// and by Close. It reports false, and runs nothing, once Close has begun
// to stop.
func (s *Store) goCall(run func(context.Context)) bool {
	return s.goOnce(func() {
		ctx, cancel := context.WithTimeout(s.bg, replyWait)
		defer cancel()
		run(ctx)
	})
}

// goOnce runs f once in a goroutine that Close waits for. It reports false,
// and runs nothing, once Close has begun to stop.
func (s *Store) goOnce(f func()) bool {
	return s.start(func() { s.panicked("call", f) })
}

// start runs run in a goroutine that Close waits for: every goroutine of
// the store begins here. It reports false, and starts nothing, once Close
// has begun to stop.
func (s *Store) start(run func()) bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.stopping {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		run()
	}()
	return true
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context) (store.Room, error) {
	if s.isClosed() {
		return store.Room{}, store.ErrClosed
	}
	// Two random IDs of 75 bits colliding is a once-in-never event; a
	// Redis that keeps saying so is broken.
	for range 8 {
		id := store.NewRoomID()
		secrets, err := deriveRoomSecrets(id)
		if err != nil {
			return store.Room{}, fmt.Errorf("create room: %w", err)
		}
		keys, _ := roomKeys(secrets.tag)
		res, err := s.call(ctx, createScript, keys, s.ttl.Milliseconds())
		if errors.Is(err, redis.Nil) {
			continue // the ID is taken: draw another
		}
		if err != nil {
			if classify(err) == full {
				s.full.refused("create")
			}
			return store.Room{}, fmt.Errorf("create room: %w", failure(err))
		}
		s.full.wrote()
		times, err := asSlice("create reply", res)
		if err != nil {
			return store.Room{}, fmt.Errorf("create room: %w", err)
		}
		if len(times) != 2 {
			return store.Room{}, fmt.Errorf("create room: %w: %d parts", errMalformed, len(times))
		}
		created, err1 := asInt("created", times[0])
		deadline, err2 := asInt("deadline", times[1])
		if err := errors.Join(err1, err2); err != nil {
			return store.Room{}, fmt.Errorf("create room: %w", err)
		}
		return store.Room{ID: id, CreatedAt: time.UnixMilli(created), ExpiresAt: time.UnixMilli(deadline)}, nil
	}
	return store.Room{}, fmt.Errorf("create room: %w: every new room ID is taken", errMalformed)
}

// Join implements store.Store.
func (s *Store) Join(ctx context.Context, id store.RoomID) (store.Seat, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	secrets, err := deriveRoomSecrets(id)
	if err != nil {
		return nil, fmt.Errorf("join room: %w", err)
	}
	keys, channel := roomKeys(secrets.tag)
	// The name cannot be checked against the others' before the atomic
	// join; with 40 animals and 32⁴ suffixes a clash is a one-in-40-million
	// curiosity, not a confusion worth a second round trip. Once a seat of
	// the room was given away, though, the newcomer must not share its
	// animal: the script then answers the names, and takes nothing, until
	// a name checked against them comes (see nameAvoiding).
	me := store.Member{ID: store.NewMemberID(), Name: store.NewMemberName()}
	key := store.NewSeatKey(id)
	sealedName := secrets.sealName(me.Name)
	presence := store.NewMemberID()

	// What names this join (member, presence, key) is chosen once, above:
	// every try of it is the same request.
	undo := leave{keys: keys, channel: channel, member: me.ID, value: s.replica + "/" + presence, undo: undoJoin}
	dead := s.live.deadNow()
	var reply joinReply
	checked, renamed := "0", false
	for attempt := 0; ; attempt++ {
		args := append([]any{me.ID, sealedName, s.replica, presence, store.Capacity, streamMaxLen, channel,
			store.HistoryLimit, key.Digest(id), checked}, anys(dead)...)
		reply, err = s.tryJoin(ctx, joinScript, keys, args, undo)
		if err != nil {
			return nil, err
		}
		if reply.status == "names" && !renamed {
			me.Name = nameAvoiding(secrets, reply.names)
			sealedName, checked, renamed = secrets.sealName(me.Name), "1", true
			attempt--
			continue
		}
		if reply.status != "full" || attempt > 0 {
			break
		}
		// Full, perhaps of ghosts: seats held by replicas that died since
		// the last heartbeat said who is dead. Ask, and try once more.
		more, err := s.live.confirmDead(ctx, s.unknownReplicas(reply.seats))
		if err != nil || len(more) == 0 {
			break
		}
		dead = append(dead, more...)
	}
	switch reply.status {
	case "gone":
		return nil, fmt.Errorf("join room: %w", store.ErrNotFound)
	case "names":
		return nil, fmt.Errorf("join room: %w: names answered to a name checked against them", errMalformed)
	case "sealed":
		return nil, fmt.Errorf("join room: %w", store.ErrSealed)
	case "full":
		return nil, fmt.Errorf("join room: %w", store.ErrFull)
	}
	return s.seat(ctx, id, secrets, keys, channel, reply, me, sealedName, presence, key)
}

// Rejoin implements store.Store. The key is checked in Redis, by its
// digest, in the same single script call that an unknown room costs.
func (s *Store) Rejoin(ctx context.Context, id store.RoomID, key store.SeatKey) (store.Seat, error) {
	if s.isClosed() {
		return nil, store.ErrClosed
	}
	secrets, err := deriveRoomSecrets(id)
	if err != nil {
		return nil, fmt.Errorf("join room: %w", err)
	}
	keys, channel := roomKeys(secrets.tag)
	presence := store.NewMemberID()
	args := append([]any{key.Digest(id), s.replica, presence, store.Capacity, streamMaxLen, channel,
		store.HistoryLimit}, anys(s.live.deadNow())...)
	// The member is unknown until Redis answers: withdrawScript finds it
	// by the key's digest.
	undo := leave{keys: keys, channel: channel, member: key.Digest(id), value: s.replica + "/" + presence, undo: undoRejoin}
	reply, err := s.tryJoin(ctx, rejoinScript, keys, args, undo)
	if err != nil {
		return nil, err
	}
	if reply.status == "given" {
		return nil, fmt.Errorf("join room: %w", store.ErrGivenAway)
	}
	if reply.status != "ok" {
		return nil, fmt.Errorf("join room: %w", store.ErrNotFound)
	}
	sealedName := ""
	for _, n := range reply.names {
		if n[0] == reply.member {
			sealedName = n[1]
		}
	}
	me := secrets.member(reply.member, sealedName)
	return s.seat(ctx, id, secrets, keys, channel, reply, me, sealedName, presence, key)
}

// nameAvoiding is a new name whose animal is none of the names' (member /
// sealed name pairs, as joinScript answers them).
func nameAvoiding(secrets roomSecrets, names [][2]string) string {
	taken := make([]store.Member, 0, len(names))
	for _, n := range names {
		taken = append(taken, secrets.member(n[0], n[1]))
	}
	return store.NewMemberNameExcept(taken)
}

// seat makes the seat a join or a rejoin took, from the script's reply.
func (s *Store) seat(ctx context.Context, id store.RoomID, secrets roomSecrets, keys []string, channel string,
	reply joinReply, me store.Member, sealedName, presence string, key store.SeatKey) (store.Seat, error) {
	seat := &seat{
		snapshot: store.Snapshot{
			Room: store.Room{ID: id, CreatedAt: reply.created, ExpiresAt: reply.deadline},
			Me:   me, Key: key, Sealed: reply.sealed, Back: reply.member != "",
		},
		sealedName: sealedName,
		value:      s.replica + "/" + presence,
		events:     store.NewQueue(),
		cursor:     reply.joinID,
	}
	members := make(map[string]string, len(reply.seats))
	var others [][2]string // the seats of the others
	for _, pair := range reply.seats {
		if pair[0] == me.ID {
			continue // this person's own older connection, taken over
		}
		members[pair[0]] = seatReplica(pair[1])
		others = append(others, pair)
	}
	var away []store.Member
	for _, n := range reply.names {
		switch _, present := members[n[0]]; {
		case n[0] == me.ID:
		case present:
			seat.snapshot.Others = append(seat.snapshot.Others, secrets.member(n[0], n[1]))
		default:
			away = append(away, secrets.member(n[0], n[1]))
		}
	}
	// A sealed room keeps the seats of exactly the two who met: with the
	// other one not here, theirs waits for them. (A room this very join
	// sealed has both here, and forgot whoever was away.)
	if reply.sealed && len(seat.snapshot.Others) == 0 {
		seat.snapshot.Away = away
	}
	for _, e := range reply.history {
		if e.fields["t"] != "m" {
			continue
		}
		if msg, ok := secrets.message(e); ok {
			seat.snapshot.History = append(seat.snapshot.History, msg)
		}
		if len(seat.snapshot.History) == store.HistoryLimit {
			break
		}
	}
	slices.Reverse(seat.snapshot.History)

	r, err := s.attach(seat, secrets, keys, channel, members)
	if err != nil {
		// Closed while joining: withdraw the seat rather than leave a ghost.
		undo := leave{keys: keys, channel: channel, member: me.ID, value: seat.value, undo: undoJoin}
		if seat.snapshot.Back {
			undo.member, undo.undo = key.Digest(id), undoRejoin
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		s.leaveAll(wctx, []leave{undo})
		return nil, err
	}
	s.awaitSubscribed(ctx, channel)
	// A partner on a replica that died since the last heartbeat is a ghost:
	// free its seat now rather than at that replica's next notice.
	if unknown := s.unknownReplicas(others); len(unknown) > 0 {
		if dead, err := s.live.confirmDead(ctx, unknown); err == nil && len(dead) > 0 {
			r.reap(ctx, dead)
		}
	}
	return seat, nil
}

// joinReply is the answer of joinScript and rejoinScript.
type joinReply struct {
	status            string
	created, deadline time.Time
	joinID            string
	seats             [][2]string // member, seat: the others, or who fills the room
	names             [][2]string // member, sealed name
	history           []entry     // newest first
	sealed            bool
	member            string // who rejoined
}

// tryJoin runs a join or rejoin script until Redis answers it. While no
// answer comes it repeats the very same request, which the script answers
// with the seat the first one took, as long as ctx lasts and joinPatience
// at most; a seat taken by a try whose answer came late is the answer too.
// A request given up unanswered may still have taken a seat, or
// take it on arrival: undo withdraws it as soon as Redis answers again, so
// nobody is left with a ghost in the room.
func (s *Store) tryJoin(ctx context.Context, script *redis.Script, keys []string, args []any, undo leave) (joinReply, error) {
	patience := time.NewTimer(joinPatience)
	defer patience.Stop()
	// A try given up on may still be answered. A seat it took answers the
	// request, whichever try took it (any later one repeats it): it is
	// taken as soon as it comes, so a Redis that answers later than a
	// call waits still lets people in.
	rejoin := script == rejoinScript
	seated := make(chan any, 1)
	call := func(ctx context.Context) (any, error) {
		res, err := script.Run(ctx, s.rdb, keys, args...).Result()
		if err == nil {
			if r, perr := parseJoinReply(res, rejoin); perr == nil && r.status == "ok" {
				select {
				case seated <- res:
				default:
				}
			}
		}
		return res, err
	}
	var res any
	var err error
	for tries := 0; ; tries++ {
		res, err = s.patiently(ctx, opTimeout, call)
		if c := classify(err); c == answered || c == full {
			if c == full {
				s.full.refused("join")
				if tries > 0 {
					s.giveUp(undo) // an earlier try may have run
				}
			}
			break
		}
		wait := time.NewTimer(backoff(tries))
		gaveUp := false
		select {
		case <-wait.C:
			continue
		case res = <-seated:
			err = nil
		case <-ctx.Done():
			gaveUp = true
		case <-patience.C:
			gaveUp = true
		case <-s.done:
			gaveUp = true
		}
		wait.Stop()
		if gaveUp {
			select {
			case res = <-seated: // came just in time
				err = nil
			default:
				s.giveUp(undo)
			}
		}
		break
	}
	if err != nil {
		return joinReply{}, fmt.Errorf("join room: %w", failure(err))
	}
	reply, err := parseJoinReply(res, script == rejoinScript)
	if err != nil {
		return joinReply{}, fmt.Errorf("join room: %w", err)
	}
	if reply.status == "ok" {
		s.full.wrote()
	}
	return reply, nil
}

// parseJoinReply reads the reply of joinScript, or of rejoinScript, whose
// "ok" carries the member as a ninth part.
func parseJoinReply(res any, rejoin bool) (joinReply, error) {
	parts, err := asSlice("join reply", res)
	if err != nil {
		return joinReply{}, err
	}
	var r joinReply
	if r.status, err = status(parts); err != nil {
		return joinReply{}, err
	}
	switch {
	case (r.status == "gone" || r.status == "sealed" || r.status == "given") && len(parts) == 1:
		return r, nil
	case r.status == "names" && len(parts) == 3 && !rejoin:
		// The name given away, as a pair of its own, and the others'.
		given, err := asString("given name", parts[1])
		if err != nil {
			return joinReply{}, err
		}
		r.names, err = asPairs("names", parts[2])
		r.names = append(r.names, [2]string{"", given})
		return r, err
	case r.status == "full" && len(parts) == 2:
		r.seats, err = asPairs("seats", parts[1])
		return r, err
	case r.status == "ok" && len(parts) == 8 && !rejoin, r.status == "ok" && len(parts) == 9 && rejoin:
	default:
		return joinReply{}, fmt.Errorf("%w: join reply %q of %d parts", errMalformed, r.status, len(parts))
	}
	created, err1 := asInt("created", parts[1])
	deadline, err2 := asInt("deadline", parts[2])
	joinID, err3 := asString("join entry", parts[3])
	seats, err4 := asPairs("seats", parts[4])
	names, err5 := asPairs("names", parts[5])
	history, err6 := parseEntries(parts[6])
	sealed, err7 := asInt("sealed", parts[7])
	var err8 error
	if rejoin {
		r.member, err8 = asString("member", parts[8])
	}
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7, err8); err != nil {
		return joinReply{}, err
	}
	if _, _, ok := parseStreamID(joinID); !ok {
		return joinReply{}, fmt.Errorf("%w: join entry %q", errMalformed, joinID)
	}
	r.created, r.deadline, r.joinID = time.UnixMilli(created), time.UnixMilli(deadline), joinID
	r.seats, r.names, r.history, r.sealed = seats, names, history, sealed == 1
	return r, nil
}

// unknownReplicas lists the replicas of seats that are neither this one
// nor known to be alive.
func (s *Store) unknownReplicas(seats [][2]string) []string {
	var out []string
	for _, pair := range seats {
		if rid := seatReplica(pair[1]); rid != s.replica && !s.live.knownAlive(rid) && !slices.Contains(out, rid) {
			out = append(out, rid)
		}
	}
	return out
}

// attach adds a freshly joined seat to this replica's view of its room.
func (s *Store) attach(seat *seat, secrets roomSecrets, keys []string, channel string, members map[string]string) (*room, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, store.ErrClosed
	}
	r := s.rooms[channel]
	if r == nil || r.isEnded() {
		r = newRoom(s, secrets, keys, channel, seat.snapshot.Room.ExpiresAt)
		if !s.spawn("room follower", r.follow) {
			s.mu.Unlock()
			return nil, store.ErrClosed
		}
		r.armExpiry(time.Until(r.deadline))
		s.rooms[channel] = r
	}
	down, _ := s.link.state()
	r.add(seat, members, down)
	s.mu.Unlock()

	s.syncSubscription(channel)
	r.poke()
	return r, nil
}

// release forgets r once no seat of this replica is in it.
func (s *Store) release(r *room) {
	s.mu.Lock()
	idle := r.endIfIdle()
	mine := s.rooms[r.channel] == r
	if idle && mine {
		delete(s.rooms, r.channel)
	}
	s.mu.Unlock()
	if !idle {
		return
	}
	r.stopWork()
	if mine {
		s.syncSubscription(r.channel)
	}
}

// giveUp queues seats to be given up in Redis as soon as it answers.
func (s *Store) giveUp(leaves ...leave) {
	if len(leaves) == 0 {
		return
	}
	s.pendMu.Lock()
	s.pending = append(s.pending, leaves...)
	s.pendMu.Unlock()
}

// releasePending gives up the queued seats.
func (s *Store) releasePending(ctx context.Context) {
	s.pendMu.Lock()
	todo := s.pending
	s.pending = nil
	s.pendMu.Unlock()
	if len(todo) == 0 {
		return
	}
	// As long as any late reply is awaited: a Redis that answers late
	// must not keep a ghost seat for as long as it is slow.
	ctx, cancel := context.WithTimeout(ctx, replyWait)
	defer cancel()
	failed := s.leaveAll(ctx, todo)
	s.giveUp(failed...)
}

// leaveBatch is how many seats one round trip gives up.
const leaveBatch = 256

// leaveAll gives up seats, a batch a round trip, until ctx ends, and
// returns those Redis did not confirm.
func (s *Store) leaveAll(ctx context.Context, leaves []leave) (failed []leave) {
	for len(leaves) > 0 {
		batch := leaves[:min(len(leaves), leaveBatch)]
		leaves = leaves[len(batch):]
		if ctx.Err() != nil {
			failed = append(failed, batch...)
			continue
		}
		cmds := make([]*redis.Cmd, len(batch))
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, l := range batch {
				cmds[i] = l.eval(ctx, p)
			}
			return nil
		})
		s.link.note(pathCommands, err)
		for i, cmd := range cmds {
			if cmd.Err() != nil && classify(cmd.Err()) != answered {
				failed = append(failed, batch[i])
			}
		}
	}
	return failed
}

// Close gives up every seat held here (partners on other replicas see them
// leave), says this replica is gone, and stops everything of the store.
// The rooms themselves live on in Redis. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Store) close() error {
	s.mu.Lock()
	s.closed = true
	rooms := slices.Collect(maps.Values(s.rooms))
	s.mu.Unlock()

	var leaves []leave
	for _, r := range rooms {
		leaves = append(leaves, r.shutdown()...)
	}
	s.pendMu.Lock()
	leaves = append(leaves, s.pending...)
	s.pending = nil
	s.pendMu.Unlock()
	// Bounded as one call is: a Redis that does not answer costs Close a
	// wait, and the seats are freed by the other replicas (below, this one
	// says it is gone).
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var errs []error
	if failed := s.leaveAll(ctx, leaves); len(failed) > 0 {
		errs = append(errs, fmt.Errorf("give up %d seats: %w (they are freed within the lease)", len(failed), store.ErrUnavailable))
	}
	if err := s.live.depart(context.Background()); err != nil {
		errs = append(errs, err)
	}

	s.lifeMu.Lock()
	s.stopping = true
	s.lifeMu.Unlock()
	close(s.done)
	s.cancelBg()
	s.psMu.Lock()
	for _, sh := range s.shards {
		if err := sh.ps.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close pubsub: %w", err))
		}
	}
	s.psMu.Unlock()
	s.wg.Wait()
	if err := s.live.close(); err != nil {
		errs = append(errs, fmt.Errorf("close the heartbeat's client: %w", err))
	}
	return errors.Join(errs...)
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// spawn runs loop in a goroutine of the store, restarting it after a
// panic (a bug must not take every room of this replica down with it). It
// reports false, and starts nothing, once Close has begun to stop.
func (s *Store) spawn(what string, loop func()) bool {
	return s.start(func() {
		for s.panicked(what, loop) {
			select {
			case <-s.done:
				return
			case <-time.After(time.Second):
			}
		}
	})
}

// afterFunc runs f after d in a goroutine the store waits for in Close;
// stop the returned timer to cancel it.
func (s *Store) afterFunc(d time.Duration, f func()) *time.Timer {
	return time.AfterFunc(d, func() {
		s.lifeMu.Lock()
		if s.stopping {
			s.lifeMu.Unlock()
			return
		}
		s.wg.Add(1)
		s.lifeMu.Unlock()
		defer s.wg.Done()
		s.panicked("timer", f)
	})
}

func (s *Store) panicked(what string, f func()) (panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("store goroutine panicked", "goroutine", what, "panic", r, "stack", string(debug.Stack()))
			panicked = true
		}
	}()
	f()
	return false
}

// linkChanged tells every seat here that the link went down or came back.
func (s *Store) linkChanged(down bool) {
	s.mu.Lock()
	rooms := slices.Collect(maps.Values(s.rooms))
	s.mu.Unlock()
	for _, r := range rooms {
		r.linkChanged(down)
	}
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, v := range ss {
		out[i] = v
	}
	return out
}
