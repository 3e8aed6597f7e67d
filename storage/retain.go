package storage

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// maintainEvery is how often the writer considers a cut and a drop (a
// variable for tests).
var maintainEvery = time.Second

// releaseEvery is how often the releaser gives the pages of the epochs'
// mappings back to the page cache (release_linux.go). What the mappings
// hold in between is what reads touched since: each page fault maps up to
// 64 KiB of the file's cached pages around the page read (the kernel's
// fault-around), so even lookups scattered over the epochs fill tens of
// megabytes a second.
const releaseEvery = 250 * time.Millisecond

// Between releases, the releaser looks at the process's file-backed
// resident memory every releaseLook, and releases at once when it grew by
// more than releaseGrowth since the last release: reads that sweep the
// epochs (a device's whole history, an export) fault in hundreds of
// megabytes a second.
const releaseLook = 20 * time.Millisecond

// releaseGrowth is 16 MiB; a variable for tests.
var releaseGrowth atomic.Int64

func init() { releaseGrowth.Store(16 << 20) }

// writerTick is the writer's tick when maintainEvery is longer: a cut that
// waits for a flush comes within a tick of its end (publish).
const writerTick = 50 * time.Millisecond

// tickEvery is the writer's tick: the shorter of maintainEvery and
// writerTick.
func tickEvery() time.Duration { return min(maintainEvery, writerTick) }

// onTick runs on the writer's tick: maintain every maintainEvery (within
// half a tick, so that ticks a little early still count).
func (s *Store) onTick(now time.Time) {
	w := &s.w
	if now.Sub(w.maintained) >= maintainEvery-tickEvery()/2 {
		w.maintained = now
		s.maintain(now)
	}
}

// releaser releases the epochs' mapped pages every releaseEvery, or sooner
// as releaseGrowth says, until Close begins. It runs beside the writer,
// not on its tick: a writer catching up commits batches of thousands of
// records, and the pages that reads fault in meanwhile would wait for it.
func (s *Store) releaser() {
	defer close(s.releaserDone)
	tick := time.NewTicker(releaseLook)
	defer tick.Stop()
	last := time.Now()
	after, _ := fileResident()
	for {
		select {
		case <-s.closing:
			return
		case now := <-tick.C:
			due := now.Sub(last) >= releaseEvery-releaseLook/2
			if !due {
				rss, ok := fileResident()
				due = ok && rss-after > releaseGrowth.Load()
			}
			if !due {
				continue
			}
			last = now
			s.mu.RLock()
			eps := s.epochs
			s.mu.RUnlock()
			// An epoch a drop closes meanwhile answers its read
			// transaction with an error, and is passed over.
			for _, e := range eps {
				releasePages(e.db)
			}
			releasePages(s.state) // the checkpoints' leaves pass through it
			after, _ = fileResident()
			s.stats.releases.Add(1)
		}
	}
}

// maintain runs on the writer goroutine, between batches: it cuts the
// newest epoch when it is full or old and drops the oldest epochs that the
// policy lets go; it ends a failure for lack of
// space that outlasted its commit (recovered). A failure is reported through
// Failing and tried again at the next turn; it never fails a Write.
func (s *Store) maintain(now time.Time) {
	w := &s.w
	if w.failed != nil {
		return
	}
	s.recovered() // a failure for lack of space, held after its commit
	err := s.maybeCut(now)
	if err == nil {
		err = s.maybeDrop(now)
	}
	if err != nil {
		since := now
		attempts := 1
		if f := s.maintFailing.Load(); f != nil {
			since, attempts = f.Since, f.Attempts+1
		}
		s.maintFailing.Store(&Failure{Err: err, Since: since, Attempts: attempts})
	} else {
		s.maintFailing.Store(nil)
	}
}

func (s *Store) dropStep(step string) {
	if h := s.dropHook.Load(); h != nil {
		(*h)(step)
	}
}

