package storage

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writer is the state of the writer goroutine, which alone reads and
// changes it (Open fills it in before the goroutine starts; Close reads
// failed after it has stopped).
type writer struct {
	cur   *epoch   // the newest epoch, which takes the records
	eps   []*epoch // every epoch, oldest first, as published
	first uint64   // the first position held
	// otx are write transactions on older epochs (by index in eps) that
	// the batch being committed changes; committed after the newest
	// epoch's.
	otx []*bolt.Tx
	// redo: confirmations of older epochs' positions in the last commit
	// (redoStored: the newest epoch's redo holds some); pendingRedo those
	// whose older transactions failed to commit, carried to the next.
	redo, pendingRedo []confirm
	redoStored        bool
	olderRuns         int // the runs of the older epochs
	// cutDone: the newest epoch was marked cut at cutAt, and the next is
	// not yet begun.
	cutDone    bool
	cutAt      int64
	maintained time.Time // when maintain last ran

	next      uint64 // NextPos as of the last commit
	confirmed uint64 // ConfirmedPrefix as of the last commit
	confCount uint64 // ConfirmCount as of the last commit
	runs      []run  // the runs of the ID and issuer indexes as of the last commit
	merge     *run   // the run being merged, nil if none
	failed    error  // set when Close gave up on a failing commit; wraps ErrFailed
	// mergeRetry: an idle merge that failed is not tried again before then.
	mergeRetry time.Time

	// flush is the memtable being written out as a run, nil if none
	// (flush.go).
	flush *flushing
	// cutFroze: the due cut froze the memtable, and cuts once that flush
	// has ended whatever the memtable then holds.
	cutFroze bool

	// mergeBloom is the bloom filter of the run being merged, filled as the
	// merge moves IDs; nil until the merge's first step after Open.
	mergeBloom *bloom

	results  []error   // per request of the batch being committed
	arena    []byte    // keys and values of the batch being committed
	idBuf    []byte    // the batch's IDs, for the ID file
	sorted   [][]byte  // index keys being sorted
	edges    []edge    // children-index entries being sorted
	confs    []confirm // confirmations being sorted
	fresh    []confirm // first confirmations of the batch, for the confirmation log
	freshPos []uint64  // their positions
}

// edge is a child and one of its parents, by position.
type edge struct{ parent, child uint64 }

type confirm struct {
	pos uint64
	at  int64
	req int // the request of the batch, and the index of its Confirmations
	i   int
}

// run is the writer goroutine: it takes what is queued, commits it in one
// transaction, reports, and repeats until Close closes the queue and it has
// drained it. Between batches, while nothing is queued, it advances a
// pending ID index merge.
func (s *Store) run() {
	defer close(s.stopped)
	var (
		batch []request
		carry *request
		timer *time.Timer
	)
	tick := time.NewTicker(tickEvery())
	defer tick.Stop()
	for {
		select {
		case now := <-tick.C:
			s.onTick(now)
		default:
		}
		var first request
		switch {
		case carry != nil:
			first, carry = *carry, nil
		default:
			select {
			case r, ok := <-s.queue:
				if !ok {
					return
				}
				first = r
			default:
				if (s.w.merge != nil || s.w.flushReady()) && s.w.failed == nil && time.Now().After(s.w.mergeRetry) {
					s.idleMerge()
					continue
				}
				var built <-chan struct{} // the pending flush's entries, being built
				if s.w.flush != nil {
					built = s.w.flush.ready
				}
				select {
				case r, ok := <-s.queue:
					if !ok {
						return
					}
					first = r
				case now := <-tick.C:
					s.onTick(now)
					continue
				case <-built:
					continue
				}
			}
		}
		batch = append(batch[:0], first)
		n := len(first.w.Records)
		// Take what is queued; with MaxDelay, keep taking what arrives until
		// MaxDelay after the queue first ran dry.
		var deadline <-chan time.Time
	gather:
		for n < s.cfg.MaxBatch {
			var (
				r  request
				ok bool
			)
			select {
			case r, ok = <-s.queue:
			default:
				if s.cfg.MaxDelay == 0 {
					break gather
				}
				if deadline == nil {
					if timer == nil {
						timer = time.NewTimer(s.cfg.MaxDelay)
					} else {
						timer.Reset(s.cfg.MaxDelay)
					}
					deadline = timer.C
				}
				select {
				case r, ok = <-s.queue:
				case <-deadline:
					break gather
				}
			}
			if !ok {
				break gather // closed: the next receive returns
			}
			if n+len(r.w.Records) > s.cfg.MaxBatch {
				carry = &r
				break gather
			}
			batch = append(batch, r)
			n += len(r.w.Records)
		}
		if timer != nil {
			timer.Stop()
		}
		s.commit(batch)
		clear(batch) // drop references to the callers' Writes
	}
}

