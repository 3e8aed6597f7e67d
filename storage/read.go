package storage

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

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

// view runs fn in a read transaction, mapping a closed database to ErrClosed.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// lookup finds the position of id. It begins the read transaction it returns
// (the caller must roll it back) and reads the memtable under one hold of
// s.mu, so that the two agree (see idindex.go).
func (s *Store) lookup(id *[32]byte) (tx *bolt.Tx, pos uint64, ok bool, err error) {
	s.mu.RLock()
	tx, err = s.db.Begin(false)
	mpos, inMem := s.mem.ids[*id]
	blooms := s.blooms
	s.mu.RUnlock()
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil, 0, false, ErrClosed
	}
	if err != nil {
		return nil, 0, false, err
	}
	if inMem {
		next, err := txNext(tx)
		if err != nil {
			tx.Rollback()
			return nil, 0, false, err
		}
		if mpos < next { // else not committed yet, as far as tx knows
			return tx, mpos, true, nil
		}
	}
	pos, ok, err = lookupRuns(tx, id, blooms)
	if err != nil {
		tx.Rollback()
		return nil, 0, false, err
	}
	return tx, pos, ok, nil
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
func indexedEntry(tx *bolt.Tx, pos uint64, id *[32]byte) (Entry, error) {
	e, err := entryAt(tx, pos)
	if errors.Is(err, ErrNotFound) {
		return e, fmt.Errorf("%w: the ID index points at position %d, which is not in the log", ErrCorrupt, pos)
	}
	if err == nil && e.ID != *id {
		return e, fmt.Errorf("%w: the ID index points at position %d, which holds another ID", ErrCorrupt, pos)
	}
	return e, err
}

// Get returns the entry of the record with ID id, or ErrNotFound. Safe from
// any goroutine.
func (s *Store) Get(id [32]byte) (Entry, error) {
	tx, pos, ok, err := s.lookup(&id)
	if err != nil {
		return Entry{}, err
	}
	defer tx.Rollback()
	if !ok {
		return Entry{}, fmt.Errorf("%w: ID %x", ErrNotFound, id)
	}
	return indexedEntry(tx, pos, &id)
}

// Has reports whether a record with ID id is stored. Safe from any
// goroutine.
func (s *Store) Has(id [32]byte) (bool, error) {
	tx, _, ok, err := s.lookup(&id)
	if err != nil {
		return false, err
	}
	tx.Rollback()
	return ok, nil
}

// GetByPos returns the entry at position pos, or ErrNotFound if pos is not
// below NextPos. Safe from any goroutine.
func (s *Store) GetByPos(pos uint64) (Entry, error) {
	var e Entry
	err := s.view(func(tx *bolt.Tx) (err error) {
		e, err = entryAt(tx, pos)
		return err
	})
	return e, err
}

// Children returns the IDs of the stored records that name id as a parent,
// in position order, or ErrNotFound if id is not stored. Safe from any
// goroutine.
func (s *Store) Children(id [32]byte) ([][32]byte, error) {
	tx, pos, ok, err := s.lookup(&id)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if !ok {
		return nil, fmt.Errorf("%w: ID %x", ErrNotFound, id)
	}
	children, logb := tx.Bucket(bucketChildren), tx.Bucket(bucketLog)
	if children == nil || logb == nil {
		return nil, fmt.Errorf("%w: missing bucket", ErrCorrupt)
	}
	v := children.Get(binaryPos(pos))
	if v == nil {
		return nil, nil
	}
	kids, err := decodeChildren(pos, v)
	if err != nil {
		return nil, err
	}
	out := make([][32]byte, 0, len(kids))
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
	return out, nil
}

// ByIssuer returns the entries of issuer whose (Seq, Pos) is at least from,
// in that order, at most limit of them (limit <= 0: no limit; callers that
// serve untrusted requests must pass one). Equivocations, two records with
// one issuer and sequence number, both appear, in position order. To read
// the next page, pass SeqPos{last.Seq, last.Pos + 1}. Safe from any
// goroutine.
func (s *Store) ByIssuer(issuer [32]byte, from SeqPos, limit int) ([]Entry, error) {
	tx, mem, err := s.beginIssuer(&issuer, func(e memEntry) bool { return compareSeqPos(SeqPos{e.seq, e.pos}, from) >= 0 })
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	sps := make([]SeqPos, len(mem))
	for i, e := range mem {
		sps[i] = SeqPos{e.seq, e.pos}
	}
	fromRuns, err := issuerRuns(tx, &issuer, from, limit)
	if err != nil {
		return nil, err
	}
	sps = append(sps, fromRuns...)
	slices.SortFunc(sps, compareSeqPos)
	// Right after a flush a reader can see a position both in the memtable
	// and in the new run.
	sps = slices.Compact(sps)
	if limit > 0 && len(sps) > limit {
		sps = sps[:limit]
	}
	out := make([]Entry, 0, len(sps))
	for _, sp := range sps {
		e, err := entryAt(tx, sp.Pos)
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

// beginIssuer begins a read transaction and returns it with the memtable
// entries of issuer that keep accepts and that the transaction holds
// (positions below its NextPos), read under one hold of s.mu so that the
// two agree (see runs.go). The caller rolls tx back.
func (s *Store) beginIssuer(issuer *[32]byte, keep func(memEntry) bool) (*bolt.Tx, []memEntry, error) {
	s.mu.RLock()
	tx, err := s.db.Begin(false)
	var es []memEntry
	for _, e := range s.mem.issuers[*issuer] {
		if keep(e) {
			es = append(es, e)
		}
	}
	s.mu.RUnlock()
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return nil, nil, ErrClosed
	}
	if err != nil {
		return nil, nil, err
	}
	next, err := txNext(tx)
	if err != nil {
		tx.Rollback()
		return nil, nil, err
	}
	return tx, slices.DeleteFunc(es, func(e memEntry) bool { return e.pos >= next }), nil
}

// ByTime returns the entries whose (Timestamp, Pos) is at least from and
// whose Timestamp is below until, in that order, at most limit of them
// (limit <= 0: no limit). To read the next page, pass TimePos{last.Timestamp,
// last.Pos + 1}. Safe from any goroutine.
func (s *Store) ByTime(from TimePos, until int64, limit int) ([]Entry, error) {
	var out []Entry
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTime)
		if b == nil {
			return fmt.Errorf("%w: missing bucket", ErrCorrupt)
		}
		var tps []TimePos
		c := b.Cursor()
		for k, _ := c.Seek(appendTimeKey(nil, from.Time, from.Pos)); k != nil && (limit <= 0 || len(tps) < limit); k, _ = c.Next() {
			t, pos, err := decodeTimeKey(k)
			if err != nil {
				return err
			}
			if t >= until {
				break
			}
			tps = append(tps, TimePos{t, pos})
		}
		var err error
		out, err = timeEntries(tx, tps, nil, "time")
		return err
	})
	return out, err
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
	for pos := from; pos < end; {
		buf = buf[:0]
		err := s.view(func(tx *bolt.Tx) error {
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
			for k, v := lc.Seek(binaryPos(pos)); len(buf) < rangeChunk && want < end; k, v = lc.Next() {
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
		})
		if err != nil {
			return err
		}
		for _, e := range buf {
			if err := fn(e); err != nil {
				return err
			}
		}
		pos += uint64(len(buf))
	}
	return nil
}
