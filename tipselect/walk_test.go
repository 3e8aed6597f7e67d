package tipselect_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/tipselect"
)

func mustWalk(t testing.TB, g tipselect.Graph, cfg tipselect.WalkConfig) *tipselect.Walk {
	t.Helper()
	w, err := tipselect.NewWalk(g, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// forkGraph: the entry 0 has a light child 1 (a tip) and a heavy child 2,
// which ten tips 3..12 approve.
func forkGraph() *memGraph {
	return newMemGraph(map[int][]int{
		0: {1, 2},
		2: {3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
	})
}

func TestWalkAlphaZeroTakesBothBranches(t *testing.T) {
	r := testRand(t)
	w := mustWalk(t, forkGraph(), tipselect.WalkConfig{Alpha: 0})
	const n = 4000
	light := 0
	for range n {
		tip, err := w.Tip(r)
		if err != nil {
			t.Fatal(err)
		}
		if tip == idOf(1) {
			light++
		}
	}
	// An unbiased walk takes each branch of the fork with probability 1/2
	// (sd 0.008 here): expect the light one between 40% and 60% of the time.
	frac := float64(light) / n
	t.Logf("alpha 0: light branch %.3f of %d walks", frac, n)
	if frac < 0.4 || frac > 0.6 {
		t.Fatalf("alpha 0: light branch taken %.3f of the time, want about 0.5", frac)
	}
}

func TestWalkLargeAlphaFollowsHeavyBranch(t *testing.T) {
	r := testRand(t)
	// The heavy child weighs 11, the light one 1: with alpha 1000 the light
	// branch's term exp(-10000) underflows to exactly 0.
	w := mustWalk(t, forkGraph(), tipselect.WalkConfig{Alpha: 1000})
	seen := map[dag.ID]int{}
	for range 2000 {
		a, b, err := w.Select(r)
		if err != nil {
			t.Fatal(err)
		}
		if a == idOf(1) || b == idOf(1) {
			t.Fatal("alpha 1000: the walk took the light branch")
		}
		seen[a]++
	}
	// Among the equally heavy tips 3..12 the walk stays uniform.
	if len(seen) != 10 {
		t.Fatalf("alpha 1000: reached %d of the 10 equally heavy tips, want all", len(seen))
	}
}

// TestWalkLargeAlphaDeterministic: on a comb (a spine 0-2-4-6-8-10-11 and
// a leaf hanging off each of 0..8) the heaviest path is unique, so a very
// large alpha makes the walk deterministic, and Select, after its retries,
// returns the one reachable tip twice.
func TestWalkLargeAlphaDeterministic(t *testing.T) {
	r := testRand(t)
	g := newMemGraph(map[int][]int{0: {1, 2}, 2: {3, 4}, 4: {5, 6}, 6: {7, 8}, 8: {9, 10}, 10: {11}})
	for _, alpha := range []float64{50, 1000, 1e300} {
		w := mustWalk(t, g, tipselect.WalkConfig{Alpha: alpha})
		for range 500 {
			a, b, err := w.Select(r)
			if err != nil {
				t.Fatal(err)
			}
			if a != idOf(11) || b != idOf(11) {
				t.Fatalf("alpha %g: Select = %d, %d; want the end of the heavy spine, 11, twice", alpha, indexOf(a), indexOf(b))
			}
		}
	}
	// The same comb with alpha 0: the walk leaves the spine with
	// probability 1/2 at each step and reaches 11 with probability 1/32.
	w := mustWalk(t, g, tipselect.WalkConfig{})
	counts := map[int]int{}
	const n = 8000
	for range n {
		tip, err := w.Tip(r)
		if err != nil {
			t.Fatal(err)
		}
		counts[indexOf(tip)]++
	}
	t.Logf("alpha 0 on the comb: %v", counts)
	if f := float64(counts[1]) / n; f < 0.45 || f > 0.55 {
		t.Fatalf("alpha 0: first leaf reached %.3f of the time, want 0.5", f)
	}
	if counts[11] == 0 {
		t.Fatal("alpha 0: the end of the spine never reached")
	}
}

// TestWalkTransitionProbabilities checks the law of one step against the
// formula, on a fork whose children's weights are set by hand, including
// weights near 2^62, where computing exp(-alpha*H) without shifting would
// underflow to 0/0.
func TestWalkTransitionProbabilities(t *testing.T) {
	r := testRand(t)
	const big = uint64(1) << 62
	for _, c := range []struct {
		name    string
		alpha   float64
		weights []uint64
	}{
		{"unbiased", 0, []uint64{10, 5}},
		{"mild", 0.1, []uint64{10, 5}},
		{"three", 0.5, []uint64{10, 5, 5}},
		{"steep", 2, []uint64{3, 2, 1}},
		{"huge-weights", 0.01, []uint64{big + 100, big}},
		{"huge-weights-ties", 0.001, []uint64{big, big - 2000, big - 500, big}},
		{"near-deterministic", 1e6, []uint64{2, 1}},
	} {
		t.Run(fmt.Sprintf("%s/alpha=%g", c.name, c.alpha), func(t *testing.T) {
			g := &memGraph{entry: idOf(0), hasEntry: true, children: map[dag.ID][]dag.ID{}, weight: map[dag.ID]uint64{idOf(0): math.MaxUint64}}
			for i, h := range c.weights {
				g.children[idOf(0)] = append(g.children[idOf(0)], idOf(i+1))
				g.weight[idOf(i+1)] = h
			}
			// The formula, for weights small enough here that the
			// differences are exact in float64.
			want := make([]float64, len(c.weights))
			sum := 0.0
			for i, h := range c.weights {
				if h > c.weights[0] {
					want[i] = math.Exp(c.alpha * float64(h-c.weights[0]))
				} else {
					want[i] = math.Exp(-c.alpha * float64(c.weights[0]-h))
				}
				sum += want[i]
			}
			for i := range want {
				want[i] /= sum
			}
			w := mustWalk(t, g, tipselect.WalkConfig{Alpha: c.alpha})
			const n = 20_000
			got := make([]int, len(c.weights))
			for range n {
				tip, err := w.Tip(r)
				if err != nil {
					t.Fatal(err)
				}
				got[indexOf(tip)-1]++
			}
			for i := range want {
				f := float64(got[i]) / n
				sd := math.Sqrt(want[i] * (1 - want[i]) / n)
				if math.Abs(f-want[i]) > 6*sd+1e-9 {
					t.Errorf("child %d (weight %d): frequency %.4f, want %.4f (sd %.4f)", i+1, c.weights[i], f, want[i], sd)
				}
			}
		})
	}
}

// randomDAG builds a DAG of n messages in which each message after the
// first approves two random earlier ones (not always distinct); every
// message then descends from message 0.
func randomDAG(r *rand.Rand, n int) (*memGraph, [][2]int) {
	edges := map[int][]int{}
	parents := make([][2]int, n)
	for m := 1; m < n; m++ {
		// Favour recent parents, as real tip selection does.
		pick := func() int { return max(0, m-1-r.IntN(min(m, 8))) }
		a, b := pick(), pick()
		parents[m] = [2]int{a, b}
		edges[a] = append(edges[a], m)
		if b != a {
			edges[b] = append(edges[b], m)
		}
	}
	return newMemGraph(edges), parents
}

// TestWalkMatchesExactLaw runs many walks on random DAGs and compares where
// they end with the exact distribution, computed by pushing probability
// along the edges with the transition formula (a naive reference). It also
// checks that every walk ends on a tip.
func TestWalkMatchesExactLaw(t *testing.T) {
	r := testRand(t)
	for trial := range 6 {
		n := 20 + r.IntN(40)
		alpha := []float64{0, 0.05, 0.3, 1, 3, 10}[trial]
		g, _ := randomDAG(r, n)
		// Exact law: messages are numbered in topological order.
		mass := make([]float64, n)
		mass[0] = 1
		for x := range n {
			kids := g.children[idOf(x)]
			if len(kids) == 0 {
				continue
			}
			sum := 0.0
			for _, k := range kids {
				sum += math.Exp(-alpha * float64(g.weight[idOf(x)]-g.weight[k]))
			}
			for _, k := range kids {
				mass[indexOf(k)] += mass[x] * math.Exp(-alpha*float64(g.weight[idOf(x)]-g.weight[k])) / sum
			}
		}
		w := mustWalk(t, g, tipselect.WalkConfig{Alpha: alpha})
		const walks = 10_000
		counts := make([]int, n)
		for range walks {
			tip, err := w.Tip(r)
			if err != nil {
				t.Fatal(err)
			}
			if !g.IsTip(tip) {
				t.Fatalf("walk ended on %d, not a tip", indexOf(tip))
			}
			counts[indexOf(tip)]++
		}
		// Chi-square over the tips, cells with small expectation pooled.
		chi2, cells := 0.0, 0
		var poolExp float64
		var poolObs int
		for x := range n {
			if !g.IsTip(idOf(x)) {
				if counts[x] != 0 {
					t.Fatalf("walk ended on %d, which has children", x)
				}
				continue
			}
			e := mass[x] * walks
			if e < 20 {
				poolExp += e
				poolObs += counts[x]
				continue
			}
			d := float64(counts[x]) - e
			chi2 += d * d / e
			cells++
		}
		if poolExp >= 20 {
			d := float64(poolObs) - poolExp
			chi2 += d * d / poolExp
			cells++
		} else if float64(poolObs) > poolExp+30 {
			t.Errorf("alpha %g: %d walks ended on tips expected %.1f times", alpha, poolObs, poolExp)
		}
		dof := float64(max(cells-1, 1))
		limit := dof + 10*math.Sqrt(2*dof) + 10
		t.Logf("alpha %g, %d messages: chi2 %.1f over %d cells (limit %.0f)", alpha, n, chi2, cells, limit)
		if chi2 > limit {
			t.Errorf("alpha %g: walk's end distribution departs from the exact law: chi2 %.1f > %.0f", alpha, chi2, limit)
		}
	}
}

func TestWalkStepLimit(t *testing.T) {
	r := testRand(t)
	// A cycle that IsTip never stops: the walk must give up.
	cycle := newMemGraph(map[int][]int{0: {1}, 1: {0}})
	cycle.isTip = func(dag.ID) bool { return false }
	for _, maxSteps := range []int{0, 1, 50} {
		w := mustWalk(t, cycle, tipselect.WalkConfig{Alpha: 0.1, MaxSteps: maxSteps})
		if _, _, err := w.Select(r); !errors.Is(err, tipselect.ErrWalkTooLong) {
			t.Fatalf("MaxSteps %d on a cycle: err = %v, want ErrWalkTooLong", maxSteps, err)
		}
	}
	// A chain 0-1-...-20: 20 steps reach the tip, 19 do not.
	edges := map[int][]int{}
	for i := range 20 {
		edges[i] = []int{i + 1}
	}
	chain := newMemGraph(edges)
	if _, err := mustWalk(t, chain, tipselect.WalkConfig{MaxSteps: 19}).Tip(r); !errors.Is(err, tipselect.ErrWalkTooLong) {
		t.Fatalf("19 steps on a 20-step chain: err = %v, want ErrWalkTooLong", err)
	}
	tip, err := mustWalk(t, chain, tipselect.WalkConfig{MaxSteps: 20}).Tip(r)
	if err != nil || tip != idOf(20) {
		t.Fatalf("20 steps on a 20-step chain: %d, %v; want 20, nil", indexOf(tip), err)
	}
}

func TestWalkDeadEnd(t *testing.T) {
	r := testRand(t)
	g := newMemGraph(map[int][]int{0: {1}})
	g.isTip = func(dag.ID) bool { return false }
	if _, _, err := mustWalk(t, g, tipselect.WalkConfig{}).Select(r); !errors.Is(err, tipselect.ErrDeadEnd) {
		t.Fatalf("err = %v, want ErrDeadEnd", err)
	}
}

func TestWalkNoEntry(t *testing.T) {
	r := testRand(t)
	g := newMemGraph(nil)
	g.hasEntry = false
	w := mustWalk(t, g, tipselect.WalkConfig{})
	if _, _, err := w.Select(r); !errors.Is(err, tipselect.ErrNoTips) {
		t.Fatalf("Select: err = %v, want ErrNoTips", err)
	}
	if _, err := w.Tip(r); !errors.Is(err, tipselect.ErrNoTips) {
		t.Fatalf("Tip: err = %v, want ErrNoTips", err)
	}
}

func TestWalkSingleTip(t *testing.T) {
	r := testRand(t)
	a, b, err := mustWalk(t, newMemGraph(nil), tipselect.WalkConfig{Alpha: 0.5}).Select(r)
	if err != nil || a != idOf(0) || b != idOf(0) {
		t.Fatalf("Select on a one-message graph = %d, %d, %v; want the entry twice", indexOf(a), indexOf(b), err)
	}
}

// TestWalkSecondParentRetried: with two equally likely tips, independent
// walks agree half the time; Select walks again for the second parent, so
// they agree only when four second walks in a row land on the first tip
// (1/16).
func TestWalkSecondParentRetried(t *testing.T) {
	r := testRand(t)
	w := mustWalk(t, newMemGraph(map[int][]int{0: {1, 2}}), tipselect.WalkConfig{})
	const n = 4000
	same := 0
	for range n {
		a, b, err := w.Select(r)
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			same++
		}
	}
	frac := float64(same) / n
	t.Logf("equal parents %.4f of the time (expect 1/16 = 0.0625)", frac)
	if frac < 0.03 || frac > 0.1 {
		t.Fatalf("equal parents %.4f of the time, want about 1/16", frac)
	}
}

func TestNewWalkRejectsBadConfig(t *testing.T) {
	g := newMemGraph(nil)
	for _, c := range []struct {
		g   tipselect.Graph
		cfg tipselect.WalkConfig
	}{
		{nil, tipselect.WalkConfig{}},
		{g, tipselect.WalkConfig{Alpha: -0.1}},
		{g, tipselect.WalkConfig{Alpha: math.NaN()}},
		{g, tipselect.WalkConfig{Alpha: math.Inf(1)}},
		{g, tipselect.WalkConfig{MaxSteps: -1}},
	} {
		if _, err := tipselect.NewWalk(c.g, c.cfg); !errors.Is(err, tipselect.ErrInvalidConfig) {
			t.Errorf("NewWalk(%v, %+v): err = %v, want ErrInvalidConfig", c.g, c.cfg, err)
		}
	}
}