// maybeCut begins a new epoch when the newest holds EpochRecords records
// or was begun EpochAge ago (and holds one). The newest epoch's memtable
// goes into a run (first frozen and flushed in shares, if it is large) and
// the epoch is marked cut in one transaction; then the
// next epoch's file is created. A crash between the two leaves a cut epoch
// as the newest, and Open creates the next. A pending merge is finished
// first: runs never cross an epoch.
func (s *Store) maybeCut(now time.Time) error {
	w := &s.w
	cur := w.cur
	n := w.next - cur.lo
	if n == 0 {
		return nil
	}
	if !w.cutDone && n < uint64(s.cfg.EpochRecords) && now.UnixNano()-cur.created < int64(s.cfg.EpochAge) {
		return nil
	}
	// A flush under way ends first, in the transactions that follow. Where
	// the memtable holds more than a few seconds' records, it is frozen
	// now, for the same reason: written at the cut in one transaction, it
	// would stall every Write behind it (flush.go). What the cut's own
	// transaction writes is then what came during the flush.
	if w.flush != nil {
		return nil
	}
	if !w.cutFroze && w.next-s.mem.base > cutInline {
		s.freeze()
		w.cutFroze = true // once: the memtable that follows may be large again
		return nil
	}
	// Finish the merges under way: an epoch's are bounded by its size (and
	// with the defaults, an epoch has too few runs to merge at all).
	for w.merge != nil {
		if err := s.mergeTx(int(w.merge.hi-w.merge.lo)*len(runIndexes)+1, 0); err != nil {
			return fmt.Errorf("storage: merging before the cut of epoch %d: %w", cur.lo, err)
		}
	}
	cutAt := now.UnixNano()
	st := committed{next: w.next, confirmed: w.confirmed, confCount: w.confCount, runs: w.runs}
	if !w.cutDone || w.next > s.mem.base {
		if h := s.hook.Load(); h != nil {
			if err := (*h)(); err != nil {
				return err
			}
		}
		// The ID file is whole on disk before the epoch is cut: a drop
		// may keep it, and then no log is left to rebuild it from.
		if !s.cfg.NoSync {
			if err := cur.ids.Sync(); err != nil {
				return fmt.Errorf("storage: cutting epoch %d: syncing its ID file: %w", cur.lo, err)
			}
		}
		err := cur.db.Update(func(tx *bolt.Tx) error {
			if w.next > s.mem.base {
				if err := s.flushMemtable(tx, &st); err != nil {
					return err
				}
				if err := tx.Bucket(bucketMeta).Put(metaRuns, encodeRuns(st.runs)); err != nil {
					return err
				}
			}
			if w.cutDone {
				return nil
			}
			return tx.Bucket(bucketMeta).Put(metaCut, binaryPos(uint64(cutAt)))
		})
		if err != nil {
			return fmt.Errorf("storage: cutting epoch %d: %w", cur.lo, err)
		}
		// Records that follow, should the next file fail to be created,
		// still go to the cut epoch, in a new memtable; Open creates the
		// next epoch after its last.
		if !w.cutDone {
			w.cutDone, w.cutAt = true, cutAt
		}
		w.runs = st.runs
		s.mu.Lock()
		s.mem = newMemtable(w.next, s.cfg.FlushEvery)
		if st.blooms != nil {
			s.blooms = st.blooms
		}
		s.mu.Unlock()
		s.dropStep("cut")
	}
	// Its records are all there: the next go to the next epoch, or, should
	// it fail to be created, to this one until the cut is tried again.
	var span timeSpan
	if err := cur.db.View(func(tx *bolt.Tx) (err error) {
		span, err = readSpan(tx)
		return err
	}); err != nil {
		return fmt.Errorf("storage: cutting epoch %d: %w", cur.lo, err)
	}
	ne, err := s.createEpoch(w.next, w.confirmed, w.confCount, now.UnixNano())
	if err != nil {
		return fmt.Errorf("storage: beginning epoch %d: %w", w.next, err)
	}
	old := *cur
	old.runs, old.cutAt, old.span = w.runs, w.cutAt, span
	eps := append(slices.Clone(w.eps[:len(w.eps)-1]), &old, ne)
	s.mu.Lock()
	s.epochs = eps
	s.mu.Unlock()
	w.olderRuns += len(w.runs)
	w.cur, w.eps, w.runs, w.merge, w.mergeBloom, w.cutDone, w.cutFroze = ne, eps, nil, nil, nil, false, false
	s.stats.cuts.Add(1)
	return nil
}

