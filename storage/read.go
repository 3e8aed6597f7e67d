package storage

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// NextPos returns the position the next record must have: the number of
// records committed so far (0 for an empty store). It reflects committed
// transactions only, so while Writes are in flight it lags behind what the
// caller has submitted; after Open it is where the caller resumes.
func (s *Store) NextPos() uint64 { return s.nextPos.Load() }

// ConfirmedPrefix returns the watermark below which every position is
// settled: confirmed, or orphaned (see OrphanedAt). The writer advances it as confirmations fill the gaps, in the
// transaction that records them, so it survives restarts; it is where a
// restore of the DAG core starts reading (Range). It reflects committed
// transactions only.
func (s *Store) ConfirmedPrefix() uint64 { return s.confirmed.Load() }

// snap is a reader's view of the store: the epochs and the memtable of one
// moment, a read transaction on the newest epoch begun under the same hold
// of s.mu (so that it and the memtable agree, see runs.go), and read
// transactions on older epochs begun when first needed. Older epochs'
// records never change, so those transactions join up with the newest
// one; only confirmations can be newer in them. close rolls them back.
type snap struct {
	eps    []*epoch
	mem    *memtable     // read holding mu shared: the writer adds to it
	frozen *memtable     // the memtable being flushed, or nil: nobody changes it
	mu     *sync.RWMutex // Store.mu
	blooms map[run]*bloom
	front  *frontier
	txs    []*bolt.Tx
	next   uint64 // NextPos as of the newest epoch's transaction
}

// begin opens a snap.
func (s *Store) begin() (*snap, error) {
	s.mu.RLock()
	sn := &snap{eps: s.epochs, mem: s.mem, frozen: s.frozen, mu: &s.mu, blooms: s.blooms, front: s.front}
	sn.txs = make([]*bolt.Tx, len(sn.eps))
	tx, err := sn.eps[len(sn.eps)-1].db.Begin(false)
	s.mu.RUnlock()
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, err
	}
	sn.txs[len(sn.txs)-1] = tx
	if sn.next, err = txNext(tx); err != nil {
		tx.Rollback()
		return nil, err
	}
	return sn, nil
}

func (sn *snap) close() {
	for _, tx := range sn.txs {
		if tx != nil {
			tx.Rollback()
		}
	}
}

// tx returns the read transaction on epoch i. An epoch dropped since the
// snap began is ErrPruned.
func (sn *snap) tx(i int) (*bolt.Tx, error) {
	if tx := sn.txs[i]; tx != nil {
		return tx, nil
	}
	tx, err := sn.eps[i].db.Begin(false)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil, fmt.Errorf("%w: epoch from %d", ErrPruned, sn.eps[i].lo)
	}
	if err != nil {
		return nil, err
	}
	sn.txs[i] = tx
	return tx, nil
}

// epochOf returns the epoch that holds pos: ErrPruned below the first,
// ErrNotFound at or past the snap's NextPos.
func (sn *snap) epochOf(pos uint64) (int, error) {
	if pos >= sn.next {
		return 0, fmt.Errorf("%w: position %d", ErrNotFound, pos)
	}
	if pos < sn.eps[0].lo {
		return 0, fmt.Errorf("%w: position %d, the store begins at %d", ErrPruned, pos, sn.eps[0].lo)
	}
	i, found := slices.BinarySearchFunc(sn.eps, pos, func(e *epoch, p uint64) int { return cmp.Compare(e.lo, p) })
	if !found {
		i--
	}
	return i, nil
}

// txAt returns the read transaction of the epoch that holds pos.
func (sn *snap) txAt(pos uint64) (*bolt.Tx, error) {
	i, err := sn.epochOf(pos)
	if err != nil {
		return nil, err
	}
	return sn.tx(i)
}

// entryAt reads the entry at pos.
func (sn *snap) entryAt(pos uint64) (Entry, error) {
	tx, err := sn.txAt(pos)
	if err != nil {
		return Entry{}, err
	}
	return entryAt(tx, pos)
}

// lookup finds the position of id: in the memtable, then in the runs of
// each epoch, newest first.
func (sn *snap) lookup(id *[32]byte) (pos uint64, ok bool, err error) {
	return sn.lookupAt(id, 0, false)
}

