package redisstore

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redistest"
)

// A copy of a join or rejoin request can reach Redis long after the copy
// that answered it (another connection's bytes held up on the way, then
// delivered: TCP keeps what it was given). Whatever became of the seat it
// took (given up, taken over by its person's newer connection), a late
// copy takes nothing: no ghost, no seat taken back from the person.
func TestLateCopyOfAJoinTakesNothing(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	id := store.NewRoomID()
	sec, err := deriveRoomSecrets(id)
	if err != nil {
		t.Fatal(err)
	}
	keys, channel := roomKeys(sec.tag)
	if err := createScript.Run(ctx, rdb, keys, 60000).Err(); err != nil {
		t.Fatal(err)
	}
	key := store.NewSeatKey(id)
	join := func(member, presence string) string {
		t.Helper()
		res, err := joinScript.Run(ctx, rdb, keys, member, sec.sealName("Otter"), "r1", presence, store.Capacity,
			streamMaxLen, channel, store.HistoryLimit, key.Digest(id)).Slice()
		if err != nil {
			t.Fatal(err)
		}
		return res[0].(string)
	}
	rejoin := func(presence string) string {
		t.Helper()
		res, err := rejoinScript.Run(ctx, rdb, keys, key.Digest(id), "r1", presence, store.Capacity,
			streamMaxLen, channel, store.HistoryLimit).Slice()
		if err != nil {
			t.Fatal(err)
		}
		return res[0].(string)
	}
	leave := func(member, presence string) {
		t.Helper()
		if err := leaveScript.Run(ctx, rdb, keys, member, "r1/"+presence, streamMaxLen, channel).Err(); err != nil {
			t.Fatal(err)
		}
	}
	seats := func() map[string]string {
		t.Helper()
		m, err := rdb.HGetAll(ctx, keys[keySeats]).Result()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	// The creator joins (the copy that answered), then leaves the room
	// unsealed; a late copy of that join arrives.
	if st := join("A", "p1"); st != "ok" {
		t.Fatalf("join: %s", st)
	}
	leave("A", "p1")
	join("A", "p1")
	if s := seats(); len(s) != 0 {
		t.Errorf("a late copy of a join given up since took a seat again: %v", s)
	}

	// The person comes back with their key (p2); a late copy of the join
	// they came back from (p1) must not take the seat back.
	if st := rejoin("p2"); st != "ok" {
		t.Fatalf("rejoin: %s", st)
	}
	join("A", "p1")
	if s := seats(); s["A"] != "r1/p2" {
		t.Errorf("a late copy of a join took its person's newer seat over: %v", s)
	}

	// A third connection (p3) takes the seat over and leaves; late copies
	// of the rejoins before it (p2, p3) take nothing.
	if st := rejoin("p3"); st != "ok" {
		t.Fatalf("rejoin: %s", st)
	}
	rejoin("p2")
	if s := seats(); s["A"] != "r1/p3" {
		t.Errorf("a late copy of a rejoin took its person's newer seat over: %v", s)
	}
	leave("A", "p3")
	rejoin("p3")
	if s := seats(); len(s) != 0 {
		t.Errorf("a late copy of a rejoin given up since took a seat again: %v", s)
	}
	// The person still comes back with their key.
	if st := rejoin("p4"); st != "ok" {
		t.Errorf("rejoin after late copies: %s", st)
	}
}
