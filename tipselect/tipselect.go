package tipselect

import (
	"errors"
	"math/rand/v2"

	"github.com/weftnet/weft/dag"
)

// Errors returned by selectors. They are wrapped with detail; test for them
// with errors.Is.
var (
	// ErrNoTips: there is nothing to select from (an empty Pool, or a Graph
	// with no entry point).
	ErrNoTips = errors.New("tipselect: no tips")
	// ErrWalkTooLong: a random walk took more steps than its limit without
	// reaching a tip. It points at a Graph whose IsTip and children disagree
	// (for example a cycle) or at an entry point far too deep in the past.
	ErrWalkTooLong = errors.New("tipselect: walk exceeded its step limit")
	// ErrDeadEnd: a random walk reached a message that has no children but
	// that the Graph does not call a tip, so the walk cannot go on.
	ErrDeadEnd = errors.New("tipselect: walk reached a dead end")
	// ErrInvalidConfig: a selector's configuration is out of range.
	ErrInvalidConfig = errors.New("tipselect: invalid config")
)

// Selector chooses the two parents of a new message.
//
// Select returns two parent IDs, or an error wrapping ErrNoTips when there
// is nothing to select from. The two are distinct whenever the selector can
// offer two distinct tips: Uniform returns the same ID twice only when the
// pool holds a single tip; Walk documents when it can. Randomness comes only
// from r, so with a seeded r and an unchanged Pool or Graph the result is
// reproducible.
//
// Select reads the Pool or Graph it was built on and must not run while that
// is being changed. A *rand.Rand is not safe for concurrent use, so
// concurrent callers must each pass their own.
type Selector interface {
	Select(r *rand.Rand) (a, b dag.ID, err error)
}

// Pool is the set of tips currently eligible as parents, as Uniform reads it.
//
// The DAG core keeps the pool (bounded; tips leave after an age limit or after
// enough children; lazy tips are never in it) and satisfies this interface.
// Len and Tip must be O(1): Uniform samples by index. Tip(i) is called only
// with 0 <= i < Len(), and only while the pool is unchanged since that Len.
// Tips should be distinct; Uniform does not check.
type Pool interface {
	// Len returns the number of eligible tips.
	Len() int
	// Tip returns the i-th eligible tip, 0 <= i < Len(). The order is the
	// pool's own and may change whenever the pool does.
	Tip(i int) dag.ID
}

// Graph is the part of the DAG a random walk reads.
//
// Children point from a message to the messages that approve it directly:
// the walk moves forward in time, from an old entry point toward the tips.
// Every method must be cheap (a map or slice lookup); a walk calls them a few
// times per step. A Graph should answer consistently for the length of one
// Select: the walk is only as sound as the snapshot it walks on.
type Graph interface {
	// Entry returns the message walks start from, for example a confirmed
	// message some depth behind the tips; ok is false when there is none
	// (an empty DAG). A walk only reaches tips in the entry's future cone,
	// so the entry must be deep enough that (nearly) every tip approves it
	// directly or indirectly; the rest are orphaned. In the package's
	// simulation (lambda*h = 50) an entry 10 delays deep orphaned a quarter
	// of all messages and 20 delays deep almost none (0.01%).
	Entry() (id dag.ID, ok bool)
	// AppendChildren appends to dst the IDs of the messages that directly
	// approve id, and returns the extended slice. It appends nothing for a
	// message with no children or unknown to the graph. The order does not
	// matter but should be deterministic, or a seeded walk is not
	// reproducible.
	AppendChildren(dst []dag.ID, id dag.ID) []dag.ID
	// Weight returns the cumulative weight of id as in the tangle paper: 1
	// for the message itself plus the number of messages that approve it
	// directly or indirectly. Only differences between the weights of the
	// children of one message matter to the walk.
	Weight(id dag.ID) uint64
	// IsTip reports whether the walk may stop at id and return it as a
	// parent. In the paper a tip is a message with no approvers; a graph may
	// instead answer as its tip pool does (for example a tip that has a
	// child or two but has not yet left the pool), in which case the walk
	// stops there. A walk that reaches a message with no children for which
	// IsTip is false fails with ErrDeadEnd.
	IsTip(id dag.ID) bool
}
