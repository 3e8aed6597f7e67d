package proof

import (
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/testseed"
)

var testNet = dag.NetworkIDFromName("weft-proof-test")

// keyOf returns the key with the 32-byte seed {n, n, ...}.
func keyOf(n byte) ed25519.PrivateKey {
	var seed [32]byte
	for i := range seed {
		seed[i] = n
	}
	return ed25519.NewKeyFromSeed(seed[:])
}

func pub(k ed25519.PrivateKey) dag.PublicKey { return dag.PublicKey(k.Public().(ed25519.PublicKey)) }

// fixture is a message and four validators' checkpoints over it.
type fixture struct {
	msg        *dag.Message
	validators []ed25519.PrivateKey
	trust      Trust
	doc        *Document
}

// newFixture signs a device message and, for each of four validators of
// weight 1, a checkpoint covering it among extra other ids.
func newFixture(t testing.TB, r *rand.Rand, extra int) *fixture {
	t.Helper()
	f := &fixture{trust: Trust{Network: testNet}}
	f.msg = &dag.Message{
		Version: dag.Version, Network: testNet, Seq: 7, Timestamp: 1_767_225_600_000_000_000,
		Payload: []byte(`{"temp_c":21.5}`),
	}
	f.msg.Sign(keyOf(200))
	f.doc = &Document{Version: DocumentVersion, ID: f.msg.ID(), Message: f.msg.Bytes()}
	for v := range 4 {
		key := keyOf(byte(v + 1))
		f.validators = append(f.validators, key)
		f.trust.Validators = append(f.trust.Validators, dag.Validator{Key: pub(key), Weight: 1})
		leaves := append(sortedIDs(r, extra), f.msg.ID())
		SortIDs(leaves)
		tree, err := NewTree(leaves)
		if err != nil {
			t.Fatal(err)
		}
		cp := Checkpoint{Index: 1, From: f.msg.Timestamp - 5e9, Count: uint32(len(leaves)), Root: tree.Root()}
		cm := &dag.Message{
			Version: dag.Version, Network: testNet, Parents: [2]dag.ID{f.msg.ID(), f.msg.ID()},
			Seq: 1, Timestamp: f.msg.Timestamp + 1e9, Payload: cp.Encode(),
		}
		cm.Sign(key)
		a, err := Attest(cm, leaves, tree, f.msg.ID())
		if err != nil {
			t.Fatal(err)
		}
		f.doc.Checkpoints = append(f.doc.Checkpoints, a)
	}
	return f
}

func rng(t testing.TB) *rand.Rand { return rand.New(rand.NewPCG(testseed.Seed(t), 0)) }

func TestVerify(t *testing.T) {
	f := newFixture(t, rng(t), 40)
	res, err := Verify(f.doc, f.trust)
	if err != nil {
		t.Fatal(err)
	}
	if res.Weight != 4 || res.Need != 3 || res.Total != 4 || len(res.Vouching) != 4 || res.Message.ID() != f.msg.ID() {
		t.Fatalf("result %+v", res)
	}
}

