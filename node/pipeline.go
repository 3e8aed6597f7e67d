package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/weftnet/weft/dag"
)

// verifyBatch is how many signatures a verifier checks in one batch.
const verifyBatch = 256

// verifier runs the stateless checks: proof of work, the store's duplicate
// check (for messages that left the core's window), and signatures in
// batches. It forwards every job to the core loop, settled items and all,
// so that order is kept.
func (n *Node) verifier() {
	v := dag.NewVerifier(n.keys, nil)
	var (
		jobs []*job
		msgs []*dag.Message
		its  []*item
		errs = make([]error, verifyBatch)
	)
	for j := range n.verifyQ {
		jobs, msgs, its = append(jobs[:0], j), msgs[:0], its[:0]
		// Take more queued jobs into the same batch.
	more:
		for countOpen(jobs) < verifyBatch {
			select {
			case j2, ok := <-n.verifyQ:
				if !ok {
					break more
				}
				jobs = append(jobs, j2)
			default:
				break more
			}
		}
		for _, j := range jobs {
			for i := range j.items {
				it := &j.items[i]
				if it.settled.Load() {
					continue
				}
				if err := n.params.CheckCheap(it.msg); err != nil {
					it.finish(err)
					if j.peer {
						n.gossip.penalize(j.from, err)
					}
					continue
				}
				if has, _ := n.store.HasAt(it.msg.ID(), it.msg.Timestamp); has {
					it.finish(ErrDuplicate)
					continue
				}
				msgs, its = append(msgs, it.msg), append(its, it)
				if len(msgs) == verifyBatch {
					n.verify(v, msgs, its, errs)
					msgs, its = msgs[:0], its[:0]
				}
			}
		}
		n.verify(v, msgs, its, errs)
		now := n.now()
		for _, j := range jobs {
			if !j.peer && !j.self {
				n.admit(now, j)
			}
			if j.peer {
				for i := range j.items {
					if err, _ := j.items[i].result(); errors.Is(err, dag.ErrSignature) {
						n.gossip.penalize(j.from, err)
						break
					}
				}
			}
			n.coreQ <- j
		}
	}
}

// admit applies the edge policy to a device job's items that passed every
// check: policy comes last, so that a message that fails a check charges
// nothing to the issuer it names.
func (n *Node) admit(now time.Time, j *job) {
	for i := range j.items {
		it := &j.items[i]
		if it.settled.Load() {
			continue
		}
		if err := n.edge.admit(now, it.msg); err != nil {
			it.finish(err)
			continue
		}
		it.claimed = true
	}
}

func countOpen(jobs []*job) int {
	n := 0
	for _, j := range jobs {
		n += len(j.items)
	}
	return n
}

func (n *Node) verify(v *dag.Verifier, msgs []*dag.Message, its []*item, errs []error) {
	if len(msgs) == 0 {
		return
	}
	v.Verify(msgs, errs[:len(msgs)])
	for i, err := range errs[:len(msgs)] {
		if err != nil {
			its[i].finish(err)
		}
	}
}

// maybeIssue, on the core loop, starts the node's own message as a
// validator while messages of others wait for confirmation, or a
// checkpoint is due. One is in flight at a time.
func (n *Node) maybeIssue() {
	if !n.isVal || n.issuing.Load() || n.store.Failing() != nil {
		return
	}
	now := n.now()
	if len(n.devUnconf) == 0 && !n.checkpointDue(now) {
		return
	}
	if now.Sub(n.lastOwn) < n.cfg.IssueInterval && n.sinceOwn < n.cfg.IssueEvery {
		return
	}
	n.lastOwn, n.sinceOwn = now, 0
	a, b, err := n.sel.Select(n.rng)
	if err != nil {
		return
	}
	// The second parent is the node's previous message, while it is in
	// the core's window: its own messages form a chain, so that each one's
	// past cone holds everything the validator approved before it, and a
	// checkpoint covers all of that (docs/PROTOCOL.md 8.2).
	if n.ckpt.hasOwn {
		if _, ok := n.core.State(n.ckpt.lastOwn); ok {
			b = n.ckpt.lastOwn
		}
	}
	ts := now.UnixNano()
	for _, p := range []dag.ID{a, b} {
		if s, ok := n.core.State(p); ok {
			ts = max(ts, s.Timestamp)
		}
	}
	n.ownSeq++
	o := ownMsg{m: &dag.Message{Version: dag.Version, Network: n.params.Network, Parents: [2]dag.ID{a, b}, Seq: n.ownSeq, Timestamp: ts}}
	n.planCheckpoint(now, &o)
	n.issuing.Store(true)
	select {
	case n.own <- o:
	default:
		n.issuing.Store(false)
	}
}