// cutInline: a cut writes in its own transaction a memtable of at most
// cutInline records (about 15 ms of bbolt Puts), and freezes a larger one
// first.
const cutInline = 4096

// maybeDrop drops the oldest epochs that the policy lets go: while the
// store holds more than MaxDisk bytes, or the oldest epoch was cut more
// than Retain ago. The newest epoch is never dropped, nor one that holds a
// position not yet settled (below ConfirmedPrefix every position is
// confirmed or orphaned).
func (s *Store) maybeDrop(now time.Time) error {
	w := &s.w
	if s.cfg.Retain <= 0 && s.cfg.MaxDisk <= 0 {
		return nil
	}
	usage := int64(0)
	if s.cfg.MaxDisk > 0 {
		// Files of a drop still being removed count as gone.
		usage = s.DiskUsage() - s.unlinking.Load()
	}
	k := 0
	for ; k < len(w.eps)-1; k++ {
		e := w.eps[k]
		if w.confirmed < w.eps[k+1].lo {
			break // holds positions not yet settled
		}
		old := s.cfg.Retain > 0 && now.UnixNano()-e.cutAt >= int64(s.cfg.Retain)
		full := s.cfg.MaxDisk > 0 && usage > s.cfg.MaxDisk
		if !old && !full {
			break
		}
		usage -= fileBytes(e.path)
		if !s.cfg.KeepIDs {
			usage -= fileBytes(idsPath(s.path, e.lo))
		}
	}
	if k == 0 {
		return nil
	}
	return s.drop(k)
}

