// Package testseed gives randomized tests their seed: WEFT_SEED when it is
// set, so that a failing run can be replayed, else one from the clock. The
// test logs it either way.
package testseed

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// Seed returns the seed of t and logs it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("WEFT_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("WEFT_SEED %q: %v", v, err)
		}
	}
	t.Logf("seed %d (WEFT_SEED=%d replays it)", seed, seed)
	return seed
}
