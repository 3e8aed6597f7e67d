package storage

import (
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store is the node's message store: an append-only log of records keyed by
// position, with indexes by ID, parent, issuer and time, and the confirmation
// state of every position, in one bbolt file.
//
// One goroutine, started by Open and stopped by Close, writes: Submit queues
// Writes for it, and it commits whatever is queued in one transaction (group
// commit) and then reports each Write's outcome. Reads run in bbolt read
// transactions and are safe from any number of goroutines at once, alongside
// the writer; each read sees the state of one committed transaction. A long
// scan (Range) is cut into many short transactions so that no reader holds
// bbolt's file mapping for long (bbolt cannot grow the mapping, and so the
// writer cannot commit a transaction that grows the file, while a read
// transaction is open).
type Store struct {
	cfg  Config
	path string // the directory

	// state is the node-local state's file (state.go).
	state *bolt.DB

	// qmu guards closed and the sends on queue: Submit holds it shared while
	// it sends, Close holds it exclusively to close queue. A Submit blocked on
	// a full queue therefore delays Close until the writer has taken its
	// Write, which the writer always does, failed or not.
	qmu     sync.RWMutex
	closed  bool
	queue   chan request
	stopped chan struct{} // closed when the writer goroutine returns
	closing chan struct{} // closed when Close begins: a retrying writer gives up

	// failing is the commit failure the writer is retrying, nil while
	// commits succeed.
	failing atomic.Pointer[Failure]
	// maintFailing is the failure of the last cut or drop, nil if it
	// succeeded.
	maintFailing atomic.Pointer[Failure]
	// removing counts the drops whose files are being closed and removed
	// (retain.go); removeFailing is the last one's failure.
	removing      sync.WaitGroup
	releaserDone  chan struct{} // closed when the releaser has stopped
	removeFailing atomic.Pointer[Failure]
	unlinking     atomic.Int64 // bytes of the files being removed
	// hook, if set (by tests), runs before each commit's transaction; an
	// error fails the commit as a full disk would.
	hook atomic.Pointer[func() error]
	// dropHook, if set (by tests), runs between the steps of a drop.
	dropHook atomic.Pointer[func(step string)]

	closeOnce sync.Once
	closeErr  error

	// mu guards mem, frozen, blooms, epochs and front. The writer adds to mem and
	// replaces the rest holding mu; readers look IDs up holding mu shared,
	// and begin their bbolt transaction on the newest epoch under the same
	// hold (see runs.go for why). A bloom filter, and the maps and slices
	// once published, are never changed.
	mu     sync.RWMutex
	mem    *memtable
	frozen *memtable      // the memtable being flushed (flush.go), or nil
	blooms map[run]*bloom // of the ID index's runs, in every epoch
	seed   maphash.Seed   // of the bloom filters
	epochs []*epoch       // oldest first; the last is written
	front  *frontier
	// fmu serializes the writes of the frontier file.
	fmu sync.Mutex
	// idsMu guards kept, and the ID files of epochs being dropped: IDsAt
	// holds it shared (taking mu after it), a drop and ForgetIDs
	// exclusively (ids.go).
	idsMu sync.RWMutex
	kept  []keptIDs

	// Committed state, published by the writer after each commit.
	nextPos   atomic.Uint64
	confirmed atomic.Uint64
	confCount atomic.Uint64 // ConfirmCount
	stats     struct {
		commits, writes, records, confirmations, runs, merges, failures atomic.Uint64
		cuts, drops, dropped, releases                                  atomic.Uint64
	}

	w writer // owned by the writer goroutine
}

// request is one submitted Write and its callback.
type request struct {
	w    *Write
	done func(error)
}

// Open opens the store in the directory dir, creating it if it does not
// exist, and starts the writer. It finishes a drop that a crash
// interrupted, restores NextPos, ConfirmedPrefix, and the runs of the ID
// and issuer indexes with their bloom filters, and rebuilds the indexes'
// in-memory part by reading the end of the log; a merge that was under way
// resumes. If another Store holds the directory, in this process or
// another, Open waits cfg.OpenTimeout for it and then fails with
// ErrLocked. A store of another format version fails with a *FormatError
// (wrapping ErrFormat), and is left unchanged. Files that are not a store,
// or whose contents do not decode, fail with ErrCorrupt.
func Open(dir string, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fileFormat(dir, cfg)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	state, err := openBolt(filepath.Join(dir, stateFile), cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{
		cfg:     cfg,
		path:    dir,
		state:   state,
		queue:   make(chan request, cfg.QueueLen),
		stopped: make(chan struct{}),
		closing: make(chan struct{}),
		seed:    maphash.MakeSeed(),
	}
	if err := s.restore(); err != nil {
		s.closeFiles()
		return nil, fmt.Errorf("storage: opening %s: %w", dir, err)
	}
	s.releaserDone = make(chan struct{})
	go s.run()
	go s.releaser()
	return s, nil
}

// fileFormat is the error for a store that is one file: the single bbolt
// file of format 3 and older.
func fileFormat(path string, cfg Config) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: cfg.OpenTimeout})
	if err != nil {
		return fmt.Errorf("%w: %s is a file, not a store's directory: %w", ErrCorrupt, path, err)
	}
	defer db.Close()
	var found int
	db.View(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			if v := meta.Get(metaFormat); len(v) == 1 {
				found = int(v[0])
			}
		}
		return nil
	})
	if found == 0 {
		return fmt.Errorf("%w: %s is a file, not a store's directory", ErrCorrupt, path)
	}
	return fmt.Errorf("storage: opening %s: %w", path, &FormatError{Found: found, Want: formatVersion})
}