// TestVerifyThreshold: 3 of 4 equal validators reach 2/3, 2 do not, and a
// validator listed twice, in the proof or in the trusted set, counts once.
func TestVerifyThreshold(t *testing.T) {
	f := newFixture(t, rng(t), 3)
	cps := f.doc.Checkpoints
	for _, c := range []struct {
		name string
		cps  []Attestation
		ok   bool
	}{
		{"three", cps[:3], true},
		{"two", cps[:2], false},
		{"two and a repeat", []Attestation{cps[0], cps[1], cps[0]}, false},
		{"three and a repeat", []Attestation{cps[2], cps[0], cps[1], cps[2]}, true},
		{"none", nil, false},
	} {
		d := *f.doc
		d.Checkpoints = c.cps
		res, err := Verify(&d, f.trust)
		if c.ok != (err == nil) || (err != nil && !errors.Is(err, ErrThreshold)) {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.ok && res.Weight != 3 {
			t.Errorf("%s: weight %d, want 3", c.name, res.Weight)
		}
	}
	// The trusted set names the first validator twice: the total stays 4.
	trust := f.trust
	trust.Validators = append(trust.Validators, trust.Validators[0])
	d := *f.doc
	d.Checkpoints = cps[:2]
	if _, err := Verify(&d, trust); !errors.Is(err, ErrThreshold) {
		t.Errorf("validator listed twice in the trusted set: %v, want ErrThreshold", err)
	}
	trust.Validators[4].Weight = 5
	if _, err := Verify(f.doc, trust); !errors.Is(err, ErrTrust) {
		t.Errorf("validator listed twice with two weights: %v, want ErrTrust", err)
	}
	// Heavier validators: 1 + 1 of 1 + 1 + 3 + 1 is under 2/3 of 6.
	trust = f.trust
	trust.Validators = append([]dag.Validator(nil), f.trust.Validators...)
	trust.Validators[2].Weight = 3
	d.Checkpoints = []Attestation{cps[0], cps[1], cps[3]}
	if _, err := Verify(&d, trust); !errors.Is(err, ErrThreshold) {
		t.Errorf("weights 1+1+1 of 6: %v, want ErrThreshold", err)
	}
	d.Checkpoints = []Attestation{cps[0], cps[2]}
	if _, err := Verify(&d, trust); err != nil {
		t.Errorf("weights 1+3 of 6: %v", err)
	}
}

// TestVerifyUntrusted: a checkpoint by a key outside the trusted set, or
// from another network, fails.
func TestVerifyUntrusted(t *testing.T) {
	f := newFixture(t, rng(t), 3)
	trust := f.trust
	trust.Validators = trust.Validators[1:]
	if _, err := Verify(f.doc, trust); !errors.Is(err, ErrValidator) {
		t.Errorf("untrusted validator: %v, want ErrValidator", err)
	}
	trust = f.trust
	trust.Network = dag.NetworkIDFromName("another")
	if _, err := Verify(f.doc, trust); !errors.Is(err, ErrNetwork) {
		t.Errorf("another network: %v, want ErrNetwork", err)
	}
}

// flip returns b with bit k%8 of byte k/8 flipped.
func flip(b []byte, k int) []byte {
	c := append([]byte(nil), b...)
	c[k/8] ^= 1 << (k % 8)
	return c
}

// TestVerifyEveryByte changes every byte of the message, of a checkpoint
// and of a path (one bit each, the bit chosen at random) and checks that the
// proof fails, for the reason the byte's field gives.
func TestVerifyEveryByte(t *testing.T) {
	r := rng(t)
	f := newFixture(t, r, 5)
	check := func(what string, d *Document, want ...error) {
		t.Helper()
		_, err := Verify(d, f.trust)
		for _, w := range want {
			if errors.Is(err, w) {
				return
			}
		}
		t.Fatalf("%s: %v, want one of %v", what, err, want)
	}
	n := len(f.doc.Message)
	payloadEnd := dag.HeaderSize + len(f.msg.Payload)
	for i := range n {
		d := *f.doc
		d.Message = flip(f.doc.Message, 8*i+r.IntN(8))
		check("message byte", &d, ErrMessage) // its ID is no longer the document's
		// With the document's ID made to match, the field decides.
		if m, err := dag.Decode(d.Message, dag.MaxPayload); err == nil {
			d.ID = m.ID()
		}
		switch {
		case i == 0 || (i >= dag.OffsetTimestamp+8 && i < dag.HeaderSize):
			check("version or length", &d, ErrMessage)
		case i >= 1 && i < 9:
			check("network", &d, ErrNetwork)
		case i == dag.OffsetTimestamp:
			check("timestamp's top byte", &d, ErrMessage, ErrSignature)
		case i < payloadEnd+dag.SignatureSize:
			check("signed field or signature", &d, ErrSignature)
		default:
			check("nonce", &d, ErrPath) // unsigned, but the leaf is the ID
		}
	}
	for c := range f.doc.Checkpoints {
		cp := f.doc.Checkpoints[c].Checkpoint
		for i := range cp {
			d := *f.doc
			d.Checkpoints = append([]Attestation(nil), f.doc.Checkpoints...)
			d.Checkpoints[c].Checkpoint = flip(cp, 8*i+r.IntN(8))
			check("checkpoint byte", &d, ErrCheckpoint) // its ID is no longer the document's
			if m, err := dag.Decode(d.Checkpoints[c].Checkpoint, dag.MaxPayload); err == nil {
				d.Checkpoints[c].ID = m.ID()
			}
			switch {
			case i == 0 || (i >= dag.OffsetTimestamp+8 && i < dag.HeaderSize):
				check("checkpoint version or length", &d, ErrCheckpoint)
			case i >= 1 && i < 9:
				check("checkpoint network", &d, ErrNetwork)
			case i >= dag.OffsetIssuer && i < dag.OffsetSeq:
				check("checkpoint issuer", &d, ErrValidator)
			case i < len(cp)-8:
				check("checkpoint signed field or signature", &d, ErrSignature, ErrCheckpoint)
			default:
				// The nonce is not signed: a checkpoint with another nonce
				// commits to the same leaves, and the proof still holds.
				if _, err := Verify(&d, f.trust); err != nil {
					t.Fatalf("checkpoint nonce, ID updated: %v", err)
				}
			}
		}
		for k := range f.doc.Checkpoints[c].Path {
			for i := range 32 {
				d := *f.doc
				d.Checkpoints = append([]Attestation(nil), f.doc.Checkpoints...)
				path := append([]Hash(nil), d.Checkpoints[c].Path...)
				path[k] = Hash(flip(path[k][:], 8*i+r.IntN(8)))
				d.Checkpoints[c].Path = path
				check("path byte", &d, ErrPath)
			}
		}
		d := *f.doc
		d.Checkpoints = append([]Attestation(nil), f.doc.Checkpoints...)
		d.Checkpoints[c].Leaf ^= 1
		check("leaf index", &d, ErrPath)
	}
}

// TestVerifyRange: a checkpoint whose range does not hold the message's
// timestamp fails, even with a good path.
func TestVerifyRange(t *testing.T) {
	r := rng(t)
	f := newFixture(t, r, 2)
	leaves := []dag.ID{f.msg.ID()}
	tree, _ := NewTree(leaves)
	for _, c := range []struct {
		name     string
		from, ts int64
	}{
		{"from after the message", f.msg.Timestamp + 1, f.msg.Timestamp + 2},
		{"checkpoint before the message", f.msg.Timestamp - 2, f.msg.Timestamp - 1},
	} {
		cp := Checkpoint{Index: 1, From: c.from, Count: 1, Root: tree.Root()}
		cm := &dag.Message{Version: dag.Version, Network: testNet, Seq: 1, Timestamp: c.ts, Payload: cp.Encode()}
		cm.Sign(f.validators[0])
		a, _ := Attest(cm, leaves, tree, f.msg.ID())
		d := *f.doc
		d.Checkpoints = []Attestation{a, f.doc.Checkpoints[1], f.doc.Checkpoints[2]}
		if _, err := Verify(&d, f.trust); !errors.Is(err, ErrRange) {
			t.Errorf("%s: %v, want ErrRange", c.name, err)
		}
	}
}
