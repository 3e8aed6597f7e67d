package tipselect_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/tipselect"
)

// This file holds a discrete-event simulation of the tangle paper's model
// (Popov, "The Tangle", section 3): messages arrive as a Poisson process of
// rate lambda; a message arriving at time t picks its two parents, with a
// real tipselect.Selector, among the tips visible at t, and is itself
// revealed, that is visible and approvable, only at t+h. Until then it is
// "hidden" and so is its approval of its parents.
//
// The number of tips L(t), as the paper counts it, is the number of messages
// that have arrived and that no arrived message approves; hidden messages
// are tips and hidden approvals count. The paper's heuristic: in the
// high-load regime (lambda*h large) about lambda*h of the tips are hidden
// and, at stationarity, as many again are revealed, so L ~ 2*lambda*h. The
// pool a new message chooses from (revealed messages that no revealed
// message approves) is also about 2*lambda*h: the r revealed tips plus about
// lambda*h messages already approved by hidden ones, which still look like
// tips. In fact, with a constant h, the pool at time t+h is exactly the set
// of tips L(t): a message is in L from its arrival to its first approver's
// arrival, and in the pool from its reveal to its first approver's reveal,
// both h later. The two have the same mean; the test logs both, and also
// hidden + pool (messages that no revealed message approves, hidden ones
// included), which is about 3*lambda*h: a different count from the paper's.
//
// Messages are numbered in arrival order (idOf(i)); message 0 is the
// genesis, revealed at time 0. Because h is a constant, messages are
// revealed in arrival order too, so the pending reveals are a FIFO and no
// heap is needed.

// tangleSim is the simulation state.
type tangleSim struct {
	lambda, h float64

	now       float64
	arrive    []float64  // arrival time of each message
	parents   [][2]int32 // its parents (equal when it approves one message)
	approvers []int32    // number of arrived messages approving it directly
	revealed  int        // messages [0, revealed) are revealed

	pool  simPool   // the visible tips: revealed, not approved by a revealed message
	graph *simGraph // nil unless a walk needs it

	tips int // L(t): arrived messages that no arrived message approves

	// Time integrals from warmup on.
	warmup                          float64
	span, sumTips, sumPool, sumHide float64
}

func newTangleSim(lambda, h float64) *tangleSim {
	s := &tangleSim{lambda: lambda, h: h}
	// Genesis: arrived at -h, so revealed at 0.
	s.arrive = append(s.arrive, -h)
	s.parents = append(s.parents, [2]int32{-1, -1})
	s.approvers = append(s.approvers, 0)
	s.tips = 1
	s.pool.pos = append(s.pool.pos, -1)
	s.reveal(0)
	return s
}

// simPool is a Pool over the simulation's visible tips, with O(1) removal
// by swapping with the last element.
type simPool struct {
	tips []int32
	pos  []int32 // per message: index in tips, or -1
}

func (p *simPool) Len() int         { return len(p.tips) }
func (p *simPool) Tip(i int) dag.ID { return idOf(int(p.tips[i])) }

func (p *simPool) add(m int) {
	p.pos[m] = int32(len(p.tips))
	p.tips = append(p.tips, int32(m))
}

func (p *simPool) remove(m int) {
	i := p.pos[m]
	if i < 0 {
		return
	}
	last := p.tips[len(p.tips)-1]
	p.tips[i] = last
	p.pos[last] = i
	p.tips = p.tips[:len(p.tips)-1]
	p.pos[m] = -1
}

// advance moves the clock to t, integrating the statistics on the way.
func (s *tangleSim) advance(t float64) {
	from := max(s.now, s.warmup)
	if t > from {
		d := t - from
		s.span += d
		s.sumTips += d * float64(s.tips)
		s.sumPool += d * float64(s.pool.Len())
		s.sumHide += d * float64(len(s.arrive)-s.revealed)
	}
	s.now = t
}

// reveal makes message m visible: it joins the pool, its parents leave it.
func (s *tangleSim) reveal(m int) {
	s.revealed = m + 1
	if m > 0 {
		p := s.parents[m]
		s.pool.remove(int(p[0]))
		s.pool.remove(int(p[1]))
	}
	s.pool.add(m)
	if s.graph != nil {
		s.graph.reveal(m)
	}
}

