package proof

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/testseed"
)

// referenceRoot is RFC 6962's recursive definition of the tree head, the
// naive version NewTree's bottom-up build must agree with.
func referenceRoot(ids []dag.ID) Hash {
	if len(ids) == 1 {
		return LeafHash(ids[0])
	}
	k := 1
	for k*2 < len(ids) {
		k *= 2
	}
	return innerHash(referenceRoot(ids[:k]), referenceRoot(ids[k:]))
}

// referencePath is RFC 6962's recursive PATH(m, D[n]), leaf first.
func referencePath(m int, ids []dag.ID) []Hash {
	if len(ids) == 1 {
		return nil
	}
	k := 1
	for k*2 < len(ids) {
		k *= 2
	}
	if m < k {
		return append(referencePath(m, ids[:k]), referenceRoot(ids[k:]))
	}
	return append(referencePath(m-k, ids[k:]), referenceRoot(ids[:k]))
}

func sortedIDs(r *rand.Rand, n int) []dag.ID {
	ids := make([]dag.ID, n)
	for i := range ids {
		for k := range ids[i] {
			ids[i][k] = byte(r.Uint32())
		}
	}
	SortIDs(ids)
	return slices.Compact(ids)
}

func TestTreeMatchesRFC6962(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	for n := 1; n <= 70; n++ {
		ids := sortedIDs(r, n)
		tr, err := NewTree(ids)
		if err != nil {
			t.Fatal(err)
		}
		root := tr.Root()
		if want := referenceRoot(ids); root != want {
			t.Fatalf("%d leaves: root %s, RFC 6962 gives %s", n, root, want)
		}
		for i := range ids {
			path := tr.Path(i)
			if want := referencePath(i, ids); !slices.Equal(path, want) {
				t.Fatalf("%d leaves, leaf %d: path %v, RFC 6962 gives %v", n, i, path, want)
			}
			if err := VerifyPath(ids[i], uint64(i), uint64(n), path, root); err != nil {
				t.Fatalf("%d leaves, leaf %d: %v", n, i, err)
			}
		}
	}
}

// TestVerifyPathRefuses checks that a path proves one leaf, at one index,
// under one root: every change fails. (The count is not the path's to
// prove: as in RFC 6962, the path of a leftmost leaf can fit two counts.
// The verifier takes the count from the signed checkpoint.)
func TestVerifyPathRefuses(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	for _, n := range []int{2, 3, 5, 8, 13, 64, 100} {
		ids := sortedIDs(r, n)
		tr, _ := NewTree(ids)
		root := tr.Root()
		for i := range ids {
			path := tr.Path(i)
			other := ids[(i+1)%n]
			cases := map[string]error{
				"other id":     VerifyPath(other, uint64(i), uint64(n), path, root),
				"other index":  VerifyPath(ids[i], uint64((i+1)%n), uint64(n), path, root),
				"index = n":    VerifyPath(ids[i], uint64(n), uint64(n), path, root),
				"path longer":  VerifyPath(ids[i], uint64(i), uint64(n), append(slices.Clone(path), root), root),
				"path shorter": VerifyPath(ids[i], uint64(i), uint64(n), path[:len(path)-1], root),
				"other root":   VerifyPath(ids[i], uint64(i), uint64(n), path, LeafHash(ids[i])),
			}
			for k := range path {
				bad := slices.Clone(path)
				bad[k][r.IntN(32)] ^= 1 << r.IntN(8)
				cases[fmt.Sprintf("flipped bit in hash %d", k)] = VerifyPath(ids[i], uint64(i), uint64(n), bad, root)
			}
			for name, err := range cases {
				if !errors.Is(err, ErrPath) {
					t.Fatalf("%d leaves, leaf %d, %s: %v, want ErrPath", n, i, name, err)
				}
			}
		}
	}
}

func TestNewTreeRefusesUnsortedLeaves(t *testing.T) {
	r := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	ids := sortedIDs(r, 10)
	for name, bad := range map[string][]dag.ID{
		"none":       nil,
		"duplicate":  append(slices.Clone(ids[:5]), ids[4]),
		"descending": {ids[1], ids[0]},
	} {
		if _, err := NewTree(bad); !errors.Is(err, ErrLeaves) {
			t.Errorf("%s: %v, want ErrLeaves", name, err)
		}
	}
}

// A single leaf is its own root, with an empty path.
func TestTreeOfOne(t *testing.T) {
	id := dag.ID{1}
	tr, _ := NewTree([]dag.ID{id})
	if tr.Root() != LeafHash(id) || len(tr.Path(0)) != 0 {
		t.Fatalf("root %s, path %v", tr.Root(), tr.Path(0))
	}
	if err := VerifyPath(id, 0, 1, nil, tr.Root()); err != nil {
		t.Fatal(err)
	}
}
