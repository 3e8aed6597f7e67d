package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
	"github.com/weftnet/weft/proof"
)

// TestProofEndToEnd runs four validator nodes as processes, peered over
// QUIC on loopback, sends a reading to one, and checks that weft proof
// from each node gives a document weft verify accepts offline; then that
// verify fails, with the reason, for a changed byte of the message, a
// path, a checkpoint's signature, a proof under the threshold, and a
// validator counted twice.
func TestProofEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four node processes")
	}
	const nodes = 4
	procs, vals := startValidators(t, nodes, "--checkpoint-interval", "200ms")

	_, dev, _ := ed25519.GenerateKey(nil)
	m := rawMessage(t, procs[0].url, dev, 1, []byte(`{"temp_c":21.5}`))
	if code, err := postRaw(procs[0].url, m.Bytes()); err != nil || code != 201 {
		t.Fatalf("submit: %d %v", code, err)
	}
	dir := t.TempDir()
	files := make([]string, nodes)
	for i, p := range procs {
		out, stderr, code := weftOut(t, nil, "proof", "--wait", m.ID().String(), "--node", p.url)
		if code != 0 {
			t.Fatalf("weft proof from node %d: exit %d: %s", i, code, stderr)
		}
		files[i] = filepath.Join(dir, fmt.Sprintf("proof%d.json", i))
		if err := os.WriteFile(files[i], []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		out, stderr, code = weftOut(t, nil, append([]string{"verify", files[i], "--network", "e2e"}, vals...)...)
		if code != 0 || !strings.HasPrefix(out, "ok: message "+m.ID().String()) {
			t.Fatalf("weft verify of node %d's proof: exit %d: %s%s", i, code, out, stderr)
		}
		t.Logf("node %d: %s", i, strings.TrimSpace(out))
	}

	// Each change fails verify with exit 1 and its reason.
	b, _ := os.ReadFile(files[0])
	doc, err := proof.ReadDocument(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Checkpoints) < 3 {
		t.Fatalf("node 0's proof has %d checkpoints", len(doc.Checkpoints))
	}
	changes := 0
	changed := func(change func(d *proof.Document)) string {
		d := *doc
		d.Message = append([]byte(nil), doc.Message...)
		d.Checkpoints = nil
		for _, a := range doc.Checkpoints {
			a.Checkpoint = append([]byte(nil), a.Checkpoint...)
			a.Path = append([]proof.Hash(nil), a.Path...)
			d.Checkpoints = append(d.Checkpoints, a)
		}
		change(&d)
		out, _ := json.Marshal(&d)
		changes++
		f := filepath.Join(dir, fmt.Sprintf("changed%d.json", changes))
		os.WriteFile(f, out, 0o600)
		return f
	}
	for _, c := range []struct {
		name   string
		file   string
		vals   []string
		reason string
	}{
		{"a payload byte", changed(func(d *proof.Document) { d.Message[dag.HeaderSize] ^= 1 }), vals,
			"proof: message: its ID is"},
		{"a payload byte, the ID made to match", changed(func(d *proof.Document) {
			d.Message[dag.HeaderSize] ^= 1
			d.ID = dag.ID(pow.Hash(d.Message))
		}), vals, "proof: invalid signature: the message's"},
		{"a path byte", changed(func(d *proof.Document) {
			if len(d.Checkpoints[1].Path) == 0 {
				d.Checkpoints[1].Leaf++
				return
			}
			d.Checkpoints[1].Path[0][5] ^= 0x10
		}), vals, "checkpoint 1: proof: path does not lead to the checkpoint's root"},
		{"a checkpoint's signature", changed(func(d *proof.Document) {
			cp := d.Checkpoints[2].Checkpoint
			cp[len(cp)-8-1] ^= 1 // the signature's last byte
			d.Checkpoints[2].ID = dag.ID(pow.Hash(cp))
		}), vals, "checkpoint 2: proof: invalid signature: the checkpoint's"},
		{"two of four validators", changed(func(d *proof.Document) { d.Checkpoints = d.Checkpoints[:2] }), vals,
			"proof: validators below the threshold: 2 distinct validators weigh 2 of 4, the threshold is 3"},
		{"a validator twice in the proof", changed(func(d *proof.Document) {
			d.Checkpoints = []proof.Attestation{d.Checkpoints[0], d.Checkpoints[1], d.Checkpoints[0]}
		}), vals, "2 distinct validators weigh 2 of 4"},
		{"a validator twice in the trusted set", changed(func(d *proof.Document) { d.Checkpoints = d.Checkpoints[:2] }),
			append(append([]string(nil), vals...), vals[0], vals[1]), "2 distinct validators weigh 2 of 4"},
		{"another network", files[0], vals, "proof: wrong network"},
	} {
		network := "e2e"
		if c.name == "another network" {
			network = "e2e-other"
		}
		out, stderr, code := weftOut(t, nil, append([]string{"verify", c.file, "--network", network}, c.vals...)...)
		if code != 1 || !strings.Contains(stderr, c.reason) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", c.name, code, out, stderr, c.reason)
		}
	}
}
