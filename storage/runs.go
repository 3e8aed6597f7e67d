package storage

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Three indexes have keys that do not follow time: the ID index (IDs are
// hashes), the issuer index (issuer, sequence, position) and the
// issuer-time index (issuer, timestamp, position; timeidx.go): in the last
// two each issuer appends at its own place in the key space. A B+tree takes
// such inserts on leaves all over the tree: once it has far more leaves than a
// transaction has inserts, every message dirties, and fsyncs, pages of its
// own. Measured here, an ID index kept that way caps a store of 3 M messages
// under 20,000 messages a second, and an issuer index with 1,000 issuers
// costs about 1,700 dirty pages per transaction at that size (see
// docs/STORAGE.md). So all three are kept as a small log-structured merge
// tree built out of bbolt buckets:
//
//   - The newest entries, those of positions [memtable.base, NextPos), live
//     only in memory. They need no write of their own: the log holds every
//     ID, issuer, sequence number and timestamp, so Open rebuilds the memtable by
//     reading the end of the log.
//   - Every FlushEvery records the memtable is written out as one run: a
//     bucket per index (under "ids", "issuers" and "issuertimes", named by
//     the run's position range) holding its entries in key order, in the same
//     transaction as the records that filled it. Sorted keys appended to an
//     empty bucket fill whole pages and are written once, sequentially.
//   - Runs carry a level. When MergeFanIn runs share the lowest level, the
//     writer merges them into one run of the next level, a bounded share of
//     the merge per transaction so that no commit stalls behind it. The
//     sources stay readable until the transaction that finishes the merge
//     swaps them for the result.
//
// A lookup probes the memtable, then the runs from newest to oldest: with N
// records there are about (MergeFanIn-1) * log_MergeFanIn(N/FlushEvery)
// runs, more while a merge is under way. A bloom filter per run (bloom.go)
// spares the B+tree search in the runs that cannot hold the ID; ByIssuer
// and ByIssuerTime seek in every run.
//
// Which transaction a reader sees and which memtable it sees must agree. The
// writer adds a batch's entries to the memtable before the transaction that
// stores the batch (a reader that finds a position its transaction does not
// have yet treats it as absent) and swaps in an empty memtable only after
// the transaction that flushed it has committed. A reader begins its bbolt
// transaction and reads the memtable under one hold of Store.mu, so it never
// pairs an older transaction with a newer, emptied memtable.

// memtable holds the index entries of positions [base, ...) not yet written
// to a run. The writer changes it only under Store.mu.
type memtable struct {
	base    uint64
	ids     map[[32]byte]uint64
	issuers map[[32]byte][]memEntry // in position order
}

// memEntry is one record of an issuer in the memtable: what the issuer
// index and the issuer-time index key it by.
type memEntry struct {
	seq  uint64
	time int64
	pos  uint64
}

func newMemtable(base uint64, size int) *memtable {
	return &memtable{
		base:    base,
		ids:     make(map[[32]byte]uint64, size),
		issuers: make(map[[32]byte][]memEntry),
	}
}

// add adds a record's entries. An ID stored twice keeps its first position.
func (m *memtable) add(id, issuer *[32]byte, seq uint64, ts int64, pos uint64) {
	if _, dup := m.ids[*id]; !dup {
		m.ids[*id] = pos
	}
	m.issuers[*issuer] = append(m.issuers[*issuer], memEntry{seq: seq, time: ts, pos: pos})
}

// truncate drops the entries of positions at or after pos: those of a
// transaction that failed to commit.
func (m *memtable) truncate(pos uint64) {
	for id, p := range m.ids {
		if p >= pos {
			delete(m.ids, id)
		}
	}
	for k, es := range m.issuers {
		i := len(es)
		for i > 0 && es[i-1].pos >= pos {
			i--
		}
		switch {
		case i == 0:
			delete(m.issuers, k)
		case i < len(es):
			m.issuers[k] = es[:i]
		}
	}
}

// A runIndex is one of the indexes kept in runs: its parent bucket, the
// sizes of its keys and values (every entry has exactly these), and how
// the memtable's entries of it are laid out.
type runIndex struct {
	bucket  []byte
	keySize int
	valSize int
	// appendMem appends the memtable's entries of the index to b, each key
	// followed by its value; in key order if sorted.
	appendMem func(m *memtable, b []byte) []byte
	sorted    bool
}

var (
	// idIndex: key ID (32), value position (8).
	idIndex = runIndex{bucketIDs, 32, posSize, func(m *memtable, b []byte) []byte {
		for id, pos := range m.ids {
			b = append(b, id[:]...)
			b = appendPosKey(b, pos)
		}
		return b
	}, false}
	// issuerIndex: key issuer (32), sequence (8), position (8); no value.
	issuerIndex = runIndex{bucketIssuers, issuerKeySize, 0, func(m *memtable, b []byte) []byte {
		return m.appendIssuers(b, func(a, b memEntry) int { return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.pos, b.pos)) },
			func(b []byte, issuer *[32]byte, e memEntry) []byte { return appendIssuerKey(b, issuer, e.seq, e.pos) })
	}, true}
	// issuerTimeIndex: key issuer (32), timestamp (8, sign flipped),
	// position (8); no value (timeidx.go).
	issuerTimeIndex = runIndex{bucketIssuerTimes, issuerKeySize, 0, func(m *memtable, b []byte) []byte {
		return m.appendIssuers(b, func(a, b memEntry) int { return cmp.Or(cmp.Compare(a.time, b.time), cmp.Compare(a.pos, b.pos)) },
			func(b []byte, issuer *[32]byte, e memEntry) []byte {
				return appendIssuerTimeKey(b, issuer, e.time, e.pos)
			})
	}, true}

	runIndexes = []runIndex{idIndex, issuerIndex, issuerTimeIndex}
)