// check reports whether w can be appended to a log that ends at next: its
// records continue the log (else ErrOutOfOrder), each agrees with its Raw
// (else a *RecordError), and its confirmations name positions in the log.
func check(w *Write, next uint64) error {
	for i := range w.Records {
		if want := next + uint64(i); w.Records[i].Pos != want {
			return fmt.Errorf("%w: record %d of the Write has position %d, want %d", ErrOutOfOrder, i, w.Records[i].Pos, want)
		}
		if err := checkRecord(&w.Records[i]); err != nil {
			return err
		}
	}
	end := next + uint64(len(w.Records))
	for _, c := range w.Confirmations {
		if c.Pos >= end {
			return fmt.Errorf("%w: confirmation of position %d, the log ends at %d", ErrOutOfOrder, c.Pos, end)
		}
	}
	return nil
}

// commit applies the acceptable Writes of batch in one transaction, commits
// it, and calls every done in order.
func (s *Store) commit(batch []request) {
	w := &s.w
	results := slices.Grow(w.results[:0], len(batch))[:len(batch)]
	w.results = results
	defer func() {
		for i, r := range batch {
			r.done(results[i])
			results[i] = nil
		}
	}()
	if w.failed != nil {
		for i := range results {
			results[i] = w.failed
		}
		return
	}

	next := w.next
	records, confs := 0, 0
	for i, r := range batch {
		if err := check(r.w, next); err != nil {
			results[i] = err
			batch[i].w = nil // not applied
			continue
		}
		next += uint64(len(r.w.Records))
		records += len(r.w.Records)
		confs += len(r.w.Confirmations)
	}
	if records == 0 && confs == 0 {
		return // nothing to write: empty or refused Writes only
	}

	st, ok := s.applyRetrying(batch, next, records)
	if !ok {
		for i, r := range batch {
			if r.w != nil {
				results[i] = w.failed
			}
		}
		return
	}
	s.publish(st)
	s.stats.writes.Add(uint64(len(batch) - countRefused(batch)))
	s.stats.records.Add(uint64(records))
	s.stats.confirmations.Add(uint64(confs))
}

// Retry pacing of a commit that fails: the first retry after retryMin, each
// wait twice the one before, at most retryMax.
const (
	retryMin = 10 * time.Millisecond
	retryMax = time.Second
)

