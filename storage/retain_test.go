package storage_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testseed"
	"github.com/weftnet/weft/storage"
)

// retainCfg cuts an epoch every 1,000 records and lets each go as soon as
// it is settled.
var retainCfg = storage.Config{NoSync: true, FlushEvery: 256, EpochRecords: 1000, EpochAge: time.Hour, Retain: time.Millisecond}

func init() { storage.SetMaintainEvery(5 * time.Millisecond) }

// dirBlocks sums the blocks the file system allocated to the files in dir,
// asked of the file system directly.
func dirBlocks(t *testing.T, dir string) int64 {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, de := range des {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, de.Name()), &st); err != nil {
			t.Fatal(err)
		}
		total += st.Blocks * 512
	}
	return total
}

// writeConfirmed writes n records from the store's NextPos, confirming each
// Write's records in the Write after it (and, with hold, never the position
// hold).
func writeConfirmed(t *testing.T, s *storage.Store, n uint64, hold uint64) {
	t.Helper()
	start := s.NextPos()
	prev := start
	for next := start; next < start+n; {
		w := &storage.Write{Records: testRecords(next, min(100, start+n-next))}
		for p := prev; p < next; p++ {
			if p != hold {
				w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: p, At: int64(p) + 1})
			}
		}
		prev = next
		next += uint64(len(w.Records))
		mustSubmit(t, s, w)
	}
	w := &storage.Write{}
	for p := prev; p < start+n; p++ {
		if p != hold {
			w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: p, At: int64(p) + 1})
		}
	}
	mustSubmit(t, s, w)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDropGivesDiskBack fills epochs, lets them be dropped, and checks on
