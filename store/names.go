package store

import (
	"crypto/rand"
	"math/big"
	"slices"
	"strings"
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

// NewMemberNameExcept returns a name whose animal differs from the animal
// of every member in taken: a newcomer is not mistaken for the partner
// before them (anonymous-robin-yt79 after anonymous-robin-ehvh). taken
// holds a few members at most; there are far more animals.
func NewMemberNameExcept(taken []Member) string {
	for {
		name := NewMemberName()
		if !slices.ContainsFunc(taken, func(m Member) bool { return Animal(m.Name) == Animal(name) }) {
			return name
		}
	}
}

// Animal is the animal of a name NewMemberName made ("otter" of
// "anonymous-otter-k3f9"), or the whole name if it is not one.
func Animal(name string) string {
	if rest, ok := strings.CutPrefix(name, "anonymous-"); ok {
		if animal, _, ok := strings.Cut(rest, "-"); ok {
			return animal
		}
	}
	return name
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