// run simulates n arrivals, choosing parents with sel, and returns the
// first error of sel.
func (s *tangleSim) run(r *rand.Rand, sel tipselect.Selector, n int) error {
	next := s.now + r.ExpFloat64()/s.lambda
	for range n {
		for s.revealed < len(s.arrive) && s.arrive[s.revealed]+s.h <= next {
			s.advance(s.arrive[s.revealed] + s.h)
			s.reveal(s.revealed)
		}
		s.advance(next)
		a, b, err := sel.Select(r)
		if err != nil {
			return fmt.Errorf("arrival %d at t=%.3f: %w", len(s.arrive), s.now, err)
		}
		s.arrival(indexOf(a), indexOf(b))
		next += r.ExpFloat64() / s.lambda
	}
	return nil
}

// arrival records a new message approving a and b.
func (s *tangleSim) arrival(a, b int) {
	if a >= s.revealed || b >= s.revealed {
		panic(fmt.Sprintf("selector returned a hidden message (%d, %d; revealed %d)", a, b, s.revealed))
	}
	s.arrive = append(s.arrive, s.now)
	s.parents = append(s.parents, [2]int32{int32(a), int32(b)})
	s.approvers = append(s.approvers, 0)
	s.pool.pos = append(s.pool.pos, -1)
	s.tips++
	for i, p := range []int{a, b} {
		if i == 1 && b == a {
			break
		}
		if s.approvers[p] == 0 {
			s.tips--
		}
		s.approvers[p]++
	}
	if s.graph != nil {
		s.graph.grow()
	}
}

// means returns the time averages since warmup: L(t), the visible pool, and
// the hidden messages.
func (s *tangleSim) means() (tips, pool, hidden float64) {
	return s.sumTips / s.span, s.sumPool / s.span, s.sumHide / s.span
}