// lookupAt is lookup; with byTime, of a record whose timestamp is ts: the
// epochs whose records' timestamps all lie outside ts are skipped.
func (sn *snap) lookupAt(id *[32]byte, ts int64, byTime bool) (pos uint64, ok bool, err error) {
	sn.mu.RLock()
	mpos, inMem := sn.mem.ids[*id]
	sn.mu.RUnlock()
	if inMem && mpos < sn.next {
		return mpos, true, nil // else not committed yet, as far as tx knows
	}
	if sn.frozen != nil {
		if fpos, ok := sn.frozen.ids[*id]; ok && fpos < sn.next {
			return fpos, true, nil
		}
	}
	last := len(sn.eps) - 1
	if pos, ok, err = lookupRuns(sn.txs[last], nil, id, sn.blooms); ok || err != nil {
		return pos, ok, err
	}
	for i := last - 1; i >= 0; i-- {
		if byTime && sn.eps[i].span.excludes(ts) {
			continue
		}
		if !mayHave(sn.eps[i].runs, id, sn.blooms) {
			continue
		}
		tx, err := sn.tx(i)
		if err != nil {
			return 0, false, err
		}
		if pos, ok, err = lookupRuns(tx, sn.eps[i].runs, id, sn.blooms); ok || err != nil {
			return pos, ok, err
		}
	}
	return 0, false, nil
}

// notFound is the error for an ID the store does not hold: ErrPruned for
// an entry point.
func (sn *snap) notFound(id *[32]byte) error {
	if _, ok := sn.front.eps[*id]; ok {
		return fmt.Errorf("%w: ID %x", ErrPruned, *id)
	}
	return fmt.Errorf("%w: ID %x", ErrNotFound, *id)
}

// txNext returns NextPos as of tx.
func txNext(tx *bolt.Tx) (uint64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, fmt.Errorf("%w: no meta bucket", ErrCorrupt)
	}
	return decodeU64("meta next", meta.Get(metaNext))
}

// entryAt reads the entry at pos in tx.
func entryAt(tx *bolt.Tx, pos uint64) (Entry, error) {
	var e Entry
	logb, conf := tx.Bucket(bucketLog), tx.Bucket(bucketConf)
	if logb == nil || conf == nil {
		return e, fmt.Errorf("%w: missing bucket", ErrCorrupt)
	}
	k := binaryPos(pos)
	v := logb.Get(k)
	if v == nil {
		return e, fmt.Errorf("%w: position %d", ErrNotFound, pos)
	}
	if err := decodeEntry(pos, v, &e.Record); err != nil {
		return e, err
	}
	var c blockConfs
	if err := decodeConfBlock(pos/confBlock, conf.Get(appendConfKey(nil, pos)), &c); err != nil {
		return e, err
	}
	setConf(&e, &c)
	return e, nil
}

// setConf fills e's confirmation state from c, the confirmations of the
// block that holds e.Pos.
func setConf(e *Entry, c *blockConfs) {
	at, ok := c.get(e.Pos)
	switch {
	case !ok:
	case at == OrphanedAt:
		e.Orphaned = true
	default:
		e.Confirmed, e.ConfirmedAt = true, at
	}
}

// indexedEntry reads the entry at pos, which an index of id pointed to,
// and checks that it is id's.
func (sn *snap) indexedEntry(pos uint64, id *[32]byte) (Entry, error) {
	e, err := sn.entryAt(pos)
	if errors.Is(err, ErrNotFound) {
		return e, fmt.Errorf("%w: the ID index points at position %d, which is not in the log", ErrCorrupt, pos)
	}
	if err == nil && e.ID != *id {
		return e, fmt.Errorf("%w: the ID index points at position %d, which holds another ID", ErrCorrupt, pos)
	}
	return e, err
}

// Get returns the entry of the record with ID id; ErrPruned if it was
// dropped and the store can tell (an entry point), ErrNotFound otherwise.
// Safe from any goroutine.
func (s *Store) Get(id [32]byte) (Entry, error) {
	sn, err := s.begin()
	if err != nil {
		return Entry{}, err
	}
	defer sn.close()
	pos, ok, err := sn.lookup(&id)
	if err != nil {
		return Entry{}, err
	}
	if !ok {
		return Entry{}, sn.notFound(&id)
	}
	return sn.indexedEntry(pos, &id)
}

// Has reports whether a record with ID id is stored (an entry point is
// not). Safe from any goroutine.
func (s *Store) Has(id [32]byte) (bool, error) {
	sn, err := s.begin()
	if err != nil {
		return false, err
	}
	defer sn.close()
	_, ok, err := sn.lookup(&id)
	return ok, err
}

