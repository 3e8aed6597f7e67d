// Package clib tests the C device library in this directory (README.md):
// it builds it with make, under AddressSanitizer and
// UndefinedBehaviorSanitizer, and checks it against docs/PROTOCOL.md's
// vectors and against the Go BLAKE3.
package clib

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/zeebo/blake3"
)

// build runs make for the targets into a temporary directory and returns
// it. The test is skipped, saying why, where there is no C compiler, make
// or libsodium (.ci/run installs them).
func build(t *testing.T, targets ...string) string {
	t.Helper()
	for _, tool := range []string{"make", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here: the C library is not tested (.ci/run installs build-essential)", tool)
		}
	}
	if err := exec.Command("pkg-config", "--exists", "libsodium").Run(); err != nil {
		t.Skip("no libsodium here: the C library is not tested (.ci/run installs libsodium-dev)")
	}
	out := t.TempDir()
	args := append([]string{"-s", "O=" + out}, targets...)
	if b, err := exec.Command("make", args...).CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", strings.Join(targets, " "), err, b)
	}
	return out
}

func TestVectors(t *testing.T) {
	out := build(t, "san")
	check := filepath.Join(out, "san", "check")
	for _, args := range [][]string{{"vectors", "../../docs/PROTOCOL.md"}, {"errors"}} {
		b, err := exec.Command(check, args...).CombinedOutput()
		t.Logf("check %s:\n%s", args[0], b)
		if err != nil {
			t.Fatalf("check %s: %v", args[0], err)
		}
	}
	b, _ := exec.Command(check, "vectors", "../../docs/PROTOCOL.md").Output()
	if n := bytes.Count(b, []byte("\nok ")) + 1; n < 3 || !bytes.HasPrefix(b, []byte("ok ")) {
		t.Fatalf("%d vectors checked, want the 3 of PROTOCOL.md 7:\n%s", n, b)
	}
}

// TestBLAKE3 compares the C BLAKE3 with the Go one on inputs around every
// block, chunk and tree boundary, up to the hasher's bound, and past it.
func TestBLAKE3(t *testing.T) {
	out := build(t, "san")
	var lengths []int
	for n := 0; n <= 2100; n++ {
		lengths = append(lengths, n)
	}
	for _, chunks := range []int{3, 4, 5, 7, 8, 9, 16, 31, 32, 33, 64, 65, 100, 255, 256, 257, 511} {
		lengths = append(lengths, chunks*1024-1, chunks*1024, chunks*1024+1)
	}
	lengths = append(lengths, 195+65535)
	const bound = 511 * 1024
	lengths = append(lengths, bound+1, 1<<20)
	args := []string{"blake3"}
	for _, n := range lengths {
		args = append(args, strconv.Itoa(n))
	}
	cmd := exec.Command(filepath.Join(out, "san", "check"), args...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	i := 0
	for ; sc.Scan(); i++ {
		n := lengths[i]
		got := strings.TrimPrefix(sc.Text(), strconv.Itoa(n)+" ")
		if n > bound {
			if got != "overflow" {
				t.Errorf("%d bytes, past the bound: %q, want overflow", n, got)
			}
			continue
		}
		in := make([]byte, n)
		for j := range in {
			in[j] = byte(j % 251)
		}
		want := blake3.Sum256(in)
		if got != hex.EncodeToString(want[:]) {
			t.Errorf("BLAKE3 of %d bytes: C %s, Go %x", n, got, want)
		}
	}
	if i != len(lengths) {
		t.Fatalf("%d hashes printed for %d lengths", i, len(lengths))
	}
}
