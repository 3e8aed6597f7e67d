package storage_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/storage"
)

// checkIDs reads the IDs at pos and compares them with the test records'.
func checkIDs(t *testing.T, s *storage.Store, pos []uint64) {
	t.Helper()
	ids := make([]byte, 32*len(pos))
	if err := s.IDsAt(pos, ids); err != nil {
		t.Fatalf("IDsAt(%d positions from %d): %v", len(pos), pos[0], err)
	}
	for i, p := range pos {
		if [32]byte(ids[32*i:]) != testRecord(p).ID {
			t.Fatalf("IDsAt: position %d has the ID of another record", p)
		}
	}
}

// span returns the positions [lo, hi) with step.
func span(lo, hi, step uint64) []uint64 {
	var pos []uint64
	for p := lo; p < hi; p += step {
		pos = append(pos, p)
	}
	return pos
}

// idFiles returns the names of the ID files in dir.
func idFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".ids") {
			names = append(names, de.Name())
		}
	}
	return names
}

// TestIDsAt reads IDs by position across epochs, in runs and one by one,
// and refuses what it cannot answer.
func TestIDsAt(t *testing.T) {
	s, dir := cutEpochs(t, 5000, 4)
	next := s.NextPos()
	checkIDs(t, s, span(0, next, 1))
	checkIDs(t, s, span(3, next, 7))
	checkIDs(t, s, []uint64{0, 999, 1000, 1001, 2500, next - 1})
	if n := len(idFiles(t, dir)); n != len(storage.EpochFiles(dir)) {
		t.Fatalf("%d ID files for %d epochs", n, len(storage.EpochFiles(dir)))
	}
	ids := make([]byte, 64)
	if err := s.IDsAt([]uint64{next}, ids); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("IDsAt(NextPos): %v, want ErrNotFound", err)
	}
	if err := s.IDsAt([]uint64{5, 5}, ids); err == nil {
		t.Fatal("IDsAt with a position twice: no error")
	}
	if err := s.IDsAt([]uint64{1, 2, 3}, ids); err == nil {
		t.Fatal("IDsAt with no room for the IDs: no error")
	}
	// More records go to the newest epoch and are read at once.
	writeConfirmed(t, s, 300, storage.NoPos)
	checkIDs(t, s, span(next-5, s.NextPos(), 1))
}

// TestIDFileRebuilt: the newest epoch's ID file, cut short, lengthened with
// garbage or removed while the store is closed (as a crash leaves it, or a
// store from before ID files), is rebuilt from the log when it opens.
func TestIDFileRebuilt(t *testing.T) {
	s, dir := cutEpochs(t, 3000, 2)
	writeConfirmed(t, s, 700, storage.NoPos)
	newest := strings.TrimSuffix(storage.NewestEpochFile(dir), ".db") + ".ids"
	oldest := strings.TrimSuffix(storage.EpochFiles(dir)[0], ".db") + ".ids"
	cfg := storage.Config{NoSync: true}
	for _, damage := range []struct {
		name string
		do   func(path string) error
	}{
		{"cut short mid-ID", func(p string) error { return os.Truncate(p, 100*32+17) }},
		{"emptied", func(p string) error { return os.Truncate(p, 0) }},
		{"lengthened", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.Write(make([]byte, 32*50+5))
			return errors.Join(err, f.Close())
		}},
		{"removed", os.Remove},
	} {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := errors.Join(damage.do(newest), damage.do(oldest)); err != nil {
			t.Fatal(err)
		}
		var err error
		if s, err = storage.Open(dir, cfg); err != nil {
			t.Fatalf("%s: reopening: %v", damage.name, err)
		}
		checkIDs(t, s, span(0, s.NextPos(), 1))
		for _, p := range []string{newest, oldest} {
			if fi, err := os.Stat(p); err != nil || fi.Size()%32 != 0 {
				t.Fatalf("%s: %s after reopening: %v", damage.name, filepath.Base(p), err)
			}
		}
	}
	s.Close()
}

// TestKeepIDs: with KeepIDs, the ID files of dropped epochs stay and
// answer for positions whose records are gone, across a reopen, until
// ForgetIDs; without, they go with their epochs.
func TestKeepIDs(t *testing.T) {
	for _, keep := range []bool{true, false} {
		s, dir := cutEpochs(t, 6000, 5)
		cfg := retainCfg
		cfg.KeepIDs = keep
		s = reopen(t, s, cfg)
		waitFor(t, "the drops", func() bool { return s.Stats().Drops > 0 && s.Stats().Epochs == 1 })
		first := s.FirstPos()
		if _, err := s.GetByPos(first - 1); !errors.Is(err, storage.ErrPruned) {
			t.Fatalf("GetByPos(%d) below the frontier: %v", first-1, err)
		}
		ids := make([]byte, 32)
		if !keep {
			if err := s.IDsAt([]uint64{first - 1}, ids); !errors.Is(err, storage.ErrPruned) {
				t.Fatalf("IDsAt of a dropped position, IDs not kept: %v, want ErrPruned", err)
			}
			if files := idFiles(t, dir); len(files) != 1 {
				t.Fatalf("ID files %v, want the newest epoch's alone", files)
			}
			s.Close()
			continue
		}
		checkIDs(t, s, span(0, s.NextPos(), 1))
		s = reopen(t, s, cfg)
		checkIDs(t, s, span(0, s.NextPos(), 3))
		kept := 0
		for _, f := range idFiles(t, dir) {
			if strings.HasPrefix(f, "ids-") {
				kept++
			}
		}
		if dropped := len(idFiles(t, dir)) - 1; kept < 5 || kept != dropped {
			t.Fatalf("ID files %v: want the newest epoch's and one kept for each dropped", idFiles(t, dir))
		}
		// ForgetIDs removes the files whose records are all older, and
		// none that holds a record as new as before.
		before := testRecord(2500).Timestamp
		n, err := s.ForgetIDs(before)
		if err != nil || n < 1 || n >= kept {
			t.Fatalf("ForgetIDs: %d of %d files removed, %v", n, kept, err)
		}
		if err := s.IDsAt([]uint64{0}, ids); !errors.Is(err, storage.ErrPruned) {
			t.Fatalf("IDsAt of a forgotten position: %v, want ErrPruned", err)
		}
		for p := uint64(0); p < first; p++ {
			if testRecord(p).Timestamp >= before {
				checkIDs(t, s, span(p, s.NextPos(), 1))
				break
			}
		}
		// Reopened without KeepIDs, the store lets the kept files go.
		s = reopen(t, s, storage.Config{NoSync: true})
		if files := idFiles(t, dir); len(files) != 1 {
			t.Fatalf("ID files %v after reopening without KeepIDs, want the newest epoch's alone", files)
		}
		if err := s.IDsAt([]uint64{first - 1}, ids); !errors.Is(err, storage.ErrPruned) {
			t.Fatalf("IDsAt after the kept files went: %v, want ErrPruned", err)
		}
		s.Close()
	}
}
