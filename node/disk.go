package node

import (
	"errors"
	"fmt"
	"time"
)

// The node on a failing disk. The store retries a commit that fails (a
// full disk, an I/O error) until it succeeds; meanwhile the node:
//   - takes no new messages: the API answers ErrStorageUnavailable, gossip
//     blocks the peer that sends (backpressure), and a validator issues
//     nothing, so the in-memory DAG never runs further ahead of the store
//     than what was in the pipeline when the failure began;
//   - holds its next Writes in the loop (the backlog) instead of blocking
//     the loop on the store's queue, so that reads keep being served;
//   - hands out as parents only messages that are durable (Tips);
//   - says why in Ready, Info and the metrics, and logs the failure once,
//     then every storeLogEvery while it lasts, and its end;
//   - goes on by itself once the store commits again.

// ErrStorageUnavailable: the store cannot commit (a full disk, an I/O
// error); the node takes no messages until it can. The error says why.
var ErrStorageUnavailable = errors.New("node: storage unavailable")

// storeLogEvery is how often the log repeats that the store still fails.
const storeLogEvery = 30 * time.Second

// storageErr returns nil while the store commits, else an error wrapping
// ErrStorageUnavailable and the store's cause. Safe for concurrent use.
func (n *Node) storageErr() error {
	if err := n.store.Failing(); err != nil {
		return fmt.Errorf("%w: %v", ErrStorageUnavailable, err)
	}
	return nil
}

// storeWatch is what the loop remembers of the store's health, for the log.
type storeWatch struct {
	failing bool
	since   time.Time // when the failure was first seen
	logged  time.Time // the last time it was logged
	// retention: the same for the store's cuts and drops of epochs.
	retFailing bool
	retLogged  time.Time
}

// watchStore, on the loop's tick, logs the store's failing and recovering,
// and submits the held Writes once the store commits again.
func (n *Node) watchStore() {
	now := n.now()
	err := n.store.Failing()
	w := &n.storeWatch
	switch {
	case err != nil && !w.failing:
		w.failing, w.since, w.logged = true, now, now
		n.log.Error().Err(err).Msg("the store cannot commit: taking no messages until it can; retrying")
		n.answerUnstored(fmt.Errorf("%w: %v; the message is stored once the store commits again", ErrStorageUnavailable, err))
	case err != nil && now.Sub(w.logged) >= storeLogEvery:
		w.logged = now
		n.log.Error().Err(err).Dur("for", now.Sub(w.since)).Int("writes_held", len(n.backlog)).
			Msg("the store still cannot commit")
	case err == nil && w.failing:
		w.failing = false
		n.log.Info().Dur("after", now.Sub(w.since)).Int("writes_held", len(n.backlog)).
			Msg("the store commits again: taking messages")
	}
	switch f := n.store.RetentionFailing(); {
	case f != nil && (!w.retFailing || now.Sub(w.retLogged) >= storeLogEvery):
		w.retFailing, w.retLogged = true, now
		n.log.Error().Err(f.Err).Time("since", f.Since).Int("attempts", f.Attempts).
			Msg("the store cannot cut or drop epochs (retention): retrying every second; messages are still taken")
	case f == nil && w.retFailing:
		w.retFailing = false
		n.log.Info().Msg("the store cuts and drops epochs again")
	}
	n.drainBacklog()
}

// answerUnstored answers the devices whose messages wait for a commit that
// fails, in the store or in the backlog, with err at once, rather than at
// the submit timeout: the node cannot tell when they will be stored. They
// are stored once the store commits again, and a device that sends one
// again then gets ErrDuplicate. Peers and the node's own messages wait.
func (n *Node) answerUnstored(err error) {
	for _, cs := range [][]*commit{n.atStore, n.backlog} {
		for _, c := range cs {
			for _, it := range c.items {
				if !it.job.self && !it.job.peer {
					it.finish(err)
				}
			}
		}
	}
}

// drainBacklog submits the held Writes, oldest first, while the store
// commits.
func (n *Node) drainBacklog() {
	for len(n.backlog) > 0 && n.store.Failing() == nil {
		c := n.backlog[0]
		n.backlog[0] = nil
		n.backlog = n.backlog[1:]
		n.submitNow(c)
	}
}

// waitStorage blocks while the store fails, or until stop is closed; it
// reports whether the store commits. Gossip calls it before it hands
// peers' messages on: the peer's stream stalls, which is the backpressure
// it feels, and nothing it sent is dropped.
func (n *Node) waitStorage(stop <-chan struct{}) bool {
	if n.store.Failing() == nil {
		return true
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for n.store.Failing() != nil {
		select {
		case <-stop:
			return false
		case <-t.C:
		}
	}
	return true
}
