package dag

import (
	"bufio"
	"bytes"
	"context"
	stded25519 "crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/weftnet/weft/pow"
)

// vector is one test vector of docs/PROTOCOL.md, field by field.
type vector map[string]string

// protocolVectors reads the ```vector blocks of docs/PROTOCOL.md.
func protocolVectors(t *testing.T) []vector {
	f, err := os.Open("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vector
	var cur vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "```vector":
			cur = vector{}
		case line == "```" && cur != nil:
			out = append(out, cur)
			cur = nil
		case cur != nil:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				t.Fatalf("bad vector line %q", line)
			}
			cur[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

func (v vector) bytes(t *testing.T, k string) []byte {
	b, err := hex.DecodeString(v[k])
	if err != nil {
		t.Fatalf("vector %s: field %s: %v", v["name"], k, err)
	}
	return b
}

func (v vector) uint(t *testing.T, k string) uint64 {
	n, err := strconv.ParseUint(v[k], 10, 64)
	if err != nil {
		t.Fatalf("vector %s: field %s: %v", v["name"], k, err)
	}
	return n
}

// TestProtocolVectors rebuilds every message of docs/PROTOCOL.md from its
// fields and the key's seed and checks the document's encoding, signature,
// ID and proof of work against the code, so the two cannot drift apart.
func TestProtocolVectors(t *testing.T) {
	vs := protocolVectors(t)
	if len(vs) < 3 {
		t.Fatalf("found %d vectors in PROTOCOL.md, want at least 3", len(vs))
	}
	for _, v := range vs {
		t.Run(v["name"], func(t *testing.T) {
			network := NetworkIDFromName(v["network"])
			if got := fmt.Sprintf("%016x", uint64(network)); got != v["network_id"] {
				t.Fatalf("network id %s, document says %s", got, v["network_id"])
			}
			var m *Message
			if v["name"] == "genesis" {
				m = Genesis(network)
			} else {
				key := stded25519.NewKeyFromSeed(v.bytes(t, "seed"))
				m = &Message{Version: Version, Network: network, Seq: v.uint(t, "seq"),
					Timestamp: int64(v.uint(t, "timestamp")), Payload: v.bytes(t, "payload")}
				copy(m.Parents[0][:], v.bytes(t, "parent0"))
				copy(m.Parents[1][:], v.bytes(t, "parent1"))
				m.Sign(key)
				if got := hex.EncodeToString(m.Issuer[:]); got != v["issuer"] {
					t.Fatalf("issuer %s, document says %s", got, v["issuer"])
				}
				if got := hex.EncodeToString(m.SigningBytes()); got != v["signed"] {
					t.Fatalf("signed bytes\n%s\ndocument says\n%s", got, v["signed"])
				}
				if got := hex.EncodeToString(m.Signature[:]); got != v["signature"] {
					t.Fatalf("signature %s, document says %s", got, v["signature"])
				}
				m.SetNonce(v.uint(t, "nonce"))
			}
			if got := hex.EncodeToString(m.Bytes()); got != v["encoding"] {
				t.Fatalf("encoding\n%s\ndocument says\n%s", got, v["encoding"])
			}
			if got := m.ID().String(); got != v["id"] {
				t.Fatalf("id %s, document says %s", got, v["id"])
			}
			if v["name"] == "genesis" {
				return
			}
			base := int(v.uint(t, "pow_base"))
			d := pow.Difficulty(m.Size(), base)
			if strconv.Itoa(d) != v["difficulty"] {
				t.Fatalf("difficulty %d, document says %s", d, v["difficulty"])
			}
			// The document's nonce is the first one counting up from 0.
			probe := *m
			for k := uint64(0); k < v.uint(t, "nonce"); k++ {
				probe.SetNonce(k)
				if pow.Meets(probe.ID(), d) {
					t.Fatalf("nonce %d meets difficulty %d already; the document says %s, the first from 0", k, d, v["nonce"])
				}
			}
			p := Params{Network: network, MaxPayload: DefaultMaxPayload, PoWBase: base}
			dm, err := p.Decode(v.bytes(t, "encoding"))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Check(dm); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGenerateVectors prints the vectors for docs/PROTOCOL.md. Run it with
// WEFT_GEN_VECTORS=1 after a deliberate change of the format.
func TestGenerateVectors(t *testing.T) {
	if os.Getenv("WEFT_GEN_VECTORS") == "" {
		t.Skip("set WEFT_GEN_VECTORS=1 to print the vectors")
	}
	network := NetworkIDFromName("weft-testnet")
	g := Genesis(network)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "```vector\nname: genesis\nnetwork: weft-testnet\nnetwork_id: %016x\nencoding: %x\nid: %s\n```\n\n",
		uint64(network), g.Bytes(), g.ID())
	seed1, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
	seed2, _ := hex.DecodeString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
	cases := []struct {
		name    string
		seed    []byte
		seq     uint64
		ts      int64
		payload []byte
		parents [2]ID
	}{
		{"telemetry", seed1, 1, 1767225600000000000, []byte(`{"sensor":"t-17","temp_c":21.5,"rh":40.2}`), [2]ID{g.ID(), g.ID()}},
		{"large", seed2, 42, 1767225601500000000, bytes.Repeat([]byte{0x5a}, 300), [2]ID{g.ID(), {0x01, 0x02, 0x03}}},
	}
	for _, c := range cases {
		key := stded25519.NewKeyFromSeed(c.seed)
		m := &Message{Version: Version, Network: network, Parents: c.parents, Seq: c.seq, Timestamp: c.ts, Payload: c.payload}
		m.Sign(key)
		p := Params{Network: network, MaxPayload: DefaultMaxPayload, PoWBase: pow.DefaultBase}
		if err := m.Solve(context.Background(), p, 1); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&buf, "```vector\nname: %s\nnetwork: weft-testnet\nnetwork_id: %016x\nseed: %x\nissuer: %x\n", c.name, uint64(network), c.seed, m.Issuer[:])
		fmt.Fprintf(&buf, "parent0: %x\nparent1: %x\nseq: %d\ntimestamp: %d\npayload: %x\n", m.Parents[0][:], m.Parents[1][:], m.Seq, m.Timestamp, m.Payload)
		fmt.Fprintf(&buf, "signed: %x\nsignature: %x\nnonce: %d\npow_base: %d\ndifficulty: %d\nencoding: %x\nid: %s\n```\n\n",
			m.SigningBytes(), m.Signature[:], m.Nonce, p.PoWBase, p.Difficulty(m.Size()), m.Bytes(), m.ID())
	}
	fmt.Print(buf.String())
}
