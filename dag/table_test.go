package dag

import (
	"math/rand/v2"
	"testing"

	"github.com/weftnet/weft/internal/testseed"
)

// TestPosTable runs a window of positions through a posTable, as the Core
// does (append at the end, prune from the front, now and then a burst),
// against a Go map, with hashes whose low 3 bits are zero (every home slot
// a multiple of 8), so that runs of collisions and the backward shifts of
// deletion are the common case, and with full hashes.
func TestPosTable(t *testing.T) {
	for _, clustered := range []bool{true, false} {
		rng := rand.New(rand.NewPCG(testseed.Seed(t), 0))
		keys := map[uint64]uint64{} // pos -> key
		hash := func(k uint64) uint64 {
			h := k * 0x9e3779b97f4a7c15
			if clustered {
				h &^= 7
			}
			return h
		}
		tab := newPosTable(func(p uint64) uint64 { return hash(keys[p]) })
		eq := func(k uint64) func(uint64) bool { return func(p uint64) bool { return keys[p] == k } }
		ref := map[uint64]uint64{} // key -> pos
		var lo, hi uint64          // the window [lo, hi)
		for step := 0; step < 100_000; step++ {
			// The window grows to a random size and shrinks again, so that
			// the table both grows and shrinks.
			target := uint64(2000 + 1500*(step/20_000%3))
			if hi-lo < target || rng.IntN(2) == 0 && hi-lo < 2*target {
				k := rng.Uint64()
				keys[hi] = k
				tab.put(hash(k), hi, eq(k))
				ref[k] = hi
				hi++
			} else if lo < hi {
				k := keys[lo]
				tab.remove(hash(k), lo)
				delete(ref, k)
				delete(keys, lo)
				lo++
			}
			if step%1999 == 0 {
				if tab.n != len(ref) {
					t.Fatalf("clustered %v step %d: %d entries, want %d", clustered, step, tab.n, len(ref))
				}
				for k, p := range ref {
					if got, ok := tab.find(hash(k), eq(k)); !ok || got != p {
						t.Fatalf("clustered %v step %d: find(%x) = %d, %v; want %d", clustered, step, k, got, ok, p)
					}
				}
				if k := rng.Uint64(); ref[k] == 0 {
					if p, ok := tab.find(hash(k), eq(k)); ok {
						t.Fatalf("clustered %v step %d: found absent key %x at %d", clustered, step, k, p)
					}
				}
				if 2*tab.n > len(tab.slots) {
					t.Fatalf("clustered %v step %d: %d entries in %d slots", clustered, step, tab.n, len(tab.slots))
				}
			}
		}
		for lo < hi {
			tab.remove(hash(keys[lo]), lo)
			lo++
		}
		if tab.n != 0 || len(tab.slots) != minTableSlots {
			t.Fatalf("clustered %v: emptied, %d entries in %d slots", clustered, tab.n, len(tab.slots))
		}
	}
}
