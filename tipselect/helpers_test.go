package tipselect_test

import (
	"encoding/binary"
	"flag"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized tipselect tests (0: take $WEFT_SEED, else the clock)")

var (
	baseSeedOnce sync.Once
	baseSeedVal  uint64
	baseSeedFrom string
)

// baseSeed is the run's seed: -seed, else $WEFT_SEED, else the clock.
func baseSeed() (uint64, string) {
	baseSeedOnce.Do(func() {
		switch {
		case *seedFlag != 0:
			baseSeedVal, baseSeedFrom = *seedFlag, "-seed"
		case os.Getenv("WEFT_SEED") != "":
			v, err := strconv.ParseUint(os.Getenv("WEFT_SEED"), 10, 64)
			if err != nil {
				panic("WEFT_SEED: " + err.Error())
			}
			baseSeedVal, baseSeedFrom = v, "$WEFT_SEED"
		default:
			baseSeedVal, baseSeedFrom = uint64(time.Now().UnixNano()), "clock"
		}
	})
	return baseSeedVal, baseSeedFrom
}

// testRand returns a generator for t, seeded from the run's seed and t's
// name, and logs how to replay it.
func testRand(t testing.TB) *rand.Rand {
	t.Helper()
	seed, from := baseSeed()
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	t.Logf("seed %d (from %s); replay: go test ./tipselect/ -run '^%s$' -seed %d", seed, from, t.Name(), seed)
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// idOf is the ID of message number i in tests: i little-endian, then a
// marker so that no test ID is the zero ID.
func idOf(i int) dag.ID {
	var id dag.ID
	binary.LittleEndian.PutUint32(id[:4], uint32(i))
	id[dag.IDSize-1] = 0xee
	return id
}

// indexOf inverts idOf.
func indexOf(id dag.ID) int { return int(binary.LittleEndian.Uint32(id[:4])) }

// slicePool is the simplest Pool: a slice of tips.
type slicePool []dag.ID

func (p slicePool) Len() int         { return len(p) }
func (p slicePool) Tip(i int) dag.ID { return p[i] }
func newSlicePool(n int) slicePool {
	p := make(slicePool, n)
	for i := range p {
		p[i] = idOf(i)
	}
	return p
}

// memGraph is a naive in-memory Graph for hand-built tests: children by
// map, cumulative weights recomputed by brute force from the children
// (unless set by hand), tips = no children (unless overridden).
type memGraph struct {
	entry    dag.ID
	hasEntry bool
	children map[dag.ID][]dag.ID
	weight   map[dag.ID]uint64
	isTip    func(dag.ID) bool // nil: no children
}

// newMemGraph builds a graph from parent -> children edges, with entry 0.
// Messages are numbered as idOf numbers them.
func newMemGraph(edges map[int][]int) *memGraph {
	g := &memGraph{entry: idOf(0), hasEntry: true, children: map[dag.ID][]dag.ID{}, weight: map[dag.ID]uint64{}}
	nodes := map[int]bool{0: true}
	for p, cs := range edges {
		nodes[p] = true
		for _, c := range cs {
			nodes[c] = true
			g.children[idOf(p)] = append(g.children[idOf(p)], idOf(c))
		}
	}
	for n := range nodes {
		g.weight[idOf(n)] = g.futureCone(idOf(n))
	}
	return g
}

// futureCone counts id and every message that approves it directly or
// indirectly: the definition of cumulative weight, by brute force.
func (g *memGraph) futureCone(id dag.ID) uint64 {
	seen := map[dag.ID]bool{id: true}
	stack := []dag.ID{id}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, c := range g.children[x] {
			if !seen[c] {
				seen[c] = true
				stack = append(stack, c)
			}
		}
	}
	return uint64(len(seen))
}

func (g *memGraph) Entry() (dag.ID, bool) { return g.entry, g.hasEntry }
func (g *memGraph) AppendChildren(dst []dag.ID, id dag.ID) []dag.ID {
	return append(dst, g.children[id]...)
}
func (g *memGraph) Weight(id dag.ID) uint64 { return g.weight[id] }
func (g *memGraph) IsTip(id dag.ID) bool {
	if g.isTip != nil {
		return g.isTip(id)
	}
	return len(g.children[id]) == 0
}
