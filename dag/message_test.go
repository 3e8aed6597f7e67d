package dag

import (
	"bytes"
	"context"
	stded25519 "crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/weftnet/weft/pow"
)

// signed returns a signed message with a payload of n bytes on params' network,
// with its proof of work solved.
func signed(t testing.TB, p Params, n int) *Message {
	t.Helper()
	m := &Message{
		Version: Version, Network: p.Network, Seq: 7, Timestamp: 1_700_000_000_000_000_000,
		Payload: bytes.Repeat([]byte{0xab}, n),
	}
	m.Parents[0][0], m.Parents[1][0] = 1, 2
	m.Sign(key(1))
	if err := m.Solve(context.Background(), p, 1); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	p := DefaultParams(NetworkIDFromName("roundtrip"))
	p.PoWBase = 4
	for _, n := range []int{0, 1, 100, p.MaxPayload} {
		m := signed(t, p, n)
		enc := m.Bytes()
		if len(enc) != MinSize+n || m.Size() != len(enc) {
			t.Fatalf("payload %d: encoding %d bytes", n, len(enc))
		}
		d, err := p.Decode(bytes.Clone(enc))
		if err != nil {
			t.Fatalf("payload %d: %v", n, err)
		}
		if d.ID() != m.ID() || !bytes.Equal(d.Bytes(), enc) {
			t.Fatalf("payload %d: round trip changed the message", n)
		}
		if d.Network != m.Network || d.Parents != m.Parents || d.Issuer != m.Issuer || d.Seq != m.Seq ||
			d.Timestamp != m.Timestamp || !bytes.Equal(d.Payload, m.Payload) || d.Signature != m.Signature || d.Nonce != m.Nonce {
			t.Fatalf("payload %d: fields differ: %+v vs %+v", n, d, m)
		}
		if err := p.Check(d); err != nil {
			t.Fatalf("payload %d: %v", n, err)
		}
		// Re-encoding the decoded fields gives the same bytes.
		if !bytes.Equal(d.AppendEncoding(nil), enc) {
			t.Fatalf("payload %d: re-encoding differs", n)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	p := DefaultParams(NetworkIDFromName("reject"))
	good := signed(t, Params{Network: p.Network, MaxPayload: p.MaxPayload}, 10).Bytes()
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"one byte", []byte{Version}, ErrMalformed},
		{"truncated header", good[:HeaderSize], ErrMalformed},
		{"truncated by one", good[:len(good)-1], ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), ErrMalformed},
		{"version 0", edit(func(b []byte) []byte { b[0] = 0; return b }), ErrVersion},
		{"version 2", edit(func(b []byte) []byte { b[0] = 2; return b }), ErrVersion},
		{"length says more", edit(func(b []byte) []byte { b[offLen+1]++; return b }), ErrMalformed},
		{"length says less", edit(func(b []byte) []byte { b[offLen+1]--; return b }), ErrMalformed},
		{"oversize", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[offLen:], uint16(p.MaxPayload+1))
			return append(b, make([]byte, p.MaxPayload+1-10)...)
		}), ErrTooLarge},
		{"max length field", edit(func(b []byte) []byte { binary.BigEndian.PutUint16(b[offLen:], 0xffff); return b }), ErrTooLarge},
		{"negative timestamp", edit(func(b []byte) []byte { b[offTime] = 0x80; return b }), ErrMalformed},
	} {
		m, err := p.Decode(tc.b)
		if !errors.Is(err, tc.want) || m != nil {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	p := DefaultParams(NetworkIDFromName("check"))
	p.PoWBase = 8
	good := signed(t, p, 10)
	if err := p.Check(good); err != nil {
		t.Fatal(err)
	}
	decode := func(b []byte) *Message {
		m, err := p.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	flip := func(off int) *Message {
		b := bytes.Clone(good.Bytes())
		b[off] ^= 1
		return decode(b)
	}
	other := p
	other.Network++
	for _, tc := range []struct {
		name string
		p    Params
		m    *Message
		want error
	}{
		{"wrong network", other, good, ErrNetwork},
		// Changing a signed byte breaks the signature, and almost surely the
		// proof of work too, which is checked first.
		{"payload changed", p, flip(HeaderSize), ErrPoW},
		{"nonce changed", p, flip(len(good.Bytes()) - 1), ErrPoW},
	} {
		if err := tc.p.Check(tc.m); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}

	// Without proof of work, a changed payload is caught by the signature,
	// and a changed nonce is not (the nonce is not signed).
	free := Params{Network: p.Network, MaxPayload: p.MaxPayload}
	if err := free.Check(flip(HeaderSize)); !errors.Is(err, ErrSignature) {
		t.Errorf("payload changed, no pow: %v", err)
	}
	if err := free.Check(flip(len(good.Bytes()) - 1)); err != nil {
		t.Errorf("nonce changed, no pow: %v", err)
	}
	if err := free.Check(flip(HeaderSize + 10)); !errors.Is(err, ErrSignature) {
		t.Errorf("signature changed: %v", err)
	}
}

func TestSolveMeetsDifficulty(t *testing.T) {
	p := DefaultParams(NetworkIDFromName("pow"))
	p.PoWBase = 6
	for _, n := range []int{0, 100, 700} {
		m := signed(t, p, n)
		if lz, d := pow.LeadingZeros(m.ID()), p.Difficulty(m.Size()); lz < d {
			t.Fatalf("payload %d: %d zero bits, %d needed", n, lz, d)
		}
		if !m.VerifySignature() {
			t.Fatalf("solving broke the signature")
		}
	}
}

func TestGenesis(t *testing.T) {
	a, b := Genesis(NetworkIDFromName("x")), Genesis(NetworkIDFromName("x"))
	if a.ID() != b.ID() {
		t.Fatal("genesis differs between two derivations")
	}
	if Genesis(NetworkIDFromName("y")).ID() == a.ID() {
		t.Fatal("two networks share a genesis")
	}
	if _, err := Decode(a.Bytes(), 0); err != nil {
		t.Fatalf("genesis does not decode: %v", err)
	}
}

func TestParseID(t *testing.T) {
	id := ID{1, 2, 3}
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("%v %v", got, err)
	}
	for _, s := range []string{"", "zz", id.String()[:63], id.String() + "0", "g" + id.String()[1:]} {
		if _, err := ParseID(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseID(%q): %v", s, err)
		}
	}
}

func TestSignSetsIssuer(t *testing.T) {
	m := &Message{Version: Version, Network: 1}
	m.Sign(key(3))
	if m.Issuer != pub(3) || !m.VerifySignature() {
		t.Fatal("Sign did not set the issuer or the signature")
	}
	if !stded25519.Verify(key(3).Public().(stded25519.PublicKey), m.SigningBytes(), m.Signature[:]) {
		t.Fatal("crypto/ed25519 rejects an ordinary signature")
	}
}

func TestNoPoW(t *testing.T) {
	p := Params{Network: 1, MaxPayload: DefaultMaxPayload}
	for _, size := range []int{MinSize, 300, 2000} {
		if d := p.Difficulty(size); d != 0 {
			t.Fatalf("base 0, size %d: difficulty %d", size, d)
		}
	}
	p.PoWBase = 1
	if d := p.Difficulty(300); d != 2 {
		t.Fatalf("base 1, size 300: difficulty %d", d)
	}
}
