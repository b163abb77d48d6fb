package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ssh-burn/chat/store"
)

func TestNewRoomIDParsesBack(t *testing.T) {
	seen := map[store.RoomID]bool{}
	for range 1000 {
		id := store.NewRoomID()
		if len(id) != 19 || strings.Count(string(id), "-") != 3 {
			t.Fatalf("%q is not shaped xxxx-xxxx-xxxx-xxxx", id)
		}
		got, err := store.ParseRoomID(string(id))
		if err != nil || got != id {
			t.Fatalf("ParseRoomID(%q) = %q, %v", id, got, err)
		}
		if seen[id] {
			t.Fatalf("duplicate ID %q", id)
		}
		seen[id] = true
	}
}

func TestParseRoomIDForgivesHowPeopleRetype(t *testing.T) {
	id := store.NewRoomID()
	for _, variant := range []string{
		strings.ToUpper(string(id)),
		strings.NewReplacer("0", "o", "1", "l").Replace(string(id)),
	} {
		if got, err := store.ParseRoomID(variant); err != nil || got != id {
			t.Errorf("ParseRoomID(%q) = %q, %v; want %q", variant, got, err, id)
		}
	}
}

func TestParseRoomIDRecognisesTypos(t *testing.T) {
	id := []byte(store.NewRoomID())
	caught := 0
	const alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	total := 0
	for pos := range id {
		if id[pos] == '-' {
			continue
		}
		for _, c := range []byte(alphabet) {
			if c == id[pos] {
				continue
			}
			typo := append([]byte(nil), id...)
			typo[pos] = c
			total++
			_, err := store.ParseRoomID(string(typo))
			switch {
			case errors.Is(err, store.ErrMistypedRoomID):
				caught++
			case err != nil:
				t.Fatalf("ParseRoomID(%q) = %v, want ErrMistypedRoomID or success", typo, err)
			}
		}
	}
	// A 5-bit check catches 31 of 32 single-character typos on average.
	if caught < total*85/100 {
		t.Errorf("caught %d of %d single-character typos", caught, total)
	}
}

func TestParseRoomIDRejectsWhatIsNotAnID(t *testing.T) {
	for _, s := range []string{
		"", "root", "alice", "{", "*", "room:*", "\x1b[2J", "\u202eevil",
		strings.Repeat("a", 4096), "k7m2-q9xw-4p3f", "k7m2-q9xw-4p3f-h8n2-aaaa",
		"k7m2q-9xw-4p3f-h8n2", "k7m2--q9xw4p3f-h8n2", "k7m2 q9xw 4p3f h8n2", "uuuu-uuuu-uuuu-uuuu",
		// Login names of an ID's length are names, whatever their letters.
		"christopherjames", "CHRISTOPHERJAMES", strings.ReplaceAll(store.NewRoomID().String(), "-", ""),
	} {
		if _, err := store.ParseRoomID(s); !errors.Is(err, store.ErrNotRoomID) {
			t.Errorf("ParseRoomID(%q) = %v, want ErrNotRoomID", s, err)
		}
	}
}

func TestRoomIDLogValueHidesTheID(t *testing.T) {
	id := store.NewRoomID()
	v := id.LogValue().String()
	if v == "" || strings.Contains(v, string(id)) || strings.Contains(string(id), v) {
		t.Fatalf("LogValue %q reveals %q", v, id)
	}
	if v != id.LogValue().String() {
		t.Fatal("LogValue is not stable")
	}
}

func FuzzParseRoomID(f *testing.F) {
	for _, s := range []string{"", "root", store.NewRoomID().String(), "k7m2-q9xw-4p3f-h8n2", "\x1b]0;x\x07", "O0Il-1iLo-aaaa-bbbb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := store.ParseRoomID(s)
		if err != nil {
			if !errors.Is(err, store.ErrNotRoomID) && !errors.Is(err, store.ErrMistypedRoomID) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, err := store.ParseRoomID(string(id))
		if err != nil || again != id {
			t.Fatalf("canonical %q of %q does not parse to itself: %q, %v", id, s, again, err)
		}
		for _, c := range []byte(id) {
			if !strings.ContainsRune("0123456789abcdefghjkmnpqrstvwxyz-", rune(c)) {
				t.Fatalf("canonical ID %q contains %q", id, c)
			}
		}
	})
}
