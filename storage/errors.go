package storage

import (
	"errors"
	"fmt"
)

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

	// ErrInvalidRecord: a Write was refused, whole, because one of its
	// records cannot be stored; the error is a *RecordError that says which
	// and why. Nothing of that Write was applied; the Writes after it
	// proceed (those whose records follow the refused ones are then out of
	// order).
	ErrInvalidRecord = errors.New("storage: invalid record")

	// ErrFormat: Open found a store of another format version than this
	// code's; the error is a *FormatError that says which.
	ErrFormat = errors.New("storage: unsupported store format")

	// ErrCorrupt: stored bytes do not decode (a value of the wrong length, an
	// unknown format, an index entry that points at nothing). The Store never
	// panics on what it reads from disk; it returns this.
	ErrCorrupt = errors.New("storage: corrupt data")

	// ErrFailed: a transaction fails to commit (disk full, I/O error).
	// Store.Failing wraps it while the writer retries; the Writes of a
	// transaction that Close gave up on, and every later one, get it with
	// the cause. Reads still work and see the last committed state.
	ErrFailed = errors.New("storage: writer failed")

	// ErrPruned: the record asked for was in an epoch the store dropped
	// (retention); the store can tell for positions below its frontier and
	// for its entry points, and otherwise answers ErrNotFound.
	ErrPruned = errors.New("storage: pruned")

	// ErrConfig: a Config field is out of range.
	ErrConfig = errors.New("storage: bad config")
)

// RecordError is the error a Write gets when one of its records cannot be
// stored: its Raw is shorter than a message (dag.MinSize), or its Parents,
// Issuer, Seq or Timestamp differ from those in Raw. The log keeps those
// four fields only inside Raw, so a record that disagrees with its Raw would
// read back different from what was written. It wraps ErrInvalidRecord.
type RecordError struct {
	Pos    uint64 // the record's Pos
	Field  string // "Raw", "Parents", "Issuer", "Seq" or "Timestamp"
	Detail string // what is wrong with it, for people
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("storage: invalid record at position %d: %s: %s", e.Pos, e.Field, e.Detail)
}

// Unwrap returns ErrInvalidRecord.
func (e *RecordError) Unwrap() error { return ErrInvalidRecord }

// FormatError is the error Open returns for a store written in another
// format version than the only one this code reads and writes. Stores are
// not migrated: a store of an older format has to be moved away (the node
// then syncs afresh from its peers), one of a newer format opened with the
// release that wrote it. Open changes nothing in the file before it returns
// this. It wraps ErrFormat.
type FormatError struct {
	Found int // the format version in the file
	Want  int // the format version this code reads and writes
}

// Old reports whether the store's format is older than this code's.
func (e *FormatError) Old() bool { return e.Found < e.Want }

func (e *FormatError) Error() string {
	if e.Old() {
		return fmt.Sprintf("storage: the store has the old format %d; this version reads only format %d and cannot migrate it: move the data directory away and let the node sync again", e.Found, e.Want)
	}
	return fmt.Sprintf("storage: the store has format %d, newer than format %d, the only one this version reads: open it with the release that wrote it", e.Found, e.Want)
}

// Unwrap returns ErrFormat.
func (e *FormatError) Unwrap() error { return ErrFormat }
