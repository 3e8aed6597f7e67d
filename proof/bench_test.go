package proof

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/weftnet/weft/dag"
)

// benchLeaves is what one checkpoint covers at 10,000 msgs/s with the
// default checkpoint interval of 1 s.
const benchLeaves = 10_000

// benchDoc is a proof by n validators, each checkpoint covering
// benchLeaves messages, with what building it takes.
func benchDoc(b *testing.B, n int) (*Document, Trust, *dag.Message, [][]dag.ID) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	m := &dag.Message{Version: dag.Version, Network: testNet, Seq: 1, Timestamp: 1_767_225_600_000_000_000, Payload: []byte(`{"temp_c":21.5}`)}
	m.Sign(keyOf(200))
	d := &Document{Version: DocumentVersion, ID: m.ID(), Message: m.Bytes()}
	trust := Trust{Network: testNet}
	var sets [][]dag.ID
	for v := range n {
		key := keyOf(byte(v + 1))
		trust.Validators = append(trust.Validators, dag.Validator{Key: pub(key), Weight: 1})
		leaves := append(sortedIDs(r, benchLeaves-1), m.ID())
		SortIDs(leaves)
		tree, _ := NewTree(leaves)
		cp := Checkpoint{Index: 9, Prev: dag.ID{1}, From: m.Timestamp - 5e9, Count: uint32(len(leaves)), Root: tree.Root()}
		cm := &dag.Message{Version: dag.Version, Network: testNet, Seq: 9, Timestamp: m.Timestamp + 1e9, Payload: cp.Encode()}
		cm.Sign(key)
		a, err := Attest(cm, leaves, tree, m.ID())
		if err != nil {
			b.Fatal(err)
		}
		d.Checkpoints = append(d.Checkpoints, a)
		sets = append(sets, leaves)
	}
	return d, trust, m, sets
}

var validatorCounts = []int{1, 4, 16}

// BenchmarkProofBuild: what a node does per validator to answer a proof
// once it has found the covering checkpoint's leaves: the tree over them
// and the path.
func BenchmarkProofBuild(b *testing.B) {
	for _, n := range validatorCounts {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) {
			d, _, m, sets := benchDoc(b, n)
			size, _ := json.Marshal(d)
			b.ResetTimer()
			for range b.N {
				for v := range n {
					tree, _ := NewTree(sets[v])
					cm, _ := dag.Decode(d.Checkpoints[v].Checkpoint, dag.MaxPayload)
					if _, err := Attest(cm, sets[v], tree, m.ID()); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(len(size)), "json-bytes")
		})
	}
}

// BenchmarkProofVerify: weft verify's work, the JSON read included.
func BenchmarkProofVerify(b *testing.B) {
	for _, n := range validatorCounts {
		b.Run(fmt.Sprintf("validators=%d", n), func(b *testing.B) {
			d, trust, _, _ := benchDoc(b, n)
			js, _ := json.Marshal(d)
			b.ResetTimer()
			for range b.N {
				var got Document
				if err := json.Unmarshal(js, &got); err != nil {
					b.Fatal(err)
				}
				if _, err := Verify(&got, trust); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(js)), "json-bytes")
		})
	}
}
