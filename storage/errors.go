package storage

import "errors"

// Errors returned by the package. Each is a sentinel: callers test for it with
// errors.Is, since most are wrapped with detail (a position, a path).
var (
	// ErrNotFound: no record has the ID or position asked for.
	ErrNotFound = errors.New("storage: not found")

	// ErrClosed: the Store was closed. Submit hands it to done; reads return it.
	ErrClosed = errors.New("storage: closed")

	// ErrLocked: another Store (in this process or another) holds the file.
	// Open waits Config.OpenTimeout for the lock before returning it.
	ErrLocked = errors.New("storage: database file is locked: another node or Store has it open")

	// ErrOutOfOrder: a Write was refused, whole, because a record's Pos was not
	// the next position, or a confirmation named a position not yet written.
	// Nothing of that Write was applied; the Writes after it proceed.
	ErrOutOfOrder = errors.New("storage: out of order")

	// ErrCorrupt: stored bytes do not decode (a value of the wrong length, an
	// unknown format, an index entry that points at nothing). The Store never
	// panics on what it reads from disk; it returns this.
	ErrCorrupt = errors.New("storage: corrupt data")

	// ErrFailed: a transaction failed to commit (disk full, I/O error). The
	// writer stops: every Write in that transaction and every later one gets
	// an error wrapping ErrFailed and the cause. Reads still work and see the
	// last committed state; reopen the Store to write again.
	ErrFailed = errors.New("storage: writer failed")

	// ErrConfig: a Config field is out of range.
	ErrConfig = errors.New("storage: bad config")
)