// drop drops the k oldest epochs. The new frontier, with the entry points
// (the dropped messages that kept ones name as parents), is written first:
// that is the commit point. Then the epochs leave the published list,
// their files are closed (which waits for the reads on them) and removed.
// A crash after the frontier is written leaves files that Open removes.
func (s *Store) drop(k int) error {
	w := &s.w
	first := w.eps[k].lo
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.mu.RLock()
	old := s.front
	s.mu.RUnlock()

	f := &frontier{first: first, dropped: old.dropped, eps: map[[32]byte]EntryPoint{}, learned: map[[32]byte]uint64{}}
	// The greatest timestamp dropped: the top of each dropped epoch's span
	// (known: the newest epoch is never dropped).
	for _, e := range w.eps[:k] {
		f.dropped = max(f.dropped, e.span.hi)
	}
	// Entry points a peer named stay until the position they were learned
	// at is dropped.
	for id, at := range old.learned {
		if at >= first {
			f.eps[id], f.learned[id] = old.eps[id], at
		}
	}
	byPos := make(map[uint64]EntryPoint, len(old.eps))
	for _, ep := range old.eps {
		if ep.Pos != NoPos {
			byPos[ep.Pos] = ep
		}
	}
	// The parents below first of kept records: the children index of each
	// kept epoch is keyed by parent position, so they are its first keys.
	var parents []uint64
	for _, e := range w.eps[k:] {
		err := e.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketChildren).Cursor()
			for key, _ := c.First(); key != nil; key, _ = c.Next() {
				p, err := decodeU64("children key", key)
				if err != nil {
					return err
				}
				if p >= first {
					break
				}
				if ep, ok := byPos[p]; ok {
					f.eps[ep.ID] = ep
				} else if p >= old.first {
					parents = append(parents, p)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	slices.Sort(parents)
	parents = slices.Compact(parents)
	for i := 0; i < len(parents); {
		e := w.epochAt(parents[i])
		err := w.eps[e].db.View(func(tx *bolt.Tx) error {
			for ; i < len(parents) && (e+1 == len(w.eps) || parents[i] < w.eps[e+1].lo); i++ {
				ent, err := entryAt(tx, parents[i])
				if err != nil {
					return err
				}
				f.eps[ent.ID] = EntryPoint{ID: ent.ID, Pos: ent.Pos, Timestamp: ent.Timestamp}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	f.bound()

	s.dropStep("frontier")
	if err := writeFrontier(s.path, f, s.cfg.NoSync); err != nil {
		return err
	}
	s.dropStep("written")
	dropped, kept := w.eps[:k], slices.Clone(w.eps[k:])
	blooms := maps.Clone(s.blooms)
	records := uint64(0)
	for _, e := range dropped {
		for _, r := range e.runs {
			delete(blooms, r)
		}
		w.olderRuns -= len(e.runs)
	}
	records = first - w.first
	// The ID files leave with the epochs, kept or not, under idsMu: a read
	// finds a position's ID in one or the other (ids.go).
	s.idsMu.Lock()
	removeIDs, idsErr := s.releaseIDs(dropped, first)
	s.mu.Lock()
	s.epochs, s.front, s.blooms = kept, f, blooms
	s.mu.Unlock()
	s.idsMu.Unlock()
	w.eps, w.first = kept, first
	w.pendingRedo = slices.DeleteFunc(w.pendingRedo, func(c confirm) bool { return c.pos < first })

	// Closing waits for the reads under way on the files, and removing a
	// large file takes a while (removeFile): both happen beside the
	// writer, which goes on committing. Open removes what a crash leaves.
	sizes := make([]int64, len(dropped))
	for i, e := range dropped {
		sizes[i] = fileBytes(e.path)
		s.unlinking.Add(sizes[i])
	}
	s.removing.Add(1)
	go func() {
		defer s.removing.Done()
		errs := []error{idsErr}
		for _, e := range dropped {
			errs = append(errs, e.db.Close())
		}
		for _, p := range removeIDs {
			errs = append(errs, os.Remove(p))
		}
		s.dropStep("closed")
		for i, e := range dropped {
			errs = append(errs, s.removeFile(e.path, sizes[i]))
		}
		if !s.cfg.NoSync {
			errs = append(errs, syncDir(s.path))
		}
		s.dropStep("removed")
		if err := errors.Join(errs...); err != nil {
			s.removeFailing.Store(&Failure{Err: fmt.Errorf("storage: removing dropped epochs: %w", err), Since: time.Now(), Attempts: 1})
		} else {
			s.removeFailing.Store(nil)
		}
		s.stats.drops.Add(1) // after the removal, for tests that measure the disk
		s.stats.dropped.Add(records)
	}()
	return nil
}

// A file removed at once gives back all its blocks in one journal
// transaction. On ext4 mounted with discard (this machine's disk, and
// common on SSDs) that commit then discards them all, and every fsync
// waits for it: the newest epoch's commits stalled 75-87 ms at each drop
// of a 70 MB epoch, in a node at 10,000 msgs/s. So removeFile cuts the
// file from its end, removeChunk at a time and removePause apart, before
// it unlinks it, as RocksDB's DeleteScheduler does: each commit then
// carries a few megabytes of discards. That removes 200 MB a second, far
// more than a node writes. Close ends the pauses.
var (
	removeChunk int64 = 4 << 20
	removePause       = 20 * time.Millisecond
)

// removeFile removes a dropped epoch's file, which took alloc bytes on the
// file system when it was dropped (counted in unlinking until they are
// given back).
func (s *Store) removeFile(path string, alloc int64) error {
	defer func() { s.unlinking.Add(-alloc) }()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	// bbolt grows a file in steps of 16 MiB that it has not written yet:
	// cutting off such a hole gives nothing back, and needs no pause.
	var pause *time.Timer
	for size := fi.Size() - removeChunk; size > 0; size -= removeChunk {
		if pause != nil {
			select {
			case <-s.closing:
				size = 0 // the rest at once
			case <-pause.C:
			}
		}
		if err := f.Truncate(size); err != nil {
			f.Close()
			return err
		}
		if fi, err := f.Stat(); err == nil && allocated(fi) < alloc {
			now := allocated(fi)
			s.unlinking.Add(now - alloc)
			alloc = now
			if pause == nil {
				pause = time.NewTimer(removePause)
				defer pause.Stop()
			} else {
				pause.Reset(removePause)
			}
		}
		s.dropStep("truncated")
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Remove(path)
}

// fileBytes returns the bytes a file takes on the file system.
func fileBytes(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return allocated(fi)
}

// RetentionFailing returns nil while cuts and drops succeed; while they
// fail (a file that cannot be created or removed) it describes the
// failure. Writes go on meanwhile. Safe from any goroutine.
func (s *Store) RetentionFailing() *Failure {
	if f := s.maintFailing.Load(); f != nil {
		return f
	}
	return s.removeFailing.Load()
}
