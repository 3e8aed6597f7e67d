package storage

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releasePages gives the pages of db's mapping back to the page cache
// (madvise MADV_DONTNEED): they stop counting in the process's resident
// memory, and a later read maps them again from the cache or the file. It
// runs inside a read transaction, which keeps bbolt from remapping the file
// meanwhile.
func releasePages(db *bolt.DB) {
	_ = db.View(func(tx *bolt.Tx) error {
		info := db.Info()
		if info == nil || info.Data == 0 || tx.Size() == 0 {
			return nil
		}
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, info.Data, uintptr(tx.Size()), syscall.MADV_DONTNEED)
		return nil
	})
}
