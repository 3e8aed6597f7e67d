package node

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/rules"
)

// edgeIssuers bounds the issuers the edge policy remembers; past it, the
// least recently seen are forgotten (a forgotten issuer starts afresh).
const edgeIssuers = 1 << 17

// edge is the local admission policy for what devices submit: allowlist,
// clock skew, sequence order and rate per issuer. It runs after a message
// has passed every check of its bytes (encoding, network, proof of work,
// signature), so a message that names an issuer it was not signed by
// charges that issuer nothing. It never applies to gossip: a valid message
// from a peer is never dropped by local policy.
//
// The sequence rule keeps the node's own API from making an equivocation:
// a device's message is refused when a different message of the same
// issuer and sequence is stored or still in the node's pipeline (waiting
// for parents, say). The same bytes again are not refused here.
type edge struct {
	now     func() time.Time // Config.Time
	skew    time.Duration
	rate    float64
	burst   float64
	powKeys map[dag.PublicKey]bool
	reg     *registry // nil until the node has opened it

	mu      sync.Mutex
	allow   map[dag.PublicKey]bool // nil: everyone
	issuers generations[dag.PublicKey, *issuerState]
}

type issuerState struct {
	tokens float64
	last   time.Time
	seq    uint64 // highest sequence stored
	seqID  dag.ID
	hasSeq bool
	// claims are the admitted messages not yet stored or refused, by
	// sequence: at most the pipeline's and the core's bounds in all.
	claims map[uint64]dag.ID
}

func newEdge(cfg Config) *edge {
	e := &edge{now: cfg.Time, skew: cfg.MaxClockSkew, rate: cfg.RatePerIssuer, burst: float64(cfg.RateBurst),
		powKeys: map[dag.PublicKey]bool{}}
	e.setAllow(cfg.Allowlist)
	for _, k := range cfg.RemotePoWKeys {
		e.powKeys[k] = true
	}
	e.issuers.init(edgeIssuers)
	return e
}

func (e *edge) remotePoW(k dag.PublicKey) bool { return e.powKeys[k] }

// setAllow replaces the allowlist; empty lets every issuer in.
func (e *edge) setAllow(keys []dag.PublicKey) {
	var allow map[dag.PublicKey]bool
	if len(keys) > 0 {
		allow = make(map[dag.PublicKey]bool, len(keys))
		for _, k := range keys {
			allow[k] = true
		}
	}
	e.mu.Lock()
	e.allow = allow
	e.mu.Unlock()
}

// state returns the issuer's state, creating it. Call with e.mu held.
func (e *edge) state(k dag.PublicKey, now time.Time) *issuerState {
	st := e.issuers.get(k)
	if st == nil {
		st = &issuerState{tokens: e.burst, last: now}
		e.issuers.put(k, st)
	}
	return st
}

// admit applies the policy to one message at time now, a message that has
// passed every check of its bytes. On success the message holds its
// sequence until committed or released.
func (e *edge) admit(now time.Time, m *dag.Message) error {
	if m.Timestamp > now.Add(e.skew).UnixNano() {
		return fmt.Errorf("%w: %v ahead", ErrFuture, time.Duration(m.Timestamp-now.UnixNano()).Round(time.Millisecond))
	}
	if err := e.reg.admit(m.Issuer); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.allow != nil && !e.allow[m.Issuer] {
		return ErrNotAllowed
	}
	st := e.state(m.Issuer, now)
	id := m.ID()
	if st.hasSeq && (m.Seq < st.seq || (m.Seq == st.seq && id != st.seqID)) {
		return fmt.Errorf("%w: %d, last stored %d", ErrStaleSequence, m.Seq, st.seq)
	}
	if other, ok := st.claims[m.Seq]; ok && other != id {
		return fmt.Errorf("%w: %d is taken by %s, which is in the pipeline", ErrStaleSequence, m.Seq, other)
	}
	if e.rate > 0 {
		st.tokens = min(e.burst, st.tokens+now.Sub(st.last).Seconds()*e.rate)
		st.last = now
		if st.tokens < 1 {
			return ErrRateLimited
		}
		st.tokens--
	}
	if st.claims == nil {
		st.claims = make(map[uint64]dag.ID)
	}
	st.claims[m.Seq] = id
	return nil
}

