package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ID files (docs/STORAGE.md, "Proof material"). Beside each epoch's bbolt
// file, epoch-<lo>.ids holds the IDs of its records by position, 32 bytes
// each and nothing else: the ID at position p is at offset (p-lo)*32. The
// node's proof material names messages by position, and reads their IDs
// here. The writer writes a batch's IDs before the batch's transaction
// commits, without an fsync (Open rebuilds a short file from the log), and
// syncs the file before the epoch is cut; so a cut epoch's ID file is
// whole on disk.
//
// With Config.KeepIDs, a drop keeps the dropped epochs' ID files, renamed
// ids-<lo>-<greatest timestamp>.ids, until ForgetIDs lets them go: then the
// IDs outlive the messages, for proofs of messages the store no longer
// holds. Without, they go with their epochs.
const (
	idsSuffix  = ".ids"
	keptPrefix = "ids-"
	idSize     = 32
)

func idsPath(dir string, lo uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%016x%s", epochPrefix, lo, idsSuffix))
}

// keptIDs is a dropped epoch's ID file: positions [lo, lo+n), its records'
// greatest timestamp hi.
type keptIDs struct {
	lo, n uint64
	hi    int64
	path  string
}

func keptName(lo uint64, hi int64) string {
	return fmt.Sprintf("%s%016x-%016x%s", keptPrefix, lo, uint64(hi)^1<<63, idsSuffix)
}

// parseKeptName returns the lo and greatest timestamp of a kept ID file's
// name.
func parseKeptName(name string) (lo uint64, hi int64, ok bool) {
	if !strings.HasPrefix(name, keptPrefix) || !strings.HasSuffix(name, idsSuffix) {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(name, keptPrefix), idsSuffix), "-")
	if !ok || len(a) != 16 || len(b) != 16 {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(a, 16, 64)
	h, err2 := strconv.ParseUint(b, 16, 64)
	return lo, int64(h ^ 1<<63), err1 == nil && err2 == nil
}

