package tipselect_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/tipselect"
)

// TestUniformOnCore selects parents from the DAG core's real pool, as the
// node does, and checks every selection is a tip the core offers and that
// the pool stays bounded under a long run.
func TestUniformOnCore(t *testing.T) {
	params := dag.Params{Network: dag.NetworkIDFromName("tipselect"), MaxPayload: dag.DefaultMaxPayload}
	var val dag.PublicKey
	val[0] = 1
	c, err := dag.New(dag.Config{Params: params, Validators: []dag.Validator{{Key: val, Weight: 1}}, MaxTips: 64})
	if err != nil {
		t.Fatal(err)
	}
	sel := tipselect.NewUniform(c.TipPool())
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1, 0)
	for i := 0; i < 5000; i++ {
		a, b, err := sel.Select(r)
		if err != nil {
			t.Fatal(err)
		}
		offered := map[dag.ID]bool{}
		for j := 0; j < c.TipCount(); j++ {
			offered[c.Tip(j)] = true
		}
		if !offered[a] || !offered[b] {
			t.Fatalf("step %d: selected a message the pool does not offer", i)
		}
		m := &dag.Message{Version: dag.Version, Network: params.Network, Parents: [2]dag.ID{a, b}, Seq: uint64(i), Timestamp: int64(i)}
		if i%10 == 0 {
			m.Issuer = val
		}
		if st, err := c.Add(now, m); st != dag.Solid {
			t.Fatalf("step %d: %v %v", i, st, err)
		}
		c.Ready()
		if c.TipCount() > 64 {
			t.Fatalf("pool over its bound: %d", c.TipCount())
		}
	}
}
