package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/ssh"
	"github.com/muesli/termenv"
	gossh "golang.org/x/crypto/ssh"

	"github.com/ssh-burn/chat/limits"
	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui"
	"github.com/ssh-burn/chat/ui/screen"
)

// storeTimeout bounds the store calls made while routing a session.
const storeTimeout = 10 * time.Second

// hangUpGrace is how long a client may keep a connection open after its
// session ended before the server closes it.
const hangUpGrace = 2 * time.Second

func (s *Server) closeConnection(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		next(sess)
		_ = sess.Exit(0)
		// A well-behaved client hangs up once its session is closed. Closing
		// first would reset the connection while the client's last packets
		// sit unread, and a reset can make the client drop the final
		// message it has not yet printed. So close only clients that
		// linger.
		linger := time.NewTimer(hangUpGrace)
		defer linger.Stop()
		select {
		case <-sess.Context().Done():
		case <-linger.C:
			if conn, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn); ok {
				_ = conn.Close()
			}
		}
	}
}

func (s *Server) recoverPanics(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		defer func() {
			if r := recover(); r != nil {
				s.log.Error("session panicked", "panic", r, "stack", string(debug.Stack()))
				refuse(sess, "Something went wrong on our side. Please try again.")
			}
		}()
		next(sess)
	}
}

func (s *Server) refuseCommands(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		// A session without a terminal (ssh -T) is served: it gets the
		// chat in lines (see plainMode).
		switch {
		case len(sess.Command()) > 0 || sess.Subsystem() != "":
			s.refusedSession(slog.LevelInfo, refusedCommand)
			cmd := s.commandFor(sess.User(), "-t")
			refuse(sess, "This server runs only the chat, not commands. Connect with: "+cmd, cmd)
		default:
			next(sess)
		}
	}
}

// commandFor is the command a user should run instead, keeping their room ID
// or rejoin command if (and only if) they gave a valid one. The raw
// username is never echoed.
func (s *Server) commandFor(user string, options ...string) string {
	t, err := parseUser(user)
	switch {
	case err != nil:
		return s.public.Command("", options...)
	case t.rejoin:
		return s.public.Command(store.RejoinName(t.id, t.key), options...)
	}
	return s.public.Command(t.id.String(), options...)
}

func (s *Server) limitSessions(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		if v, ok := sess.Context().Value(refusalKey{}).(limits.Verdict); ok {
			s.refusedConnection(connVerdict(v))
			refuse(sess, "Too many connections from your address at once: close one and try again.")
			return
		}
		defer s.sessions.Add(-1)
		if s.sessions.Add(1) > int64(s.limits.MaxSessions) {
			s.refusedSession(slog.LevelWarn, refusedBusy)
			refuse(sess, "The server is busy. Please try again in a minute.")
			return
		}
		next(sess)
	}
}

// refusedByLimits is a refusal by the per-address limits while a seat is
// taken.
type refusedByLimits struct{ verdict limits.Verdict }

func (r refusedByLimits) Error() string { return "per-address limits: " + r.verdict.Reason() }

func (s *Server) runChat(ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		seat, created, err := s.takeSeat(sess.Context(), sess.User(), sess.RemoteAddr())
		if err != nil {
			s.refuseJoin(sess, err)
			return
		}
		defer func() {
			// Background: the session's context is already cancelled when
			// the client disconnects, and the seat must be freed anyway.
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			defer cancel()
			if err := seat.Leave(ctx); err != nil {
				s.metrics.StoreErrors.WithLabelValues(string(opLeave)).Inc()
				s.log.Warn("leave room", "room", seat.Snapshot().Room.ID, "err", err)
			}
		}()
		room := seat.Snapshot().Room.ID
		if created {
			s.metrics.RoomsCreated.Inc()
		}
		s.metrics.Sessions.Inc()
		s.log.Info("seat taken", "room", room, "created", created)
		start, ending := time.Now(), endingConnectionLost
		defer func() {
			s.metrics.Sessions.Dec()
			s.metrics.SessionsEnded.WithLabelValues(string(ending)).Inc()
			s.log.Info("session ended", "room", room, "reason", string(ending), "duration", time.Since(start).Round(time.Millisecond))
		}()

		run := s.runProgram
		if plainMode(sess) {
			run = s.runPlain
		}
		outcome, err := run(sess, seat)
		switch {
		case errors.Is(err, errConnectionGone):
			return // nobody is left to tell
		case errors.Is(err, errScreenPanicked):
			ending = endingError // logged where it was caught, with its stack
			refuse(sess, "Something went wrong on our side. Please try again.")
			return
		case err != nil:
			ending = endingError
			s.log.Error("chat screen failed", "room", room, "err", err)
			refuse(sess, "Something went wrong on our side. Please try again.")
			return
		}
		ending = outcome.Ending
		fmt.Fprintln(sess, outcome.Wrapped())
		_ = sess.Exit(outcome.Ending.ExitCode())
	}
}

