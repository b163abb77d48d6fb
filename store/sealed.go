package store

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// roomSecrets is everything a shared store derives from a room ID. The ID is
// the only secret: whoever holds it can join, so it is also what protects the
// room at rest. The store itself (a Redis dump, MONITOR, a backup) sees only
// the tag and ciphertext, from which neither the ID nor the text follows.
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

func deriveRoomSecrets(id RoomID) (roomSecrets, error) {
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

// seal encrypts plain. purpose is authenticated with it, with the room's tag,
// so a ciphertext cannot be replayed as another field or into another room.
func (s roomSecrets) seal(purpose, plain string) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	rand.Read(nonce) // never returns an error (crypto/rand)
	return string(s.aead.Seal(nonce, nonce, []byte(plain), s.additionalData(purpose)))
}

var errUnsealable = errors.New("stored value failed authentication")

func (s roomSecrets) open(purpose, sealed string) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", errUnsealable
	}
	plain, err := s.aead.Open(nil, []byte(sealed[:n]), []byte(sealed[n:]), s.additionalData(purpose))
	if err != nil {
		return "", errUnsealable
	}
	return string(plain), nil
}

func (s roomSecrets) additionalData(purpose string) []byte {
	return []byte(s.tag + "\x00" + purpose)
}
