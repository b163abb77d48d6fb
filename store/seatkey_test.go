package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ssh-burn/chat/store"
)

func TestRejoinNamesParseBackForgivingHowPeopleRetype(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := store.NewRoomID()
		key := store.NewSeatKey(id)
		name := store.RejoinName(id, key)
		if len(name) != 39 || strings.Count(name, "-") != 7 || !strings.HasPrefix(name, string(id)+"-") {
			t.Fatalf("%q is not the room ID and four more groups", name)
		}
		if seen[name[20:]] {
			t.Fatalf("a key came twice: %q", name)
		}
		seen[name[20:]] = true
		for _, variant := range []string{name, strings.ToUpper(name), strings.NewReplacer("0", "o", "1", "l").Replace(name)} {
			gotID, gotKey, err := store.ParseRejoinName(variant)
			if err != nil || gotID != id || gotKey != key {
				t.Fatalf("ParseRejoinName(%q) = %q, %v; want the room and key back", variant, gotID, err)
			}
		}
	}
}

func TestRejoinNameTyposAreRecognised(t *testing.T) {
	id := store.NewRoomID()
	name := []byte(store.RejoinName(id, store.NewSeatKey(id)))
	caught, total := 0, 0
	for pos := 20; pos < len(name); pos++ { // the key's half; the room ID's is ParseRoomID's
		if name[pos] == '-' {
			continue
		}
		for _, c := range []byte("0123456789abcdefghjkmnpqrstvwxyz") {
			if c == name[pos] {
				continue
			}
			typo := bytes.Clone(name)
			typo[pos] = c
			total++
			switch _, _, err := store.ParseRejoinName(string(typo)); {
			case errors.Is(err, store.ErrMistypedRoomID):
				caught++
			case err != nil:
				t.Fatalf("ParseRejoinName(%q) = %v", typo, err)
			}
		}
	}
	if caught < total*85/100 {
		t.Errorf("caught %d of %d single-character typos", caught, total)
	}
	// A key with another room's ID in front is a typo, not a wrong key.
	other := store.NewRoomID()
	swapped := string(other) + string(name[19:])
	if _, _, err := store.ParseRejoinName(swapped); !errors.Is(err, store.ErrMistypedRoomID) && err != nil {
		t.Errorf("a key behind another room's ID: %v", err)
	}
}

func TestParseRejoinNameRejectsWhatIsNotOne(t *testing.T) {
	id := store.NewRoomID()
	name := store.RejoinName(id, store.NewSeatKey(id))
	for _, s := range []string{
		"", "alice", id.String(), name + "a", name[:38], strings.ReplaceAll(name, "-", ""),
		strings.Replace(name, "-", ".", 4), name[:19] + "-" + strings.Repeat("u", 19), name[:38] + "\x1b",
		strings.Repeat("{", 39), strings.Repeat("a", 4096),
	} {
		if _, _, err := store.ParseRejoinName(s); !errors.Is(err, store.ErrNotRoomID) {
			t.Errorf("ParseRejoinName(%.50q) = %v, want ErrNotRoomID", s, err)
		}
	}
}

// A key never shows itself by accident: not in fmt, not in logs. Its
// digest differs from room to room and says nothing of it.
func TestASeatKeyKeepsItself(t *testing.T) {
	id := store.NewRoomID()
	key := store.NewSeatKey(id)
	secret := store.RejoinName(id, key)[20:]
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", key, "snapshot", store.Snapshot{Key: key})
	for what, text := range map[string]string{
		"%v": fmt.Sprintf("%v", key), "%+v": fmt.Sprintf("%+v", key), "%#v": fmt.Sprintf("%#v", key),
		"%s": fmt.Sprintf("%s", key), "a snapshot": fmt.Sprintf("%+v", store.Snapshot{Key: key}), "a log": logged.String(),
	} {
		if strings.Contains(text, secret) || strings.Contains(text, strings.ReplaceAll(secret, "-", "")) {
			t.Errorf("%s shows the key: %q", what, text)
		}
	}
	digest := key.Digest(id)
	if len(digest) != 64 || digest != key.Digest(id) || digest == key.Digest(store.NewRoomID()) || strings.Contains(digest, strings.ReplaceAll(secret, "-", "")) {
		t.Errorf("digest %q", digest)
	}
	if key.IsZero() || !(store.SeatKey{}).IsZero() {
		t.Error("IsZero")
	}
}

func FuzzParseRejoinName(f *testing.F) {
	id := store.NewRoomID()
	for _, s := range []string{"", "root", store.RejoinName(id, store.NewSeatKey(id)), id.String(), "\x1b]0;x\x07", strings.Repeat("-", 39)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, key, err := store.ParseRejoinName(s)
		if err != nil {
			if !errors.Is(err, store.ErrNotRoomID) && !errors.Is(err, store.ErrMistypedRoomID) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		name := store.RejoinName(id, key)
		againID, againKey, err := store.ParseRejoinName(name)
		if err != nil || againID != id || againKey != key {
			t.Fatalf("canonical %q of %q does not parse to itself: %v", name, s, err)
		}
		for _, c := range []byte(name) {
			if !strings.ContainsRune("0123456789abcdefghjkmnpqrstvwxyz-", rune(c)) {
				t.Fatalf("canonical name %q contains %q", name, c)
			}
		}
	})
}
