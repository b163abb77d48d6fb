package server

import (
	"errors"

	"github.com/charmbracelet/ssh"

	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/ui"
	"github.com/ssh-burn/chat/ui/plain"
)

// plainMode reports a session that gets the chat in lines (package
// plain): one without a terminal (ssh -T, a script), or whose terminal
// takes no escape sequences (TERM=dumb: an editor's shell buffer, some
// screen readers' setups). Sessions that ask for a command stay refused
// (refuseCommands).
func plainMode(sess ssh.Session) bool {
	pty, _, hasPty := sess.Pty()
	return !hasPty || pty.Term == "dumb"
}

// runPlain runs the chat in lines until it ends, and returns how, as
// runProgram does for the full screen: the same seat, limits, timeouts
// and endings.
func (s *Server) runPlain(sess ssh.Session, seat store.Seat) (ui.Outcome, error) {
	_, _, hasPty := sess.Pty()
	snap := seat.Snapshot()
	// Its lines go through the session, which turns \n into \r\n for a
	// terminal.
	chat := plain.New(plain.Config{
		Seat:        seat,
		JoinCommand: s.public.Command(snap.Room.ID.String()),
		// Shown only to its person, never logged.
		RejoinCommand: s.public.Command(store.RejoinName(snap.Room.ID, snap.Key)),
		Location:      clientLocation(sess.Environ()),
		// Taken in at a human's pace, as the full screen's keyboard
		// takes it.
		InputBytesPerSecond: s.limits.InputBytesPerSecond,
		// A terminal sends each key as it is pressed and shows nothing
		// itself; without one, the client's side has the line already.
		Echo:    hasPty,
		Recover: s.recoverGoroutine,
	}, sess)
	stopKeepalive := s.keepAlive(sess)
	defer stopKeepalive()
	stopTimeouts := s.enforceTimeouts(chat.Tell, chat.LastInput, snap.Room.ExpiresAt)
	defer stopTimeouts()

	// The chat's reader of the session ends with the session's channel.
	outcome, err := chat.Run(sess.Context(), sess)
	switch {
	case errors.Is(err, plain.ErrStuck):
		// The client reads nothing and a line cannot go out: closing the
		// channel ends that write.
		if raw, _ := sess.Context().Value(rawSessionKey{}).(*rawSession); raw != nil && raw.channel != nil {
			_ = raw.channel.Close()
		}
		return ui.Outcome{}, errConnectionGone
	case err != nil:
		return ui.Outcome{}, errConnectionGone
	}
	return outcome, nil
}
