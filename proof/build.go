package proof

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/weftnet/weft/dag"
)

// Attest returns a validator's part of the proof for the message id: tree
// is the tree over the leaves of the checkpoint message cp, which must hold
// id.
func Attest(cp *dag.Message, leaves []dag.ID, tree *Tree, id dag.ID) (Attestation, error) {
	i, ok := slices.BinarySearchFunc(leaves, id, compareIDs)
	if !ok {
		return Attestation{}, fmt.Errorf("proof: checkpoint %s does not cover %s", cp.ID(), id)
	}
	return Attestation{Validator: cp.Issuer, ID: cp.ID(), Checkpoint: cp.Bytes(), Leaf: uint64(i), Path: tree.Path(i)}, nil
}

// SortIDs sorts ids into a tree's leaf order, ascending bytes.
func SortIDs(ids []dag.ID) { slices.SortFunc(ids, compareIDs) }

func compareIDs(a, b dag.ID) int { return bytes.Compare(a[:], b[:]) }
