package redisstore

import (
	"bytes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
)

// keyPrefix starts every key and channel of this store. The version names
// the layout: replicas of an older layout never share keys with these.
const keyPrefix = "chat:v5:"

// roomSecrets is everything this store derives from a room ID. The ID is
// the only secret: whoever holds it can join, so it is also what protects
// the room at rest. Redis (a dump, MONITOR, a backup) sees only the tag and
// ciphertext, from which neither the ID nor the text follows.
type roomSecrets struct {
	// tag names the room's keys. It is one-way: knowing it does not let
	// anyone join.
	tag  string
	aead cipher.AEAD
}

// Labels keep the derived values independent of each other.
const (
	labelTag = "ssh-burn chat: key tag v1"
	labelKey = "ssh-burn chat: sealing key v1"
)

func deriveRoomSecrets(id store.RoomID) (roomSecrets, error) {
	tag, err := hkdf.Key(sha256.New, []byte(id), nil, labelTag, 16)
	if err != nil {
		return roomSecrets{}, fmt.Errorf("derive room tag: %w", err)
	}
	key, err := hkdf.Key(sha256.New, []byte(id), nil, labelKey, chacha20poly1305.KeySize)
	if err != nil {
		return roomSecrets{}, fmt.Errorf("derive room key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return roomSecrets{}, fmt.Errorf("room cipher: %w", err)
	}
	return roomSecrets{tag: hex.EncodeToString(tag), aead: aead}, nil
}

// sealedNameSize is what every name is padded to before it is sealed: more
// than the longest store.NewMemberName makes.
const sealedNameSize = 32

// sealName seals a member's name, padded so that every sealed name has
// one length.
func (s roomSecrets) sealName(name string) string { return s.seal("name", name, sealedNameSize) }

// sealBody seals a message body padded to its size class (store.BodyCost),
// so that Redis learns the class of each message and not its length.
func (s roomSecrets) sealBody(body string) string { return s.seal("body", body, store.BodyCost(body)) }

// seal encrypts plain, padded with NULs to size bytes if it is shorter.
// Sanitised text never holds a NUL, so the padding is told apart from it
// without a length. purpose is authenticated with it, with the room's tag,
// so a ciphertext cannot be replayed as another field or into another room.
func (s roomSecrets) seal(purpose, plain string, size int) string {
	padded := make([]byte, max(size, len(plain)))
	copy(padded, plain)
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(padded)+s.aead.Overhead())
	rand.Read(nonce) // never returns an error (crypto/rand)
	return string(s.aead.Seal(nonce, nonce, padded, s.additionalData(purpose)))
}

var errUnsealable = errors.New("stored value failed authentication")

// open decrypts what seal made and strips its padding.
func (s roomSecrets) open(purpose, sealed string) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", errUnsealable
	}
	plain, err := s.aead.Open(nil, []byte(sealed[:n]), []byte(sealed[n:]), s.additionalData(purpose))
	if err != nil {
		return "", errUnsealable
	}
	if i := bytes.IndexByte(plain, 0); i >= 0 {
		plain = plain[:i]
	}
	return string(plain), nil
}

func (s roomSecrets) additionalData(purpose string) []byte {
	return []byte(s.tag + "\x00" + purpose)
}

// Key indexes: every script gets a room's keys in this order.
const (
	keyMeta    = iota // hash: created, deadline (unix ms), sealed (0|1), hb (the history's bytes), cut (the newest entry trimmed from log or history), j:<member> (their join entry), w:<presence> (withdrawn or ended: refused)
	keySeats          // hash: member ID -> seat in use: "replica/presence" (the replica holding it, and which of its person's connections)
	keyNames          // hash: member ID -> sealed anonymous name, for every member present or away
	keyLog            // stream: t (m|j|l|o), m (member), n (sealed name), b (j: back), r (replica), k (l: seat kept); a message's entry is t alone, its history entry's ID
	keyHistory        // stream: the messages, under their log entries' IDs: t (m), m, n, b (sealed body), i (message ID), c (cost in bytes)
	keyIDs            // sorted set: message IDs stored lately -> when (unix ms)
	keyOwners         // hash: digest of a member's key (store.SeatKey.Digest) -> member ID
	keyCount
)

// roomKeys names a room's keys and channel. The braces make every key of a
// room hash to one cluster slot, so each script touches a single node.
func roomKeys(tag string) (keys []string, channel string) {
	keys = make([]string, keyCount)
	for i, part := range [keyCount]string{
		keyMeta: "meta", keySeats: "seats", keyNames: "names", keyLog: "log", keyHistory: "history", keyIDs: "ids",
		keyOwners: "owners",
	} {
		keys[i] = keyPrefix + "{" + tag + "}:" + part
	}
	return keys, keyPrefix + "{" + tag + "}"
}

// errMalformed is a reply from Redis that does not have the shape its
// script returns. Redis is trusted to run the scripts, not to be right: a
// reply is checked like any input, and a wrong one is an error, never a
// panic.
var errMalformed = errors.New("malformed reply from redis")

func malformed(what string, v any) error {
	return fmt.Errorf("%w: %s is %T", errMalformed, what, v)
}

func asSlice(what string, v any) ([]any, error) {
	s, ok := v.([]any)
	if !ok {
		return nil, malformed(what, v)
	}
	return s, nil
}

func asString(what string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", malformed(what, v)
	}
	return s, nil
}

func asInt(what string, v any) (int64, error) {
	n, ok := v.(int64)
	if !ok {
		return 0, malformed(what, v)
	}
	return n, nil
}

