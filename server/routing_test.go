package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/ssh-burn/chat/store"
)

// A username is read as a room ID or a rejoin command before anything
// touches the store, forgiving what people mistype, and anything else
// opens a room.
func TestUsernamesAreRoutedByTheirShape(t *testing.T) {
	id := store.NewRoomID()
	key := store.NewSeatKey(id)
	name := store.RejoinName(id, key)
	typo := []byte(name)
	for _, c := range []byte("0123456789abcdefghjkmnpqrstvwxyz") {
		typo[len(typo)-1] = c
		if _, _, err := store.ParseRejoinName(string(typo)); errors.Is(err, store.ErrMistypedRoomID) {
			break
		}
	}
	for _, c := range []struct {
		user   string
		want   target
		err    error
		rejoin bool
	}{
		{user: id.String(), want: target{id: id}},
		{user: name, want: target{id: id, key: key, rejoin: true}},
		{user: strings.ToUpper(name), want: target{id: id, key: key, rejoin: true}},
		{user: string(typo), err: errMistypedRejoin},
		{user: "alice", err: store.ErrNotRoomID},
		{user: strings.ReplaceAll(name, "-", ""), err: store.ErrNotRoomID},
		// Cut short or run long: a typo, never a new room.
		{user: name + "x", err: errMistypedRejoin},
		{user: name[:len(name)-5], err: errMistypedRejoin},
		{user: name[:len(name)-1], err: errMistypedRejoin},
		{user: id.String()[:len(id)-1], err: store.ErrMistypedRoomID},
		{user: id.String() + "k", err: store.ErrMistypedRoomID},
		{user: id.String()[:5] + id.String()[6:], err: store.ErrMistypedRoomID},
		// Login names with dashes are not IDs.
		{user: "mary-ann-smith", err: store.ErrNotRoomID},
		{user: "anna-maria-ebert", err: store.ErrNotRoomID},
		{user: "a-b-c-d-e", err: store.ErrNotRoomID},
		{user: "jean-marc-paul-smith", err: store.ErrNotRoomID},
		{user: "svc-web-prod-east", err: store.ErrNotRoomID},
		{user: "dev-ops-team-bot", err: store.ErrNotRoomID},
		{user: "test-dev-box-001", err: store.ErrNotRoomID},
		{user: "mary-ann-kim-lee", err: store.ErrNotRoomID},
		{user: name[:len(name)-1] + "\x1b", err: store.ErrNotRoomID},
		{user: id.String() + "-" + strings.Repeat("{", 19), err: store.ErrNotRoomID},
		{user: strings.Repeat("a", 4096), err: store.ErrNotRoomID},
	} {
		got, err := parseUser(c.user)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("parseUser(%.50q) = %+v, %v; want %+v, %v", c.user, got, err, c.want, c.err)
		}
	}
}

func TestLightBackgroundIsWhatCOLORFGBGSays(t *testing.T) {
	for value, light := range map[string]bool{
		"": false, "15;0": false, "0;15": true, "0;7": true, "7;0": false, "0;default;15": true,
		"15;default;0": false, "12;8": false, "0;9": true, "garbage": false, "0;16": false,
		"0;" + strings.Repeat("1", 40): false,
	} {
		env := []string{"TERM=xterm"}
		if value != "" {
			env = append(env, "COLORFGBG="+value)
		}
		if got := lightBackground(env); got != light {
			t.Errorf("COLORFGBG=%q: light %v, want %v", value, got, light)
		}
	}
}
