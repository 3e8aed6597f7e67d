package dag

import (
	"errors"
	"fmt"
	"time"
)

// ErrRestore: the records handed to Restore are inconsistent.
var ErrRestore = errors.New("dag: inconsistent restore")

// Restored is a stored message handed to Restore.
type Restored struct {
	Msg         *Message
	Pos         uint64
	ParentPos   [2]uint64
	ConfirmedAt int64 // unix nanoseconds; 0 if not confirmed
	// Orphaned: the message was given up as never to be confirmed. It is
	// settled like a confirmed one: walks stop there, and it is not counted
	// as unconfirmed.
	Orphaned bool
}

// noPos is the parent position of a parent that has none in the store: an
// entry point a peer named when this node caught up from a pruned peer
// (storage.NoPos).
const noPos = ^uint64(0)

// Restore rebuilds a Core from the newest part of a store: recs must be
// contiguous positions, in order, ending with the newest message, and must
// begin at or below the first unconfirmed position (everything below
// recs[0].Pos counts as confirmed). Its cost is that of recs alone, not of
// the history: tips are the messages without children, and approval weights
// are recomputed by the validators' walks over the unconfirmed part, which
// may confirm messages the store had not recorded as confirmed yet (they are
// in the first Update).
func Restore(cfg Config, now time.Time, recs []Restored) (*Core, error) {
	c, err := newCore(cfg)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrRestore)
	}
	t := now.UnixNano()
	c.base = recs[0].Pos
	for i, r := range recs {
		pos := c.base + uint64(i)
		if r.Pos != pos {
			return nil, fmt.Errorf("%w: position %d where %d was expected", ErrRestore, r.Pos, pos)
		}
		m := r.Msg
		id := m.ID()
		if pos == 0 && id != c.genesis {
			return nil, fmt.Errorf("%w: position 0 is not this network's genesis", ErrRestore)
		}
		for j, pp := range r.ParentPos {
			if pos == 0 {
				break
			}
			if pp == noPos {
				continue // an entry point a peer named: never stored here
			}
			if pp >= pos || (c.inWindow(pp) && c.at(pp).id != m.Parents[j]) {
				return nil, fmt.Errorf("%w: message %d: parent %d at position %d does not match", ErrRestore, pos, j, pp)
			}
		}
		confirmed := r.ConfirmedAt != 0 || pos == 0
		orphan := r.Orphaned && !confirmed
		c.nodes = append(c.nodes, node{
			id: id, issuer: m.Issuer, seq: m.Seq, ts: m.Timestamp, solidAt: t,
			doneAt: r.ConfirmedAt, parents: r.ParentPos, tip: -1, confirmed: confirmed, orphan: orphan,
		})
		c.bits = append(c.bits, make([]uint64, 2*c.words)...)
		c.indexPut(id, pos)
		if pos != 0 {
			c.link(pos)
		}
		if !confirmed && !orphan {
			c.unconfirmed++
		}
		k := issuerSeq{m.Issuer, m.Seq}
		if _, dup := c.firstOfSeq(k); !dup {
			c.seqs.put(hashSeq(c.seed, k), pos, c.isSeq(k))
		}
	}
	// Everything below the window counts as confirmed.
	c.confirmedTotal = c.base
	for i := range c.nodes {
		if c.nodes[i].confirmed {
			c.confirmedTotal++
		}
	}
	for i := range c.nodes {
		if n := &c.nodes[i]; n.children == 0 && !n.orphan && !c.notTips[n.issuer] && !c.lazy(c.base+uint64(i)) {
			c.addTip(c.base+uint64(i), t)
		}
	}
	for i := range c.nodes {
		n := &c.nodes[i]
		if v, ok := c.validators[n.issuer]; ok && !n.confirmed && !n.orphan {
			c.approve(c.base+uint64(i), v, t)
		}
	}
	c.finishWalks()
	return c, nil
}