// the file system that the space came back; that what was dropped answers
// ErrPruned where the store can tell (a position below the frontier, an
// entry point) and everything kept is still there.
func TestDropGivesDiskBack(t *testing.T) {
	// Nothing goes yet; epochs are cut by age too, so that every record
	// ends in a cut epoch however the cuts fall (a cut waits for a
	// pending flush).
	cfg := retainCfg
	cfg.Retain, cfg.EpochAge = time.Hour, time.Second
	s, dir := open(t, cfg)
	writeConfirmed(t, s, 20_000, storage.NoPos)
	waitFor(t, "the cuts", func() bool {
		return s.Stats().Epochs >= 4 && storage.NewestEpochFile(dir) == storage.EpochFile(dir, s.NextPos())
	})
	before := dirBlocks(t, dir)
	if s.FirstPos() != 0 || s.Stats().Drops != 0 {
		t.Fatalf("dropped with a retention of an hour: first %d, %+v", s.FirstPos(), s.Stats())
	}

	// The newest epoch, never cut now (under EpochRecords, younger than
	// EpochAge), gets 500 records and keeps them; then all the cut ones go.
	cfg.EpochAge = time.Hour
	s = reopen(t, s, cfg)
	writeConfirmed(t, s, 500, storage.NoPos)
	s = reopen(t, s, retainCfg)
	waitFor(t, "the drops", func() bool { return s.Stats().Drops > 0 && s.Stats().Epochs <= 2 })
	after := dirBlocks(t, dir)
	t.Logf("store directory: %d bytes allocated before the drops, %d after; %+v", before, after, s.Stats())
	if after > before/4 {
		t.Fatalf("the files take %d bytes after dropping all but %d epochs, %d before", after, s.Stats().Epochs, before)
	}
	if got := s.DiskUsage(); got != after {
		t.Fatalf("DiskUsage %d, the file system says %d", got, after)
	}
	first := s.FirstPos()
	if first == 0 || first > s.ConfirmedPrefix() {
		t.Fatalf("first position %d, confirmed prefix %d", first, s.ConfirmedPrefix())
	}
	if files := storage.EpochFiles(dir); files[0] != storage.EpochFile(dir, first) {
		t.Fatalf("first position %d, first file %s", first, files[0])
	}
	// Every record timestamped after DroppedUntil is kept; the greatest
	// timestamp dropped is DroppedUntil.
	maxDropped := int64(storage.NoTime)
	for pos := uint64(0); pos < first; pos++ {
		maxDropped = max(maxDropped, testRecord(pos).Timestamp)
	}
	if got := s.DroppedUntil(); got != maxDropped {
		t.Fatalf("DroppedUntil %d, the greatest timestamp dropped is %d", got, maxDropped)
	}
	if _, err := s.GetByPos(first - 1); !errors.Is(err, storage.ErrPruned) {
		t.Fatalf("GetByPos(%d) below the frontier: %v, want ErrPruned", first-1, err)
	}
	// The entry points are the dropped parents of kept records: with
	// parents at pos-1 and pos/2, those are first-1 and [first/2, first).
	_, eps := s.Frontier()
	want := map[[32]byte]uint64{}
	for pos := first; pos < s.NextPos(); pos++ {
		r := testRecord(pos)
		for j, pp := range r.ParentPos {
			if pp < first {
				want[r.Parents[j]] = pp
			}
		}
	}
	if len(eps) != len(want) {
		t.Fatalf("%d entry points, want %d", len(eps), len(want))
	}
	for _, ep := range eps {
		if pos, ok := want[ep.ID]; !ok || ep.Pos != pos || ep.Timestamp != testRecord(pos).Timestamp {
			t.Fatalf("entry point %+v: want position %d (%v)", ep, pos, ok)
		}
		if _, err := s.Get(ep.ID); !errors.Is(err, storage.ErrPruned) {
			t.Fatalf("Get of entry point at %d: %v, want ErrPruned", ep.Pos, err)
		}
	}
	for pos := first; pos < s.NextPos(); pos += 97 {
		e, err := s.Get(testRecord(pos).ID)
		if err != nil || e.Pos != pos || !e.Confirmed {
			t.Fatalf("Get(%d) after the drops: %+v, %v", pos, e, err)
		}
	}
	n := uint64(0)
	if err := s.Range(0, func(e storage.Entry) error {
		if e.Pos != first+n {
			t.Fatalf("Range gave %d, want %d", e.Pos, first+n)
		}
		n++
		return nil
	}); err != nil || first+n != s.NextPos() {
		t.Fatalf("Range: %v after %d records from %d, NextPos %d", err, n, first, s.NextPos())
	}
	if _, err := s.ByConfirmation(0, 10); !errors.Is(err, storage.ErrPruned) {
		t.Fatalf("ByConfirmation(0) after the drops: %v, want ErrPruned", err)
	}
	cs, err := s.ByConfirmation(s.FirstConfirmation(), 10)
	// Places kept whose positions were dropped are passed over.
	if err != nil || len(cs) == 0 || cs[0].Seq < s.FirstConfirmation() || cs[0].Pos < first {
		t.Fatalf("ByConfirmation(FirstConfirmation %d): %d entries, %v", s.FirstConfirmation(), len(cs), err)
	}

	// Everything holds across a reopen: the frontier is on disk.
	s = reopen(t, s, storage.Config{NoSync: true})
	if f2, eps2 := s.Frontier(); f2 != first || len(eps2) != len(eps) || s.DroppedUntil() != maxDropped {
		t.Fatalf("after reopening: first %d with %d entry points, want %d with %d", f2, len(eps2), first, len(eps))
	}
}

// TestUnsettledNeverDropped holds back one confirmation: its epoch, and so
// every epoch after it, stays however old, until the confirmation comes.
func TestUnsettledNeverDropped(t *testing.T) {
	s, _ := open(t, retainCfg)
	if s.DroppedUntil() != storage.NoTime {
		t.Fatalf("DroppedUntil %d before any drop", s.DroppedUntil())
	}
	const hold = 1500 // in the second epoch
	writeConfirmed(t, s, 8_000, hold)
	waitFor(t, "the first drop", func() bool { return s.Stats().Drops > 0 })
	time.Sleep(50 * time.Millisecond) // ten more turns of the writer
	if first := s.FirstPos(); first > hold {
		t.Fatalf("the epoch of unconfirmed position %d was dropped: first position %d", hold, first)
	}
	if e, err := s.GetByPos(hold); err != nil || e.Confirmed {
		t.Fatalf("GetByPos(%d): %+v, %v", hold, e, err)
	}
	mustSubmit(t, s, &storage.Write{Confirmations: []storage.Confirmation{{Pos: hold, At: 1}}})
	waitFor(t, "the drops after the confirmation", func() bool { return s.FirstPos() > hold })
	t.Logf("%+v", s.Stats())
}

