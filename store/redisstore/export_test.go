package redisstore

import (
	"github.com/redis/go-redis/v9"

	"github.com/ssh-burn/chat/store"
)

// RoomKeys returns the Redis key names and channel of room id.
func RoomKeys(id store.RoomID) ([]string, string) {
	secrets, err := deriveRoomSecrets(id)
	if err != nil {
		panic(err)
	}
	return roomKeys(secrets.tag)
}

// LiveKeys are the keys of the replica registry.
var LiveKeys = liveKeys

// ScriptNames names the store's scripts by their SHA, for a fake Redis.
func ScriptNames() map[string]string {
	names := map[string]string{}
	for name, script := range map[string]*redis.Script{
		"create": createScript, "join": joinScript, "send": sendScript, "stored": storedScript,
		"leave": leaveScript, "reap": reapScript, "read": readScript, "destroy": destroyScript,
		"expire": expireScript, "rejoin": rejoinScript, "reopen": reopenScript, "heartbeat": heartbeatScript, "dead": deadScript, "depart": departScript,
	} {
		names[script.Hash()] = name
	}
	return names
}