// closeFiles closes every file the store has open.
func (s *Store) closeFiles() error {
	var errs []error
	for _, e := range s.epochs {
		if e.db != nil {
			errs = append(errs, e.db.Close())
		}
		if e.ids != nil {
			errs = append(errs, e.ids.Close())
		}
	}
	if s.state != nil {
		errs = append(errs, s.state.Close())
	}
	return errors.Join(errs...)
}

// restore finishes an interrupted drop, opens the epochs, creates the
// newest if the last was cut, and loads the writer's state and the
// memtable.
func (s *Store) restore() error {
	front, err := readFrontier(s.path)
	if err != nil {
		return err
	}
	los, err := listEpochs(s.path)
	if err != nil {
		return err
	}
	// A drop writes the frontier first and then removes the files below
	// it: those still here were about to go.
	below := 0
	for below < len(los) && los[below] < front.first {
		below++
	}
	if err := s.restoreKept(los[:below], front.dropped); err != nil {
		return err
	}
	removed := false
	for len(los) > 0 && los[0] < front.first {
		if err := os.Remove(epochPath(s.path, los[0])); err != nil {
			return err
		}
		los, removed = los[1:], true
	}
	if removed && !s.cfg.NoSync {
		if err := syncDir(s.path); err != nil {
			return err
		}
	}
	if len(los) > 0 && los[0] != front.first {
		return fmt.Errorf("%w: the first epoch begins at %d, the frontier is %d", ErrCorrupt, los[0], front.first)
	}
	now := time.Now().UnixNano()
	var metas []epochMeta
	for i, lo := range los {
		db, err := openBolt(epochPath(s.path, lo), s.cfg)
		if err != nil {
			return err
		}
		e := &epoch{lo: lo, path: epochPath(s.path, lo), db: db}
		s.epochs = append(s.epochs, e)
		var confirmed, confCount uint64
		if i > 0 { // a file begun but not yet initialized when the process died
			confirmed, confCount = metas[i-1].confirmed, metas[i-1].confCount
		}
		m, err := initEpoch(db, lo, confirmed, confCount, now)
		if err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		if m.lo != lo {
			return fmt.Errorf("%w: %s begins at %d", ErrCorrupt, e.path, m.lo)
		}
		if i > 0 {
			p := metas[i-1]
			if p.next != lo || p.cut == 0 {
				return fmt.Errorf("%w: epoch %d ends at %d (cut: %v), the next begins at %d", ErrCorrupt, p.lo, p.next, p.cut != 0, lo)
			}
			if m.confBase != p.confCount {
				return fmt.Errorf("%w: epoch %d's confirmation log begins at %d, the one before ends at %d", ErrCorrupt, lo, m.confBase, p.confCount)
			}
		}
		if i+1 < len(los) && m.merge != nil {
			return fmt.Errorf("%w: epoch %d was cut with a merge under way", ErrCorrupt, lo)
		}
		e.runs, e.created, e.cutAt, e.confBase = m.runs, m.created, m.cut, m.confBase
		if e.ids, err = openIDs(s.path, db, lo, m.next); err != nil {
			return fmt.Errorf("%s: %w", e.path, err)
		}
		metas = append(metas, m)
	}
	switch {
	case len(los) == 0:
		e, err := s.createEpoch(front.first, front.first, 0, now)
		if err != nil {
			return err
		}
		s.epochs = append(s.epochs, e)
		metas = append(metas, epochMeta{lo: front.first, next: front.first, confirmed: front.first})
	case metas[len(metas)-1].cut != 0: // cut, and the next not yet begun
		last := metas[len(metas)-1]
		e, err := s.createEpoch(last.next, last.confirmed, last.confCount, now)
		if err != nil {
			return err
		}
		s.epochs = append(s.epochs, e)
		metas = append(metas, epochMeta{lo: last.next, next: last.next, confirmed: last.confirmed, confBase: last.confCount, confCount: last.confCount})
	}
	cur, m := s.epochs[len(s.epochs)-1], metas[len(metas)-1]
	if m.confirmed > m.next || m.confirmed < front.first {
		return fmt.Errorf("%w: confirmed prefix %d outside the log [%d, %d)", ErrCorrupt, m.confirmed, front.first, m.next)
	}
	cur.runs = nil // the writer's, below
	s.front = front

	// The newest epoch's last commit may have confirmed positions of older
	// epochs that did not reach their files: redo them.
	var redo []confirm
	err = cur.db.View(func(tx *bolt.Tx) (err error) {
		redo, err = decodeRedo(tx.Bucket(bucketRedo).Get(redoKey))
		return err
	})
	if err != nil {
		return err
	}
	if err := s.applyRedo(redo); err != nil {
		return err
	}

	s.blooms = make(map[run]*bloom)
	for i, e := range s.epochs {
		err := e.db.View(func(tx *bolt.Tx) error {
			for _, r := range metas[i].runs {
				b, err := runBloom(tx, s.seed, r, false)
				if err != nil {
					return err
				}
				s.blooms[r] = b
			}
			if i == len(s.epochs)-1 {
				return nil // the newest: records are still added
			}
			var err error
			e.span, err = readSpan(tx)
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := cur.db.Update(dropPartialFlush); err != nil {
		return err
	}
	return cur.db.View(func(tx *bolt.Tx) error {
		// Rebuild the memtable from the log's tail.
		base := m.lo
		if len(m.runs) > 0 {
			base = m.runs[len(m.runs)-1].hi
		}
		next := m.next
		mem := newMemtable(base, int(min(next-base, 1<<20)))
		c := tx.Bucket(bucketLog).Cursor()
		want := base
		for k, v := c.Seek(binaryPos(base)); k != nil; k, v = c.Next() {
			pos, err := decodeU64("log key", k)
			if err != nil {
				return err
			}
			if pos != want {
				return fmt.Errorf("%w: log has position %d where %d was expected", ErrCorrupt, pos, want)
			}
			var r Record
			if err := decodeHeader(pos, v, &r); err != nil {
				return err
			}
			mem.add(&r.ID, &r.Issuer, r.Seq, r.Timestamp, pos)
			want++
		}
		if want != next {
			return fmt.Errorf("%w: log ends at %d, next position %d", ErrCorrupt, want, next)
		}
		runs := 0
		for _, e := range s.epochs[:len(s.epochs)-1] {
			runs += len(e.runs)
		}
		s.mem = mem
		s.w = writer{cur: cur, eps: s.epochs, first: front.first, olderRuns: runs, next: next, confirmed: m.confirmed, confCount: m.confCount, runs: m.runs, merge: m.merge}
		s.confCount.Store(m.confCount)
		s.nextPos.Store(next)
		s.confirmed.Store(m.confirmed)
		s.stats.runs.Store(uint64(runs + len(m.runs)))
		return nil
	})
}

// createEpoch creates the file of a new newest epoch that begins at lo.
func (s *Store) createEpoch(lo, confirmed, confCount uint64, now int64) (*epoch, error) {
	path := epochPath(s.path, lo)
	db, err := openBolt(path, s.cfg)
	if err != nil {
		return nil, err
	}
	m, err := initEpoch(db, lo, confirmed, confCount, now)
	if err == nil && (m.lo != lo || m.next != lo) {
		err = fmt.Errorf("%w: %s: a new epoch from %d holds [%d, %d)", ErrCorrupt, path, lo, m.lo, m.next)
	}
	var ids *os.File
	if err == nil {
		ids, err = createIDs(s.path, lo)
	}
	if err == nil && !s.cfg.NoSync {
		err = syncDir(s.path)
	}
	if err != nil {
		db.Close()
		if ids != nil {
			ids.Close()
		}
		return nil, err
	}
	return &epoch{lo: lo, path: path, db: db, ids: ids, created: m.created, confBase: m.confBase}, nil
}

// applyRedo sets confirmations of older epochs' positions in their files,
// where they are not set yet.
func (s *Store) applyRedo(cs []confirm) error {
	if len(cs) == 0 {
		return nil
	}
	slices.SortStableFunc(cs, func(a, b confirm) int { return cmp.Compare(a.pos, b.pos) })
	eps := s.epochs
	for i := 0; i < len(eps)-1; i++ {
		lo, hi := eps[i].lo, eps[i+1].lo
		j, _ := slices.BinarySearchFunc(cs, lo, func(c confirm, p uint64) int { return cmp.Compare(c.pos, p) })
		k, _ := slices.BinarySearchFunc(cs, hi, func(c confirm, p uint64) int { return cmp.Compare(c.pos, p) })
		if j == k {
			continue
		}
		err := eps[i].db.Update(func(tx *bolt.Tx) error { return setConfs(tx, cs[j:k], nil) })
		if err != nil {
			return err
		}
	}
	return nil
}

func binaryPos(pos uint64) []byte { return appendPosKey(make([]byte, 0, 8), pos) }

// Submit queues w for the writer. done, if not nil, is called exactly once
// with w's outcome: nil from the writer goroutine after the transaction that
// holds w has committed and (unless Config.NoSync) reached the disk; an error
// wrapping ErrOutOfOrder, or a *RecordError (wrapping ErrInvalidRecord), if w
// was refused (nothing of it was applied); an error wrapping ErrFailed if
// its transaction could not commit before Close gave up on it (a commit that
// fails is retried until it succeeds or Close is called, see Failing); or
// ErrClosed, called by Submit itself, if the Store is closed. done is called in submission order for Writes that reached the
// queue. It runs on the writer goroutine, which waits for it: it must return
// quickly, and must not call Submit (which can block on a full queue that
// only the writer drains) or Close.
//
// Submit blocks while the queue (Config.QueueLen Writes) is full. It may be
// called from any goroutine; Writes from one goroutine are applied in the
// order submitted. Submit takes ownership of w and of everything it refers
// to, Raw included, until done is called: the caller must not change them
// before that; storage keeps no reference after.
func (s *Store) Submit(w *Write, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	if w == nil {
		w = &Write{}
	}
	s.qmu.RLock()
	if s.closed {
		s.qmu.RUnlock()
		done(ErrClosed)
		return
	}
	s.queue <- request{w: w, done: done}
	s.qmu.RUnlock()
}

// Close stops accepting Writes, waits for the writer to commit everything
// already submitted (every done is called before Close returns), and closes
// the file. It returns the writer's failure if it had one (Writes it gave
// up on), or, if none, the failure the store still reported (Failing: a
// file system short of space after its last commit), and the error of
// closing the file. Close is idempotent: later calls wait for the first to
// finish and return nil. Reads after Close return ErrClosed.
func (s *Store) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		close(s.closing)
		s.qmu.Lock()
		s.closed = true
		close(s.queue)
		s.qmu.Unlock()
		<-s.stopped
		s.removing.Wait()
		<-s.releaserDone
		failed := s.w.failed
		if failed == nil {
			failed = s.Failing()
		}
		s.closeErr = errors.Join(failed, s.closeFiles())
	})
	if !first {
		return nil
	}
	return s.closeErr
}

