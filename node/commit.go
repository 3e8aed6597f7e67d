package node

import (
	"errors"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/proof"
	"github.com/weftnet/weft/storage"
)

// The commit path, all of it on the core loop: flush takes the core's
// Update and hands the store a Write; the store's writer, once the Write is
// durable (or refused), hands the result back on n.committed and does
// nothing else; the loop then settles the commit: the edge learns the
// issuers' sequences, the submitters are answered, the messages are
// relayed and the events published.

// commit is a Write in flight and what the loop needs to act on its result.
type commit struct {
	w     *storage.Write
	u     dag.Update // for the events
	items []*item    // answered when the Write is durable
	rb    *relayBatch
	start time.Time
	// Set by the writer before it hands the commit back.
	err  error
	took time.Duration
}

// commitsInFlight returns the capacity of n.committed: the most Writes the
// loop has in the store at once. Twice the store's queue, so that in the
// usual case it is the store's queue, not this bound, that holds the loop
// back.
func commitsInFlight(cfg storage.Config) int {
	q := cfg.QueueLen
	if q <= 0 {
		q = storage.DefaultQueueLen
	}
	return 2 * q
}

// flush takes the core's work and hands it to the store; submitters are
// answered, and events published, once the store reports the commit.
func (n *Node) flush() {
	u := n.core.Ready()
	n.resolveMissing(&u)
	n.gossip.requestMissing(u.Missing, n.stepPeers)
	n.stepPeers = nil
	if u.Empty() {
		return
	}
	n.answerRejected(u.Rejected)
	for _, o := range u.Orphaned {
		delete(n.devUnconf, o.ID)
	}
	n.recordEquivocations(u.Equivocations)
	items, rb := n.takeSolid(u.Solid)
	n.observeConfirmed(u.Confirmed)
	w := n.write(u)
	n.stored += uint64(len(u.Solid))
	n.confirmedN += uint64(len(u.Confirmed))
	n.publishSnapshot(len(u.Solid))
	if len(w.Records) == 0 && len(w.Confirmations) == 0 {
		return
	}
	n.submitWrite(&commit{w: w, u: u, items: items, rb: rb})
}

// answerRejected answers the waiters of the messages the core gave up on.
func (n *Node) answerRejected(rejected []dag.Rejection) {
	for _, r := range rejected {
		expired := errors.Is(r.Err, dag.ErrExpired)
		if expired {
			n.gossip.forget(r.ID) // may come again once its parents are here
		}
		for _, it := range n.takeWaiters(r.ID) {
			// The sequence is free before the submitter hears: a device
			// told its message was refused may rebuild it at once.
			n.release(it)
			if expired {
				it.finish(ErrUnknownParents)
			} else {
				it.finish(r.Err)
			}
		}
	}
}

// recordEquivocations lists the equivocations the core found and logs them.
func (n *Node) recordEquivocations(eqs []dag.Equivocation) {
	for _, e := range eqs {
		n.m.equivocations.Inc()
		n.equivs.add(Equivocation{Issuer: e.Issuer, Seq: e.Seq, First: e.First, Second: e.Second, SeenAt: n.now()})
		n.log.Warn().Str("issuer", e.Issuer.String()).Uint64("seq", e.Seq).
			Str("first", e.First.String()).Str("second", e.Second.String()).Msg("equivocation")
	}
}

// takeSolid takes the waiters of the messages that became solid, to be
// answered after the commit, and groups the messages for the relay.
func (n *Node) takeSolid(solid []dag.SolidMessage) ([]*item, *relayBatch) {
	var (
		items []*item
		rb    = &relayBatch{}
		now   = n.now().UnixNano()
	)
	for _, s := range solid {
		id := s.Msg.ID()
		its := n.takeWaiters(id)
		items = append(items, its...)
		if s.Pos != 0 {
			var it *item
			if len(its) > 0 {
				it = its[0]
			}
			rb.add(s.Msg.Bytes(), it)
		}
		if !n.vals[s.Msg.Issuer] {
			n.devUnconf[id] = now
			n.sinceOwn++
		}
		if s.Msg.Issuer == n.self {
			n.ckpt.lastOwn, n.ckpt.hasOwn = id, true
			if !proof.IsCheckpoint(s.Msg.Payload) {
				n.ckpt.approving++
			}
		}
	}
	return items, rb
}