// orphanRate is the fraction of the messages that arrived before now-age
// and that nothing approves yet: left behind for good, in practice.
func (s *tangleSim) orphanRate(age float64) float64 {
	n, orphans := 0, 0
	for m := 1; m < len(s.arrive) && s.arrive[m] < s.now-age; m++ {
		n++
		if s.approvers[m] == 0 {
			orphans++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(orphans) / float64(n)
}

// simGraph is a Graph over the revealed part of a simulation, for Walk:
// children and cumulative weights count revealed messages only, which is
// what the network sees. Entry is the oldest message that arrived at most
// depth ago (and is revealed).
//
// Keeping exact cumulative weights costs the whole past cone per message.
// Since a walk only visits the entry's future cone, and every message in it
// arrived after the entry, weights are maintained only for messages that
// arrived less than window ago (window > depth); older weights go stale and
// are never read. window = +Inf keeps them all exact.
type simGraph struct {
	s             *tangleSim
	depth, window float64
	children      [][]int32
	weight        []uint64
	stamp         []int32
	stack         []int32
	entry         int
}

func (s *tangleSim) attachGraph(depth, window float64) *simGraph {
	if len(s.arrive) != 1 || !(window > depth) || !(depth > s.h) {
		panic("attachGraph: attach at genesis, with h < depth < window")
	}
	g := &simGraph{s: s, depth: depth, window: window}
	s.graph = g
	g.grow()
	g.reveal(0)
	return g
}

func (g *simGraph) grow() {
	g.children = append(g.children, nil)
	g.weight = append(g.weight, 0)
	g.stamp = append(g.stamp, -1)
}

func (g *simGraph) reveal(m int) {
	g.weight[m] = 1
	if m == 0 {
		return
	}
	cutoff := g.s.now - g.window
	p := g.s.parents[m]
	g.children[p[0]] = append(g.children[p[0]], int32(m))
	if p[1] != p[0] {
		g.children[p[1]] = append(g.children[p[1]], int32(m))
	}
	g.stack = append(g.stack[:0], p[0], p[1])
	for len(g.stack) > 0 {
		a := g.stack[len(g.stack)-1]
		g.stack = g.stack[:len(g.stack)-1]
		if a < 0 || g.stamp[a] == int32(m) || g.s.arrive[a] < cutoff {
			continue
		}
		g.stamp[a] = int32(m)
		g.weight[a]++
		g.stack = append(g.stack, g.s.parents[a][0], g.s.parents[a][1])
	}
}

func (g *simGraph) Entry() (dag.ID, bool) {
	s := g.s
	for g.entry+1 < s.revealed && s.arrive[g.entry] < s.now-g.depth {
		g.entry++
	}
	if s.arrive[g.entry] < s.now-g.window && g.entry > 0 {
		panic(fmt.Sprintf("entry %d arrived %.2f before now: weights are stale", g.entry, s.now-s.arrive[g.entry]))
	}
	return idOf(g.entry), true
}

func (g *simGraph) AppendChildren(dst []dag.ID, id dag.ID) []dag.ID {
	for _, c := range g.children[indexOf(id)] {
		dst = append(dst, idOf(int(c)))
	}
	return dst
}

func (g *simGraph) Weight(id dag.ID) uint64 { return g.weight[indexOf(id)] }
func (g *simGraph) IsTip(id dag.ID) bool    { return g.s.pool.pos[indexOf(id)] >= 0 }

// TestSimUniformTipCount checks the tangle paper's result: under uniform
// tip selection the mean number of tips is about 2*lambda*h.
func TestSimUniformTipCount(t *testing.T) {
	for _, c := range []struct{ lambda, h float64 }{
		{50, 1},     // lambda*h = 50
		{20, 5},     // lambda*h = 100
		{200, 0.25}, // lambda*h = 50, other time scale
	} {
		t.Run(fmt.Sprintf("lambda=%g,h=%g", c.lambda, c.h), func(t *testing.T) {
			r := testRand(t)
			const arrivals = 200_000
			s := newTangleSim(c.lambda, c.h)
			s.warmup = 50 * c.h
			if err := s.run(r, tipselect.NewUniform(&s.pool), arrivals); err != nil {
				t.Fatal(err)
			}
			want := 2 * c.lambda * c.h
			tips, pool, hidden := s.means()
			t.Logf("over %.0f time units (%.0f h) after warmup: mean L(t) = %.1f, 2*lambda*h = %.0f, ratio %.3f; "+
				"visible pool %.1f (%.3f); hidden %.1f; hidden + pool %.1f; orphans older than 20h: %.4f%%",
				s.span, s.span/c.h, tips, want, tips/want, pool, pool/want, hidden, hidden+pool, 100*s.orphanRate(20*c.h))
			if math.Abs(tips/want-1) > 0.15 {
				t.Errorf("mean tip count %.1f is not within 15%% of 2*lambda*h = %.0f", tips, want)
			}
		})
	}
}

// TestSimCompareStrategies runs the same model under Uniform and under Walk
// with a few alphas and reports the tip count and the orphan rate. It
// asserts nothing about them: it is the comparison the design asks for,
// kept runnable (and kept small: the simulation's exact cumulative weights
// are what cost). Walks start from the oldest message at most 20h old. The
// entry must be deep enough that (nearly) every tip is in its future cone,
// or the tips outside it can never be reached: with lambda*h = 50, an entry
// 10h deep left about a quarter of all messages orphaned, even at alpha 0,
// and 20h was enough.
func TestSimCompareStrategies(t *testing.T) {
	if testing.Short() {
		t.Skip("comparison only; skipped in -short")
	}
	const lambda, h, arrivals, depth = 20.0, 1.0, 10_000, 20.0
	for _, c := range []struct {
		name  string
		alpha float64 // < 0: Uniform
	}{
		{"uniform", -1},
		{"walk/alpha=0", 0},
		{"walk/alpha=0.001", 0.001},
		{"walk/alpha=0.01", 0.01},
		{"walk/alpha=0.1", 0.1},
		{"walk/alpha=1", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := testRand(t)
			s := newTangleSim(lambda, h)
			s.warmup = 50 * h
			var sel tipselect.Selector = tipselect.NewUniform(&s.pool)
			if c.alpha >= 0 {
				g := s.attachGraph(depth*h, (depth+1)*h)
				w, err := tipselect.NewWalk(g, tipselect.WalkConfig{Alpha: c.alpha})
				if err != nil {
					t.Fatal(err)
				}
				sel = w
			}
			if err := s.run(r, sel, arrivals); err != nil {
				t.Fatal(err)
			}
			tips, pool, _ := s.means()
			t.Logf("lambda %g, h %g, %d arrivals: mean L(t) %.1f (2*lambda*h = %.0f), mean visible pool %.1f, orphaned (no approver after 20h) %.2f%%",
				lambda, h, arrivals, tips, 2*lambda*h, pool, 100*s.orphanRate(20*h))
		})
	}
}