// TestMaxDisk drops the oldest epochs while the files take more than
// MaxDisk.
func TestMaxDisk(t *testing.T) {
	cfg := retainCfg
	cfg.Retain = 0
	s, dir := open(t, cfg)
	writeConfirmed(t, s, 10_000, storage.NoPos)
	waitFor(t, "the cuts", func() bool { return s.Stats().Epochs >= 10 })
	full := dirBlocks(t, dir)
	cfg.MaxDisk = full / 3
	s = reopen(t, s, cfg)
	waitFor(t, "the drops", func() bool { return s.Stats().Drops > 0 && s.DiskUsage() <= cfg.MaxDisk })
	if got := dirBlocks(t, dir); got > cfg.MaxDisk || s.FirstPos() == 0 {
		t.Fatalf("files take %d bytes, bound %d; first position %d", got, cfg.MaxDisk, s.FirstPos())
	}
	if s.Stats().Epochs < 2 {
		t.Fatalf("dropped more than needed: %d epochs left", s.Stats().Epochs)
	}
}

// TestAddEntryPoints: entry points a peer named are durable, answer
// ErrPruned, and go once the position they were learned at is dropped.
func TestAddEntryPoints(t *testing.T) {
	cfg := retainCfg
	cfg.Retain = time.Hour
	s, _ := open(t, cfg)
	named := storage.EntryPoint{ID: hashOf("peer", 1), Timestamp: 42}
	if err := s.AddEntryPoints([]storage.EntryPoint{named}); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, cfg)
	ep, ok := s.EntryPointOf(named.ID)
	if !ok || ep.Pos != storage.NoPos || ep.Timestamp != 42 {
		t.Fatalf("EntryPointOf after reopening: %+v, %v", ep, ok)
	}
	if _, err := s.Get(named.ID); !errors.Is(err, storage.ErrPruned) {
		t.Fatalf("Get of a named entry point: %v, want ErrPruned", err)
	}
	writeConfirmed(t, s, 3_000, storage.NoPos)
	cfg.Retain = time.Millisecond
	s = reopen(t, s, cfg)
	waitFor(t, "the drops", func() bool { return s.FirstPos() > 0 })
	if _, ok := s.EntryPointOf(named.ID); ok {
		t.Fatalf("the entry point learned at position 0 outlived the drop of position 0 (first %d)", s.FirstPos())
	}
}

// TestHasAt fills several epochs with records whose timestamps mostly rise
// with their positions, a few far ahead or behind (a device's clock, a
// gateway's queue), and checks that HasAt finds every record by its own
// timestamp, before and after a reopen, and no absent ID.
func TestHasAt(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	cfg := storage.Config{NoSync: true, FlushEvery: 256, EpochRecords: 1000, EpochAge: time.Hour}
	s, _ := open(t, cfg)
	const n = 6000
	var recs []storage.Record
	for from := uint64(0); from < n; from += 100 {
		w := &storage.Write{Records: testRecords(from, 100)}
		for i := range w.Records {
			r := &w.Records[i]
			switch rng.IntN(50) {
			case 0:
				r.Timestamp += int64(rng.IntN(10_000)) * 1000 // ahead, into later epochs' span
			case 1:
				r.Timestamp -= int64(rng.IntN(10_000)) * 1000 // behind, into earlier ones'
			}
			r.Raw = rawOf(r, int(r.Pos%50))
		}
		recs = append(recs, w.Records...)
		mustSubmit(t, s, w)
	}
	waitFor(t, "epochs cut", func() bool { return s.Stats().Epochs >= 5 })
	check := func(s *storage.Store) {
		t.Helper()
		for _, r := range recs {
			if ok, err := s.HasAt(r.ID, r.Timestamp); err != nil || !ok {
				t.Fatalf("HasAt(record %d, its timestamp %d) = %v, %v", r.Pos, r.Timestamp, ok, err)
			}
		}
		for i := range 1000 {
			id := hashOf("absent", uint64(i))
			if ok, err := s.HasAt(id, recs[rng.IntN(len(recs))].Timestamp); err != nil || ok {
				t.Fatalf("HasAt(an absent ID) = %v, %v", ok, err)
			}
		}
	}
	check(s)
	check(reopen(t, s, cfg))
}

