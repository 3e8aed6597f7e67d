package storage

import (
	"testing"
	"time"
)

// SetCommitHook makes f run before each commit's transaction; an error from
// it fails the commit as a full disk would. nil removes it.
func SetCommitHook(s *Store, f func() error) {
	if f == nil {
		s.hook.Store(nil)
		return
	}
	s.hook.Store(&f)
}

// EpochFiles returns the paths of the epoch files in the store's directory
// dir, oldest first.
func EpochFiles(dir string) []string {
	los, err := listEpochs(dir)
	if err != nil {
		panic(err)
	}
	out := make([]string, len(los))
	for i, lo := range los {
		out[i] = epochPath(dir, lo)
	}
	return out
}

// NewestEpochFile returns the path of the newest epoch file in dir.
func NewestEpochFile(dir string) string {
	fs := EpochFiles(dir)
	return fs[len(fs)-1]
}

// SetDropHook makes f run between the steps of each drop and after a cut
// ("cut", "frontier", "written", "closed", "truncated" as a dropped file
// is cut in chunks, "removed"). nil removes it.
func SetDropHook(s *Store, f func(step string)) {
	if f == nil {
		s.dropHook.Store(nil)
		return
	}
	s.dropHook.Store(&f)
}

// EpochFile returns the path of the epoch file that begins at lo.
func EpochFile(dir string, lo uint64) string { return epochPath(dir, lo) }

// SetMaintainEvery sets how often writers started after it consider cuts
// and drops.
func SetMaintainEvery(d time.Duration) { maintainEvery = d }

// SetReleaseGrowth sets the growth of the file-backed resident memory
// that releases the mapped pages at once, until the test ends.
func SetReleaseGrowth(t testing.TB, n int64) {
	old := releaseGrowth.Swap(n)
	t.Cleanup(func() { releaseGrowth.Store(old) })
}

// SetFreeBytes makes the store see f as the free space of its file system,
// until the test ends.
func SetFreeBytes(t testing.TB, f func(dir string) (int64, bool)) {
	old := freeBytes.Swap(&f)
	t.Cleanup(func() { freeBytes.Store(old) })
}

// SetRemoveChunk sets how much of a dropped epoch's file each step of its
// removal cuts off, and the pause between steps (process-wide: for a
// crash test's child and for tests that restore it).
func SetRemoveChunk(chunk int64, pause time.Duration) (oldChunk int64, oldPause time.Duration) {
	oldChunk, oldPause = removeChunk, removePause
	removeChunk, removePause = chunk, pause
	return oldChunk, oldPause
}
