package server

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// LoadOrCreateHostKey reads the server's private host key from path, creating
// an ed25519 key there (mode 0600, directory 0700) if none exists yet. The key
// is what lets returning users' clients recognise the server, so it is created
// once and kept.
//
// Its errors name the path, never the key; a "path" that holds a key itself
// (the key pasted where its path belongs) is not repeated either.
func LoadOrCreateHostKey(path string) (gossh.Signer, error) {
	if strings.Contains(path, "PRIVATE KEY") || strings.ContainsAny(path, "\n\r") {
		return nil, errors.New("host key: the setting holds a key itself, not the path of a key file")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		data, err = createHostKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	signer, err := gossh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", path, err)
	}
	return signer, nil
}

func createHostKey(path string) ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	data := pem.EncodeToMemory(block)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	// Write the key aside, then link it into place: the link appears whole
	// or not at all, and fails if another replica on a shared volume got
	// there first, in which case its key is the one to use.
	tmp, err := os.CreateTemp(dir, ".host-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	err = os.Link(tmp.Name(), path)
	if errors.Is(err, fs.ErrExist) {
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	return data, nil
}
