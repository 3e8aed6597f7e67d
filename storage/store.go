package storage

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
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
	db   *bolt.DB
	cfg  Config
	path string

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
	// hook, if set (by tests), runs before each commit's transaction; an
	// error fails the commit as a full disk would.
	hook atomic.Pointer[func() error]

	closeOnce sync.Once
	closeErr  error

	// mu guards mem and blooms. The writer adds to mem and replaces both
	// holding mu; readers look IDs up holding mu shared, and begin their
	// bbolt transaction under the same hold (see runs.go for why). A bloom
	// filter, and the map once published, are never changed.
	mu     sync.RWMutex
	mem    *memtable
	blooms map[run]*bloom // of the ID index's runs
	seed   maphash.Seed   // of the bloom filters

	// Committed state, published by the writer after each commit.
	nextPos   atomic.Uint64
	confirmed atomic.Uint64
	confCount atomic.Uint64 // ConfirmCount
	stats     struct{ commits, writes, records, confirmations, runs, merges, failures atomic.Uint64 }

	w writer // owned by the writer goroutine
}

// request is one submitted Write and its callback.
type request struct {
	w    *Write
	done func(error)
}

// Open opens the store in the file at path, creating it if it does not
// exist, and starts the writer. It restores NextPos, ConfirmedPrefix, and
// the runs of the ID and issuer indexes with their bloom filters, and
// rebuilds the indexes' in-memory part by reading the end of the log; a
// merge that was under way resumes. If another Store holds the file, in
// this process or another, Open waits cfg.OpenTimeout for it and then fails
// with ErrLocked. A store of another format version fails with a
// *FormatError (wrapping ErrFormat), and is left unchanged. A file that is
// not a store, or whose contents do not decode, fails with ErrCorrupt.
func Open(path string, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      cfg.OpenTimeout,
		NoSync:       cfg.NoSync,
		FreelistType: bolt.FreelistMapType,
		MaxSize:      int(min(cfg.MaxSize, math.MaxInt)),
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, path, cfg.OpenTimeout)
	}
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: opening %s: %w", path, err)
	}
	s := &Store{
		db:      db,
		cfg:     cfg,
		path:    path,
		queue:   make(chan request, cfg.QueueLen),
		stopped: make(chan struct{}),
		closing: make(chan struct{}),
		seed:    maphash.MakeSeed(),
	}
	if err := s.restore(); err != nil {
		db.Close()
		return nil, fmt.Errorf("storage: opening %s: %w", path, err)
	}
	go s.run()
	return s, nil
}

// restore creates the buckets of a new file, or checks those of an existing
// one, and loads the writer's state and the memtable.
func (s *Store) restore() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketLog, bucketConf, bucketChildren, bucketTime, bucketIDs, bucketIssuers, bucketIssuerTimes, bucketConfLog} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("%w: bucket %s: %v", ErrCorrupt, name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(metaFormat); {
		case v == nil:
			if tx.Bucket(bucketLog).Stats().KeyN != 0 {
				return fmt.Errorf("%w: records but no format", ErrCorrupt)
			}
			zero := make([]byte, 8)
			for _, kv := range [][2][]byte{{metaFormat, {formatVersion}}, {metaNext, zero}, {metaConfirmed, zero}, {metaRuns, {}}} {
				if err := meta.Put(kv[0], kv[1]); err != nil {
					return err
				}
			}
		case len(v) != 1:
			return fmt.Errorf("%w: format %x", ErrCorrupt, v)
		case v[0] != formatVersion:
			// Returning an error rolls the transaction back: the file is
			// left as it was.
			return &FormatError{Found: int(v[0]), Want: formatVersion}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		next, err := decodeU64("meta next", meta.Get(metaNext))
		if err != nil {
			return err
		}
		confirmed, err := decodeU64("meta confirmed", meta.Get(metaConfirmed))
		if err != nil {
			return err
		}
		if confirmed > next {
			return fmt.Errorf("%w: confirmed prefix %d beyond the log's end %d", ErrCorrupt, confirmed, next)
		}
		last, _ := tx.Bucket(bucketLog).Cursor().Last()
		switch {
		case last == nil && next != 0:
			return fmt.Errorf("%w: empty log, next position %d", ErrCorrupt, next)
		case last != nil:
			lp, err := decodeU64("log key", last)
			if err != nil {
				return err
			}
			if lp+1 != next {
				return fmt.Errorf("%w: log ends at %d, next position %d", ErrCorrupt, lp, next)
			}
		}
		runs, merge, err := loadRuns(tx)
		if err != nil {
			return err
		}
		var base uint64
		if len(runs) > 0 {
			if runs[0].lo != 0 {
				return fmt.Errorf("%w: first run starts at %d", ErrCorrupt, runs[0].lo)
			}
			base = runs[len(runs)-1].hi
		}
		if base > next {
			return fmt.Errorf("%w: ID index reaches %d beyond the log's end %d", ErrCorrupt, base, next)
		}
		if merge != nil {
			if _, _, err := mergeSources(runs, *merge); err != nil {
				return err
			}
		}
		s.blooms = make(map[run]*bloom, len(runs))
		for _, r := range runs {
			if s.blooms[r], err = runBloom(tx, s.seed, r, false); err != nil {
				return err
			}
		}
		// Rebuild the memtable from the log's tail.
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
		confCount, err := loadConfLogCount(tx)
		if err != nil {
			return err
		}
		s.mem = mem
		s.w = writer{next: next, confirmed: confirmed, confCount: confCount, runs: runs, merge: merge}
		s.confCount.Store(confCount)
		s.nextPos.Store(next)
		s.confirmed.Store(confirmed)
		s.stats.runs.Store(uint64(len(runs)))
		return nil
	})
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
// the file. It returns the writer's failure if it had one, or the error of
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
		s.closeErr = errors.Join(s.w.failed, s.db.Close())
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
}

// Failing returns nil while commits succeed. While the writer retries a
// transaction that fails to commit (a full disk, an I/O error), it returns
// an error wrapping ErrFailed with the cause; it is nil again once the
// transaction commits. Safe from any goroutine.
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
	}
}

// Path returns the file the Store was opened on.
func (s *Store) Path() string { return s.path }