// observeConfirmed records the confirmation latency of others' messages.
func (n *Node) observeConfirmed(confirmed []dag.Confirmation) {
	for _, c := range confirmed {
		if solidAt, ok := n.devUnconf[c.ID]; ok {
			delete(n.devUnconf, c.ID)
			n.m.confirmLatency.Observe(float64(c.At-solidAt) / 1e9)
		}
	}
}

// resolveMissing looks the core's missing parents up in the store: a parent
// that left the core's window, or that the store holds only as an entry
// point (dropped here, or named by a peer this node caught up from), comes
// back as an entry point.
func (n *Node) resolveMissing(u *dag.Update) {
	for len(u.Missing) > 0 {
		found := false
		for _, id := range u.Missing {
			pos, ts, ok := n.settledParent(id)
			if !ok {
				continue // unknown here: a peer may have it
			}
			n.core.AddEntryPoint(n.now(), id, pos, ts)
			found = true
		}
		u.Missing = nil
		if !found {
			return
		}
		more := n.core.Ready()
		u.Solid = append(u.Solid, more.Solid...)
		u.Confirmed = append(u.Confirmed, more.Confirmed...)
		u.Missing = more.Missing
		u.Rejected = append(u.Rejected, more.Rejected...)
		u.Orphaned = append(u.Orphaned, more.Orphaned...)
		u.Equivocations = append(u.Equivocations, more.Equivocations...)
		u.Checkpoints = append(u.Checkpoints, more.Checkpoints...)
	}
}

// settledParent finds a parent the core misses in the store: a stored
// message, at its position, or an entry point, at its position here
// (storage.NoPos for one a peer named).
func (n *Node) settledParent(id dag.ID) (pos uint64, ts int64, ok bool) {
	e, err := n.store.Get(id)
	switch {
	case err == nil:
		return e.Pos, e.Timestamp, true
	case errors.Is(err, storage.ErrPruned):
		ep, ok := n.store.EntryPointOf(id)
		return ep.Pos, ep.Timestamp, ok
	}
	return 0, 0, false
}

// write builds the store's Write for an Update.
func (n *Node) write(u dag.Update) *storage.Write {
	w := &storage.Write{Records: make([]storage.Record, len(u.Solid)), Confirmations: make([]storage.Confirmation, len(u.Confirmed))}
	for i, s := range u.Solid {
		m := s.Msg
		w.Records[i] = storage.Record{
			Pos: s.Pos, ID: m.ID(), Parents: [2][32]byte{m.Parents[0], m.Parents[1]},
			ParentPos: s.ParentPos, Issuer: m.Issuer, Seq: m.Seq, Timestamp: m.Timestamp, Raw: m.Bytes(),
		}
		if s.Pos == 0 {
			w.Records[i].ParentPos = [2]uint64{storage.NoPos, storage.NoPos}
		}
	}
	for i, c := range u.Confirmed {
		w.Confirmations[i] = storage.Confirmation{Pos: c.Pos, At: max(c.At, 1)}
	}
	// Orphans are settled too, so that a restart need not begin below them.
	for _, o := range u.Orphaned {
		w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: o.Pos, At: storage.OrphanedAt})
	}
	return w
}

