package redisstore

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/ssh-burn/chat/internal/safetext"
	"github.com/ssh-burn/chat/store"
)

// Redis learns a message's size class, not its length, and every name has
// one length; what is opened is exactly what was sealed.
func TestSealedLengthsSayOnlyTheClass(t *testing.T) {
	sec, err := deriveRoomSecrets(store.NewRoomID())
	if err != nil {
		t.Fatal(err)
	}
	classes := map[int]int{} // size class -> sealed length
	for _, body := range []string{
		"a", "hello", strings.Repeat("x", 64),
		strings.Repeat("x", 65), strings.Repeat("é", 100), strings.Repeat("x", 256),
		strings.Repeat("x", 257), strings.Repeat("世", 300),
		strings.Repeat("x", 1025), strings.Repeat("e\u0301", 600),
		strings.Repeat("a\u0301\u0302\u0303", 300), strings.Repeat("a\u0301\u0302\u0303", safetext.MaxMessageBytes/7),
	} {
		sealed := sec.sealBody(body)
		class := store.BodyCost(body)
		if n, seen := classes[class]; seen && n != len(sealed) {
			t.Errorf("a body of %d bytes sealed to %d bytes, another of its class (%d) to %d", len(body), len(sealed), class, n)
		}
		classes[class] = len(sealed)
		if got, err := sec.open("body", sealed); err != nil || got != body {
			t.Errorf("a body of %d bytes opened as %d bytes (%v)", len(body), len(got), err)
		}
	}
	if len(classes) != 5 {
		t.Errorf("bodies fell in %d classes, want all 5 covered", len(classes))
	}
	short, long := sec.sealName("anonymous-fox-abcd"), sec.sealName("anonymous-dolphin-abcd")
	if len(short) != len(long) {
		t.Errorf("sealed names of %d and %d bytes", len(short), len(long))
	}
	if got := sec.member("m", long).Name; got != "anonymous-dolphin-abcd" {
		t.Errorf("name opened as %q", got)
	}
}

// A notification that is not what sendScript publishes is never taken
// for a message: the room reads its log instead.
func TestParseNews(t *testing.T) {
	name, body := "sealed name with spaces \x00", "a body\x00 with  spaces and 7 digits"
	good := fmt.Sprintf("1-0 2-5 %s %s %d %s%s", "member", "msgid", len(name), name, body)
	prev, e, ok := parseNews(good)
	want := map[string]string{"t": "m", "m": "member", "i": "msgid", "n": name, "b": body}
	if !ok || prev != "1-0" || e.id != "2-5" || !maps.Equal(e.fields, want) {
		t.Fatalf("parseNews(%q) = %q, %+v, %v", good, prev, e, ok)
	}
	for _, bad := range []string{
		"",
		"1-0 2-5 member msgid",
		"1-0 2-5 member msgid 99 short",
		"1-0 2-5 member msgid -1 x",
		"1-0 2-5 member msgid x name",
		"x 2-5 member msgid 0 body",
		"1-0 2 member msgid 0 body",
	} {
		if _, _, ok := parseNews(bad); ok {
			t.Errorf("parseNews(%q) accepted it", bad)
		}
	}
}

// A Redis older than 7.0 is refused at start, by its version; one the
// store cannot read is left to the scripts.
func TestVersionCheck(t *testing.T) {
	for version, ok := range map[string]bool{
		"7.0.15": true, "7.4.11": true, "8.0.0": true, "10.1.2": true,
		"6.2.14": false, "6.0.0": false, "5.0.7": false,
		"": true, "7": true, "x.y.z": true,
	} {
		if got := atLeast(version, minVersion); got != ok {
			t.Errorf("atLeast(%q) = %v, want %v", version, got, ok)
		}
	}
	info := "# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:00000000\r\n"
	if v, ok := infoField(info, "redis_version"); !ok || v != "6.2.14" {
		t.Errorf("infoField = %q, %v", v, ok)
	}
}