// errConnectionGone ends a chat whose client went away: there is nobody
// left to tell anything.
var errConnectionGone = errors.New("the connection is gone")

// takeSeat routes a username: a room ID joins that room, a rejoin command
// takes its person's own seat back, and anything shaped like neither (such
// as the local login name OpenSSH sends by default) creates a room. A
// wrong key counts as a failed join, like an unknown room, whose answer it
// gets. What the store is made to keep (a room, a seat) is charged to the
// client's byte budget first. The seat it returns sends at most the
// server's message rate, and charges each message to the budget.
func (s *Server) takeSeat(ctx context.Context, user string, from net.Addr) (seat store.Seat, created bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	client := limits.ClientKey(from)
	want, err := parseUser(user)
	id := want.id
	switch {
	case errors.Is(err, store.ErrNotRoomID):
		if v := s.addrs.AllowRoom(ctx, client); v != limits.Admitted {
			return nil, false, refusedByLimits{v}
		}
		// The room, and the creator's seat in it.
		if v := s.addrs.Spend(ctx, client, store.RoomCost+store.JoinCost); v != limits.Admitted {
			return nil, false, refusedByLimits{v}
		}
		room, err := s.store.Create(ctx)
		if err != nil {
			return nil, false, err // the store says "create room: …"
		}
		id, created = room.ID, true
	default:
		// Checked before the ID is: guessing room IDs stays slow whether
		// the guesses are well-formed or not.
		if v := s.addrs.MayTryJoin(ctx, client); v != limits.Admitted {
			return nil, false, refusedByLimits{v}
		}
		if err != nil {
			s.addrs.FailedJoin(ctx, client)
			return nil, false, err
		}
		if v := s.addrs.Spend(ctx, client, store.JoinCost); v != limits.Admitted {
			return nil, false, refusedByLimits{v}
		}
	}
	if want.rejoin {
		seat, err = s.store.Rejoin(ctx, id, want.key)
	} else {
		seat, err = s.store.Join(ctx, id)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrSealed) {
		s.addrs.FailedJoin(ctx, client)
	}
	if err != nil {
		return nil, created, err // the store says "join room: …"
	}
	return newPacedSeat(seat, pacing{
		perSecond: s.limits.MessagesPerSecond, burst: s.limits.MessageBurst, addrs: s.addrs, client: client,
	}, s.metrics), created, nil
}

func (s *Server) refuseJoin(sess ssh.Session, err error) {
	var (
		text    string
		reason  joinRefusal
		limited refusedByLimits
	)
	switch {
	case errors.As(err, &limited):
		text, reason = limitsRefusal(limited.verdict), joinVerdict(limited.verdict)
	case errors.Is(err, store.ErrFull):
		text, reason = "This room is full: it already holds two people.", refusedFull
	case errors.Is(err, store.ErrSealed):
		text, reason = "This room is private to the two people who met in it.", refusedSealed
	case errors.Is(err, store.ErrGivenAway):
		text, reason = "Your seat in this room was given to someone else: your partner reopened it while you were away.", refusedGivenAway
	case errors.Is(err, store.ErrNotFound):
		// A rejoin command with a wrong key gets this answer too.
		text, reason = "No such room (it may have expired or been destroyed).", refusedNotFound
	case errors.Is(err, errMistypedRejoin):
		text, reason = "No such room: that command has a typo. Check it and try again.", refusedMistyped
	case errors.Is(err, store.ErrMistypedRoomID):
		text, reason = "No such room: that room ID has a typo. Check it and try again.", refusedMistyped
	case errors.Is(err, store.ErrClosed):
		text, reason = "The server is shutting down. Please try again in a moment.", refusedClosed
	case errors.Is(err, store.ErrServiceFull):
		// The store logs it, sparingly, with a count.
		s.metrics.StoreErrors.WithLabelValues(string(opJoin)).Inc()
		text, reason = "The service is full right now. Please try again in a few minutes.", refusedServiceFull
	case errors.Is(err, store.ErrUnavailable):
		s.metrics.StoreErrors.WithLabelValues(string(opJoin)).Inc()
		s.log.Warn("take seat", "err", err)
		text, reason = "The chat cannot reach its room store right now. Please try again in a moment.", refusedUnavailable
	default:
		s.metrics.StoreErrors.WithLabelValues(string(opJoin)).Inc()
		s.log.Error("take seat", "err", err)
		text, reason = "Something went wrong on our side. Please try again.", refusedError
	}
	s.refusedSession(slog.LevelInfo, reason)
	refuse(sess, text)
}

