package storage

// EntryPoint is a message whose body the store no longer holds (or never
// held) but which counts as solid and confirmed: a parent of kept messages
// that was dropped with its epoch, or one a peer named when this node
// caught up from a pruned peer. The DAG core treats it as solid without its
// body (dag.Core.AddEntryPoint).
type EntryPoint struct {
	ID        [32]byte
	Pos       uint64 // its position here; NoPos if it was never stored here
	Timestamp int64  // the message's timestamp (unix nanoseconds)
}

// Frontier returns the first position the store still holds (0 until an
// epoch has been dropped) and the entry points: the dropped or never-held
// messages that kept ones name as parents.
func (s *Store) Frontier() (first uint64, eps []EntryPoint) {
	return 0, nil // TODO(retention): epochs
}

// EntryPointOf reports whether id is an entry point, and which.
func (s *Store) EntryPointOf(id [32]byte) (EntryPoint, bool) {
	return EntryPoint{}, false // TODO(retention): epochs
}

// AddEntryPoints records entry points that a peer named (a node catching up
// from a pruned peer), durably, before the messages that name them are
// submitted. Positions are ignored: they are stored as NoPos.
func (s *Store) AddEntryPoints(eps []EntryPoint) error {
	return nil // TODO(retention): epochs
}