// submitWrite hands c's Write to the store, or, while the store fails,
// holds it in the backlog (disk.go). The writer's callback only
// records the result and hands c back to the loop on n.committed; the loop
// settles it.
//
// That send never blocks the writer, and so the writer can never wait on a
// loop that is itself blocked in Submit on the store's full queue: the loop
// never has more commits in the store than n.committed can hold, because
// before it submits one more than that it takes a result off n.committed
// and settles it itself (the store reports in submission order, so the
// oldest comes first).
func (n *Node) submitWrite(c *commit) {
	if len(n.backlog) > 0 || n.store.Failing() != nil {
		n.backlog = append(n.backlog, c) // see disk.go
		return
	}
	n.submitNow(c)
}

func (n *Node) submitNow(c *commit) {
	if len(n.atStore) == cap(n.committed) {
		n.settle(<-n.committed)
	}
	n.atStore = append(n.atStore, c)
	n.m.commitBatch.Observe(float64(len(c.w.Records)))
	c.start = n.now()
	n.store.Submit(c.w, func(err error) {
		c.err, c.took = err, n.now().Sub(c.start)
		n.committed <- c // never blocks: see above
	})
}

// settle acts, on the loop, on a commit the store has reported: the edge
// learns the devices' sequences, the submitters are answered, and after a
// success the messages are relayed and the events published.
func (n *Node) settle(c *commit) {
	n.atStore[0] = nil
	n.atStore = n.atStore[1:]
	if c.err == nil {
		// Devices' messages, submitted here or relayed by peers, move the
		// issuer's sequence for the edge's check; before the submitters
		// hear of it, so that their next message is checked against this
		// one.
		for _, it := range c.items {
			if !it.job.self {
				n.edge.committed(it.msg)
			}
		}
		if k := len(c.w.Records); k > 0 {
			r := &c.w.Records[k-1]
			n.lastDurable = tipRef{id: r.ID, ts: r.Timestamp, pos: r.Pos}
			// Before the submitters hear of it: a device answered 201 that
			// asks for tips at once can be handed its own message.
			n.publishSnapshot(0)
		}
	}
	for _, it := range c.items {
		it.finish(c.err)
	}
	if c.err != nil {
		n.log.Error().Err(c.err).Int("messages", len(c.w.Records)).Msg("store write failed")
		return
	}
	n.handCheckpoints(c.u.Checkpoints)
	n.m.commitLatency.Observe(c.took.Seconds())
	n.m.stored.Add(float64(len(c.w.Records)))
	n.m.confirmed.Add(float64(len(c.w.Confirmations)))
	n.gossip.relay(c.rb)
	if len(c.w.Confirmations) > 0 {
		n.rules.eng.Notify()
	}
	if n.hub.subscribers() > 0 { // else no events to build
		n.hub.publish(events(c.u, c.w.ConfirmSeq))
	}
}

// settleReady settles the commits the store has already reported, without
// waiting for more.
func (n *Node) settleReady() {
	for {
		select {
		case c := <-n.committed:
			n.settle(c)
		default:
			return
		}
	}
}

// events returns the events of u, committed; seqs are the places the store
// gave u's confirmations (storage.Write.ConfirmSeq, whose first entries are
// u.Confirmed's). A confirmation without a place repeats an earlier one
// and is no event.
func events(u dag.Update, seqs []uint64) []Event {
	evs := make([]Event, 0, len(u.Solid)+len(u.Confirmed))
	for _, s := range u.Solid {
		m := s.Msg
		evs = append(evs, Event{Kind: EventMessage, ID: m.ID(), Pos: s.Pos, Issuer: m.Issuer, Seq: m.Seq,
			Timestamp: m.Timestamp, Parents: m.Parents})
	}
	for i, c := range u.Confirmed {
		if seqs[i] == storage.NoSeq {
			continue
		}
		evs = append(evs, Event{Kind: EventConfirmed, ID: c.ID, Pos: c.Pos, Issuer: c.Issuer, Seq: c.Seq,
			Timestamp: c.Timestamp, ConfirmedAt: c.At, ConfirmSeq: seqs[i]})
	}
	return evs
}
