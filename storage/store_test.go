package storage_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weftnet/weft/storage"
)

// smallRuns makes the ID and issuer indexes flush and merge after a few
// records, so that the tests cover the memtable, runs of several levels,
// and merges that span transactions.
var smallRuns = storage.Config{NoSync: true, FlushEvery: 16, MergeFanIn: 2}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  storage.Config
	}{
		{"default", storage.Config{NoSync: true}},
		{"small runs", smallRuns},
		{"fan-in 3", storage.Config{NoSync: true, FlushEvery: 7, MergeFanIn: 3}},
		// Late confirmations land in older epochs' files.
		{"small epochs", storage.Config{NoSync: true, FlushEvery: 16, MergeFanIn: 2, EpochRecords: 50, EpochAge: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 0))
			s, _ := open(t, tc.cfg)
			m := newModel()
			m.check(t, s)
			var pos uint64
			for range 30 {
				// Writes of 0..19 records, and confirmations of random
				// positions, out of order, repeated now and then.
				w := &storage.Write{Records: testRecords(pos, rng.Uint64N(20))}
				pos += uint64(len(w.Records))
				for range rng.IntN(15) {
					if pos == 0 {
						break
					}
					p := rng.Uint64N(pos)
					w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: p, At: int64(p)*7 + int64(rng.IntN(3))})
				}
				mustSubmit(t, s, w)
				m.apply(w)
			}
			m.check(t, s)
			// Confirm everything and watch the watermark reach the end.
			w := &storage.Write{}
			for p := range pos {
				w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: pos - 1 - p, At: 1})
			}
			mustSubmit(t, s, w)
			m.apply(w)
			m.check(t, s)
			if s.ConfirmedPrefix() != pos {
				t.Fatalf("ConfirmedPrefix = %d after confirming all %d", s.ConfirmedPrefix(), pos)
			}
			if tc.cfg.FlushEvery != 0 && s.Stats().Merges == 0 {
				t.Fatalf("no merge happened: %+v", s.Stats())
			}
			if tc.cfg.EpochRecords != 0 && s.Stats().Epochs < 3 {
				t.Fatalf("%d epochs for %d records, %d each", s.Stats().Epochs, pos, tc.cfg.EpochRecords)
			}
			// Everything survives a reopen, and the log continues.
			s = reopen(t, s, tc.cfg)
			m.check(t, s)
			w = &storage.Write{Records: testRecords(pos, 40)}
			mustSubmit(t, s, w)
			m.apply(w)
			m.check(t, s)
		})
	}
}

func TestConfirmedPrefix(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	mustSubmit(t, s, &storage.Write{Records: testRecords(0, 6)})
	steps := []struct {
		confirm []uint64
		want    uint64
	}{
		{[]uint64{2, 3}, 0},
		{[]uint64{5}, 0},
		{[]uint64{0}, 1},
		{[]uint64{0}, 1}, // again: ignored
		{[]uint64{1}, 4}, // fills the gap: 0..3 confirmed
		{[]uint64{4}, 6},
	}
	for i, st := range steps {
		w := &storage.Write{}
		for _, p := range st.confirm {
			w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: p, At: int64(100*i + 1)})
		}
		mustSubmit(t, s, w)
		if got := s.ConfirmedPrefix(); got != st.want {
			t.Fatalf("step %d: ConfirmedPrefix = %d, want %d", i, got, st.want)
		}
	}
	// The first confirmation of 0 is kept, not the repeat.
	if e, err := s.GetByPos(0); err != nil || !e.Confirmed || e.ConfirmedAt != 201 {
		t.Fatalf("GetByPos(0) = %+v, %v; want confirmed at 201", e, err)
	}
	// A Write can confirm its own records, and a confirmation at time 0 is
	// one (the genesis message's is).
	w := &storage.Write{Records: testRecords(6, 2), Confirmations: []storage.Confirmation{{Pos: 7, At: 0}, {Pos: 6, At: 0}}}
	mustSubmit(t, s, w)
	if got := s.ConfirmedPrefix(); got != 8 {
		t.Fatalf("ConfirmedPrefix = %d, want 8", got)
	}
	if e, err := s.GetByPos(7); err != nil || !e.Confirmed || e.ConfirmedAt != 0 {
		t.Fatalf("GetByPos(7) = %+v, %v; want confirmed at 0", e, err)
	}
	s = reopen(t, s, storage.Config{NoSync: true})
	if got := s.ConfirmedPrefix(); got != 8 {
		t.Fatalf("after reopen: ConfirmedPrefix = %d, want 8", got)
	}
}

