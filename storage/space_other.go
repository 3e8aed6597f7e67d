//go:build !linux && !darwin

package storage

// statfsFree cannot tell on this system.
func statfsFree(string) (int64, bool) { return 0, false }