// createIDs creates the empty ID file of a new epoch (truncating one a
// crash left behind).
func createIDs(dir string, lo uint64) (*os.File, error) {
	return os.OpenFile(idsPath(dir, lo), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
}

// openIDs opens the ID file of the epoch [lo, next) in db, and makes it
// hold exactly the epoch's IDs: a crash can leave it short (IDs written
// but not synced), long (IDs of a transaction that did not commit) or
// missing (a store of before ID files); the missing IDs are read from the
// log.
func openIDs(dir string, db *bolt.DB, lo, next uint64) (*os.File, error) {
	f, err := os.OpenFile(idsPath(dir, lo), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	have := min(uint64(fi.Size())/idSize, next-lo)
	if uint64(fi.Size()) != have*idSize {
		if err := f.Truncate(int64(have * idSize)); err != nil {
			f.Close()
			return nil, err
		}
	}
	if have < next-lo {
		if err := fillIDs(f, db, lo, lo+have, next); err != nil {
			f.Close()
			return nil, fmt.Errorf("rebuilding %s: %w", f.Name(), err)
		}
	}
	return f, nil
}

// fillIDs writes the IDs of positions [from, next) of the epoch from lo,
// read from db's log, to f.
func fillIDs(f *os.File, db *bolt.DB, lo, from, next uint64) error {
	return db.View(func(tx *bolt.Tx) error {
		buf := make([]byte, 0, 64<<10)
		off := int64(from-lo) * idSize
		c := tx.Bucket(bucketLog).Cursor()
		want := from
		for k, v := c.Seek(binaryPos(from)); k != nil && want < next; k, v = c.Next() {
			pos, err := decodeU64("log key", k)
			if err != nil {
				return err
			}
			if pos != want || len(v) < 1+idSize {
				return fmt.Errorf("%w: log position %d where %d was expected", ErrCorrupt, pos, want)
			}
			buf = append(buf, v[1:1+idSize]...)
			want++
			if len(buf) == cap(buf) {
				if _, err := f.WriteAt(buf, off); err != nil {
					return err
				}
				off += int64(len(buf))
				buf = buf[:0]
			}
		}
		if want != next {
			return fmt.Errorf("%w: log ends at %d, next position %d", ErrCorrupt, want, next)
		}
		_, err := f.WriteAt(buf, off)
		return err
	})
}

// writeIDs writes the IDs of the accepted records of batch, which begin at
// w.next, to the newest epoch's ID file.
func (s *Store) writeIDs(batch []request) error {
	w := &s.w
	buf := w.idBuf[:0]
	for _, r := range batch {
		if r.w == nil {
			continue
		}
		for i := range r.w.Records {
			buf = append(buf, r.w.Records[i].ID[:]...)
		}
	}
	w.idBuf = buf
	if len(buf) == 0 {
		return nil
	}
	_, err := w.cur.ids.WriteAt(buf, int64(w.next-w.cur.lo)*idSize)
	return err
}

// restoreKept lists the kept ID files (and removes them if the store no
// longer keeps them). The ID files of
// epochs below the frontier, whose drop a crash interrupted, are kept or
// removed first: they were synced when their epochs were cut, and their
// greatest timestamp is at most dropped, the frontier's.
func (s *Store) restoreKept(los []uint64, dropped int64) error {
	for _, lo := range los {
		p := idsPath(s.path, lo)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		var err error
		if s.cfg.KeepIDs {
			err = os.Rename(p, filepath.Join(s.path, keptName(lo, dropped)))
		} else {
			err = os.Remove(p)
		}
		if err != nil {
			return err
		}
	}
	des, err := os.ReadDir(s.path)
	if err != nil {
		return err
	}
	for _, de := range des {
		lo, hi, ok := parseKeptName(de.Name())
		if !ok {
			continue
		}
		p := filepath.Join(s.path, de.Name())
		if !s.cfg.KeepIDs {
			if err := os.Remove(p); err != nil {
				return err
			}
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		// A file cut short (it was whole when kept) holds fewer IDs.
		s.kept = append(s.kept, keptIDs{lo: lo, n: uint64(fi.Size()) / idSize, hi: hi, path: p})
	}
	slices.SortFunc(s.kept, func(a, b keptIDs) int { return cmp.Compare(a.lo, b.lo) })
	return nil
}

// releaseIDs, in a drop of the epochs before first, holding idsMu,
// closes the dropped epochs' ID files, and keeps them (renamed, in
// s.kept) or returns their paths for removal.
func (s *Store) releaseIDs(dropped []*epoch, first uint64) (remove []string, err error) {
	var errs []error
	for i, e := range dropped {
		if e.ids == nil {
			continue
		}
		errs = append(errs, e.ids.Close())
		p := idsPath(s.path, e.lo)
		if !s.cfg.KeepIDs {
			remove = append(remove, p)
			continue
		}
		end := first
		if i+1 < len(dropped) {
			end = dropped[i+1].lo
		}
		k := keptIDs{lo: e.lo, n: end - e.lo, hi: e.span.hi, path: filepath.Join(s.path, keptName(e.lo, e.span.hi))}
		if err := os.Rename(p, k.path); err != nil {
			errs = append(errs, err) // Open keeps it, as after a crash
			continue
		}
		s.kept = append(s.kept, k)
	}
	return remove, errors.Join(errs...)
}

// ForgetIDs removes the kept ID files whose records are all timestamped
// before before, oldest first, stopping at the first that is not: the
// node calls it once the proof material that names those positions is
// gone. It returns how many it removed.
func (s *Store) ForgetIDs(before int64) (int, error) {
	s.idsMu.Lock()
	defer s.idsMu.Unlock()
	n := 0
	var err error
	for ; n < len(s.kept) && s.kept[n].hi < before; n++ {
		if err = os.Remove(s.kept[n].path); err != nil && !errors.Is(err, os.ErrNotExist) {
			break
		}
		err = nil
	}
	s.kept = slices.Delete(s.kept, 0, n)
	if n > 0 && err == nil && !s.cfg.NoSync {
		err = syncDir(s.path)
	}
	return n, err
}

// IDsAt reads the IDs at the positions pos, which must ascend, into dst,
// 32 bytes each (dst is at least 32*len(pos) long). A position not written yet gets ErrNotFound; one whose
// ID the store no longer holds (its epoch dropped, and its ID file not
// kept or forgotten), ErrPruned. Safe from any goroutine.
func (s *Store) IDsAt(pos []uint64, dst []byte) error {
	if len(dst) < len(pos)*idSize {
		return fmt.Errorf("storage: IDsAt: %d positions, room for %d IDs", len(pos), len(dst)/idSize)
	}
	s.idsMu.RLock()
	defer s.idsMu.RUnlock()
	s.mu.RLock()
	eps, kept := s.epochs, s.kept
	s.mu.RUnlock()
	next := s.nextPos.Load()

	var (
		open    *os.File // a kept file opened for this call
		openLo  = NoPos
		lastPos uint64
	)
	defer func() {
		if open != nil {
			open.Close()
		}
	}()
	for i := 0; i < len(pos); {
		p := pos[i]
		if i > 0 && p <= lastPos {
			return fmt.Errorf("storage: IDsAt: positions do not ascend at %d", i)
		}
		if p >= next {
			return fmt.Errorf("%w: position %d, the log ends at %d", ErrNotFound, p, next)
		}
		// The file holding p: [lo, hi).
		var (
			f      *os.File
			lo, hi uint64
		)
		if p >= eps[0].lo {
			k, _ := slices.BinarySearchFunc(eps, p, func(e *epoch, p uint64) int { return cmp.Compare(e.lo, p+1) })
			e := eps[k-1]
			f, lo, hi = e.ids, e.lo, next
			if k < len(eps) {
				hi = eps[k].lo
			}
		} else {
			k, _ := slices.BinarySearchFunc(kept, p, func(e keptIDs, p uint64) int { return cmp.Compare(e.lo, p+1) })
			if k == 0 || p >= kept[k-1].lo+kept[k-1].n {
				return fmt.Errorf("%w: the ID at position %d", ErrPruned, p)
			}
			kf := kept[k-1]
			if openLo != kf.lo {
				if open != nil {
					open.Close()
				}
				var err error
				if open, err = os.Open(kf.path); err != nil {
					open, openLo = nil, NoPos
					return fmt.Errorf("%w: the ID at position %d: %v", ErrPruned, p, err)
				}
				openLo = kf.lo
			}
			f, lo, hi = open, kf.lo, kf.lo+kf.n
		}
		// The positions that follow p one by one in the same file: one read.
		j := i + 1
		for j < len(pos) && pos[j] == pos[j-1]+1 && pos[j] < hi && j-i < 2048 {
			j++
		}
		if _, err := f.ReadAt(dst[i*idSize:j*idSize], int64(p-lo)*idSize); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: ID file of the epoch from %d ends before position %d", ErrCorrupt, lo, pos[j-1])
			}
			return fmt.Errorf("storage: reading the ID at position %d: %w", p, err)
		}
		lastPos = pos[j-1]
		i = j
	}
	return nil
}
