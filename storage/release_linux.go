package storage

import (
	"bytes"
	"os"
	"strconv"
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

// fileResident returns the process's resident memory backed by files (and
// shared memory), in bytes: the third field of /proc/self/statm, in pages.
func fileResident() (int64, bool) {
	var buf [128]byte
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	n, _ := f.Read(buf[:])
	f.Close()
	fields := bytes.Fields(buf[:n])
	if len(fields) < 3 {
		return 0, false
	}
	pages, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}