// TestDoneAfterCommit checks, from inside each done, that the Write is
// visible to a reader, which it is only once its transaction committed.
func TestDoneAfterCommit(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	var pos uint64
	for range 100 {
		w := &storage.Write{Records: testRecords(pos, 3)}
		last := pos + 2
		pos += 3
		wg.Add(1)
		s.Submit(w, func(err error) {
			defer wg.Done()
			if err != nil {
				errs <- err
				return
			}
			if s.NextPos() <= last {
				errs <- fmt.Errorf("done for %d: NextPos is %d", last, s.NextPos())
			}
			if _, err := s.GetByPos(last); err != nil {
				errs <- fmt.Errorf("done for %d: %w", last, err)
			}
			if ok, err := s.Has(testRecord(last).ID); !ok || err != nil {
				errs <- fmt.Errorf("done for %d: Has = %v, %v", last, ok, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestGroupCommit holds the writer inside one done while many goroutines
// submit, and checks that what queued up meanwhile went into few
// transactions, each Write acknowledged.
func TestGroupCommit(t *testing.T) {
	s, _ := open(t, storage.Config{QueueLen: 256}) // fsync on, as a node runs
	release, entered := make(chan struct{}), make(chan struct{})
	s.Submit(&storage.Write{Records: testRecords(0, 1)}, func(err error) {
		close(entered)
		<-release // the writer goroutine waits here
	})
	<-entered

	const goroutines, each = 8, 25
	var (
		mu       sync.Mutex // the positions must be submitted in order
		next     = uint64(1)
		wg       sync.WaitGroup
		acked    sync.WaitGroup
		failures = make(chan error, goroutines*each)
	)
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				acked.Add(1)
				mu.Lock()
				w := &storage.Write{Records: testRecords(next, 2)}
				next += 2
				s.Submit(w, func(err error) {
					if err != nil {
						failures <- err
					}
					acked.Done()
				})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	before := s.Stats()
	close(release)
	acked.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	st := s.Stats()
	writes := st.Writes - before.Writes
	commits := st.Commits - before.Commits
	t.Logf("%d Writes in %d transactions", writes, commits)
	if writes != goroutines*each || commits >= writes/10 {
		t.Fatalf("%d Writes in %d transactions: not grouped", writes, commits)
	}
	if got, want := s.NextPos(), uint64(1+2*goroutines*each); got != want {
		t.Fatalf("NextPos = %d, want %d", got, want)
	}
}

func TestMaxBatch(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true, MaxBatch: 10, QueueLen: 64})
	release, entered := make(chan struct{}), make(chan struct{})
	s.Submit(nil, func(error) { close(entered); <-release })
	<-entered
	var acked sync.WaitGroup
	for i := range uint64(20) {
		acked.Add(1)
		s.Submit(&storage.Write{Records: testRecords(4*i, 4)}, func(err error) {
			if err != nil {
				t.Error(err)
			}
			acked.Done()
		})
	}
	s.Submit(&storage.Write{Records: testRecords(80, 30)}, nil) // larger than MaxBatch: alone
	before := s.Stats()
	close(release)
	acked.Wait()
	mustSubmit(t, s, nil)
	// 20 Writes of 4 in transactions of at most 10 records: 2 Writes each.
	if got := s.Stats().Commits - before.Commits; got != 11 {
		t.Fatalf("%d transactions, want 10 of 2 Writes and 1 of the large one", got)
	}
	if s.NextPos() != 110 {
		t.Fatalf("NextPos = %d, want 110", s.NextPos())
	}
}

func TestOutOfOrder(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	mustSubmit(t, s, &storage.Write{Records: testRecords(0, 3)})
	for _, w := range []*storage.Write{
		{Records: testRecords(4, 2)},                                                  // a gap
		{Records: testRecords(2, 2)},                                                  // a repeat
		{Records: []storage.Record{testRecord(3), testRecord(5)}},                     // a gap inside
		{Records: testRecords(3, 2), Confirmations: []storage.Confirmation{{Pos: 5}}}, // confirms what does not exist
	} {
		if err := submit(t, s, w); !errors.Is(err, storage.ErrOutOfOrder) {
			t.Fatalf("Write starting at %d: %v, want ErrOutOfOrder", w.Records[0].Pos, err)
		}
		if s.NextPos() != 3 {
			t.Fatalf("a refused Write was applied: NextPos = %d", s.NextPos())
		}
	}
	if _, err := s.GetByPos(3); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetByPos(3) = %v, want ErrNotFound", err)
	}

	// In one transaction: a refused Write between good ones fails alone.
	release, entered := make(chan struct{}), make(chan struct{})
	s.Submit(nil, func(error) { close(entered); <-release })
	<-entered
	results := make([]chan error, 3)
	for i, w := range []*storage.Write{
		{Records: testRecords(3, 2)},
		{Records: testRecords(9, 1)},
		{Records: testRecords(5, 2)},
	} {
		results[i] = make(chan error, 1)
		s.Submit(w, func(err error) { results[i] <- err })
	}
	close(release)
	for i, want := range []error{nil, storage.ErrOutOfOrder, nil} {
		if err := <-results[i]; !errors.Is(err, want) {
			t.Fatalf("Write %d: %v, want %v", i, err, want)
		}
	}
	m := newModel()
	m.apply(&storage.Write{Records: testRecords(0, 7)})
	m.check(t, s)
}

func TestLocked(t *testing.T) {
	cfg := storage.Config{NoSync: true, OpenTimeout: 50 * time.Millisecond}
	s, path := open(t, cfg)
	start := time.Now()
	if _, err := storage.Open(path, cfg); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("second Open took %v", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := storage.Open(path, cfg)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestClose(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	// Close drains: every Write submitted before it is committed and
	// acknowledged before Close returns.
	var acked int
	var mu sync.Mutex
	for i := range uint64(50) {
		s.Submit(&storage.Write{Records: testRecords(2*i, 2)}, func(err error) {
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			acked++
			mu.Unlock()
		})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if acked != 50 {
		t.Fatalf("%d of 50 Writes acknowledged when Close returned", acked)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	called := false
	s.Submit(&storage.Write{Records: testRecords(100, 1)}, func(err error) {
		called = true
		if !errors.Is(err, storage.ErrClosed) {
			t.Errorf("Submit after Close: %v, want ErrClosed", err)
		}
	})
	if !called {
		t.Fatal("Submit after Close did not call done")
	}
	if _, err := s.GetByPos(0); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("GetByPos after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Get(testRecord(0).ID); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	s = reopen(t, s, storage.Config{NoSync: true})
	m := newModel()
	m.apply(&storage.Write{Records: testRecords(0, 100)})
	m.check(t, s)
}

// TestConcurrentReads reads while the writer flushes and merges runs.
func TestConcurrentReads(t *testing.T) {
	s, _ := open(t, smallRuns)
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				n := s.NextPos()
				if n == 0 {
					continue
				}
				pos := uint64(i*7+g) % n
				e, err := s.Get(testRecord(pos).ID)
				if err == nil && e.Pos != pos {
					err = fmt.Errorf("Get(id of %d) returned position %d", pos, e.Pos)
				}
				if err == nil {
					_, err = s.ByIssuer(testRecord(pos).Issuer, storage.SeqPos{}, 5)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range uint64(100) {
		mustSubmit(t, s, &storage.Write{Records: testRecords(5*i, 5)})
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestFailedCommit fills a size-capped file until a commit fails, and
// checks that the writer retries it (Failing says why, reads still work,
// the Write is not acknowledged), that Close gives up on it, and that a
// reopen finds every acknowledged Write.
func TestFailedCommit(t *testing.T) {
	cfg := storage.Config{NoSync: true, MaxSize: 1 << 20}
	s, _ := open(t, cfg)
	var (
		pos    uint64
		failed = make(chan error, 1)
	)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
fill:
	for pos < 100_000 {
		w := &storage.Write{Records: testRecords(pos, 50)}
		done := make(chan error, 1)
		s.Submit(w, func(err error) { done <- err })
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("at %d: %v", pos, err)
				}
				pos += 50
				continue fill
			case <-tick.C:
				if s.Failing() != nil { // this Write's commit fails, and is retried
					go func() { failed <- <-done }()
					break fill
				}
			}
		}
	}
	err := s.Failing()
	if !errors.Is(err, storage.ErrFailed) || !strings.Contains(err.Error(), "attempts") {
		t.Fatalf("filling a 1 MiB file: Failing() = %v, want ErrFailed and the attempts", err)
	}
	if s.NextPos() != pos {
		t.Fatalf("NextPos = %d, want %d (the failing Write is not in)", s.NextPos(), pos)
	}
	if _, err := s.GetByPos(pos - 1); err != nil {
		t.Fatalf("reading while failing: %v", err)
	}
	if _, err := s.Get(testRecords(pos, 1)[0].ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the failing Write's first record: %v, want ErrNotFound", err)
	}
	if err := s.Close(); !errors.Is(err, storage.ErrFailed) {
		t.Fatalf("Close = %v, want the failure", err)
	}
	if err := <-failed; !errors.Is(err, storage.ErrFailed) {
		t.Fatalf("the failing Write after Close: %v, want ErrFailed", err)
	}
	s, err = storage.Open(s.Path(), storage.Config{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := newModel()
	m.apply(&storage.Write{Records: testRecords(0, pos)})
	m.check(t, s)
}

// TestCommitRetried: commits that fail for a while (a full disk that is
// then freed) are retried with the same records, and succeed without a
// reopen; nothing is lost or doubled, before or after a reopen.
func TestCommitRetried(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true, FlushEvery: 64})
	m := newModel()
	var pos uint64
	write := func(n uint64) {
		w := &storage.Write{Records: testRecords(pos, n)}
		mustSubmit(t, s, w)
		m.apply(&storage.Write{Records: testRecords(pos, n)})
		pos += n
	}
	for range 10 {
		write(50) // past FlushEvery: runs and a merge are under way
	}
	var fails atomic.Int32
	fails.Store(5)
	full := errors.New("no space left on device")
	storage.SetCommitHook(s, func() error {
		if fails.Add(-1) >= 0 {
			return full
		}
		return nil
	})
	done := make(chan error, 1)
	w := &storage.Write{Records: testRecords(pos, 30)}
	s.Submit(w, func(err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatalf("the retried Write: %v", err)
	}
	m.apply(&storage.Write{Records: testRecords(pos, 30)})
	pos += 30
	if got := s.Stats().Failures; got < 5 {
		t.Fatalf("Stats().Failures = %d, want at least 5", got)
	}
	if err := s.Failing(); err != nil {
		t.Fatalf("Failing() after the commit = %v", err)
	}
	storage.SetCommitHook(s, nil)
	write(200)
	m.check(t, s)
	s = reopen(t, s, storage.Config{NoSync: true, FlushEvery: 64})
	m.check(t, s)
}

// A commit that fails for lack of space and then succeeds, in pages bbolt
// freed, does not end the failure while the file system is still short of
// room: the node would take messages and refuse them by turns. It ends once
// there is 1 MiB free, with no commit needed.
func TestNoSpaceHeld(t *testing.T) {
	var free atomic.Int64
	free.Store(100 << 10)
	storage.SetFreeBytes(t, func(string) (int64, bool) { return free.Load(), true })
	s, _ := open(t, storage.Config{NoSync: true})
	failNoSpace(s, 3)
	mustSubmit(t, s, &storage.Write{Records: testRecords(0, 10)})
	if err := s.Failing(); !errors.Is(err, storage.ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Failing() after a commit with 100 KiB free = %v, want the failure for lack of space", err)
	}
	mustSubmit(t, s, &storage.Write{Records: testRecords(10, 10)}) // Writes still commit
	time.Sleep(50 * time.Millisecond)                              // ticks of the idle writer (every 5 ms, retain_test.go)
	if err := s.Failing(); err == nil {
		t.Fatal("Failing() = nil with 100 KiB free")
	}
	free.Store(1 << 20)
	deadline := time.Now().Add(5 * time.Second)
	for s.Failing() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Failing() = %v 5 s after the file system had 1 MiB free", s.Failing())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.Stats().Failures; got != 3 {
		t.Fatalf("Stats().Failures = %d, want 3", got)
	}
}

// failNoSpace makes the next n commit attempts of s fail with ENOSPC.
func failNoSpace(s *storage.Store, n int32) {
	var fails atomic.Int32
	fails.Store(n)
	storage.SetCommitHook(s, func() error {
		if fails.Add(-1) >= 0 {
			return fmt.Errorf("write epoch: %w", syscall.ENOSPC)
		}
		return nil
	})
}

// TestCloseWhileHeld stops a store that still says it fails for lack of
// space, though its Writes committed: Close says so (the node exits with
// status 1), and everything is there when it opens again.
func TestCloseWhileHeld(t *testing.T) {
	storage.SetFreeBytes(t, func(string) (int64, bool) { return 100 << 10, true })
	s, _ := open(t, storage.Config{NoSync: true})
	failNoSpace(s, 1)
	mustSubmit(t, s, &storage.Write{Records: testRecords(0, 10)})
	if s.Failing() == nil {
		t.Fatal("Failing() = nil with 100 KiB free")
	}
	if err := s.Close(); !errors.Is(err, storage.ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Close while held = %v, want the failure for lack of space", err)
	}
	s2, err := storage.Open(s.Path(), storage.Config{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, r := range testRecords(0, 10) {
		if ok, err := s2.Has(r.ID); err != nil || !ok {
			t.Fatalf("record %d after the reopen: %v %v", r.Pos, ok, err)
		}
	}
}

func TestConfig(t *testing.T) {
	for _, cfg := range []storage.Config{
		{MaxBatch: -1},
		{MergeFanIn: 1},
		{MaxDelay: -time.Second},
		{MaxSize: -1},
	} {
		if _, err := storage.Open(t.TempDir()+"/x.db", cfg); !errors.Is(err, storage.ErrConfig) {
			t.Errorf("Open with %+v: %v, want ErrConfig", cfg, err)
		}
	}
}

func TestMaxDelay(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true, MaxDelay: 20 * time.Millisecond})
	// Writes that trickle in within MaxDelay share one transaction.
	var acked sync.WaitGroup
	before := s.Stats()
	for i := range uint64(5) {
		acked.Add(1)
		s.Submit(&storage.Write{Records: testRecords(i, 1)}, func(err error) {
			if err != nil {
				t.Error(err)
			}
			acked.Done()
		})
		time.Sleep(time.Millisecond)
	}
	acked.Wait()
	if got := s.Stats().Commits - before.Commits; got > 2 {
		t.Fatalf("5 Writes 1 ms apart took %d transactions with MaxDelay 20 ms", got)
	}
}

// TestMergeResume closes the store while a merge of runs is half done,
// checks that the file says so, and that a reopened store reads everything
// and finishes the merge.
func TestMergeResume(t *testing.T) {
	cfg := storage.Config{NoSync: true, FlushEvery: 16, MergeFanIn: 2}
	s, _ := open(t, cfg)
	m := newModel()
	caught := false
	for round := 0; round < 50 && !caught; round++ {
		// Writes queued back to back, then Close: the writer commits them
		// and stops, with no idle time to finish a merge in.
		for range 4 {
			w := &storage.Write{Records: testRecords(uint64(len(m.recs)), 40)}
			m.apply(w)
			s.Submit(w, func(err error) {
				if err != nil {
					t.Error(err)
				}
			})
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(storage.NewestEpochFile(s.Path()), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.View(func(tx *bolt.Tx) error {
			caught = tx.Bucket([]byte("meta")).Get([]byte("merge")) != nil
			return nil
		})
		db.Close()
		if s, err = storage.Open(s.Path(), cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		m.check(t, s)
	}
	if !caught {
		t.Fatal("never closed during a merge")
	}
	// Stats count from Open: the idle writer finishes the merge it found.
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Merges == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if s.Stats().Merges == 0 {
		t.Fatal("the resumed merge never finished")
	}
	w := &storage.Write{Records: testRecords(uint64(len(m.recs)), 40)}
	mustSubmit(t, s, w)
	m.apply(w)
	m.check(t, s)
}

// TestOrphanedSettles: an orphaned position is not confirmed, but the
// watermark moves past it, so a restore does not start below it forever.
func TestOrphanedSettles(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	recs := testRecords(0, 3)
	mustSubmit(t, s, &storage.Write{Records: recs, Confirmations: []storage.Confirmation{{Pos: 0, At: 5}, {Pos: 1, At: storage.OrphanedAt}, {Pos: 2, At: 7}}})
	if got := s.ConfirmedPrefix(); got != 3 {
		t.Fatalf("watermark %d, want 3", got)
	}
	e, err := s.GetByPos(1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Confirmed || !e.Orphaned || e.ConfirmedAt != 0 {
		t.Fatalf("orphaned entry: %+v", e)
	}
	if e, _ := s.GetByPos(2); !e.Confirmed || e.Orphaned || e.ConfirmedAt != 7 {
		t.Fatalf("confirmed entry: %+v", e)
	}
}
