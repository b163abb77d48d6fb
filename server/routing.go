package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ssh-burn/chat/store"
)

// errMistypedRejoin: the username has the shape of a rejoin command
// (store.RejoinName) but a check character does not match.
var errMistypedRejoin = fmt.Errorf("rejoin command: %w", store.ErrMistypedRoomID)

// target is what an SSH username asks for, read before anything touches
// the store: a new room (no room ID), a seat in a room, or one's own seat
// back (with its key).
type target struct {
	id     store.RoomID
	key    store.SeatKey
	rejoin bool
}

// parseUser reads a username as a room ID or a rejoin command. Anything
// shaped like neither is store.ErrNotRoomID: a login name, which opens a
// room. A typo, or one of them cut short or run long (store.Misshapen), is
// store.ErrMistypedRoomID, or errMistypedRejoin: never a new room that its
// person would take for their partner's.
func parseUser(user string) (target, error) {
	id, err := store.ParseRoomID(user)
	if !errors.Is(err, store.ErrNotRoomID) {
		return target{id: id}, err
	}
	id, key, err := store.ParseRejoinName(user)
	if mistyped, rejoin := store.Misshapen(user); errors.Is(err, store.ErrNotRoomID) && mistyped {
		if rejoin {
			return target{}, errMistypedRejoin
		}
		return target{}, store.ErrMistypedRoomID
	}
	switch {
	case errors.Is(err, store.ErrMistypedRoomID):
		return target{}, errMistypedRejoin
	case err != nil:
		return target{}, err
	}
	return target{id: id, key: key, rejoin: true}, nil
}

// lightBackground reports whether the client declared a light background
// in COLORFGBG ("fg;bg" or "fg;other;bg", as rxvt, Konsole and others set
// it, and as `ssh -o SendEnv=COLORFGBG` or `-o SetEnv=COLORFGBG=0;15`
// passes it on): background 7 or 9-15 of the 16 colours. Without it the
// background is taken to be dark, as most are.
func lightBackground(env []string) bool {
	value := environ(env).Getenv("COLORFGBG")
	if value == "" || len(value) > 32 {
		return false
	}
	bg, err := strconv.Atoi(value[strings.LastIndexByte(value, ';')+1:])
	return err == nil && (bg == 7 || (bg >= 9 && bg <= 15))
}
