package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeyFileRoundTrip(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "device.key")
	if err := WriteKeyFile(path, key); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if len(b) != 65 || b[64] != '\n' || strings.ToLower(string(b)) != string(b) {
		t.Fatalf("file %q", b)
	}
	got, err := ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, key) {
		t.Fatal("read another key")
	}

	// Never overwrite.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	if err := WriteKeyFile(path, other); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: %v, want fs.ErrExist", err)
	}
	if again, err := ReadKeyFile(path); err != nil || !bytes.Equal(again, key) {
		t.Fatal("the existing file changed")
	}
}

func TestKnownKeyFile(t *testing.T) {
	// The seed of RFC 8032's first test vector, and its public key.
	path := filepath.Join(t.TempDir(), "k")
	os.WriteFile(path, []byte("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n"), 0o600)
	key, err := ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if want := "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"; hex.EncodeToString(pub) != want {
		t.Fatalf("public key %s, want %s", hex.EncodeToString(pub), want)
	}
}

func TestMalformedKeyFiles(t *testing.T) {
	const seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":            "",
		"no newline":       seed,
		"crlf":             seed + "\r\n",
		"two newlines":     seed + "\n\n",
		"leading space":    " " + seed + "\n",
		"upper case":       strings.ToUpper(seed) + "\n",
		"short":            seed[:62] + "\n",
		"long":             seed + "00\n",
		"not hex":          "g" + seed[1:] + "\n",
		"private key (64)": seed + seed + "\n",
		"binary seed":      string(make([]byte, 32)),
		"huge":             strings.Repeat("a", 1<<20),
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadKeyFile(path)
		var kfe *KeyFileError
		if !errors.As(err, &kfe) || !errors.Is(err, ErrKeyFormat) || kfe.Path != path {
			t.Errorf("%s: %v, want a *KeyFileError", name, err)
			continue
		}
		if strings.Contains(err.Error(), seed[:16]) {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := WriteKeyFile(filepath.Join(dir, "bad"), ed25519.PrivateKey{1, 2}); err == nil {
		t.Error("wrote a key of 2 bytes")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a refused key left a file")
	}
}