// limitsRefusal is what a person is told when the per-address limits
// refuse them a room or a seat.
func limitsRefusal(v limits.Verdict) string {
	switch v {
	case limits.TooManyRooms:
		return "You have opened too many rooms in the last minute. Please wait a minute."
	case limits.TooManyFailedJoins:
		return "Too many attempts to join rooms that do not exist. Please wait a minute."
	case limits.OverBudget:
		return "Your address has sent too much lately. Please try again in a few minutes."
	case limits.Headroom:
		return "The service is nearly full and keeps what is left for lighter use. Please try again in a few minutes."
	}
	return "The server is busy. Please try again in a minute."
}

// refuse tells the user why in one line (broken between words to fit a
// terminal, but never inside a command of commands) and exits non-zero.
func refuse(sess ssh.Session, text string, commands ...string) {
	if pty, _, ok := sess.Pty(); ok {
		width, _ := clampWindow(pty.Window.Width, pty.Window.Height)
		text = ui.WrapEnd(text, width, commands...)
	}
	fmt.Fprintln(sess.Stderr(), text)
	_ = sess.Exit(ui.ExitRefused)
}

// runProgram runs the chat screen until it ends, and returns how.
// errConnectionGone means the client went away first; errScreenPanicked or
// another error, that the screen failed (a bug), after the person's
// terminal was restored.
//
// Nothing of a session waits in a goroutine of its own for things that
// rarely happen (a resize, a Ctrl+C, the idle timeout, a keepalive): each
// gets a goroutine when it happens, to hand its message to the program,
// whose Send waits until the program takes it. What stays is the program,
// the reader of the client's input and the listener for the room.
func (s *Server) runProgram(sess ssh.Session, seat store.Seat) (ui.Outcome, error) {
	pty, _, _ := sess.Pty()
	width, height := clampWindow(pty.Window.Width, pty.Window.Height)
	look := lookOf(sess.Environ(), pty.Term)
	model := ui.New(ui.Config{
		Seat:              seat,
		JoinCommand:       s.public.Command(seat.Snapshot().Room.ID.String()),
		NarrowJoinCommand: s.public.NarrowCommand(seat.Snapshot().Room.ID.String()),
		// Shown only to its person, never logged.
		RejoinCommand:   s.public.Command(store.RejoinName(seat.Snapshot().Room.ID, seat.Snapshot().Key)),
		Profile:         look.profile,
		NoColor:         look.noColor,
		TerminalCursor:  look.ownCursor,
		LightBackground: lightBackground(sess.Environ()),
		Location:        clientLocation(sess.Environ()),
		Width:           width,
		Height:          height,
		Clock:           s.clock,
		// The keyboard says when it has handed on all it has.
		InputSettles: true,
	})
	// The screen draws each change at once and costs nothing while
	// nothing changes (see package screen); Bubble Tea's own renderer,
	// which wakes 60 times a second per session, is off.
	raw, _ := sess.Context().Value(rawSessionKey{}).(*rawSession)
	var out io.Writer = sess
	if raw != nil && raw.channel != nil {
		out = raw.channel
	}
	// Only the screen writes to the channel while the chat runs (two
	// writers at once would corrupt each other's packets), and nothing
	// does after a Close that failed: display.Close comes first on every
	// way out.
	display := s.writers.Screen(out, width, height)
	shown := display.Model(model)
	if s.wrapScreen != nil {
		shown = s.wrapScreen(shown)
	}
	guard, ctx := newProgramGuard(sess.Context(), s.log)
	var program *tea.Program
	keys := newKeyboard(s.limits.InputBytesPerSecond, func(msg tea.Msg) { program.Send(msg) })
	defer keys.stop()
	program = tea.NewProgram(guard.model(shown),
		tea.WithoutRenderer(),
		tea.WithInput(keys),
		tea.WithFilter(guard.filter(throttleKeys(sess.Context(), s.limits.KeysPerSecond))),
		tea.WithOutput(io.Discard),
		tea.WithContext(ctx),
		// Signals belong to the server process, not to one session.
		tea.WithoutSignalHandler(),
		// Panics are the guard's: Bubble Tea's handler prints them on
		// the process's stdout.
		tea.WithoutCatchPanics(),
	)
	go s.receiveKeys(sess, keys)
	// The room's events and the countdown reach the program from here
	// until the seat is left (deferred by runChat), which ends them.
	go s.listen(model.Listen(), program, seat.Snapshot().Me.ID)
	if raw != nil {
		raw.windows.deliverTo(program.Send)
		defer raw.windows.deliverTo(nil)
	}
	stopKeepalive := s.keepAlive(sess)
	defer stopKeepalive()
	stopTimeouts := s.enforceTimeouts(program.Send, keys.lastTyped, seat.Snapshot().Room.ExpiresAt)
	defer stopTimeouts()

	_, runErr := program.Run()
	closeErr := display.Close()
	if errors.Is(closeErr, screen.ErrStuck) {
		// The client reads nothing and a frame cannot go out: closing
		// the channel ends that write. Nothing more can be said.
		if raw != nil && raw.channel != nil {
			_ = raw.channel.Close()
		}
		return ui.Outcome{}, errConnectionGone
	}
	switch {
	case guard.panicked():
		return ui.Outcome{}, errScreenPanicked
	case runErr != nil:
		// Killed: the session's context ended with its connection.
		return ui.Outcome{}, errConnectionGone
	case closeErr != nil && sess.Context().Err() == nil:
		return ui.Outcome{}, fmt.Errorf("chat screen: %w", closeErr)
	case closeErr != nil:
		return ui.Outcome{}, errConnectionGone
	}
	// The model is updated in place.
	return model.Outcome(), nil
}

