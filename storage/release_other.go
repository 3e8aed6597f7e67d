//go:build !linux

package storage

import bolt "go.etcd.io/bbolt"

// releasePages does nothing on this system.
func releasePages(*bolt.DB) {}

// fileResident reports nothing on this system.
func fileResident() (int64, bool) { return 0, false }
