package node

import (
	"context"
	"errors"
	"fmt"
	"runtime"
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
)

// item is one message in the pipeline. Whoever finishes it first (a
// verifier, the core loop, the store's commit, or the submitter giving up)
// sets its error; the others' finish does nothing.
type item struct {
	msg   *dag.Message
	err   error
	state atomic.Uint32 // 0 open, 1 being settled, 2 settled
	job   *job
	// waiting: the core holds it for missing parents.
	waiting atomic.Bool
	// claimed: the edge admitted it and holds its sequence (set by a
	// verifier before the job goes to the core loop).
	claimed bool
}

// job is one submission: the items a caller waits for together.
type job struct {
	items []item
	left  atomic.Int32
	done  chan struct{}
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
	j := &job{items: make([]item, len(msgs)), done: make(chan struct{})}
	for i, m := range msgs {
		j.items[i].msg = m
		j.items[i].job = j
	}
	j.left.Store(int32(len(msgs)))
	if len(msgs) == 0 {
		close(j.done)
	}
	return j
}

// finish settles it with err (nil: durable) unless it is settled already.
func (it *item) finish(err error) {
	if it.state.CompareAndSwap(0, 1) {
		it.err = err
		it.state.Store(2)
		if it.job.left.Add(-1) == 0 {
			close(it.job.done)
			if it.job.release != nil {
				it.job.release()
			}
		}
	}
}

// settled waits for a finish that has begun to end, and returns the error.
func (it *item) settled() error {
	for it.state.Load() != 2 {
		runtime.Gosched() // the settling goroutine is between two stores
	}
	return it.err
}

// wait returns each item's error once all are settled, or, when ctx or the
// timeout ends first, settles the open ones: with ErrPending those the core
// holds for missing parents (they are stored when the parents come), with
// ErrOverloaded the others (if they are stored later, nobody is told). The
// caller's view is final.
func (j *job) wait(ctx context.Context, timeout time.Duration) []error {
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
		if it.waiting.Load() {
			it.finish(ErrPending)
		} else {
			it.finish(fmt.Errorf("%w: not stored within the submit timeout", ErrOverloaded))
		}
		errs[i] = it.settled()
	}
	return errs
}