// TestDropRemovesInChunks checks that a dropped epoch's file is cut from its
// end, a chunk at a step, before it is unlinked, giving its blocks back
// step by step, and that the disk accounting ends where the file system
// does.
func TestDropRemovesInChunks(t *testing.T) {
	const chunk = 32 << 10
	setRemoveChunk(t, chunk, time.Millisecond)
	s, dir := cutEpochs(t, 6_000, 3)
	sizes := map[string]int64{}
	for _, f := range storage.EpochFiles(dir) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		sizes[f] = fi.Size()
	}

	var (
		mu     sync.Mutex
		steps  int
		blocks []int64 // the directory's blocks at each step
	)
	s = reopen(t, s, retainCfg)
	storage.SetDropHook(s, func(step string) {
		if step != "truncated" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		steps++
		blocks = append(blocks, dirBlocks(t, dir))
	})
	waitFor(t, "the drops", func() bool { return s.Stats().Epochs == 1 })
	waitFor(t, "the removals", func() bool { return len(storage.EpochFiles(dir)) == 1 })
	want := 0
	for f, size := range sizes {
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			want += int((size+chunk-1)/chunk) - 1
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d steps for %d files; %d bytes allocated at the first, %d at the last", steps, len(sizes)-1, blocks[0], blocks[len(blocks)-1])
	if want < 6 || steps != want {
		t.Fatalf("%d truncation steps, want %d (one per %d bytes of each file but its first chunk)", steps, want, chunk)
	}
	for i := 1; i < len(blocks); i++ {
		if blocks[i] > blocks[i-1] {
			t.Fatalf("step %d: %d bytes allocated, %d at the step before", i, blocks[i], blocks[i-1])
		}
	}
	if blocks[len(blocks)-1] >= blocks[0] {
		t.Fatalf("the steps gave no blocks back: %v", blocks)
	}
	if got, fs := s.DiskUsage(), dirBlocks(t, dir); got != fs {
		t.Fatalf("DiskUsage %d after the removals, the file system says %d", got, fs)
	}
}

// TestCloseDuringRemoval checks that Close does not wait out the pauses of
// a file being removed in steps: it removes the rest at once.
func TestCloseDuringRemoval(t *testing.T) {
	setRemoveChunk(t, 16<<10, time.Hour)
	s, dir := cutEpochs(t, 3_000, 2)
	closed := make(chan struct{}, 1)
	s = reopen(t, s, retainCfg)
	storage.SetDropHook(s, func(step string) {
		if step == "closed" {
			select {
			case closed <- struct{}{}:
			default:
			}
		}
	})
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("no drop began")
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited for the pauses of a removal an hour apart")
	}
	if n := len(storage.EpochFiles(dir)); n != 1 {
		t.Fatalf("%d epoch files after Close, want 1: %v", n, storage.EpochFiles(dir))
	}
}

// setRemoveChunk sets the steps of a dropped file's removal until the test
// ends.
func setRemoveChunk(t *testing.T, chunk int64, pause time.Duration) {
	c, p := storage.SetRemoveChunk(chunk, pause)
	t.Cleanup(func() { storage.SetRemoveChunk(c, p) })
}

// cutEpochs writes n confirmed records to a new store that keeps
// everything, waits until they fill at least epochs cut epochs, and
// returns it reopened so that its newest (empty) epoch is not cut again:
// reopened with retainCfg, every epoch but the newest goes.
func cutEpochs(t *testing.T, n, epochs uint64) (*storage.Store, string) {
	t.Helper()
	cfg := retainCfg
	cfg.Retain, cfg.EpochAge = time.Hour, time.Second
	s, dir := open(t, cfg)
	writeConfirmed(t, s, n, storage.NoPos)
	waitFor(t, "the cuts", func() bool {
		return s.Stats().Epochs >= epochs && storage.NewestEpochFile(dir) == storage.EpochFile(dir, s.NextPos())
	})
	cfg.EpochAge = time.Hour
	return reopen(t, s, cfg), dir
}