// committed records that a device's message is stored, whoever sent it.
func (e *edge) committed(m *dag.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.state(m.Issuer, e.now())
	if !st.hasSeq || m.Seq > st.seq {
		st.seq, st.seqID, st.hasSeq = m.Seq, m.ID(), true
	}
	st.dropClaim(m.Seq, m.ID())
}

// release gives up the sequence an admitted message held: the node refused
// it for good (an invalid parent, parents that never came).
func (e *edge) release(m *dag.Message) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st := e.issuers.get(m.Issuer); st != nil {
		st.dropClaim(m.Seq, m.ID())
	}
}

func (st *issuerState) dropClaim(seq uint64, id dag.ID) {
	if st.claims[seq] == id {
		delete(st.claims, seq)
	}
}

// generations is a bounded map that forgets the least recently used keys
// in bulk: two maps, the current and the previous; a hit in the previous
// moves the key to the current; when the current is full it becomes the
// previous and the old previous is dropped. It holds at most 2*n keys.
type generations[K comparable, V any] struct {
	cur, prev map[K]V
	n         int
}

func (g *generations[K, V]) init(n int) {
	g.n, g.cur, g.prev = n, make(map[K]V), make(map[K]V)
}

func (g *generations[K, V]) get(k K) V {
	if v, ok := g.cur[k]; ok {
		return v
	}
	v, ok := g.prev[k]
	if ok {
		delete(g.prev, k)
		g.put(k, v)
	}
	return v
}

func (g *generations[K, V]) put(k K, v V) {
	if len(g.cur) >= g.n {
		g.prev, g.cur = g.cur, make(map[K]V, g.n)
	}
	g.cur[k] = v
}

// Code returns the stable code of a submission's error, as the API reports
// it (docs/API.md), or "internal" for an error it does not know.
func Code(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, dag.ErrTooLarge):
		return "too_large"
	case errors.Is(err, dag.ErrMalformed), errors.Is(err, dag.ErrVersion):
		return "malformed"
	case errors.Is(err, dag.ErrNetwork):
		return "wrong_network"
	case errors.Is(err, dag.ErrSignature):
		return "bad_signature"
	case errors.Is(err, dag.ErrPoW):
		return "insufficient_pow"
	case errors.Is(err, dag.ErrTimestamp), errors.Is(err, ErrFuture):
		return "invalid_timestamp"
	case errors.Is(err, dag.ErrInvalidParent):
		return "invalid_parent"
	case errors.Is(err, ErrUnknownParents):
		return "unknown_parents"
	case errors.Is(err, ErrPending):
		return "pending"
	case errors.Is(err, ErrDuplicate):
		return "duplicate"
	case errors.Is(err, ErrStaleSequence):
		return "stale_sequence"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, ErrRevoked):
		return "revoked"
	case errors.Is(err, ErrNotAllowed), errors.Is(err, ErrRemotePoW):
		return "forbidden"
	case errors.Is(err, ErrInvalidDevice):
		return "bad_request"
	case errors.Is(err, ErrDeviceExists):
		return "device_exists"
	case errors.Is(err, ErrRegistryFull):
		return "registry_full"
	case errors.Is(err, ErrUnknownDevice):
		return "not_found"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	case errors.Is(err, ErrStorageUnavailable):
		return "storage_unavailable"
	case errors.Is(err, ErrShuttingDown):
		return "shutting_down"
	case errors.Is(err, ErrNotFound), errors.Is(err, rules.ErrNoRule):
		return "not_found"
	case errors.Is(err, ErrPruned):
		return "pruned"
	case errors.Is(err, ErrNoProof):
		return "no_proof"
	case errors.Is(err, rules.ErrInvalid):
		return "invalid_rule"
	case errors.Is(err, ErrRuleExists):
		return "rule_exists"
	case errors.Is(err, ErrRuleInConfig):
		return "rule_in_config"
	case errors.Is(err, ErrTooManyRules):
		return "too_many_rules"
	case errors.Is(err, ErrNotReady):
		return "not_ready"
	}
	return "internal"
}
