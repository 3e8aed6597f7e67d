//go:build linux || darwin

package storage

import "syscall"

// statfsFree returns the bytes free to an unprivileged writer on the file
// system that holds dir, and false if it cannot tell.
func statfsFree(dir string) (int64, bool) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, false
	}
	return int64(fs.Bavail) * int64(fs.Bsize), true
}
