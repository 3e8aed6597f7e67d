package dag

import (
	stded25519 "crypto/ed25519"
	"encoding/binary"
	"sync"
	"testing"
	"time"
)

// testNet is the network of the core tests: no proof of work.
var testNet = Params{Network: NetworkIDFromName("test"), MaxPayload: DefaultMaxPayload}

// key derives a deterministic ed25519 key from a small number.
func key(n int) stded25519.PrivateKey {
	seed := make([]byte, stded25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(n)+1)
	return stded25519.NewKeyFromSeed(seed)
}

var pubs sync.Map // int -> PublicKey: deriving a key costs a scalar multiplication

func pub(n int) PublicKey {
	if k, ok := pubs.Load(n); ok {
		return k.(PublicKey)
	}
	var k PublicKey
	copy(k[:], key(n).Public().(stded25519.PublicKey))
	pubs.Store(n, k)
	return k
}

// msg builds an unsigned message: the core does not verify signatures, so
// its tests need none.
func msg(issuer PublicKey, seq uint64, ts int64, parents ...ID) *Message {
	m := &Message{Version: Version, Network: testNet.Network, Issuer: issuer, Seq: seq, Timestamp: ts}
	m.Parents[0] = parents[0]
	m.Parents[1] = parents[len(parents)-1]
	return m
}

// clock is a fake time source for the core.
type clock struct{ t time.Time }

func (c *clock) now() time.Time                    { return c.t }
func (c *clock) advance(d time.Duration) time.Time { c.t = c.t.Add(d); return c.t }

func newClock() *clock { return &clock{time.Unix(1_700_000_000, 0)} }

// validators returns n validators with the given weights (1 each if none).
func validators(n int, weights ...uint64) []Validator {
	vs := make([]Validator, n)
	for i := range vs {
		vs[i] = Validator{Key: pub(100 + i), Weight: 1}
		if i < len(weights) {
			vs[i].Weight = weights[i]
		}
	}
	return vs
}

func newCoreT(t testing.TB, cfg Config) *Core {
	t.Helper()
	if cfg.Params == (Params{}) {
		cfg.Params = testNet
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Ready() // genesis
	return c
}

func mustAdd(t testing.TB, c *Core, now time.Time, m *Message, want Status) {
	t.Helper()
	got, err := c.Add(now, m)
	if got != want {
		t.Fatalf("Add(%s): status %v (err %v), want %v", m.ID().String()[:8], got, err, want)
	}
}

func ids(u []SolidMessage) []ID {
	var out []ID
	for _, s := range u {
		out = append(out, s.Msg.ID())
	}
	return out
}

func confirmedIDs(u []Confirmation) map[ID]bool {
	out := map[ID]bool{}
	for _, c := range u {
		out[c.ID] = true
	}
	return out
}
