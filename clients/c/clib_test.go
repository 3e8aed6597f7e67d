// Package clib tests the C device library in this directory (README.md):
// it builds it with make, under AddressSanitizer and
// UndefinedBehaviorSanitizer, and checks it against docs/PROTOCOL.md's
// vectors and against the Go BLAKE3.
package clib

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// Bounds on the core for a Cortex-M4 at -Os (README.md gives the figures):
// flash, static RAM, and the deepest stack of a call into the library.
const (
	maxFlash = 4096 // bytes of text
	maxStack = 1536 // bytes of stack under weft_build, the signer's own excepted
)

// TestCortexM4 cross-compiles the core (make arm) and checks it against the
// bounds: its text, that it has no static data, and the deepest stack
// path, added up from the compiler's call graph (-fcallgraph-info=su).
func TestCortexM4(t *testing.T) {
	if _, err := exec.LookPath("arm-none-eabi-gcc"); err != nil {
		t.Skip("no arm-none-eabi-gcc here: the Cortex-M4 build is not checked (.ci/run installs gcc-arm-none-eabi)")
	}
	out := t.TempDir()
	b, err := exec.Command("make", "-s", "O="+out, "arm").CombinedOutput()
	if err != nil {
		t.Fatalf("make arm: %v\n%s", err, b)
	}
	t.Logf("make arm:\n%s", b)
	var text, static int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("arm-none-eabi-size printed %q", line)
		}
		tx, _ := strconv.Atoi(f[0])
		data, _ := strconv.Atoi(f[1])
		bss, _ := strconv.Atoi(f[2])
		text += tx
		static += data + bss
	}
	g := callGraph{frame: map[string]int{}, calls: map[string][]string{}}
	for _, f := range []string{"arm-blake3.ci", "arm-weft.ci"} {
		if err := g.read(filepath.Join(out, f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, fn := range []string{"weft_network_id", "weft_solve", "weft_blake3_hash"} {
		d, err := g.depth(fn, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("deepest stack under %s: %d bytes", fn, d)
	}
	stack, err := g.depth("weft_build", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Cortex-M4, -Os: %d bytes of flash, %d of static RAM, %d of stack under weft_build", text, static, stack)
	if text == 0 || text > maxFlash {
		t.Errorf("text is %d bytes, want 1 to %d", text, maxFlash)
	}
	if static != 0 {
		t.Errorf("%d bytes of data and bss: the library keeps no state", static)
	}
	if stack < 256 || stack > maxStack {
		t.Errorf("weft_build's deepest stack is %d bytes, want 256 to %d", stack, maxStack)
	}
}

// callGraph is GCC's call graph with stack usage (-fcallgraph-info=su):
// each function's own frame and whom it calls.
type callGraph struct {
	frame map[string]int // bytes, for the functions defined in the files read
	calls map[string][]string
}

var (
	ciNode = regexp.MustCompile(`^node: \{ title: "([^"]+)" label: "[^"]*\\n(\d+) bytes \((static|dynamic[^)]*)\)"`)
	ciEdge = regexp.MustCompile(`^edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"`)
)

func (g *callGraph) read(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if m := ciNode.FindStringSubmatch(line); m != nil {
			if m[3] != "static" {
				return fmt.Errorf("%s: %s has a frame of dynamic size (%s)", path, m[1], m[3])
			}
			g.frame[m[1]], _ = strconv.Atoi(m[2])
		} else if m := ciEdge.FindStringSubmatch(line); m != nil {
			g.calls[m[1]] = append(g.calls[m[1]], m[2])
		}
	}
	return nil
}

// depth is the deepest stack a call of fn takes: its frame and its deepest
// callee's. The compiler's builtins (memcpy, memset) are leaves of no
// frame of ours, and the indirect call is the signer's, not counted.
func (g *callGraph) depth(fn string, path []string) (int, error) {
	if slices.Contains(path, fn) {
		return 0, fmt.Errorf("recursion: %v", append(path, fn))
	}
	switch fn {
	case "memcpy", "memset", "__indirect_call":
		return 0, nil
	}
	frame, ok := g.frame[fn]
	if !ok {
		return 0, fmt.Errorf("%s, called by %v, is in no call graph read", fn, path)
	}
	deepest := 0
	for _, c := range g.calls[fn] {
		d, err := g.depth(c, append(path, fn))
		if err != nil {
			return 0, err
		}
		deepest = max(deepest, d)
	}
	return frame + deepest, nil
}
