package msggen

import (
	"fmt"
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

// TestDAGWith gives each message the payload the function returns for its
// index, and DAG the same keys, parents and payload bytes as before.
func TestDAGWith(t *testing.T) {
	params := dag.Params{Network: dag.NetworkIDFromName("msggen"), MaxPayload: dag.DefaultMaxPayload, PoWBase: 2}
	var calls []int
	msgs, err := DAGWith(params, 50, 7, func(i int) []byte {
		calls = append(calls, i)
		return []byte(fmt.Sprintf(`{"i":%d}`, i))
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf(`{"i":%d}`, i); string(m.Payload) != want {
			t.Fatalf("message %d: payload %q, want %q", i, m.Payload, want)
		}
		if calls[i] != i {
			t.Fatalf("call %d was for message %d", i, calls[i])
		}
	}
	plain, err := DAG(params, 50, 5, 7)
	if err != nil {
		t.Fatal(err)
	}
	for i := range plain {
		if plain[i].Issuer != msgs[i].Issuer || plain[i].Seq != msgs[i].Seq {
			t.Fatalf("message %d: DAG and DAGWith differ in issuer or sequence", i)
		}
		if string(plain[i].Payload) != "ttttt" {
			t.Fatalf("message %d: DAG's payload %q", i, plain[i].Payload)
		}
	}
}