// Failure describes commits that fail: the last error, when the first of
// the current run of failures happened, and how many attempts failed.
type Failure struct {
	Err      error
	Since    time.Time
	Attempts int
	// noSpace: the file system is full (ENOSPC). Such a failure ends only
	// once it has recoverFree bytes free again, see recovered.
	noSpace bool
}

// recoverFree is how many bytes the file system must have free for a
// failure for lack of space to end. On a full disk bbolt can still commit a
// small transaction into pages it freed; without this margin the node
// would take messages and refuse them by turns, and its readiness would
// flap.
const recoverFree = 1 << 20

// freeBytes is statfsFree; tests put a file system of their own in its place.
var freeBytes atomic.Pointer[func(dir string) (int64, bool)]

func init() {
	f := statfsFree
	freeBytes.Store(&f)
}

// recovered ends the current failure after a commit succeeded, or on the
// writer's tick while it is idle: at once, unless the failure was for lack
// of space and the file system still has less than recoverFree free.
func (s *Store) recovered() {
	f := s.failing.Load()
	if f == nil {
		return
	}
	if f.noSpace {
		if free, ok := (*freeBytes.Load())(s.path); ok && free < recoverFree {
			return
		}
	}
	s.failing.Store(nil)
}

// Failing returns nil while commits succeed. While the writer retries a
// transaction that fails to commit (a full disk, an I/O error), it returns
// an error wrapping ErrFailed with the cause; it is nil again once the
// transaction commits, and, if it failed for lack of space, the file
// system has 1 MiB free (recoverFree). Safe from any goroutine.
func (s *Store) Failing() error {
	f := s.failing.Load()
	if f == nil {
		return nil
	}
	return fmt.Errorf("%w: %w (failing since %s, %d attempts)", ErrFailed, f.Err,
		f.Since.UTC().Format(time.RFC3339), f.Attempts)
}

