package tipselect_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/tipselect"
)

func BenchmarkUniform(b *testing.B) {
	u := tipselect.NewUniform(newSlicePool(10_000))
	r := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := u.Select(r); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTangle is a simulated tangle of 10k messages (lambda 50, h 1, built
// with Uniform), with exact cumulative weights, frozen at its last arrival.
var benchTangle = sync.OnceValue(func() *tangleSim {
	s := newTangleSim(50, 1)
	s.attachGraph(20, math.Inf(1))
	if err := s.run(rand.New(rand.NewPCG(3, 4)), tipselect.NewUniform(&s.pool), 10_000); err != nil {
		panic(err)
	}
	return s
})

// fromGenesis is a simGraph whose walks start at the genesis.
type fromGenesis struct{ *simGraph }

func (fromGenesis) Entry() (dag.ID, bool) { return idOf(0), true }

// countSteps counts the steps of walks (one AppendChildren per step).
type countSteps struct {
	tipselect.Graph
	steps int
}

func (c *countSteps) AppendChildren(dst []dag.ID, id dag.ID) []dag.ID {
	c.steps++
	return c.Graph.AppendChildren(dst, id)
}

// BenchmarkWalk measures Walk.Select (two walks, plus a retry when they
// meet) on benchTangle, from an entry 20h deep and from the genesis, and
// reports the mean number of steps of one walk.
func BenchmarkWalk(b *testing.B) {
	s := benchTangle()
	for _, entry := range []struct {
		name  string
		graph tipselect.Graph
	}{
		{"entry=20h", s.graph},
		{"entry=genesis", fromGenesis{s.graph}},
	} {
		for _, alpha := range []float64{0, 0.001, 0.1} {
			b.Run(fmt.Sprintf("%s/alpha=%g", entry.name, alpha), func(b *testing.B) {
				r := rand.New(rand.NewPCG(5, 6))
				w, err := tipselect.NewWalk(entry.graph, tipselect.WalkConfig{Alpha: alpha})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := w.Select(r); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				c := &countSteps{Graph: entry.graph}
				cw, _ := tipselect.NewWalk(c, tipselect.WalkConfig{Alpha: alpha})
				const walks = 200
				for range walks {
					if _, err := cw.Tip(r); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(c.steps)/walks, "steps/walk")
			})
		}
	}
}
