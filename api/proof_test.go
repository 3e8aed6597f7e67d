package api

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/proof"
	"github.com/weftnet/weft/storage"
)

// TestProofHTTP: the proof endpoints' contract. A message no checkpoint
// covers yet answers 404 no_proof with Retry-After; a covered one, the
// document, which verifies; after retention dropped the message, GET
// answers as for the message (404 or 410) while POST /api/v1/proofs with
// its bytes still answers its proof, kept by proof-retain; bytes that are
// no message are 400 malformed.
func TestProofHTTP(t *testing.T) {
	srv, n := testServer(t, func(c *node.Config) {
		c.Store = storage.Config{NoSync: true, EpochRecords: 100, EpochAge: time.Hour, Retain: time.Second}
		c.CheckpointInterval = 50 * time.Millisecond
		c.ProofRetain = time.Hour
	})
	cl := client.New(srv.URL)
	trust := proof.Trust{Network: n.Params().Network, Validators: n.Info().Validators}
	dev := &builder{t: t, n: n, key: key(41)}
	first := dev.build("first", nil)
	if code, out := post(t, srv.URL+"/api/v1/messages", first.Bytes()); code != http.StatusCreated {
		t.Fatalf("submit: %d %v", code, out)
	}

	// Asked at once, before the checkpoint: 404 no_proof and Retry-After,
	// or already the proof (the checkpoint came first).
	resp, err := http.Get(srv.URL + "/api/v1/messages/" + first.ID().String() + "/proof")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Fatalf("404 without a Retry-After: %q", resp.Header.Get("Retry-After"))
		}
	}
	var doc *proof.Document
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		doc, err = cl.Proof(t.Context(), first.ID())
		if err == nil {
			break
		}
		if !client.IsCode(err, client.CodeNoProof) || time.Now().After(deadline) {
			t.Fatalf("proof of the first message: %v", err)
		}
	}
	if _, err := proof.Verify(doc, trust); err != nil {
		t.Fatal(err)
	}

	// Until retention drops the first message.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := n.Raw(first.ID()); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first message was not dropped: %+v", n.History())
		}
		m := dev.build("more", nil)
		if code, out := post(t, srv.URL+"/api/v1/messages", m.Bytes()); code != http.StatusCreated {
			t.Fatalf("submit: %d %v", code, out)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if _, err := cl.Proof(t.Context(), first.ID()); !client.IsCode(err, client.CodeNotFound) && !client.IsCode(err, client.CodePruned) {
		t.Fatalf("GET the proof of a dropped message: %v, want 404 or 410", err)
	}
	kept, err := cl.ProofFor(t.Context(), first.Bytes())
	if err != nil {
		t.Fatalf("POST the dropped message's bytes: %v", err)
	}
	if _, err := proof.Verify(kept, trust); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kept.Message, first.Bytes()) || kept.Checkpoints[0].ID != doc.Checkpoints[0].ID {
		t.Fatal("the proof after the drop is not the one before")
	}
	if code, out := post(t, srv.URL+"/api/v1/proofs", []byte("not a message")); code != http.StatusBadRequest || errCode(out) != "malformed" {
		t.Fatalf("POST garbage: %d %v", code, out)
	}
	other := dev.build("x", func(m *dag.Message) { m.Network = dag.NetworkIDFromName("another") })
	if code, out := post(t, srv.URL+"/api/v1/proofs", other.Bytes()); code != http.StatusUnprocessableEntity || errCode(out) != "wrong_network" {
		t.Fatalf("POST another network's message: %d %v", code, out)
	}
}