// receiveKeys reads the session's input into keys until the client hangs
// up, which ends the session's channel.
func (s *Server) receiveKeys(sess ssh.Session, keys *keyboard) {
	defer s.recoverGoroutine("keyboard")
	keys.receive(sess)
}

// listen hands the room's events and ticks to the program, timing each
// message from the partner from its sending to here.
func (s *Server) listen(listen func(send func(tea.Msg)), program *tea.Program, me string) {
	defer s.recoverGoroutine("room events")
	listen(func(msg tea.Msg) {
		if ev, ok := msg.(store.MessageEvent); ok && ev.Message.From.ID != me {
			s.metrics.Delivered(ev.Message.At)
		}
		program.Send(msg)
	})
}

// enforceTimeouts ends the chat politely when its person has typed nothing
// for IdleTimeout, or at MaxSession whatever they do, until stop is
// called. Idleness never speaks over the room's own end: with the default
// settings the creator's idle timer runs out a moment after the room
// expires, and the screen must say that the room expired, not that it
// lives on.
func (s *Server) enforceTimeouts(send func(tea.Msg), lastTyped func() time.Time, roomEnds time.Time) (stop func()) {
	t := &sessionTimers{}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.idle = time.AfterFunc(s.limits.IdleTimeout, func() {
		defer s.recoverGoroutine("idle timeout")
		if quiet := time.Since(lastTyped()); quiet < s.limits.IdleTimeout {
			t.rearmIdle(s.limits.IdleTimeout - quiet)
			return
		}
		if time.Until(roomEnds) < time.Second {
			// The room's end is on its way; should it not come (the
			// store unreachable), idleness ends the session one
			// period later.
			t.rearmIdle(s.limits.IdleTimeout)
			return
		}
		// The session's end line says why (runChat).
		send(ui.Disconnect{Reason: fmt.Sprintf("You typed nothing for %s, so you were disconnected.", s.limits.IdleTimeout), Ending: ui.EndingIdle})
	})
	t.limit = time.AfterFunc(s.limits.MaxSession, func() {
		defer s.recoverGoroutine("session limit")
		send(ui.Disconnect{Reason: fmt.Sprintf("Sessions last at most %s.", s.limits.MaxSession), Ending: ui.EndingMaxSession})
	})
	return t.stop
}

// sessionTimers are a session's idle and overall time limits: timers, not
// goroutines, since they rarely fire.
type sessionTimers struct {
	mu          sync.Mutex
	idle, limit *time.Timer
	stopped     bool
}

func (t *sessionTimers) rearmIdle(after time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.stopped {
		t.idle.Reset(after)
	}
}

func (t *sessionTimers) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	t.idle.Stop()
	t.limit.Stop()
}

// colorProfile is the colours the client's terminal shows, from what the
// client declared (TERM, COLORTERM, CLICOLOR_FORCE), without asking the
// terminal anything: some terminals never answer such queries, and the
// first screen must not wait. noColor is NO_COLOR (or CLICOLOR=0): no
// colours, though the terminal's other attributes still serve.
func colorProfile(env []string, term string) (profile termenv.Profile, noColor bool) {
	declared := environ(append(env, "TERM="+term))
	out := termenv.NewOutput(io.Discard, termenv.WithEnvironment(declared), termenv.WithUnsafe())
	if out.EnvNoColor() {
		return out.ColorProfile(), true
	}
	return out.EnvColorProfile(), false
}

// environ is a client's environment as termenv reads it.
type environ []string

func (e environ) Environ() []string { return e }

func (e environ) Getenv(key string) string {
	// The last assignment wins, as in a shell.
	for i := len(e) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(e[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// clientLocation is the time zone the client sent in TZ (for example with
// "ssh -o SetEnv=TZ=Europe/Berlin"), or UTC.
func clientLocation(env []string) *time.Location {
	name := environ(env).Getenv("TZ")
	if name == "" || len(name) > 64 {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}
