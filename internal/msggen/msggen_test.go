package msggen

import (
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// TestDAG feeds the messages, in order, to a fresh core of the same
// network: each must be solid at once (its parents came first) and pass
// the checks a node makes.
func TestDAG(t *testing.T) {
	params := dag.Params{Network: dag.NetworkIDFromName("msggen"), MaxPayload: dag.DefaultMaxPayload, PoWBase: 2}
	msgs, err := DAG(params, 3000, 100, 7)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dag.New(dag.Config{Params: params, Validators: []dag.Validator{{Key: dag.PublicKey{1}, Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	issuers := map[dag.PublicKey]bool{}
	for i, m := range msgs {
		if err := params.CheckCheap(m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !m.VerifySignature() {
			t.Fatalf("message %d: bad signature", i)
		}
		if st, err := c.Add(time.Now(), m); st != dag.Solid {
			t.Fatalf("message %d: %v %v", i, st, err)
		}
		c.Ready()
		issuers[m.Issuer] = true
	}
	if len(issuers) != Devices {
		t.Errorf("%d issuers, want %d", len(issuers), Devices)
	}
	again, err := DAG(params, 10, 100, 7)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Issuer != msgs[0].Issuer {
		t.Error("the same seed gave other keys")
	}
}
