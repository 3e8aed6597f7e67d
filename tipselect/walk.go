package tipselect

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/weftnet/weft/dag"
)

// DefaultMaxSteps is the step limit of one walk when WalkConfig.MaxSteps is
// zero. Each step moves at least one network delay forward in time (a child
// is attached only after its parent became visible): in the package's
// simulations a walk took about one step per two delays of the entry point's
// depth, so tens of steps. The limit only catches a broken Graph or an entry
// point absurdly deep in the past.
const DefaultMaxSteps = 10_000

// walkTries is how many times Select walks for the second parent before it
// accepts the first parent's tip again.
const walkTries = 4

// WalkConfig configures a Walk. The zero value is an unbiased random walk
// with the default step limit.
type WalkConfig struct {
	// Alpha is the walk's bias toward heavy children: from x, the walk steps
	// to child y with probability proportional to exp(-Alpha*(H_x - H_y)),
	// H being cumulative weight. 0 (the zero value) is an unbiased walk;
	// large values follow the heaviest path. It must be finite and not
	// negative. What matters is Alpha times the weight differences between
	// siblings: far below 1 the walk is close to unbiased, far above 1 it is
	// close to greedy and leaves more tips behind.
	Alpha float64
	// MaxSteps bounds the number of steps of one walk; a walk that has not
	// reached a tip after MaxSteps steps fails with ErrWalkTooLong. Zero
	// means DefaultMaxSteps; it must not be negative.
	MaxSteps int
}

// Walk selects parents with the tangle white paper's weighted random walk
// (Popov, "The Tangle", section 4, the MCMC tip selection algorithm).
//
// Each walk starts at the Graph's entry point and, until it stands on a
// message the Graph calls a tip, steps from the current message x to one of
// its children y with probability
//
//	exp(-alpha*(H_x - H_y)) / sum over children z of exp(-alpha*(H_x - H_z))
//
// H_x cancels out, and the weights are shifted by the heaviest child before
// exponentiation, so no term overflows and the heaviest child's term is
// exactly 1 whatever the magnitude of the weights or of alpha. Ties at the
// top are broken uniformly, so with a very large alpha the walk follows the
// heaviest path and is random only between equally heavy children.
//
// Select walks twice, independently, from the same entry point. If the
// second walk ends on the first one's tip, it walks again, up to three more
// times; if every walk ends there, Select returns that tip twice. That
// happens when only one tip is reachable, and, in practice, when alpha is so
// large that the walk is deterministic.
//
// A walk costs O(steps * children per step) Graph calls and Select allocates
// a small scratch buffer. A Walk holds no mutable state; it is safe for
// concurrent use under the conditions stated on Selector.
type Walk struct {
	graph    Graph
	alpha    float64
	maxSteps int
}

var _ Selector = (*Walk)(nil)

// NewWalk returns a Walk reading g with configuration cfg. It returns an
// error wrapping ErrInvalidConfig when g is nil or cfg is out of range.
func NewWalk(g Graph, cfg WalkConfig) (*Walk, error) {
	if g == nil {
		return nil, fmt.Errorf("%w: nil Graph", ErrInvalidConfig)
	}
	if math.IsNaN(cfg.Alpha) || math.IsInf(cfg.Alpha, 0) || cfg.Alpha < 0 {
		return nil, fmt.Errorf("%w: alpha %v, want finite and >= 0", ErrInvalidConfig, cfg.Alpha)
	}
	if cfg.MaxSteps < 0 {
		return nil, fmt.Errorf("%w: max steps %d, want >= 0", ErrInvalidConfig, cfg.MaxSteps)
	}
	if cfg.MaxSteps == 0 {
		cfg.MaxSteps = DefaultMaxSteps
	}
	return &Walk{graph: g, alpha: cfg.Alpha, maxSteps: cfg.MaxSteps}, nil
}

// Select returns the tips reached by two walks from the Graph's entry point
// (see Walk for when the two are equal). It returns an error wrapping
// ErrNoTips when the Graph has no entry point, ErrWalkTooLong when a walk
// exceeds the step limit, and ErrDeadEnd when a walk gets stuck.
func (w *Walk) Select(r *rand.Rand) (a, b dag.ID, err error) {
	entry, ok := w.graph.Entry()
	if !ok {
		return a, b, ErrNoTips
	}
	s := newScratch()
	if a, err = w.walk(r, entry, s); err != nil {
		return dag.ID{}, dag.ID{}, err
	}
	for range walkTries {
		if b, err = w.walk(r, entry, s); err != nil {
			return dag.ID{}, dag.ID{}, err
		}
		if b != a {
			break
		}
	}
	return a, b, nil
}

// Tip performs a single walk from the Graph's entry point and returns the
// tip it ends on, with the errors of Select.
func (w *Walk) Tip(r *rand.Rand) (dag.ID, error) {
	entry, ok := w.graph.Entry()
	if !ok {
		return dag.ID{}, ErrNoTips
	}
	return w.walk(r, entry, newScratch())
}

// scratchCap is the number of children a step handles without growing the
// scratch buffers: a message usually has a few.
const scratchCap = 8

// scratch holds the per-step buffers of a walk, reused across steps and
// across the walks of one Select. It is one allocation while no message on
// the way has more than scratchCap children.
type scratch struct {
	children []dag.ID
	weights  []uint64
	probs    []float64

	childrenBuf [scratchCap]dag.ID
	weightsBuf  [scratchCap]uint64
	probsBuf    [scratchCap]float64
}

func newScratch() *scratch {
	s := new(scratch)
	s.children, s.weights, s.probs = s.childrenBuf[:0], s.weightsBuf[:0], s.probsBuf[:0]
	return s
}

func (w *Walk) walk(r *rand.Rand, start dag.ID, s *scratch) (dag.ID, error) {
	x := start
	for step := 0; ; step++ {
		if w.graph.IsTip(x) {
			return x, nil
		}
		if step == w.maxSteps {
			return dag.ID{}, fmt.Errorf("%w: no tip after %d steps from %v", ErrWalkTooLong, step, start)
		}
		s.children = w.graph.AppendChildren(s.children[:0], x)
		if len(s.children) == 0 {
			return dag.ID{}, fmt.Errorf("%w: %v has no children and is not a tip (%d steps from %v)", ErrDeadEnd, x, step, start)
		}
		x = w.choose(r, s)
	}
}

// choose draws one of s.children with the walk's transition probabilities.
func (w *Walk) choose(r *rand.Rand, s *scratch) dag.ID {
	kids := s.children
	if len(kids) == 1 {
		return kids[0]
	}
	if w.alpha == 0 {
		return kids[r.IntN(len(kids))]
	}
	s.weights = s.weights[:0]
	var top uint64
	for _, k := range kids {
		h := w.graph.Weight(k)
		s.weights = append(s.weights, h)
		top = max(top, h)
	}
	// exp(-alpha*(H_x-H_y)) is proportional to exp(-alpha*(top-H_y)): every
	// exponent is <= 0, the heaviest child's term is 1, so sum >= 1.
	s.probs = s.probs[:0]
	sum := 0.0
	for _, h := range s.weights {
		p := math.Exp(-w.alpha * float64(top-h))
		s.probs = append(s.probs, p)
		sum += p
	}
	u := r.Float64() * sum
	last := 0
	for i, p := range s.probs {
		if p == 0 {
			continue
		}
		if u < p {
			return kids[i]
		}
		u -= p
		last = i
	}
	return kids[last] // rounding left u just above the total: take the last live child
}