// appendIssuers appends the keys of an index keyed by issuer first, in key
// order: the issuers sorted, and each one's entries sorted by order (they
// are kept in position order, which is about that order already), each
// appended by key. Sorting each issuer's entries alone costs a fraction of
// sorting all the keys.
func (m *memtable) appendIssuers(b []byte, order func(a, b memEntry) int, key func([]byte, *[32]byte, memEntry) []byte) []byte {
	issuers := slices.SortedFunc(maps.Keys(m.issuers), func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	var es []memEntry
	for _, issuer := range issuers {
		es = append(es[:0], m.issuers[issuer]...)
		slices.SortFunc(es, order)
		for _, e := range es {
			b = key(b, &issuer, e)
		}
	}
	return b
}

// runEntries returns the memtable's entries for ix, as keys and values laid
// out one after the other in one buffer, in key order.
func (m *memtable) runEntries(ix runIndex) []byte {
	size := ix.keySize + ix.valSize
	buf := ix.appendMem(m, make([]byte, 0, len(m.ids)*size))
	if ix.sorted {
		return buf
	}
	n := len(buf) / size
	// Sort the fixed-size entries by key.
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i * size
	}
	slices.SortFunc(idx, func(a, b int) int {
		return bytes.Compare(buf[a:a+ix.keySize], buf[b:b+ix.keySize])
	})
	out := make([]byte, 0, len(buf))
	for _, i := range idx {
		out = append(out, buf[i:i+size]...)
	}
	return out
}

// loadRuns reads the run list and the merge in progress, if any, from tx.
func loadRuns(tx *bolt.Tx) (runs []run, merge *run, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return nil, nil, fmt.Errorf("%w: no meta bucket", ErrCorrupt)
	}
	if runs, err = decodeRuns(meta.Get(metaRuns)); err != nil {
		return nil, nil, err
	}
	if v := meta.Get(metaMerge); v != nil {
		r, err := decodeRun(v)
		if err != nil {
			return nil, nil, err
		}
		merge = &r
	}
	return runs, merge, nil
}

// runBucket returns the bucket of run r in index ix.
func runBucket(tx *bolt.Tx, ix runIndex, r run) (*bolt.Bucket, error) {
	parent := tx.Bucket(ix.bucket)
	if parent == nil {
		return nil, fmt.Errorf("%w: no %s bucket", ErrCorrupt, ix.bucket)
	}
	b := parent.Bucket(r.name())
	if b == nil {
		return nil, fmt.Errorf("%w: run [%d, %d) has no %s bucket", ErrCorrupt, r.lo, r.hi, ix.bucket)
	}
	return b, nil
}

// lookupRuns looks id up in runs (nil: the runs of the ID index visible to
// tx), newest first, skipping those whose bloom filter rules it out (a run
// without one in blooms is searched).
func lookupRuns(tx *bolt.Tx, runs []run, id *[32]byte, blooms map[run]*bloom) (pos uint64, ok bool, err error) {
	if runs == nil {
		if runs, _, err = loadRuns(tx); err != nil {
			return 0, false, err
		}
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if bl := blooms[r]; bl != nil && !bl.mayHave(id[:]) {
			continue
		}
		b, err := runBucket(tx, idIndex, r)
		if err != nil {
			return 0, false, err
		}
		v := b.Get(id[:])
		if v == nil {
			continue
		}
		pos, err := decodeU64("ID index value", v)
		if err != nil {
			return 0, false, err
		}
		if pos < r.lo || pos >= r.hi {
			return 0, false, fmt.Errorf("%w: run [%d, %d) maps an ID to position %d", ErrCorrupt, r.lo, r.hi, pos)
		}
		return pos, true, nil
	}
	return 0, false, nil
}

