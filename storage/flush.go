package storage

import (
	"fmt"
	"maps"

	bolt "go.etcd.io/bbolt"
)

// A flush writes a full memtable out as a run. Written in one transaction,
// a run of 65,536 records cost that commit about a quarter of a second
// (sorting the keys, 196,608 bucket Puts, the commit), and every Write
// queued behind it waited as long: the tail of a node's confirmation
// latency. So the memtable is frozen instead:
//
//   - the writer swaps in an empty memtable for what follows, and keeps the
//     full one as Store.frozen, which readers consult after the memtable
//     (nobody changes it any more);
//   - a goroutine sorts its entries for each run index and builds the run's
//     Bloom filter;
//   - then each transaction writes a share of the entries into the run's
//     buckets (flushShare), as merges do, and an idle writer writes shares
//     of its own;
//   - the transaction that writes the last share lists the run in meta,
//     and once it has committed the frozen memtable goes. A reader whose
//     transaction sees the run and who still holds the frozen memtable sees
//     some positions twice, which readers already allow for (right after a
//     flush the same held for the memtable).
//
// meta/flush names the run while its buckets are partly written: Open,
// which rebuilds the memtable from the log's end, deletes them.

// flushing is a frozen memtable on its way into a run.
type flushing struct {
	mem   *memtable // frozen: read by anyone, changed by nobody
	r     run
	ready chan struct{} // closed once entries and bloom are built
	// entries holds each run index's entries in key order (runEntries);
	// off how many bytes of each the committed transactions wrote.
	entries [][]byte
	bloom   *bloom
	off     []int
}

// freeze starts the flush of the memtable, which holds the records [base,
// w.next), all committed: it becomes Store.frozen and an empty memtable
// takes its place.
func (s *Store) freeze() {
	w := &s.w
	old := s.mem
	f := &flushing{mem: old, r: run{lo: old.base, hi: w.next}, ready: make(chan struct{}), off: make([]int, len(runIndexes))}
	s.mu.Lock()
	s.frozen = old
	s.mem = newMemtable(w.next, s.cfg.FlushEvery)
	s.mu.Unlock()
	go func() {
		defer close(f.ready)
		f.entries = make([][]byte, len(runIndexes))
		for i, ix := range runIndexes {
			f.entries[i] = old.runEntries(ix)
		}
		f.bloom = newBloom(s.seed, len(old.ids))
		for id := range old.ids {
			f.bloom.add(id[:])
		}
	}()
	w.flush = f
}

// flushReady reports whether the pending flush, if any, has its entries
// built.
func (w *writer) flushReady() bool {
	if w.flush == nil {
		return false
	}
	select {
	case <-w.flush.ready:
		return true
	default:
		return false
	}
}

// flushShare writes up to share entries of each run index of the pending
// flush in tx, all that is left if share < 0 (waiting for the entries to
// be built), and records in st how far it got. The share that ends the
// flush adds the run, and its Bloom filter, to st.
func (s *Store) flushShare(tx *bolt.Tx, st *committed, share int) error {
	w := &s.w
	f := w.flush
	if f == nil {
		return nil
	}
	if share < 0 {
		<-f.ready
	} else if !w.flushReady() {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	if f.off[0] == 0 {
		if err := meta.Put(metaFlush, appendRun(nil, f.r)); err != nil {
			return err
		}
	}
	off := make([]int, len(f.off))
	done := true
	for i, ix := range runIndexes {
		size := ix.keySize + ix.valSize
		end := len(f.entries[i])
		if share >= 0 {
			end = min(end, f.off[i]+share*size)
		}
		if err := writeRunPart(tx, ix, f.r, f.entries[i], f.off[i], end); err != nil {
			return err
		}
		off[i] = end
		done = done && end == len(f.entries[i])
	}
	st.flushOff = off
	if !done {
		return nil
	}
	if err := meta.Delete(metaFlush); err != nil {
		return err
	}
	st.runs = append(st.runs[:len(st.runs):len(st.runs)], f.r)
	st.flushed = true
	if st.blooms == nil {
		st.blooms = maps.Clone(s.blooms)
	}
	st.blooms[f.r] = f.bloom
	return nil
}

// flushShareSize is how many entries of each run index a transaction of
// records records writes of a pending flush: enough that the flush ends
// well before the memtable fills again, even in small transactions.
func (s *Store) flushShareSize(records int) int {
	return max(s.cfg.FlushEvery/32, 8*records, 1)
}

// writeRunPart writes entries[from:to] of run r of index ix, creating its
// bucket at from 0 (replacing one a flush cut short left behind).
func writeRunPart(tx *bolt.Tx, ix runIndex, r run, entries []byte, from, to int) error {
	parent := tx.Bucket(ix.bucket)
	var b *bolt.Bucket
	if from == 0 {
		if parent.Bucket(r.name()) != nil {
			if err := parent.DeleteBucket(r.name()); err != nil {
				return err
			}
		}
		var err error
		if b, err = parent.CreateBucket(r.name()); err != nil {
			return fmt.Errorf("creating run [%d, %d) in %s: %w", r.lo, r.hi, ix.bucket, err)
		}
	} else if b = parent.Bucket(r.name()); b == nil {
		return fmt.Errorf("%w: run [%d, %d) of %s, partly written, is gone", ErrCorrupt, r.lo, r.hi, ix.bucket)
	}
	b.FillPercent = 1 // sorted appends: fill every page
	size := ix.keySize + ix.valSize
	for i := from; i < to; i += size {
		e := entries[i : i+size : i+size]
		if err := b.Put(e[:ix.keySize:ix.keySize], e[ix.keySize:]); err != nil {
			return err
		}
	}
	return nil
}

// dropPartialFlush deletes the buckets of a flush that a crash or a Close
// cut short, named by meta/flush in tx: the memtable, rebuilt from the log,
// holds their entries again.
func dropPartialFlush(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(metaFlush)
	if v == nil {
		return nil
	}
	r, err := decodeRun(v)
	if err != nil {
		return err
	}
	for _, ix := range runIndexes {
		parent := tx.Bucket(ix.bucket)
		if parent.Bucket(r.name()) != nil {
			if err := parent.DeleteBucket(r.name()); err != nil {
				return err
			}
		}
	}
	return meta.Delete(metaFlush)
}
