package node

import (
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
)

// maxEquivocations bounds the equivocations a node lists: the most recent
// ones since it started. Both messages of each stay in the store.
const maxEquivocations = 10_000

// Equivocation is two different messages of one issuer with one sequence
// number, both valid and both kept: the validity rule cannot tell which is
// the real one, so the node records the pair and lets the operator see it.
type Equivocation struct {
	Issuer dag.PublicKey
	Seq    uint64
	First  dag.ID // the one the node stored first
	Second dag.ID
	SeenAt time.Time
}

// equivocations is a bounded list, oldest first; safe for concurrent use.
type equivocations struct {
	mu   sync.Mutex
	list []Equivocation // a ring once full
	next int            // where the next goes, once full
}

func (e *equivocations) add(q Equivocation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.list) < maxEquivocations {
		e.list = append(e.list, q)
		return
	}
	e.list[e.next] = q
	e.next = (e.next + 1) % maxEquivocations
}

// recent returns up to limit equivocations, newest first, of issuer when
// issuer is not nil.
func (e *equivocations) recent(issuer *dag.PublicKey, limit int) []Equivocation {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Equivocation
	for k := range e.list {
		i := (e.next - 1 - k + 2*len(e.list)) % len(e.list)
		if q := e.list[i]; issuer == nil || q.Issuer == *issuer {
			out = append(out, q)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

// Equivocations returns up to limit (at most 1,000) of the equivocations
// the node has seen since it started, newest first; only issuer's when
// issuer is not nil. Safe for concurrent use.
func (n *Node) Equivocations(issuer *dag.PublicKey, limit int) []Equivocation {
	return n.equivs.recent(issuer, min(max(limit, 1), 1000))
}
