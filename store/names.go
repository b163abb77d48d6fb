package store

import (
	"crypto/rand"
	"math/big"
)

// animals are the middle part of anonymous names: short, friendly, distinct.
var animals = [...]string{
	"otter", "fox", "owl", "badger", "heron", "lynx", "panda", "koala",
	"raven", "seal", "tapir", "wombat", "yak", "zebra", "bison", "crane",
	"dingo", "egret", "ferret", "gecko", "ibis", "jackal", "kiwi", "lemur",
	"marten", "newt", "ocelot", "puffin", "quail", "robin", "sloth", "toucan",
	"walrus", "beaver", "camel", "dolphin", "finch", "gibbon", "hare", "moose",
}

// NewMemberName returns a fresh anonymous name such as "anonymous-otter-k3f9".
// Names come only from here, never from anything a client sent.
func NewMemberName() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(animals))))
	return "anonymous-" + animals[n.Int64()] + "-" + randomChars(4)
}

// NewMemberNameExcept returns a name that differs from every name in taken.
func NewMemberNameExcept(taken []Member) string {
	for {
		name := NewMemberName()
		clash := false
		for _, m := range taken {
			clash = clash || m.Name == name
		}
		if !clash {
			return name
		}
	}
}

// randomChars returns n characters of the room-ID alphabet from crypto/rand.
func randomChars(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[b[i]&31]
	}
	return string(b)
}

// MemberIDLen is the length of a member ID, which lets it sit unframed in
// front of other data.
const MemberIDLen = 16

// NewMemberID returns an opaque identifier for one seat.
func NewMemberID() string { return randomChars(MemberIDLen) }
