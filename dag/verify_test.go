package dag

import (
	stded25519 "crypto/ed25519"
	"encoding/hex"
	"errors"
	"testing"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Edge-case encodings. The identity point is (0, 1): canonically 01 00..00;
// y = p+1 = 2^255-18 encodes it non-canonically as ee ff..ff 7f.
var (
	identity         = mustHex("0100000000000000000000000000000000000000000000000000000000000000")
	identityNonCanon = mustHex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	zeroScalar       = make([]byte, 32)
	// orderL is the group order L, a non-canonical encoding of the scalar 0.
	orderL = mustHex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
)

// edge returns a message from issuer a with signature r || s.
func edge(a, r, s []byte) *Message {
	m := &Message{Version: Version, Network: 1, Payload: []byte("edge")}
	copy(m.Issuer[:], a)
	copy(m.Signature[:32], r)
	copy(m.Signature[32:], s)
	return m
}

// TestSignatureRule pins the network's one signature rule (ZIP-215) on the
// cases where ed25519 implementations disagree, and checks that the batch
// verifier and the single check give the same answer on each.
func TestSignatureRule(t *testing.T) {
	good := &Message{Version: Version, Network: 1, Payload: []byte("good")}
	good.Sign(key(5))
	cases := []struct {
		name  string
		m     *Message
		valid bool
		// stdlib says what crypto/ed25519 decides: where it differs from
		// valid, the case shows why the rule must be fixed by the protocol.
		stdlib bool
	}{
		{"ordinary signature", good, true, true},
		// Small-order key and R, S = 0: the cofactored equation holds.
		{"small order A and R", edge(identity, identity, zeroScalar), true, true},
		// A non-canonical R is accepted by ZIP-215; crypto/ed25519 compares
		// R's bytes with a canonical encoding and rejects it.
		{"non-canonical R", edge(identity, identityNonCanon, zeroScalar), true, false},
		{"non-canonical A", edge(identityNonCanon, identity, zeroScalar), true, true},
		// S must be canonical (S < L) everywhere.
		{"non-canonical S", edge(identity, identity, orderL), false, false},
	}
	for _, tc := range cases {
		if got := tc.m.VerifySignature(); got != tc.valid {
			t.Errorf("%s: VerifySignature = %v, want %v", tc.name, got, tc.valid)
		}
		if got := stded25519.Verify(tc.m.Issuer[:], tc.m.SigningBytes(), tc.m.Signature[:]); got != tc.stdlib {
			t.Errorf("%s: crypto/ed25519 = %v, the test expected %v", tc.name, got, tc.stdlib)
		}
	}
	// The batch, with every case in it, and each case alone.
	var msgs []*Message
	for _, tc := range cases {
		msgs = append(msgs, tc.m)
	}
	v := NewVerifier(nil, nil)
	errs := make([]error, len(msgs))
	v.Verify(msgs, errs)
	for i, tc := range cases {
		if (errs[i] == nil) != tc.valid {
			t.Errorf("%s: batch says %v, want valid=%v", tc.name, errs[i], tc.valid)
		}
		v.Verify(msgs[i:i+1], errs[:1])
		if (errs[0] == nil) != tc.valid {
			t.Errorf("%s: batch of one says %v, want valid=%v", tc.name, errs[0], tc.valid)
		}
	}
}

func TestBatchVerify(t *testing.T) {
	var msgs []*Message
	for i := 0; i < 64; i++ {
		m := &Message{Version: Version, Network: 1, Seq: uint64(i), Payload: []byte("batch")}
		m.Sign(key(i % 5))
		msgs = append(msgs, m)
	}
	v := NewVerifier(NewKeyCache(16), nil)
	errs := make([]error, len(msgs))
	v.Verify(msgs, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	// Break two signatures: exactly those two fail.
	bad := map[int]bool{3: true, 40: true}
	for i := range bad {
		m := *msgs[i]
		m.Signature[0] ^= 1
		m.invalidate()
		msgs[i] = &m
	}
	v.Verify(msgs, errs)
	for i, err := range errs {
		if bad[i] != errors.Is(err, ErrSignature) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}
