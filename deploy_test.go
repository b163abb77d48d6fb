package main

import (
	"testing"

	"github.com/ssh-burn/chat/store"
	"github.com/ssh-burn/chat/store/redistest"
)

// The Redis configuration we ship keeps rooms off disk and never evicts a
// key that enforces the cap or a deadline.
func TestDeployRedisConfigKeepsRoomsOffDisk(t *testing.T) {
	srv := redistest.StartWithConfig(t, "deploy/redis.conf")
	client, err := store.NewRedisClient("redis://" + srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for setting, want := range map[string]string{
		"save":                    "",
		"appendonly":              "no",
		"maxmemory-policy":        "noeviction",
		"slowlog-log-slower-than": "-1",
		"slowlog-max-len":         "0",
	} {
		got, err := client.ConfigGet(t.Context(), setting).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got[setting] != want {
			t.Errorf("%s = %q, want %q", setting, got[setting], want)
		}
	}
}