// asStrings reads an array of strings, such as a flat hash or a list of IDs.
func asStrings(what string, v any) ([]string, error) {
	items, err := asSlice(what, v)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, item := range items {
		if out[i], err = asString(what, item); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// asPairs reads a flat array of key/value strings (HGETALL).
func asPairs(what string, v any) ([][2]string, error) {
	flat, err := asStrings(what, v)
	if err != nil {
		return nil, err
	}
	if len(flat)%2 != 0 {
		return nil, fmt.Errorf("%w: %s has %d items", errMalformed, what, len(flat))
	}
	pairs := make([][2]string, 0, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		pairs = append(pairs, [2]string{flat[i], flat[i+1]})
	}
	return pairs, nil
}

// status is the first item of a script's reply, which says which shape
// the rest has.
func status(reply []any) (string, error) {
	if len(reply) == 0 {
		return "", fmt.Errorf("%w: empty reply", errMalformed)
	}
	return asString("status", reply[0])
}

// entry is one record of a room's log.
type entry struct {
	id     string
	fields map[string]string
}

// parseNews reads a message's notification (after its 'm'), as
// sendScript publishes it: "prev id member messageID len(name) " followed
// by the sealed name and the sealed body. prev is the log's entry before
// the message's; the entry is the message as the history keeps it.
func parseNews(payload string) (prev string, e entry, ok bool) {
	var head [5]string
	rest := payload
	for i := range head {
		if head[i], rest, ok = strings.Cut(rest, " "); !ok {
			return "", entry{}, false
		}
	}
	nameLen, err := strconv.Atoi(head[4])
	if err != nil || nameLen < 0 || nameLen > len(rest) {
		return "", entry{}, false
	}
	for _, id := range head[:2] {
		if _, _, ok := parseStreamID(id); !ok {
			return "", entry{}, false
		}
	}
	return head[0], entry{id: head[1], fields: map[string]string{
		"t": "m", "m": head[2], "i": head[3], "n": rest[:nameLen], "b": rest[nameLen:],
	}}, true
}

// parseEntry reads one stream entry: [id, [field, value, ...]].
func parseEntry(raw any) (entry, error) {
	pair, err := asSlice("entry", raw)
	if err != nil {
		return entry{}, err
	}
	if len(pair) != 2 {
		return entry{}, fmt.Errorf("%w: entry of %d parts", errMalformed, len(pair))
	}
	id, err := asString("entry ID", pair[0])
	if err != nil {
		return entry{}, err
	}
	if _, _, ok := parseStreamID(id); !ok {
		return entry{}, fmt.Errorf("%w: entry ID %q", errMalformed, id)
	}
	fields, err := asPairs("entry fields", pair[1])
	if err != nil {
		return entry{}, err
	}
	e := entry{id: id, fields: make(map[string]string, len(fields))}
	for _, f := range fields {
		e.fields[f[0]] = f[1]
	}
	return e, nil
}

// parseEntries reads a list of stream entries.
func parseEntries(raw any) ([]entry, error) {
	items, err := asSlice("entries", raw)
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(items))
	for _, item := range items {
		e, err := parseEntry(item)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// member opens a sealed name. What comes out of Redis is treated as hostile
// like anything else: a name that fails authentication is not shown, and
// one that passes is sanitised again.
func (sec roomSecrets) member(id, sealedName string) store.Member {
	name, err := sec.open("name", sealedName)
	if err != nil {
		name = "anonymous"
	}
	return store.Member{ID: id, Name: safetext.Sanitize(name)}
}

// message opens a message entry; false if it is unreadable.
func (sec roomSecrets) message(e entry) (store.Message, bool) {
	body, err := sec.open("body", e.fields["b"])
	if err != nil {
		return store.Message{}, false
	}
	body = safetext.Sanitize(body)
	if body == "" {
		return store.Message{}, false
	}
	id := store.MessageID(e.fields["i"])
	if !id.Valid() {
		return store.Message{}, false
	}
	return store.Message{ID: id, From: sec.member(e.fields["m"], e.fields["n"]), Body: body, At: streamIDTime(e.id)}, true
}

// event turns a log entry into what seats receive; nil if it is unreadable.
func (sec roomSecrets) event(e entry) store.Event {
	switch e.fields["t"] {
	case "m":
		if msg, ok := sec.message(e); ok {
			return store.MessageEvent{Message: msg}
		}
	case "j":
		return store.JoinedEvent{Member: sec.member(e.fields["m"], e.fields["n"]), Back: e.fields["b"] == "1"}
	case "l":
		return store.LeftEvent{Member: sec.member(e.fields["m"], e.fields["n"]), Kept: e.fields["k"] == "1"}
	case "o":
		return store.ReopenedEvent{Member: sec.member(e.fields["m"], e.fields["n"])}
	}
	return nil
}

// seatReplica is the replica holding a seat, as the seats hash has it
// ("replica/presence").
func seatReplica(seat string) string {
	replica, _, _ := strings.Cut(seat, "/")
	return replica
}

// Stream IDs are "milliseconds-sequence", ordered numerically.
func parseStreamID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return ms, seq, err1 == nil && err2 == nil
}

// streamIDLess orders two IDs that parseEntry accepted (or "", the least).
func streamIDLess(a, b string) bool {
	am, as, _ := parseStreamID(a)
	bm, bs, _ := parseStreamID(b)
	return am < bm || (am == bm && as < bs)
}

func streamIDTime(id string) time.Time {
	ms, _, _ := parseStreamID(id)
	return time.UnixMilli(int64(ms))
}
