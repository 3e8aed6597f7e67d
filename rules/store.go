package rules

import (
	"bytes"
	"slices"
	"sync"
)

// Store is where an engine keeps its cursors, outboxes and dead letters: a
// set of buckets of keys and values, such as bbolt's. An engine writes
// through Write only, so that a match and the cursor that passed it commit
// together (the transactional outbox): a crash loses neither, nor commits
// one without the other.
//
// Its methods may be called from several goroutines at once.
type Store interface {
	// Get returns the value of key in bucket, or nil if there is none.
	Get(bucket, key []byte) ([]byte, error)
	// ForEach calls fn for every key of bucket in ascending byte order,
	// until fn returns an error, which ForEach returns. Key and value are
	// valid only during the call.
	ForEach(bucket []byte, fn func(key, value []byte) error) error
	// Write applies ops in order, atomically and durably: when it returns
	// nil all of them survive a crash, and when it fails none are applied.
	// A Put creates its bucket if needed.
	Write(ops []Op) error
}

// Op is one change of a Store.Write: Put Value under Key in Bucket, or
// delete Key when Delete is set.
type Op struct {
	Bucket, Key, Value []byte
	Delete             bool
}

// The buckets of an engine: one of cursors, keyed by rule name, and one
// outbox and one dead-letter list per rule.
var bucketCursors = []byte("rules.cursor")

func outboxBucket(rule string) []byte { return []byte("rules.outbox." + rule) }
func deadBucket(rule string) []byte   { return []byte("rules.dead." + rule) }

// MemStore is a Store in memory, for tests and for nodes that keep no
// rules across restarts. Its zero value is empty and ready.
type MemStore struct {
	mu      sync.Mutex
	buckets map[string]map[string][]byte
}

// Get implements Store.
func (s *MemStore) Get(bucket, key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buckets[string(bucket)][string(key)]), nil
}

// ForEach implements Store. It calls fn on a copy of the bucket, so fn may
// write to the store.
func (s *MemStore) ForEach(bucket []byte, fn func(key, value []byte) error) error {
	s.mu.Lock()
	b := s.buckets[string(bucket)]
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = b[k]
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := fn([]byte(k), bytes.Clone(vals[i])); err != nil {
			return err
		}
	}
	return nil
}

// Write implements Store.
func (s *MemStore) Write(ops []Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buckets == nil {
		s.buckets = make(map[string]map[string][]byte)
	}
	for _, op := range ops {
		b := s.buckets[string(op.Bucket)]
		if op.Delete {
			delete(b, string(op.Key))
			continue
		}
		if b == nil {
			b = make(map[string][]byte)
			s.buckets[string(op.Bucket)] = b
		}
		b[string(op.Key)] = bytes.Clone(op.Value)
	}
	return nil
}
