package client

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// keyFileSize is the size of a key file: the seed in hex and a newline.
const keyFileSize = 2*ed25519.SeedSize + 1

// KeyFileError reports a key file that is not in the key file format. It
// wraps ErrKeyFormat.
type KeyFileError struct {
	Path   string
	Reason string
}

// Error returns "client: malformed key file <path>: <reason>".
func (e *KeyFileError) Error() string {
	return fmt.Sprintf("client: malformed key file %s: %s", e.Path, e.Reason)
}

// Unwrap returns ErrKeyFormat.
func (e *KeyFileError) Unwrap() error { return ErrKeyFormat }

// WriteKeyFile writes key to a new file at path in the key file format:
// the 32-byte ed25519 seed as 64 lower-case hex characters and a newline.
// The file is created with mode 0600 and synced before WriteKeyFile
// returns. An existing file is never overwritten: WriteKeyFile then fails
// with an error wrapping fs.ErrExist. A node's identity key uses the same
// format.
func WriteKeyFile(path string, key ed25519.PrivateKey) (err error) {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("client: key is %d bytes, not an ed25519 private key", len(key))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("client: key file: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("client: key file: %w", cerr)
		}
		if err != nil {
			os.Remove(path) // what is there is ours, and incomplete
		}
	}()
	b := make([]byte, 0, keyFileSize)
	b = hex.AppendEncode(b, key.Seed())
	b = append(b, '\n')
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("client: key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("client: key file: %w", err)
	}
	return nil
}

// ReadKeyFile reads a key file written by WriteKeyFile and returns its
// private key. The format is checked strictly: exactly 64 lower-case hex
// characters and one newline, nothing before or after. A file in another
// format fails with a *KeyFileError (wrapping ErrKeyFormat); a file that
// cannot be read, with the os error.
func ReadKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("client: key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, keyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("client: key file: %w", err)
	}
	bad := func(reason string) error { return &KeyFileError{Path: path, Reason: reason} }
	switch {
	case len(b) > keyFileSize:
		return nil, bad(fmt.Sprintf("longer than %d bytes", keyFileSize))
	case len(b) < keyFileSize:
		return nil, bad(fmt.Sprintf("%d bytes, want %d (64 hex characters and a newline)", len(b), keyFileSize))
	case b[keyFileSize-1] != '\n':
		return nil, bad("does not end with a newline after 64 hex characters")
	}
	for i, c := range b[:keyFileSize-1] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return nil, bad(fmt.Sprintf("byte %d is not a lower-case hex digit", i))
		}
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := hex.Decode(seed, b[:keyFileSize-1]); err != nil {
		return nil, bad(err.Error()) // unreachable: every byte is a hex digit
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