// issuer signs and solves the node's own messages off the core loop, then
// hands them to it. They are the node's own: no edge policy, no signature
// check. One is in flight at a time (n.issuing); the issuer waits for its
// answer in the same select as the next request, and clears n.issuing
// once it is settled.
func (n *Node) issuer(ctx context.Context) {
	var (
		sent *job            // the message in flight, nil if none
		done <-chan struct{} // sent.done, nil (never ready) if none
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			if err, _ := sent.items[0].result(); err != nil && err != ErrShuttingDown {
				n.log.Warn().Err(err).Msg("own message refused")
			}
			sent, done = nil, nil
			n.issuing.Store(false)
		case o := <-n.own:
			if err := sealCheckpoint(&o); err != nil {
				n.log.Error().Err(err).Msg("sealing a checkpoint")
				n.issuing.Store(false)
				continue
			}
			j, ok := n.issue(ctx, o.m)
			if !ok {
				return
			}
			sent, done = j, j.done
		}
	}
}

// issue signs and solves m and hands it to the core loop. It reports false
// when ctx ended first.
func (n *Node) issue(ctx context.Context, m *dag.Message) (*job, bool) {
	m.Sign(n.cfg.Identity)
	if err := m.Solve(ctx, n.params, 1); err != nil {
		n.issuing.Store(false)
		return nil, false
	}
	j := newJob([]*dag.Message{m})
	j.self = true
	select {
	case n.coreQ <- j:
		n.m.ownMessages.Inc()
		return j, true
	case <-ctx.Done():
		return nil, false
	}
}

// Submit hands device messages to the pipeline and waits until each is
// durable or refused: the result for msgs[i] is errs[i], nil when stored,
// ErrPending when the node holds it for parents that have not arrived
// within Config.SubmitTimeout. Each message is checked first (proof of
// work, duplicates, signature), then the edge policy applies (clock skew,
// allowlist, sequence, rate). It is safe for concurrent use; msgs must have
// been decoded with Params().
func (n *Node) Submit(ctx context.Context, msgs []*dag.Message) []error {
	return n.submit(ctx, msgs)
}

func (n *Node) submit(ctx context.Context, msgs []*dag.Message) []error {
	if len(msgs) == 0 {
		return nil
	}
	j := newJob(msgs)
	snap := n.snap.Load()
	if err := n.storageErr(); err != nil {
		for i := range j.items {
			j.items[i].finish(err)
		}
	} else if n.inflight.Load()+int64(len(msgs)) > int64(n.cfg.MaxInflight) ||
		snap.stats.Unconfirmed > n.cfg.MaxUnconfirmed {
		for i := range j.items {
			j.items[i].finish(ErrOverloaded)
		}
	}
	n.inflight.Add(int64(len(msgs)))
	defer n.inflight.Add(-int64(len(msgs)))
	n.m.in.WithLabelValues("api").Add(float64(len(msgs)))

	n.mu.RLock()
	switch {
	case n.stopping:
		for i := range j.items {
			j.items[i].finish(ErrShuttingDown)
		}
	default:
		select {
		case n.verifyQ <- j:
		default:
			for i := range j.items {
				j.items[i].finish(ErrOverloaded)
			}
		}
	}
	n.mu.RUnlock()
	errs := j.wait(ctx, n.cfg.SubmitTimeout, n.notStoredInTime)
	for _, err := range errs {
		if err != nil {
			n.m.reject(Code(err))
		}
	}
	return errs
}

// SubmitRemotePoW does the proof of work for a device the operator listed,
// then submits its message like Submit. The network and the signature are
// checked before the permission and before any work is done; a nonce that
// already meets the difficulty is kept.
func (n *Node) SubmitRemotePoW(ctx context.Context, m *dag.Message) error {
	if m.Network != n.params.Network {
		return fmt.Errorf("%w: %016x", dag.ErrNetwork, uint64(m.Network))
	}
	if !m.VerifySignature() {
		return dag.ErrSignature
	}
	if !n.edge.remotePoW(m.Issuer) {
		return ErrRemotePoW
	}
	if err := n.params.CheckCheap(m); err != nil {
		if err := m.Solve(ctx, n.params, 0); err != nil {
			return err
		}
	}
	m.ID() // computed here, so that the caller may read it while the pipeline does
	return n.submit(ctx, []*dag.Message{m})[0]
}
