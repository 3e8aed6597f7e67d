package storage

import (
	"bytes"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// bucketState holds the node's local state beside the ledger: one nested
// bucket per kind of state (the device registry, its change log, rules'
// cursors), each a plain map from keys to values that the store does not
// interpret. It is created by the first StateUpdate; a store without it
// has no state, and its format is the same.
var bucketState = []byte("state")

// ErrStateName: a state bucket's name is empty or longer than
// MaxStateName bytes.
var ErrStateName = errors.New("storage: bad state bucket name")

// MaxStateName is the longest name of a state bucket, in bytes.
const MaxStateName = 128

// StateTx is a transaction on the store's state: the named buckets of
// node-local state (docs/STORAGE.md, "Node-local state"). A StateTx is
// valid only inside the function given to StateView or StateUpdate, and
// only on that function's goroutine. Keys and values handed to it may be
// reused once its method returns; those it hands out are copies.
type StateTx struct {
	tx *bolt.Tx
}

// StateView runs fn in a read transaction on the state: it sees the state
// of one committed StateUpdate. It is safe from any goroutine.
func (s *Store) StateView(fn func(tx *StateTx) error) error {
	err := s.state.View(func(tx *bolt.Tx) error { return fn(&StateTx{tx: tx}) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// StateUpdate runs fn in a write transaction on the state and commits it
// if fn returns nil: all of fn's changes are durable when StateUpdate
// returns nil (unless Config.NoSync), none of them if it returns an error.
// bbolt serializes it with the writer's commits, so it may be called from
// any goroutine while the writer runs; it waits for a commit under way.
// A commit that fails (a full disk, an I/O error) is not retried: the
// error wraps ErrFailed and the cause, and nothing of fn's changes is
// kept. After Close it returns ErrClosed.
func (s *Store) StateUpdate(fn func(tx *StateTx) error) error {
	if h := s.hook.Load(); h != nil {
		if err := (*h)(); err != nil {
			return fmt.Errorf("%w: %w", ErrFailed, err)
		}
	}
	var fnErr error
	err := s.state.Update(func(tx *bolt.Tx) error {
		fnErr = fn(&StateTx{tx: tx})
		return fnErr
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return ErrClosed
	case fnErr != nil:
		return fnErr // fn's own error: nothing was written
	default:
		return fmt.Errorf("%w: state: %w", ErrFailed, err)
	}
}

// bucket returns the state bucket name, or nil if it does not exist.
func (t *StateTx) bucket(name string) (*bolt.Bucket, error) {
	if name == "" || len(name) > MaxStateName {
		return nil, fmt.Errorf("%w: %q", ErrStateName, name)
	}
	st := t.tx.Bucket(bucketState)
	if st == nil {
		return nil, nil
	}
	return st.Bucket([]byte(name)), nil
}

// writable returns the state bucket name, creating it (and the state
// bucket) if needed.
func (t *StateTx) writable(name string) (*bolt.Bucket, error) {
	if _, err := t.bucket(name); err != nil {
		return nil, err
	}
	st, err := t.tx.CreateBucketIfNotExists(bucketState)
	if err != nil {
		return nil, err
	}
	return st.CreateBucketIfNotExists([]byte(name))
}

// Get returns a copy of the value of key in bucket, or nil if there is
// none.
func (t *StateTx) Get(bucket string, key []byte) ([]byte, error) {
	b, err := t.bucket(bucket)
	if b == nil || err != nil {
		return nil, err
	}
	return bytes.Clone(b.Get(key)), nil
}

// Put sets key to value in bucket, creating the bucket if needed. Keys
// are 1 to bolt.MaxKeySize bytes. Only in a StateUpdate.
func (t *StateTx) Put(bucket string, key, value []byte) error {
	b, err := t.writable(bucket)
	if err != nil {
		return err
	}
	return b.Put(bytes.Clone(key), bytes.Clone(value))
}

// Delete removes key from bucket; a key that is not there is no error.
// Only in a StateUpdate.
func (t *StateTx) Delete(bucket string, key []byte) error {
	b, err := t.bucket(bucket)
	if b == nil || err != nil {
		return err
	}
	return b.Delete(key)
}

// DeleteBucket removes bucket and everything in it; a bucket that is not
// there is no error. Only in a StateUpdate.
func (t *StateTx) DeleteBucket(bucket string) error {
	b, err := t.bucket(bucket)
	if b == nil || err != nil {
		return err
	}
	return t.tx.Bucket(bucketState).DeleteBucket([]byte(bucket))
}

// ForEach calls fn with each key and value of bucket in key order,
// starting at the first key not below from (nil: the first key), or, with
// reverse, in reverse key order starting at the last key not above from
// (nil: the last key). It stops when fn returns false or an error, and
// returns that error. fn's arguments are valid only during the call: copy
// what is kept. fn must not change the bucket.
func (t *StateTx) ForEach(bucket string, from []byte, reverse bool, fn func(k, v []byte) (bool, error)) error {
	b, err := t.bucket(bucket)
	if b == nil || err != nil {
		return err
	}
	c := b.Cursor()
	k, v := first(c, from, reverse)
	for ; k != nil; k, v = step(c, reverse) {
		if more, err := fn(k, v); err != nil || !more {
			return err
		}
	}
	return nil
}

// first positions c for ForEach.
func first(c *bolt.Cursor, from []byte, reverse bool) ([]byte, []byte) {
	switch {
	case from == nil && reverse:
		return c.Last()
	case from == nil:
		return c.First()
	}
	k, v := c.Seek(from)
	if !reverse {
		return k, v
	}
	if k == nil {
		return c.Last()
	}
	if !bytes.Equal(k, from) {
		return c.Prev()
	}
	return k, v
}

func step(c *bolt.Cursor, reverse bool) ([]byte, []byte) {
	if reverse {
		return c.Prev()
	}
	return c.Next()
}