// HasAt is Has for a message whose timestamp is ts: it consults only the
// epochs whose records' timestamps span ts (and the newest), so that a
// new message's check skips the old epochs. With a timestamp other than
// the message's, it may miss a stored record. Safe from any goroutine.
func (s *Store) HasAt(id [32]byte, ts int64) (bool, error) {
	sn, err := s.begin()
	if err != nil {
		return false, err
	}
	defer sn.close()
	_, ok, err := sn.lookupAt(&id, ts, true)
	return ok, err
}

// GetByPos returns the entry at position pos: ErrNotFound if pos is not
// below NextPos, ErrPruned if it is below FirstPos. Safe from any
// goroutine.
func (s *Store) GetByPos(pos uint64) (Entry, error) {
	sn, err := s.begin()
	if err != nil {
		return Entry{}, err
	}
	defer sn.close()
	return sn.entryAt(pos)
}

// Children returns the IDs of the stored records that name id as a parent,
// in position order, or ErrNotFound (ErrPruned) if id is not stored. Safe
// from any goroutine.
func (s *Store) Children(id [32]byte) ([][32]byte, error) {
	sn, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer sn.close()
	pos, ok, err := sn.lookup(&id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, sn.notFound(&id)
	}
	first, err := sn.epochOf(pos)
	if err != nil {
		return nil, err
	}
	// Each epoch lists the children it holds.
	var out [][32]byte
	for i := first; i < len(sn.eps); i++ {
		tx, err := sn.tx(i)
		if err != nil {
			return nil, err
		}
		children, logb := tx.Bucket(bucketChildren), tx.Bucket(bucketLog)
		if children == nil || logb == nil {
			return nil, fmt.Errorf("%w: missing bucket", ErrCorrupt)
		}
		v := children.Get(binaryPos(pos))
		if v == nil {
			continue
		}
		kids, err := decodeChildren(pos, v)
		if err != nil {
			return nil, err
		}
		for _, child := range kids {
			v := logb.Get(binaryPos(child))
			if v == nil {
				return nil, fmt.Errorf("%w: the children index names position %d, which is not in the log", ErrCorrupt, child)
			}
			cid, err := entryID(child, v)
			if err != nil {
				return nil, err
			}
			out = append(out, cid)
		}
	}
	return out, nil
}

