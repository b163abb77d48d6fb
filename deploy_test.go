package main

import (
	"testing"

	"github.com/ssh-burn/chat/store/redisstore"
	"github.com/ssh-burn/chat/store/redistest"
)

// The Redis configurations we ship (compose's file and the Kubernetes
// ConfigMap), run by a real redis-server, keep rooms off disk and never
// evict a key that enforces the cap or a deadline.
func TestDeployRedisConfigKeepsRoomsOffDisk(t *testing.T) {
	for name, config := range map[string]string{
		"compose":    "deploy/redis.conf",
		"kubernetes": k8sRedisConfigFile(t),
	} {
		t.Run(name, func(t *testing.T) {
			srv := redistest.StartWithConfig(t, config)
			client, err := redisstore.NewClient("redis://" + srv.Addr)
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
		})
	}
}