// applyRetrying puts the batch's index entries into the memtable and
// applies it; while its transaction fails (a full disk, say) it takes the
// entries back out of the memtable, waits, and tries again: the same records at the same positions, so that the caller's
// view of the log stays true once it commits. Meanwhile the queue fills and
// Submit blocks: that is the backpressure, and Failing says why. It gives
// up only when Close begins, failing the writer for good (w.failed).
func (s *Store) applyRetrying(batch []request, next uint64, records int) (committed, bool) {
	w := &s.w
	wait := retryMin
	if w.flush == nil && w.next-s.mem.base >= uint64(s.cfg.FlushEvery) {
		s.freeze()
	}
	for attempt := 1; ; attempt++ {
		s.addToMemtable(batch)
		st, err := s.applyHooked(batch, next, records)
		if err == nil {
			s.recovered()
			return st, true
		}
		s.stats.failures.Add(1)
		s.mu.Lock()
		s.mem.truncate(w.next)
		s.mu.Unlock()
		since := time.Now()
		if f := s.failing.Load(); f != nil {
			since = f.Since
		}
		s.failing.Store(&Failure{Err: err, Since: since, Attempts: attempt, noSpace: errors.Is(err, syscall.ENOSPC)})
		select {
		case <-s.closing:
			w.failed = fmt.Errorf("%w: %w", ErrFailed, err)
			return st, false
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// addToMemtable puts the index entries of batch's accepted Writes into the
// memtable: before the transaction, see runs.go.
func (s *Store) addToMemtable(batch []request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range batch {
		if r.w == nil {
			continue
		}
		for i := range r.w.Records {
			rec := &r.w.Records[i]
			s.mem.add(&rec.ID, &rec.Issuer, rec.Seq, rec.Timestamp, rec.Pos)
		}
	}
}

func (s *Store) applyHooked(batch []request, next uint64, records int) (committed, error) {
	if h := s.hook.Load(); h != nil {
		if err := (*h)(); err != nil {
			return committed{}, err
		}
	}
	return s.apply(batch, next, records)
}

func countRefused(batch []request) int {
	n := 0
	for _, r := range batch {
		if r.w == nil {
			n++
		}
	}
	return n
}

// committed is the writer state a successful transaction leads to.
type committed struct {
	next, confirmed uint64
	confCount       uint64
	runs            []run
	merge           *run
	flushed         bool           // the memtable went into a run
	flushOff        []int          // how far the pending flush got, if this transaction wrote some
	merged          bool           // a merge finished
	blooms          map[run]*bloom // if not nil, replaces Store.blooms
}

// apply writes the accepted Writes of batch (those with a non-nil w), which
// bring the log to next, and commits.
func (s *Store) apply(batch []request, next uint64, records int) (committed, error) {
	w := &s.w
	st := committed{next: next, confirmed: w.confirmed, confCount: w.confCount, runs: w.runs, merge: w.merge}
	tx, err := w.cur.db.Begin(true)
	if err != nil {
		return st, err
	}
	defer tx.Rollback() // a no-op after Commit
	defer w.rollbackOlder()

	// One buffer holds every key and value of the batch: bbolt keeps
	// references to what is Put until the commit. need is a guess (the
	// children lists and confirmation blocks rewritten are not known yet);
	// the buffer grows if it is short.
	need := 0
	for _, r := range batch {
		if r.w == nil {
			continue
		}
		for i := range r.w.Records {
			// Log key and value, two children-list keys and entries, time key,
			// and a share of a confirmation block.
			need += posSize + entryHeaderSize + len(r.w.Records[i].Raw) + 2*2*posSize + timeKeySize + confBlockSize/confBlock
		}
		need += len(r.w.Confirmations) * 2 * posSize
	}
	if cap(w.arena) < need {
		w.arena = make([]byte, 0, need+need/4)
	}
	a := w.arena[:0]
	// since returns what was appended to a since mark, capped so that later
	// appends cannot overwrite it. (Should a outgrow its capacity, the bytes
	// handed out before stay in the old array, which is just as good.)
	since := func(mark int) []byte { return a[mark:len(a):len(a)] }

	// The log: positions in order, so every Put is an append.
	logb := tx.Bucket(bucketLog)
	logb.FillPercent = 1
	for _, r := range batch {
		if r.w == nil {
			continue
		}
		for i := range r.w.Records {
			rec := &r.w.Records[i]
			m := len(a)
			a = appendPosKey(a, rec.Pos)
			k := since(m)
			m = len(a)
			a = appendEntry(a, rec)
			v := since(m)
			if err := logb.Put(k, v); err != nil {
				return st, err
			}
		}
	}
	// The ID file first: should the commit fail, its retry writes the same
	// IDs at the same offsets, and Open cuts off what no commit kept.
	if err := s.writeIDs(batch); err != nil {
		return st, fmt.Errorf("storage: writing the ID file: %w", err)
	}

	// The secondary indexes: keys are sorted before they are Put, so that
	// bbolt fills each leaf left to right instead of shifting it on every
	// insert.
	putSorted := func(bucket []byte, fill float64, keys [][]byte) error {
		b := tx.Bucket(bucket)
		b.FillPercent = fill
		slices.SortFunc(keys, bytes.Compare)
		for _, k := range keys {
			if err := b.Put(k, nil); err != nil {
				return err
			}
		}
		return nil
	}
	// The children index: each parent's new children, in position order,
	// are appended to its list. Parents are sorted so that bbolt fills each
	// leaf left to right, as for the indexes below.
	edges := w.edges[:0]
	for _, r := range batch {
		if r.w == nil {
			continue
		}
		for i := range r.w.Records {
			rec := &r.w.Records[i]
			for j, pp := range rec.ParentPos {
				if pp >= rec.Pos || (j == 1 && pp == rec.ParentPos[0]) {
					continue // not in the store, or the same parent twice
				}
				edges = append(edges, edge{pp, rec.Pos})
			}
		}
	}
	w.edges = edges
	slices.SortFunc(edges, func(a, b edge) int { return cmp.Or(cmp.Compare(a.parent, b.parent), cmp.Compare(a.child, b.child)) })
	children := tx.Bucket(bucketChildren)
	children.FillPercent = 0.9
	for i := 0; i < len(edges); {
		parent := edges[i].parent
		m := len(a)
		a = appendPosKey(a, parent)
		k := since(m)
		m = len(a)
		// The children stored before are below this batch's: the list stays
		// in position order.
		a = append(a, children.Get(k)...)
		for ; i < len(edges) && edges[i].parent == parent; i++ {
			a = appendChild(a, edges[i].child)
		}
		if err := children.Put(k, since(m)); err != nil {
			return st, err
		}
	}
	keys := w.sorted[:0]
	for _, r := range batch {
		if r.w == nil {
			continue
		}
		for i := range r.w.Records {
			rec := &r.w.Records[i]
			m := len(a)
			a = appendTimeKey(a, rec.Timestamp, rec.Pos)
			keys = append(keys, since(m))
		}
	}
	if err := putSorted(bucketTime, 0.9, keys); err != nil {
		return st, err
	}
	clear(keys)
	w.sorted = keys[:0]

	// Confirmations, kept in blocks of positions (see codec.go). The
	// log's new positions get their blocks first, all clear, so that blocks
	// are appended in key order and later only rewritten in place.
	conf := tx.Bucket(bucketConf)
	conf.FillPercent = 1
	for b := (w.next + confBlock - 1) / confBlock; b*confBlock < st.next; b++ {
		m := len(a)
		a = appendPosKey(a, b)
		k := since(m)
		m = len(a)
		a = append(a, zeroConfBlock[:]...)
		if err := conf.Put(k, since(m)); err != nil {
			return st, err
		}
	}
	// The first confirmation of a position is kept: sorted stably, a
	// position's confirmations stay in submission order.
	confs := w.confs[:0]
	for ri, r := range batch {
		if r.w == nil {
			continue
		}
		r.w.ConfirmSeq = slices.Grow(r.w.ConfirmSeq[:0], len(r.w.Confirmations))[:len(r.w.Confirmations)]
		for i, c := range r.w.Confirmations {
			confs = append(confs, confirm{c.Pos, c.At, ri, i})
			r.w.ConfirmSeq[i] = NoSeq
		}
	}
	w.confs = confs
	slices.SortStableFunc(confs, func(a, b confirm) int { return cmp.Compare(a.pos, b.pos) })
	var (
		blk     blockConfs
		cur     = NoPos // the block in blk
		changed bool    // blk differs from what is stored
	)
	load := func(b uint64) error {
		if b == cur {
			return nil
		}
		if changed {
			m := len(a)
			a = appendPosKey(a, cur)
			k := since(m)
			m = len(a)
			a = blk.appendTo(a)
			if err := conf.Put(k, since(m)); err != nil {
				return err
			}
		}
		cur, changed = b, false
		if b == NoPos {
			return nil
		}
		return decodeConfBlock(b, conf.Get(binaryPos(b)), &blk)
	}
	fresh := w.fresh[:0]
	keep := func(c confirm) {
		if c.at != OrphanedAt {
			fresh = append(fresh, c)
		}
	}
	// Positions of dropped epochs are settled: their confirmations are
	// passed over. Those of older epochs go to their files (older), in
	// transactions committed after this one; this one keeps them (redo)
	// until they have.
	lo := w.cur.lo
	skip, _ := slices.BinarySearchFunc(confs, w.first, cmpConfirmPos)
	split, _ := slices.BinarySearchFunc(confs, lo, cmpConfirmPos)
	redo := append(w.redo[:0], w.pendingRedo...)
	for _, c := range w.pendingRedo {
		if c.pos < w.first {
			continue
		}
		otx, err := w.olderTx(w.epochAt(c.pos))
		if err != nil {
			return st, err
		}
		if err := setConfs(otx, []confirm{c}, nil); err != nil {
			return st, err
		}
	}
	for i := skip; i < split; {
		e := w.epochAt(confs[i].pos)
		j := i
		for j < split && (e+1 == len(w.eps) || confs[j].pos < w.eps[e+1].lo) {
			j++
		}
		otx, err := w.olderTx(e)
		if err != nil {
			return st, err
		}
		err = setConfs(otx, confs[i:j], func(c confirm) {
			keep(c)
			redo = append(redo, confirm{pos: c.pos, at: c.at})
		})
		if err != nil {
			return st, err
		}
		i = j
	}
	w.redo = redo
	for _, c := range confs[split:] {
		if err := load(c.pos / confBlock); err != nil {
			return st, err
		}
		if blk.put(c.pos, c.at) {
			changed = true
			keep(c)
		}
	}
	if err := load(NoPos); err != nil { // store the last block
		return st, err
	}
	if len(redo) > 0 || w.redoStored {
		if err := tx.Bucket(bucketRedo).Put(redoKey, encodeRedo(redo)); err != nil {
			return st, err
		}
	}
	// The confirmation log takes the first confirmations in submission
	// order.
	w.fresh = fresh
	slices.SortFunc(fresh, func(a, b confirm) int { return cmp.Or(cmp.Compare(a.req, b.req), cmp.Compare(a.i, b.i)) })
	freshPos := w.freshPos[:0]
	for _, c := range fresh {
		batch[c.req].w.ConfirmSeq[c.i] = st.confCount + uint64(len(freshPos))
		freshPos = append(freshPos, c.pos)
	}
	w.freshPos = freshPos
	if len(freshPos) > 0 {
		if st.confCount, err = appendConfLog(tx, w.cur.confBase, st.confCount, freshPos); err != nil {
			return st, err
		}
	}
	// Then the watermark moves over every settled position that follows
	// it, across blocks and epochs.
	for len(confs) > 0 && st.confirmed < st.next {
		var n uint64
		if st.confirmed >= lo {
			if err := load(st.confirmed / confBlock); err != nil {
				return st, err
			}
			n = blk.run(st.confirmed)
		} else if n, err = w.olderRun(st.confirmed); err != nil {
			return st, err
		}
		st.confirmed = min(st.confirmed+n, st.next)
		if n == 0 || (st.confirmed%confBlock != 0 && !w.isEpochStart(st.confirmed)) {
			break // stopped inside a block
		}
	}

	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(metaNext, binaryPos(st.next)); err != nil {
		return st, err
	}
	if err := meta.Put(metaConfirmed, binaryPos(st.confirmed)); err != nil {
		return st, err
	}

	// The indexes kept in runs: write a share of the pending flush (all of
	// it once the memtable that follows is full, since the next batch
	// freezes that one), and do a share of the pending merge.
	share := s.flushShareSize(records)
	if st.next-s.mem.base >= uint64(s.cfg.FlushEvery) {
		share = -1
	}
	if err := s.flushShare(tx, &st, share); err != nil {
		return st, err
	}
	// Each record has an entry per run index (ID, issuer, issuer-time) to
	// merge once per level. The budget was set when there were two
	// indexes, at levels × records (levels counts the one being built)
	// plus a fixed share that lets a burst of small Writes catch up, and
	// is scaled by the indexes there are (mergeBudget). Spread thin, the
	// merge costs every transaction a little rather than some of them a
	// lot (docs/STORAGE.md).
	levels := 1
	for _, r := range st.runs {
		levels = max(levels, int(r.level)+1)
	}
	if err := s.advanceMerge(tx, &st, mergeBudget(levels*records+s.cfg.FlushEvery/16)); err != nil {
		return st, err
	}
	w.arena = a[:0]
	if err := tx.Commit(); err != nil {
		return st, err
	}
	w.redoStored = len(redo) > 0
	w.pendingRedo = append(w.pendingRedo[:0], redo...)
	if w.commitOlder() {
		w.pendingRedo = w.pendingRedo[:0]
	} else {
		s.stats.failures.Add(1)
	}
	return st, nil
}

// flushMemtable writes the memtable's entries, the records [mem.base,
// st.next), as a run of each run index, and adds the run and its Bloom
// filter to st (published with it).
func (s *Store) flushMemtable(tx *bolt.Tx, st *committed) error {
	mem := s.mem
	r := run{lo: mem.base, hi: st.next}
	for _, ix := range runIndexes {
		e := mem.runEntries(ix)
		if err := writeRunPart(tx, ix, r, e, 0, len(e)); err != nil {
			return err
		}
	}
	st.runs = append(slices.Clip(st.runs), r)
	st.flushed = true
	bl := newBloom(s.seed, len(mem.ids))
	for id := range mem.ids {
		bl.add(id[:])
	}
	if st.blooms == nil {
		st.blooms = maps.Clone(s.blooms)
	}
	st.blooms[r] = bl
	return nil
}

// mergeBudget scales a merge budget set for two indexes in runs to the
// indexes there are, so that each index merges as many entries per record
// as when there were two.
func mergeBudget(n int) int { return n * len(runIndexes) / 2 }

// advanceMerge plans a merge if none is pending, does up to budget entries
// of the pending one, and records the run list and merge in meta.
func (s *Store) advanceMerge(tx *bolt.Tx, st *committed, budget int) error {
	changed := st.flushed
	if st.merge == nil {
		if out, ok := planMerge(st.runs, s.cfg.MergeFanIn); ok {
			st.merge = &out
		}
	}
	if st.merge != nil {
		out := *st.merge
		if s.w.mergeBloom == nil {
			// A new merge, or one resumed after Open: start from what is
			// already merged.
			bl, err := runBloom(tx, s.seed, out, true)
			if err != nil {
				return err
			}
			s.w.mergeBloom = bl
		}
		runs, _, done, err := mergeStep(tx, st.runs, out, budget, s.w.mergeBloom.add)
		if err != nil {
			return err
		}
		if done {
			if st.blooms == nil {
				st.blooms = maps.Clone(s.blooms)
			}
			for _, r := range st.runs {
				if r.lo >= out.lo && r.hi <= out.hi {
					delete(st.blooms, r)
				}
			}
			st.blooms[out] = s.w.mergeBloom
			s.w.mergeBloom = nil
			st.runs, st.merge, st.merged, changed = runs, nil, true, true
			if out, ok := planMerge(st.runs, s.cfg.MergeFanIn); ok {
				st.merge = &out
			}
		}
	}
	meta := tx.Bucket(bucketMeta)
	if changed {
		if err := meta.Put(metaRuns, encodeRuns(st.runs)); err != nil {
			return err
		}
	}
	if st.merge == nil {
		return meta.Delete(metaMerge)
	}
	return meta.Put(metaMerge, appendRun(nil, *st.merge))
}

// idleMerge commits a transaction that only advances the pending flush and
// merge.
func (s *Store) idleMerge() {
	w := &s.w
	if err := s.mergeTx(mergeBudget(max(1, s.cfg.FlushEvery/2)), s.flushShareSize(0)); err != nil {
		// Not fatal: the merge is retried a little later, when the writer
		// is idle; a commit that fails says so through Failing.
		s.stats.failures.Add(1)
		w.mergeRetry = time.Now().Add(retryMax)
	}
}

// mergeTx commits a transaction that advances the pending flush by up to
// share entries of each index, and the pending merge by up to budget
// entries.
func (s *Store) mergeTx(budget, share int) error {
	w := &s.w
	st := committed{next: w.next, confirmed: w.confirmed, confCount: w.confCount, runs: w.runs, merge: w.merge}
	err := w.cur.db.Update(func(tx *bolt.Tx) error {
		if err := s.flushShare(tx, &st, share); err != nil {
			return err
		}
		return s.advanceMerge(tx, &st, budget)
	})
	if err != nil {
		return err
	}
	s.publish(st)
	return nil
}

// publish makes the state of a committed transaction the writer's and the
// readers'.
func (s *Store) publish(st committed) {
	w := &s.w
	w.next, w.confirmed, w.confCount, w.runs, w.merge = st.next, st.confirmed, st.confCount, st.runs, st.merge
	if st.flushOff != nil {
		w.flush.off = st.flushOff
	}
	if st.flushed || st.blooms != nil {
		s.mu.Lock()
		if st.flushed {
			s.frozen, w.flush = nil, nil
		}
		if st.flushed && w.cutFroze {
			// A cut waits for this flush: let it come at the next tick,
			// while the memtable that follows is still small, not after
			// maintainEvery, when it holds a second of records to write
			// inline.
			w.maintained = time.Time{}
		}
		if st.blooms != nil {
			s.blooms = st.blooms
		}
		s.mu.Unlock()
	}
	s.nextPos.Store(st.next)
	s.confirmed.Store(st.confirmed)
	s.confCount.Store(st.confCount)
	s.stats.commits.Add(1)
	s.stats.runs.Store(uint64(w.olderRuns + len(st.runs)))
	if st.merged {
		s.stats.merges.Add(1)
	}
}

func cmpConfirmPos(c confirm, pos uint64) int { return cmp.Compare(c.pos, pos) }

// epochAt returns the index in eps of the epoch that holds pos (at least
// the first position held).
func (w *writer) epochAt(pos uint64) int {
	i, found := slices.BinarySearchFunc(w.eps, pos, func(e *epoch, p uint64) int { return cmp.Compare(e.lo, p) })
	if !found {
		i--
	}
	return i
}

func (w *writer) isEpochStart(pos uint64) bool {
	_, found := slices.BinarySearchFunc(w.eps, pos, func(e *epoch, p uint64) int { return cmp.Compare(e.lo, p) })
	return found
}

// olderTx returns the write transaction of older epoch i, begun when first
// needed.
func (w *writer) olderTx(i int) (*bolt.Tx, error) {
	if len(w.otx) < len(w.eps) {
		w.otx = append(w.otx, make([]*bolt.Tx, len(w.eps)-len(w.otx))...)
	}
	if w.otx[i] == nil {
		tx, err := w.eps[i].db.Begin(true)
		if err != nil {
			return nil, err
		}
		w.otx[i] = tx
	}
	return w.otx[i], nil
}

// olderRun returns how many positions from pos (in an older epoch) on, to
// its block's end, are settled.
func (w *writer) olderRun(pos uint64) (uint64, error) {
	i := w.epochAt(pos)
	var blk blockConfs
	read := func(tx *bolt.Tx) error {
		return decodeConfBlock(pos/confBlock, tx.Bucket(bucketConf).Get(binaryPos(pos/confBlock)), &blk)
	}
	var err error
	if i < len(w.otx) && w.otx[i] != nil {
		err = read(w.otx[i])
	} else {
		err = w.eps[i].db.View(read)
	}
	if err != nil {
		return 0, err
	}
	return blk.run(pos), nil
}

// commitOlder commits the older epochs' transactions and reports whether
// all did.
func (w *writer) commitOlder() bool {
	ok := true
	for i, tx := range w.otx {
		if tx != nil {
			if err := tx.Commit(); err != nil {
				ok = false
			}
			w.otx[i] = nil
		}
	}
	return ok
}

func (w *writer) rollbackOlder() {
	for i, tx := range w.otx {
		if tx != nil {
			tx.Rollback()
			w.otx[i] = nil
		}
	}
}
