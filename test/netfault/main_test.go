package netfault

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// weftBin is the weft binary the tests run, built by TestMain with -race
// when the tests themselves run with it.
var weftBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // the tests that run nodes skip
	}
	dir, err := os.MkdirTemp("", "weft-netfault")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	weftBin = filepath.Join(dir, "weft")
	args := []string{"build", "-o", weftBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/weftnet/weft/cmd/weft")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building weft: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testSeed returns the seed of a randomized test, from WEFT_NETFAULT_SEED
// if set (to replay a run), else from the clock, and logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("WEFT_NETFAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WEFT_NETFAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with WEFT_NETFAULT_SEED=%d)", seed, seed)
	return seed
}
