package redisstore

import (
	"bytes"
	"reflect"

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

// scripts are the store's scripts by name.
var scripts = map[string]*redis.Script{
	"create": createScript, "join": joinScript, "send": sendScript, "stored": storedScript,
	"leave": leaveScript, "reap": reapScript, "read": readScript, "destroy": destroyScript,
	"expire": expireScript, "rejoin": rejoinScript, "reopen": reopenScript, "heartbeat": heartbeatScript, "dead": deadScript, "depart": departScript,
	"withdraw": withdrawScript,
}

// ScriptNames names the store's scripts by their SHA, for a fake Redis.
func ScriptNames() map[string]string {
	names := map[string]string{}
	for name, script := range scripts {
		names[script.Hash()] = name
	}
	return names
}

// MatchScript reports whether a request (as a fault proxy sees it) runs
// the named script: by its SHA (EVALSHA) or by its text (EVAL, as
// pipelines and a Redis that forgot the script have it).
func MatchScript(name string) func(request []byte) bool {
	script := scripts[name]
	if script == nil {
		panic("no script " + name)
	}
	sha := []byte(script.Hash())
	// go-redis keeps the text unexported; reading it is for this test only.
	src := []byte(reflect.ValueOf(script).Elem().FieldByName("src").String())
	return func(request []byte) bool {
		return bytes.Contains(request, sha) || bytes.Contains(request, src)
	}
}

// SlotOf is the cluster hash slot of a key or channel, as the store
// computes it.
var SlotOf = slotOf
