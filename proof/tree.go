package proof

import (
	"errors"
	"fmt"

	"github.com/zeebo/blake3"

	"github.com/weftnet/weft/dag"
)

// Hash is a node of a checkpoint's Merkle tree: a BLAKE3-256 digest.
type Hash [32]byte

// String returns the hash in lower-case hex.
func (h Hash) String() string { return dag.ID(h).String() }

// Domain separation between the tree's leaves and its inner nodes (as in
// RFC 6962), so that no inner node can pass for a leaf.
const (
	leafPrefix  = 0x00
	innerPrefix = 0x01
)

// MaxPath is the longest path a tree of up to 2^32 leaves has.
const MaxPath = 32

// LeafHash returns the hash of the leaf for a message id:
// BLAKE3-256(0x00 || id).
func LeafHash(id dag.ID) Hash {
	var b [1 + dag.IDSize]byte
	b[0] = leafPrefix
	copy(b[1:], id[:])
	return blake3.Sum256(b[:])
}

// innerHash returns BLAKE3-256(0x01 || left || right).
func innerHash(left, right Hash) Hash {
	var b [1 + 2*32]byte
	b[0] = innerPrefix
	copy(b[1:], left[:])
	copy(b[33:], right[:])
	return blake3.Sum256(b[:])
}

// Tree is the Merkle tree over a checkpoint's leaves, the message ids in
// ascending byte order. Its shape is RFC 6962's: a tree of n > 1 leaves is
// an inner node over a complete tree of the first k leaves, k the largest
// power of two below n, and a tree of the rest. Built bottom up, that is
// pairing neighbours at each level and carrying a level's odd last node up
// unchanged.
type Tree struct {
	levels [][]Hash // levels[0] are the leaf hashes; the last level is the root
}

// ErrLeaves: the ids given to NewTree are not a checkpoint's leaves.
var ErrLeaves = errors.New("proof: leaves must be distinct ids in ascending order, at least one")

// NewTree builds the tree over ids, which must be sorted ascending, distinct
// and at least one.
func NewTree(ids []dag.ID) (*Tree, error) {
	if len(ids) == 0 || uint64(len(ids)) > 1<<32 {
		return nil, fmt.Errorf("%w: %d ids", ErrLeaves, len(ids))
	}
	level := make([]Hash, len(ids))
	for i, id := range ids {
		if i > 0 && !less(ids[i-1], id) {
			return nil, fmt.Errorf("%w: id %d (%s) is not above id %d", ErrLeaves, i, id, i-1)
		}
		level[i] = LeafHash(id)
	}
	t := &Tree{levels: [][]Hash{level}}
	for len(level) > 1 {
		next := make([]Hash, (len(level)+1)/2)
		for i := range next {
			if 2*i+1 < len(level) {
				next[i] = innerHash(level[2*i], level[2*i+1])
			} else {
				next[i] = level[2*i]
			}
		}
		t.levels = append(t.levels, next)
		level = next
	}
	return t, nil
}

func less(a, b dag.ID) bool { return compareIDs(a, b) < 0 }

// Len returns the number of leaves.
func (t *Tree) Len() int { return len(t.levels[0]) }

// Root returns the root hash.
func (t *Tree) Root() Hash { return t.levels[len(t.levels)-1][0] }

// Path returns the audit path of leaf i, 0 <= i < Len(): the sibling hashes
// from the leaf's level upwards, skipping the levels where the node has no
// sibling (it is carried up). VerifyPath checks it.
func (t *Tree) Path(i int) []Hash {
	var path []Hash
	for _, level := range t.levels[:len(t.levels)-1] {
		if s := i ^ 1; s < len(level) {
			path = append(path, level[s])
		}
		i >>= 1
	}
	return path
}

// ErrPath: a Merkle path does not lead from the leaf to the root.
var ErrPath = errors.New("proof: path does not lead to the checkpoint's root")

// VerifyPath checks that path leads from the leaf of id, at index among
// count leaves, to root. It is RFC 9162's inclusion check (2.1.3.2) with
// this tree's hashes.
func VerifyPath(id dag.ID, index, count uint64, path []Hash, root Hash) error {
	if index >= count {
		return fmt.Errorf("%w: leaf index %d of %d leaves", ErrPath, index, count)
	}
	if len(path) > MaxPath || len(path) != pathLen(index, count) {
		return fmt.Errorf("%w: %d hashes, a leaf at %d of %d has %d", ErrPath, len(path), index, count, pathLen(index, count))
	}
	fn, sn := index, count-1
	r := LeafHash(id)
	for _, p := range path {
		if fn&1 == 1 || fn == sn {
			r = innerHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = innerHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || r != root {
		return fmt.Errorf("%w: leaf %d of %d", ErrPath, index, count)
	}
	return nil
}

// pathLen returns the length of the audit path of leaf index among count.
func pathLen(index, count uint64) int {
	n := 0
	for ; count > 1; count = (count + 1) / 2 {
		if index^1 < count {
			n++
		}
		index >>= 1
	}
	return n
}