// ByIssuer returns the entries of issuer whose (Seq, Pos) is at least from,
// in that order, at most limit of them (limit <= 0: no limit; callers that
// serve untrusted requests must pass one). Equivocations, two records with
// one issuer and sequence number, both appear, in position order. To read
// the next page, pass SeqPos{last.Seq, last.Pos + 1}. Safe from any
// goroutine.
func (s *Store) ByIssuer(issuer [32]byte, from SeqPos, limit int) ([]Entry, error) {
	sn, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer sn.close()
	var sps []SeqPos
	for _, e := range sn.memIssuer(&issuer, func(e memEntry) bool { return compareSeqPos(SeqPos{e.seq, e.pos}, from) >= 0 }) {
		sps = append(sps, SeqPos{e.seq, e.pos})
	}
	for i := range sn.eps {
		tx, err := sn.tx(i)
		if err != nil {
			return nil, err
		}
		fromRuns, err := issuerRuns(tx, &issuer, from, limit)
		if err != nil {
			return nil, err
		}
		sps = append(sps, fromRuns...)
	}
	slices.SortFunc(sps, compareSeqPos)
	// Right after a flush a reader can see a position both in the memtable
	// and in the new run.
	sps = slices.Compact(sps)
	if limit > 0 && len(sps) > limit {
		sps = sps[:limit]
	}
	out := make([]Entry, 0, len(sps))
	for _, sp := range sps {
		e, err := sn.entryAt(sp.Pos)
		if err == nil && (e.Issuer != issuer || e.Seq != sp.Seq) {
			err = fmt.Errorf("%w: the issuer index names position %d, which holds another issuer or sequence", ErrCorrupt, sp.Pos)
		}
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w: the issuer index names position %d, which is not in the log", ErrCorrupt, sp.Pos)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// memIssuer returns the entries of issuer that keep accepts in the frozen
// memtable and in the memtable, those that the snap's transaction holds
// (positions below its NextPos), in position order.
func (sn *snap) memIssuer(issuer *[32]byte, keep func(memEntry) bool) []memEntry {
	var es []memEntry
	if sn.frozen != nil {
		for _, e := range sn.frozen.issuers[*issuer] {
			if keep(e) && e.pos < sn.next {
				es = append(es, e)
			}
		}
	}
	sn.mu.RLock()
	defer sn.mu.RUnlock()
	for _, e := range sn.mem.issuers[*issuer] {
		if keep(e) && e.pos < sn.next {
			es = append(es, e)
		}
	}
	return es
}

// ByTime returns the entries whose (Timestamp, Pos) is at least from and
// whose Timestamp is below until, in that order, at most limit of them
// (limit <= 0: no limit). To read the next page, pass TimePos{last.Timestamp,
// last.Pos + 1}. Safe from any goroutine.
func (s *Store) ByTime(from TimePos, until int64, limit int) ([]Entry, error) {
	sn, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer sn.close()
	// Each epoch's time index holds its records; timestamps mostly follow
	// arrival, but not always, so every epoch is read and the pages merged.
	var tps []TimePos
	for i := range sn.eps {
		tx, err := sn.tx(i)
		if err != nil {
			return nil, err
		}
		b := tx.Bucket(bucketTime)
		if b == nil {
			return nil, fmt.Errorf("%w: missing bucket", ErrCorrupt)
		}
		c := b.Cursor()
		n := 0
		for k, _ := c.Seek(appendTimeKey(nil, from.Time, from.Pos)); k != nil && (limit <= 0 || n < limit); k, _ = c.Next() {
			t, pos, err := decodeTimeKey(k)
			if err != nil {
				return nil, err
			}
			if t >= until {
				break
			}
			if pos >= sn.next {
				continue // not committed as far as the snap knows
			}
			tps = append(tps, TimePos{t, pos})
			n++
		}
	}
	slices.SortFunc(tps, compareTimePos)
	if limit > 0 && len(tps) > limit {
		tps = tps[:limit]
	}
	return sn.timeEntries(tps, nil, "time")
}

// rangeChunk is how many entries Range reads per read transaction.
const rangeChunk = 1024

// Range calls fn for every entry from position from up to the NextPos of
// the moment Range was called, in position order, and stops at the first
// error fn returns, which Range returns. It is what a restore of the DAG
// core (from ConfirmedPrefix) and a peer's catch-up ("everything since
// position N") read.
//
// Range reads in chunks, each in its own short read transaction, and calls
// fn outside them: fn may take its time and may call the Store (even
// Submit). Records are immutable once written, so the chunks join up
// exactly; only the confirmation state can be newer in a later chunk. Safe
// from any goroutine.
func (s *Store) Range(from uint64, fn func(Entry) error) error {
	end := s.NextPos()
	buf := make([]Entry, 0, rangeChunk)
	for pos := max(from, s.FirstPos()); pos < end; {
		buf = buf[:0]
		err := func() error {
			sn, err := s.begin()
			if err != nil {
				return err
			}
			defer sn.close()
			i, err := sn.epochOf(pos)
			if errors.Is(err, ErrPruned) {
				pos = sn.eps[0].lo // dropped meanwhile: go on from the first kept
				i, err = 0, nil
			}
			if err != nil {
				return err
			}
			tx, err := sn.tx(i)
			if err != nil {
				return err
			}
			stop := end
			if i+1 < len(sn.eps) {
				stop = min(stop, sn.eps[i+1].lo)
			}
			logb, conf := tx.Bucket(bucketLog), tx.Bucket(bucketConf)
			if logb == nil || conf == nil {
				return fmt.Errorf("%w: missing bucket", ErrCorrupt)
			}
			var (
				c     blockConfs
				block = NoPos // the block in c
			)
			lc := logb.Cursor()
			want := pos
			for k, v := lc.Seek(binaryPos(pos)); len(buf) < rangeChunk && want < stop; k, v = lc.Next() {
				if k == nil || !bytes.Equal(k, binaryPos(want)) {
					return fmt.Errorf("%w: the log has no position %d below its end %d", ErrCorrupt, want, end)
				}
				var e Entry
				if err := decodeEntry(want, v, &e.Record); err != nil {
					return err
				}
				if want/confBlock != block {
					block = want / confBlock
					if err := decodeConfBlock(block, conf.Get(binaryPos(block)), &c); err != nil {
						return err
					}
				}
				setConf(&e, &c)
				buf = append(buf, e)
				want++
			}
			return nil
		}()
		if err != nil {
			return err
		}
		for _, e := range buf {
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(buf) > 0 {
			pos = buf[len(buf)-1].Pos + 1
		}
	}
	return nil
}
