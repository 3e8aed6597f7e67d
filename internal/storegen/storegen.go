// Package storegen writes a ledger straight into a store, for the tests and
// benchmarks that need a node holding many messages: a million through the
// node's pipeline would take minutes of signatures and proof of work, here
// it takes seconds.
//
// The store is one a node opens as its own: position 0 is the network's
// genesis message, each message's parents are the two before it (so IDs
// and parent positions agree, as the node's restore checks), every message
// is confirmed (unless the caller says otherwise), and sequence numbers
// count from 1 per issuer. The messages
// are neither signed nor solved: a node never checks the signatures of
// what it reads from its own store, but a peer would refuse them, so such
// a store is for a node without peers.
package storegen

import (
	"fmt"
	"sync"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// Message is what a caller chooses of each message.
type Message struct {
	Issuer    dag.PublicKey
	Timestamp int64 // unix nanoseconds, not negative; need not follow the order of writing
	Payload   []byte
	// Unconfirmed leaves the message unconfirmed. A node that is a
	// validator then confirms it after it opens the store, if it is in
	// the part of the log it restores; one that is not never does.
	Unconfirmed bool
}

// ConfirmDelay is how long after its timestamp Write confirms a message.
const ConfirmDelay = 1_000_000 // 1 ms

// perWrite is how many records Write puts in one storage.Write.
const perWrite = 1024

// Write stores network's genesis message and then n messages in s, which
// must be empty: message i (from 0) is next(i), at position i+1. It waits
// until all are durable and returns the first error of the store.
func Write(s *storage.Store, network string, n int, next func(i int) Message) error {
	if s.NextPos() != 0 {
		return fmt.Errorf("storegen: the store holds %d records, want none", s.NextPos())
	}
	netID := dag.NetworkIDFromName(network)
	g := dag.Genesis(netID)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	done := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		wg.Done()
	}
	w := &storage.Write{Records: []storage.Record{record(g, 0, [2]uint64{storage.NoPos, storage.NoPos})},
		Confirmations: []storage.Confirmation{{Pos: 0, At: 1}}}
	ids := [2]dag.ID{g.ID(), g.ID()} // of positions pos-2 and pos-1
	seqs := map[dag.PublicKey]uint64{}
	for i := range n {
		pos := uint64(i) + 1
		c := next(i)
		if c.Timestamp < 0 {
			return fmt.Errorf("storegen: message %d has a negative timestamp", i)
		}
		seqs[c.Issuer]++
		m := &dag.Message{Version: dag.Version, Network: netID, Parents: [2]dag.ID{ids[1], ids[0]},
			Issuer: c.Issuer, Seq: seqs[c.Issuer], Timestamp: c.Timestamp, Payload: c.Payload}
		w.Records = append(w.Records, record(m, pos, [2]uint64{pos - 1, max(pos, 2) - 2}))
		if !c.Unconfirmed {
			w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: pos, At: c.Timestamp + ConfirmDelay})
		}
		ids = [2]dag.ID{ids[1], dag.ID(w.Records[len(w.Records)-1].ID)}
		if len(w.Records) == perWrite {
			wg.Add(1)
			s.Submit(w, done)
			w = &storage.Write{}
		}
	}
	wg.Add(1)
	s.Submit(w, done)
	wg.Wait()
	return first
}

// record is m as the store keeps it at pos.
func record(m *dag.Message, pos uint64, parentPos [2]uint64) storage.Record {
	return storage.Record{
		Pos: pos, ID: m.ID(), Parents: [2][32]byte{m.Parents[0], m.Parents[1]}, ParentPos: parentPos,
		Issuer: m.Issuer, Seq: m.Seq, Timestamp: m.Timestamp, Raw: m.Bytes(),
	}
}
