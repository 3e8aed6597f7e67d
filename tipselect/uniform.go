package tipselect

import (
	"math/rand/v2"

	"github.com/weftnet/weft/dag"
)

// Uniform selects two distinct tips uniformly at random from a Pool: every
// ordered pair of distinct tips is equally likely. It is the default
// strategy, as in IOTA's URTS (TIP-3), with laziness handled by what the pool
// admits rather than by the selector.
//
// Select costs O(1): one Len, two Tip calls, two random draws, and no
// allocation. A Uniform holds no mutable state; it is safe for concurrent use
// under the conditions stated on Selector.
type Uniform struct {
	pool Pool
}

var _ Selector = (*Uniform)(nil)

// NewUniform returns a Uniform selector reading p, which must not be nil.
func NewUniform(p Pool) *Uniform {
	if p == nil {
		panic("tipselect: NewUniform with a nil Pool")
	}
	return &Uniform{pool: p}
}

// Select returns two distinct tips drawn uniformly from the pool. When the
// pool holds one tip it returns that tip twice; when it is empty it returns
// an error wrapping ErrNoTips.
func (u *Uniform) Select(r *rand.Rand) (a, b dag.ID, err error) {
	n := u.pool.Len()
	switch {
	case n <= 0:
		return a, b, ErrNoTips
	case n == 1:
		a = u.pool.Tip(0)
		return a, a, nil
	}
	i := r.IntN(n)
	j := r.IntN(n - 1) // uniform over the n-1 indices other than i
	if j >= i {
		j++
	}
	return u.pool.Tip(i), u.pool.Tip(j), nil
}