// Stats are counters of the writer's work since Open.
type Stats struct {
	Commits       uint64 // transactions committed
	Writes        uint64 // Writes committed
	Records       uint64 // records committed
	Confirmations uint64 // confirmations committed (including repeats, which are ignored)
	Runs          uint64 // ID index runs at the last commit
	Merges        uint64 // ID index merges finished
	Failures      uint64 // commit attempts that failed
	Epochs        uint64 // epochs (files) held
	Cuts          uint64 // epochs begun since Open
	Drops         uint64 // drops since Open
	Dropped       uint64 // records dropped since Open
	Releases      uint64 // releases of the epochs' mapped pages since Open
}

// Stats returns the writer's counters. Safe from any goroutine.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:       s.stats.commits.Load(),
		Writes:        s.stats.writes.Load(),
		Records:       s.stats.records.Load(),
		Confirmations: s.stats.confirmations.Load(),
		Runs:          s.stats.runs.Load(),
		Merges:        s.stats.merges.Load(),
		Failures:      s.stats.failures.Load(),
		Epochs:        uint64(len(s.epochList())),
		Cuts:          s.stats.cuts.Load(),
		Drops:         s.stats.drops.Load(),
		Dropped:       s.stats.dropped.Load(),
		Releases:      s.stats.releases.Load(),
	}
}

// epochList returns the published epochs.
func (s *Store) epochList() []*epoch {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.epochs
}

// Path returns the directory the Store was opened on.
func (s *Store) Path() string { return s.path }
