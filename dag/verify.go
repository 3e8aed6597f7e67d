package dag

import (
	"context"
	stded25519 "crypto/ed25519"
	"fmt"
	"io"

	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/cache"

	"github.com/weftnet/weft/pow"
)

// zip215 is the one signature rule of the network: ZIP-215 semantics
// (cofactored equation, non-canonical point encodings of A and R accepted,
// S must be canonical), for single and batched verification alike. Batch
// verification is only sound with a cofactored rule, and if single and batch
// checks differed, two nodes could disagree on an edge-case signature and
// split. docs/PROTOCOL.md states the rule; verify_test.go pins edge cases.
var zip215 = &ed25519.Options{Verify: ed25519.VerifyOptionsZIP_215}

// Params are a network's validity parameters. Every node of a network must
// use the same ones: unlike local policy, they decide what is valid.
type Params struct {
	Network NetworkID
	// MaxPayload is the payload limit in bytes, 1..MaxPayload.
	MaxPayload int
	// PoWBase is the base difficulty of pow.Difficulty; 0 turns proof of
	// work off (for tests and private networks).
	PoWBase int
}

// DefaultParams returns the default parameters for a network.
func DefaultParams(network NetworkID) Params {
	return Params{Network: network, MaxPayload: DefaultMaxPayload, PoWBase: pow.DefaultBase}
}

// Validate reports whether p is usable.
func (p Params) Validate() error {
	if p.MaxPayload < 1 || p.MaxPayload > MaxPayload {
		return fmt.Errorf("dag: max payload %d out of range 1..%d", p.MaxPayload, MaxPayload)
	}
	if p.PoWBase < 0 || pow.Difficulty(MinSize+p.MaxPayload, p.PoWBase) > pow.MaxDifficulty {
		return fmt.Errorf("dag: proof-of-work base %d out of range", p.PoWBase)
	}
	return nil
}

// Difficulty returns the leading zero bits a message of size bytes needs:
// pow.Difficulty(size, PoWBase), or 0 for every size when PoWBase is 0.
func (p Params) Difficulty(size int) int {
	if p.PoWBase == 0 {
		return 0
	}
	return pow.Difficulty(size, p.PoWBase)
}

// Decode decodes b with the network's payload limit. See the function Decode.
func (p Params) Decode(b []byte) (*Message, error) { return Decode(b, p.MaxPayload) }

// CheckCheap runs the checks that cost a hash or less: network and proof of
// work. Use it before the signature, which costs a hundred times more.
func (p Params) CheckCheap(m *Message) error {
	if m.Network != p.Network {
		return fmt.Errorf("%w: %016x, this network is %016x", ErrNetwork, uint64(m.Network), uint64(p.Network))
	}
	if d := p.Difficulty(m.Size()); !pow.Meets(m.ID(), d) {
		return fmt.Errorf("%w: %d leading zero bits, %d needed", ErrPoW, pow.LeadingZeros(m.ID()), d)
	}
	return nil
}

// Check runs every check that depends on the message's bytes alone: network,
// proof of work and signature. What depends on its parents (the timestamp
// rule) is the Core's. Check is safe for concurrent use.
func (p Params) Check(m *Message) error {
	if err := p.CheckCheap(m); err != nil {
		return err
	}
	if !m.VerifySignature() {
		return ErrSignature
	}
	return nil
}

// Sign sets the issuer to key's public key and signs the message. It leaves
// the nonce alone: solve the proof of work afterwards (see Solve).
func (m *Message) Sign(key stded25519.PrivateKey) {
	copy(m.Issuer[:], key.Public().(stded25519.PublicKey))
	m.invalidate()
	copy(m.Signature[:], stded25519.Sign(key, m.SigningBytes()))
	m.invalidate()
}

// VerifySignature reports whether the issuer's signature is valid under the
// network's rule (ZIP-215). It is safe for concurrent use.
func (m *Message) VerifySignature() bool {
	return ed25519.VerifyWithOptions(m.Issuer[:], m.SigningBytes(), m.Signature[:], zip215)
}

// Verifier checks signatures in batches, which costs about a third of
// checking them one by one, and caches the expanded public keys of recent
// issuers. The rule is the same ZIP-215 rule as VerifySignature: a batch
// never accepts what a single check rejects, or the reverse.
//
// A Verifier is not safe for concurrent use; give each worker its own (the
// key cache may be shared through NewVerifierCache).
type Verifier struct {
	keys  *cache.Verifier
	batch *ed25519.BatchVerifier
	rand  io.Reader
}

// KeyCache is a bounded cache of expanded public keys, safe for concurrent use.
type KeyCache struct{ c cache.Cache }

// NewKeyCache returns a cache holding the expanded keys of up to n issuers.
func NewKeyCache(n int) *KeyCache {
	if n < 1 {
		n = 1
	}
	return &KeyCache{cache.NewLRUCache(n)}
}

// NewVerifier returns a Verifier using keys (nil: a private cache of 4096
// keys) and rand for the batch's random scalars (nil: crypto/rand).
func NewVerifier(keys *KeyCache, rand io.Reader) *Verifier {
	if keys == nil {
		keys = NewKeyCache(4096)
	}
	return &Verifier{keys: cache.NewVerifier(keys.c), batch: ed25519.NewBatchVerifier(), rand: rand}
}

// Verify checks the signatures of msgs and sets errs[i] to ErrSignature for
// each one that fails, nil otherwise. errs must be as long as msgs.
func (v *Verifier) Verify(msgs []*Message, errs []error) {
	if len(msgs) == 0 {
		return
	}
	if len(msgs) == 1 {
		// A batch of one costs more than a single check.
		errs[0] = nil
		if !v.keys.VerifyWithOptions(msgs[0].Issuer[:], msgs[0].SigningBytes(), msgs[0].Signature[:], zip215) {
			errs[0] = ErrSignature
		}
		return
	}
	v.batch.Reset()
	for _, m := range msgs {
		v.keys.AddWithOptions(v.batch, m.Issuer[:], m.SigningBytes(), m.Signature[:], zip215)
	}
	ok, valid := v.batch.Verify(v.rand)
	for i := range msgs {
		errs[i] = nil
		if !ok && !valid[i] {
			errs[i] = ErrSignature
		}
	}
}

// Solve does the proof of work: it finds a nonce that gives the message the
// leading zero bits p asks for its size, using workers goroutines (0: all
// cores). It returns ctx.Err() if ctx ends first. Sign first: the nonce is
// the one field the signature leaves out.
func (m *Message) Solve(ctx context.Context, p Params, workers int) error {
	enc := m.Bytes()
	n, err := pow.Solve(ctx, enc, p.Difficulty(len(enc)), workers)
	if err != nil {
		return err
	}
	m.Nonce = n
	m.hasID = false
	return nil
}
