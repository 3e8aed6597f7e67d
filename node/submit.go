package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/dag"
)

// Errors a submission can get besides dag's validity errors. The api
// package maps each to a stable code.
var (
	ErrDuplicate      = errors.New("node: message already in the ledger")
	ErrStaleSequence  = errors.New("node: sequence number not above the issuer's last")
	ErrFuture         = errors.New("node: timestamp too far ahead of the node's clock")
	ErrRateLimited    = errors.New("node: issuer over its rate")
	ErrNotAllowed     = errors.New("node: issuer not on the allowlist")
	ErrRemotePoW      = errors.New("node: remote proof of work not allowed for this issuer")
	ErrOverloaded     = errors.New("node: overloaded")
	ErrUnknownParents = errors.New("node: parents unknown")
	// ErrPending is not a refusal: the message passed every check and the
	// node holds it, in memory, until its parents arrive (dag.Config's
	// PendingTTL); it is stored then. It is not durable yet.
	ErrPending      = errors.New("node: accepted, waiting for parents")
	ErrShuttingDown = errors.New("node: shutting down")
	ErrNotFound     = errors.New("node: no such message")
	// ErrPruned: the message was dropped by retention; the node can tell
	// for the dropped messages that kept ones name as parents (entry
	// points) and answers ErrNotFound for the others.
	ErrPruned = errors.New("node: pruned")
)

// item is one message in the pipeline. Whoever finishes it first (a
// verifier, the core loop acting on a commit, or the submitter giving up)
// sets its error; the others' finish does nothing.
type item struct {
	msg *dag.Message
	// err is the item's result: written once, by the finish that settles
	// it, under job.mu and before settled is set; read-only after.
	err error
	// settled is set, under job.mu, once err holds the result. A goroutine
	// that sees it set may read err without the lock.
	settled atomic.Bool
	job     *job
	// waiting: the core holds it for missing parents.
	waiting atomic.Bool
	// claimed: the edge admitted it and holds its sequence (set by a
	// verifier before the job goes to the core loop).
	claimed bool
}

// job is one submission: the items a caller waits for together.
type job struct {
	items []item
	// mu serializes the finishes of the job's items: one mutex per job, so
	// that a batch of any size costs one lock and one channel, not one per
	// message.
	mu   sync.Mutex
	left int // items not yet settled, guarded by mu
	done chan struct{}
	// self marks the node's own messages: already trusted, no edge policy.
	self bool
	// peer marks messages from gossip: no edge policy; a deterministic
	// fault disconnects from, the peer that sent them.
	peer bool
	from dag.PublicKey
	// release, if set, runs once every item is settled.
	release func()
}

func newJob(msgs []*dag.Message) *job {
	j := &job{items: make([]item, len(msgs)), left: len(msgs), done: make(chan struct{})}
	for i, m := range msgs {
		j.items[i].msg = m
		j.items[i].job = j
	}
	if len(msgs) == 0 {
		close(j.done)
	}
	return j
}

// finish settles it with err (nil: durable) unless it is settled already.
// When it returns, the item is settled, by this call or an earlier one.
func (it *item) finish(err error) {
	j := it.job
	j.mu.Lock()
	if it.settled.Load() {
		j.mu.Unlock()
		return
	}
	it.err = err
	it.settled.Store(true)
	j.left--
	last := j.left == 0
	j.mu.Unlock()
	if last {
		close(j.done)
		if j.release != nil {
			j.release()
		}
	}
}

// notStoredInTime is the answer to a message the pipeline did not store
// within the submit timeout: ErrStorageUnavailable while the store fails,
// else ErrOverloaded.
func (n *Node) notStoredInTime() error {
	if err := n.storageErr(); err != nil {
		return err
	}
	return errNotStoredInTime()
}

func errNotStoredInTime() error {
	return fmt.Errorf("%w: not stored within the submit timeout", ErrOverloaded)
}

// result returns the item's error and true once it is settled, or false
// while it is open.
func (it *item) result() (error, bool) {
	if !it.settled.Load() {
		return nil, false
	}
	return it.err, true
}

// wait returns each item's error once all are settled, or, when ctx or the
// timeout ends first, settles the open ones: with ErrPending those the core
// holds for missing parents (they are stored when the parents come), with
// late() the others (if they are stored later, nobody is told). The
// caller's view is final.
func (j *job) wait(ctx context.Context, timeout time.Duration, late func() error) []error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-j.done:
	case <-ctx.Done():
	case <-t.C:
	}
	errs := make([]error, len(j.items))
	for i := range j.items {
		it := &j.items[i]
		// No-op for the settled ones. Those the core holds for parents wait
		// for parents; the others were too slow in a busy pipeline.
		switch {
		case it.settled.Load():
		case it.waiting.Load():
			it.finish(ErrPending)
		default:
			it.finish(late())
		}
		errs[i], _ = it.result() // settled: finish has returned
	}
	return errs
}
