package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/client"
)

// run runs weft with args and stdin, and returns what it wrote to stdout
// and stderr.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	err = execute(context.Background(), root, args)
	return out.String(), errOut.String(), err
}

func TestKeygen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "device.key")
	stdout, stderr, err := run(t, "", "keygen", "--out", path)
	if err != nil {
		t.Fatal(err)
	}
	key, err := client.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub := hex.EncodeToString(key.Public().(ed25519.PublicKey))
	if stdout != pub+"\n" {
		t.Fatalf("stdout %q, want the public key %s", stdout, pub)
	}
	file, _ := os.ReadFile(path)
	seed := strings.TrimSpace(string(file))
	if strings.Contains(stdout+stderr, seed) || strings.Contains(stdout+stderr, hex.EncodeToString(key)) {
		t.Fatal("keygen printed the private key")
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}

	// Never overwrite a key.
	if _, _, err := run(t, "", "keygen", "--out", path); err == nil {
		t.Fatal("keygen overwrote a key file")
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, file) {
		t.Fatal("the key file changed")
	}
	if _, _, err := run(t, "", "keygen"); err == nil {
		t.Fatal("keygen without --out succeeded")
	}
}
