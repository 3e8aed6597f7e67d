// Package tipselect chooses the two parents of a new message.
//
// A message in Weft approves two earlier messages. Which two is a local
// choice, not a validity rule: it decides how fast new messages gather
// approvals and how few are left behind (orphaned), but never whether a
// message is valid. The package offers two strategies behind one interface,
// [Selector]:
//
//   - [Uniform], the default: two distinct tips drawn uniformly at random
//     from a [Pool] of eligible tips. O(1), no allocation.
//   - [Walk], the tangle white paper's weighted random walk (MCMC): from an
//     entry point, step to a child with probability proportional to
//     exp(alpha * cumulative weight) until a tip is reached. Kept for
//     comparison with Uniform; it reads a [Graph].
//
// # Basics
//
// The package is pure. It starts no goroutine, reads no clock, does no I/O
// and uses no global random source: every Select takes the caller's
// *rand.Rand (math/rand/v2), so a seeded source makes a run reproducible.
// The interfaces it reads, [Pool] and [Graph], belong to this package and
// are satisfied by the DAG core, which owns the tip pool (bounded; tips
// leave after an age limit or after enough children; lazy tips are never
// offered). The node wires the two together and calls Select from the
// goroutine that owns the DAG state, with that goroutine's *rand.Rand:
//
//	sel := tipselect.NewUniform(core.Tips())    // core.Tips() is a tipselect.Pool
//	...
//	p1, p2, err := sel.Select(rng)              // on the core goroutine
//	if errors.Is(err, tipselect.ErrNoTips) { ... }
//
// # What to expect
//
// Under uniform selection with messages arriving as a Poisson process of
// rate lambda, each one hidden for a delay h before the rest of the network
// can see (and approve) it, the number of tips settles at about 2*lambda*h
// (Popov, "The Tangle", section 3, high-load regime). The package's tests
// check this with a discrete-event simulation that drives the real Uniform
// selector.
//
// # Caveats
//
// A *rand.Rand is not safe for concurrent use; neither is a Pool or Graph
// that is being changed. Selectors hold no mutable state of their own, so
// concurrent Selects are safe exactly when the Pool or Graph tolerates
// concurrent reads and each goroutine passes its own *rand.Rand.
//
// Errors are sentinels prefixed "tipselect:", wrapped with detail; test for
// them with errors.Is.
package tipselect