// mayHave reports whether one of runs may hold id, by their bloom filters.
func mayHave(runs []run, id *[32]byte, blooms map[run]*bloom) bool {
	for _, r := range runs {
		if bl := blooms[r]; bl == nil || bl.mayHave(id[:]) {
			return true
		}
	}
	return false
}

// issuerRuns returns up to limit (no limit if limit <= 0) entries of issuer
// at or after from from each run visible to tx, each run's in (Seq, Pos)
// order.
func issuerRuns(tx *bolt.Tx, issuer *[32]byte, from SeqPos, limit int) ([]SeqPos, error) {
	var out []SeqPos
	seek := appendIssuerKey(nil, issuer, from.Seq, from.Pos)
	err := scanRuns(tx, issuerIndex, seek, limit, func(k []byte, r run) (bool, error) {
		if !bytes.HasPrefix(k, issuer[:]) {
			return false, nil
		}
		_, seq, pos, err := decodeIssuerKey(k)
		if err != nil {
			return false, err
		}
		if pos < r.lo || pos >= r.hi {
			return false, fmt.Errorf("%w: run [%d, %d) names position %d", ErrCorrupt, r.lo, r.hi, pos)
		}
		out = append(out, SeqPos{seq, pos})
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanRuns calls fn with the keys of index ix from seek on, in every run
// visible to tx, oldest run first, each run in key order: up to limit keys
// per run (no limit if limit <= 0), and in each run until fn returns false
// or an error (which scanRuns returns).
func scanRuns(tx *bolt.Tx, ix runIndex, seek []byte, limit int, fn func(k []byte, r run) (bool, error)) error {
	runs, _, err := loadRuns(tx)
	if err != nil {
		return err
	}
	for _, r := range runs {
		b, err := runBucket(tx, ix, r)
		if err != nil {
			return err
		}
		c := b.Cursor()
		n := 0
		for k, _ := c.Seek(seek); k != nil && (limit <= 0 || n < limit); k, _ = c.Next() {
			more, err := fn(k, r)
			if err != nil {
				return err
			}
			if !more {
				break
			}
			n++
		}
	}
	return nil
}

// compareSeqPos orders SeqPos by sequence, then position.
func compareSeqPos(a, b SeqPos) int {
	if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
		return c
	}
	return cmp.Compare(a.Pos, b.Pos)
}

// planMerge returns the next merge the runs call for: the MergeFanIn oldest
// runs of the lowest level that has that many. Runs are in position order
// and a merge only ever joins adjacent runs, so levels never increase along
// the list and the runs of one level are adjacent.
func planMerge(runs []run, fanIn int) (run, bool) {
	count := map[uint8]int{}
	lowest := -1
	for _, r := range runs {
		count[r.level]++
		if count[r.level] == fanIn && (lowest < 0 || int(r.level) < lowest) {
			lowest = int(r.level)
		}
	}
	if lowest < 0 {
		return run{}, false
	}
	var out run
	n := 0
	for _, r := range runs {
		if int(r.level) != lowest {
			continue
		}
		if n == 0 {
			out.lo = r.lo
		}
		out.hi = r.hi
		if n++; n == fanIn {
			break
		}
	}
	out.level = uint8(lowest) + 1
	return out, true
}

// mergeSources returns the indexes [i, j) of the runs that out is made of.
func mergeSources(runs []run, out run) (i, j int, err error) {
	i = slices.IndexFunc(runs, func(r run) bool { return r.lo == out.lo })
	j = slices.IndexFunc(runs, func(r run) bool { return r.hi == out.hi }) + 1
	if i < 0 || j <= i || out.level == 0 {
		return 0, 0, fmt.Errorf("%w: merge [%d, %d) does not match the run list", ErrCorrupt, out.lo, out.hi)
	}
	return i, j, nil
}

// mergeStep moves up to budget entries of the merge into out, index by
// index, and when every index's sources are exhausted finishes the merge:
// deletes the sources and returns the run list with out in their place.
// It calls addID with every key it moves into the ID index. It returns the
// entries moved (at most budget) and whether it finished.
func mergeStep(tx *bolt.Tx, runs []run, out run, budget int, addID func([]byte)) (newRuns []run, moved int, finished bool, err error) {
	i, j, err := mergeSources(runs, out)
	if err != nil {
		return nil, 0, false, err
	}
	for _, ix := range runIndexes {
		var add func([]byte)
		if bytes.Equal(ix.bucket, idIndex.bucket) {
			add = addID
		}
		n, done, err := mergeIndex(tx, ix, runs[i:j], out, budget-moved, add)
		moved += n
		if err != nil || !done {
			return runs, moved, false, err
		}
	}
	for _, ix := range runIndexes {
		parent := tx.Bucket(ix.bucket)
		for _, r := range runs[i:j] {
			if err := parent.DeleteBucket(r.name()); err != nil {
				return nil, moved, false, err
			}
		}
	}
	return slices.Concat(runs[:i], []run{out}, runs[j:]), moved, true, nil
}

// mergeIndex moves up to budget entries of sources into out in index ix,
// calling add (if not nil) with each key, and reports whether the sources
// are exhausted.
func mergeIndex(tx *bolt.Tx, ix runIndex, sources []run, out run, budget int, add func([]byte)) (moved int, done bool, err error) {
	parent := tx.Bucket(ix.bucket)
	dst := parent.Bucket(out.name())
	if dst == nil {
		if dst, err = parent.CreateBucket(out.name()); err != nil {
			return 0, false, err
		}
	}
	dst.FillPercent = 1

	// Resume after the last key already merged: the merge writes keys in
	// order, so the destination's last key is the merge's progress.
	last, _ := dst.Cursor().Last()
	last = bytes.Clone(last)
	type head struct {
		c    *bolt.Cursor
		k, v []byte
	}
	heads := make([]head, 0, len(sources))
	for _, r := range sources {
		b, err := runBucket(tx, ix, r)
		if err != nil {
			return 0, false, err
		}
		h := head{c: b.Cursor()}
		if last == nil {
			h.k, h.v = h.c.First()
		} else if h.k, h.v = h.c.Seek(last); h.k != nil && bytes.Equal(h.k, last) {
			h.k, h.v = h.c.Next()
		}
		heads = append(heads, h)
	}
	// Keys and values are copied into one buffer: bbolt wants what is Put to
	// stay valid until the commit.
	size := ix.keySize + ix.valSize
	buf := make([]byte, 0, max(budget, 0)*size)
	for ; moved < budget; moved++ {
		min := -1
		for h := range heads {
			if heads[h].k == nil {
				continue
			}
			if min < 0 || bytes.Compare(heads[h].k, heads[min].k) < 0 {
				min = h
			}
		}
		if min < 0 {
			return moved, true, nil
		}
		k, v := heads[min].k, heads[min].v
		if len(k) != ix.keySize || len(v) != ix.valSize {
			return moved, false, fmt.Errorf("%w: %s entry of %d+%d bytes, want %d+%d", ErrCorrupt, ix.bucket, len(k), len(v), ix.keySize, ix.valSize)
		}
		start := len(buf)
		buf = append(buf, k...)
		buf = append(buf, v...)
		e := buf[start : start+size : start+size]
		if err := dst.Put(e[:ix.keySize:ix.keySize], e[ix.keySize:]); err != nil {
			return moved, false, err
		}
		if add != nil {
			add(e[:ix.keySize])
		}
		// The same key in two runs (an ID stored twice) is kept once: the
		// older run, which comes first, wins.
		for h := range heads {
			if heads[h].k != nil && bytes.Equal(heads[h].k, e[:ix.keySize]) {
				heads[h].k, heads[h].v = heads[h].c.Next()
			}
		}
	}
	// Out of budget: done only if nothing is left.
	for _, h := range heads {
		if h.k != nil {
			return moved, false, nil
		}
	}
	return moved, true, nil
}

// runBloom builds the bloom filter of the ID index keys of run r, or of
// the part of it written so far if r is being merged (merging: its bucket
// may not exist yet).
func runBloom(tx *bolt.Tx, seed maphash.Seed, r run, merging bool) (*bloom, error) {
	parent := tx.Bucket(idIndex.bucket)
	if parent == nil {
		return nil, fmt.Errorf("%w: no %s bucket", ErrCorrupt, idIndex.bucket)
	}
	bl := newBloom(seed, int(min(r.hi-r.lo, 1<<40)))
	b := parent.Bucket(r.name())
	if b == nil && merging {
		return bl, nil
	}
	if b == nil {
		return nil, fmt.Errorf("%w: run [%d, %d) has no %s bucket", ErrCorrupt, r.lo, r.hi, idIndex.bucket)
	}
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if len(k) != idIndex.keySize {
			return nil, fmt.Errorf("%w: ID index key of %d bytes", ErrCorrupt, len(k))
		}
		bl.add(k)
	}
	return bl, nil
}
