package proof

import (
	"errors"
	"fmt"

	"github.com/weftnet/weft/dag"
)

// Trust is what a verifier brings to a proof: the network and its
// validator set with their weights, and the confirmation threshold.
type Trust struct {
	Network    dag.NetworkID
	Validators []dag.Validator
	// ThresholdNum/ThresholdDen is the share of the total weight that
	// confirms. Zero: 2/3, the network default.
	ThresholdNum, ThresholdDen uint64
}

// Reasons a proof fails, beside ErrDocument, ErrCheckpoint and ErrPath.
// Verify wraps each in an *Error.
var (
	// ErrMessage: the proven message does not decode, or its ID is not the
	// one the document claims.
	ErrMessage = errors.New("proof: message")
	// ErrNetwork: a message or checkpoint of another network.
	ErrNetwork = errors.New("proof: wrong network")
	// ErrSignature: a signature does not verify (ZIP-215, PROTOCOL.md 3).
	ErrSignature = errors.New("proof: invalid signature")
	// ErrValidator: a checkpoint's issuer is not a trusted validator, or not
	// the validator the document names.
	ErrValidator = errors.New("proof: not a trusted validator")
	// ErrRange: the message's timestamp is outside the checkpoint's range.
	ErrRange = errors.New("proof: message outside the checkpoint's range")
	// ErrThreshold: the distinct validators that vouch weigh less than the
	// threshold.
	ErrThreshold = errors.New("proof: validators below the threshold")
	// ErrTrust: the Trust itself is unusable.
	ErrTrust = errors.New("proof: bad validator set")
)

// Error says why a proof failed and where: Checkpoint is the index of the
// failing entry of Document.Checkpoints, -1 for the document as a whole.
type Error struct {
	Checkpoint int
	Err        error // the reason: one of the package's Err values, wrapped with detail
}

func (e *Error) Error() string {
	if e.Checkpoint < 0 {
		return e.Err.Error()
	}
	return fmt.Sprintf("checkpoint %d: %v", e.Checkpoint, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Result is what a proof that verifies shows.
type Result struct {
	Message *dag.Message
	// Vouching are the distinct trusted validators whose checkpoints cover
	// the message, in document order.
	Vouching []dag.PublicKey
	// Weight is their summed weight; Need is the threshold's; Total the
	// validator set's.
	Weight, Need, Total uint64
}

// Verify checks a proof against trust, offline: the message decodes, is of
// the network, its ID is the document's and its issuer's signature holds;
// every checkpoint has the ID the document gives, is a message of the
// network signed by the trusted
// validator the document names, with a checkpoint payload whose range holds
// the message's timestamp, and the path leads from the message's leaf to
// its root; and the distinct validators weigh at least the threshold. A
// validator named twice counts once. Any entry that fails fails the proof:
// the error is an *Error wrapping the reason. Proof of work is not checked:
// it is a price of admission, not a claim of the proof.
func Verify(d *Document, trust Trust) (Result, error) {
	weights, need, total, err := trust.weights()
	if err != nil {
		return Result{}, &Error{-1, err}
	}
	fail := func(i int, err error) (Result, error) { return Result{}, &Error{i, err} }

	m, err := dag.Decode(d.Message, dag.MaxPayload)
	if err != nil {
		return fail(-1, fmt.Errorf("%w: %v", ErrMessage, err))
	}
	if m.ID() != d.ID {
		return fail(-1, fmt.Errorf("%w: its ID is %s, the document says %s", ErrMessage, m.ID(), d.ID))
	}
	if m.Network != trust.Network {
		return fail(-1, fmt.Errorf("%w: the message is of network %016x, not %016x", ErrNetwork, uint64(m.Network), uint64(trust.Network)))
	}
	if !m.VerifySignature() {
		return fail(-1, fmt.Errorf("%w: the message's, by issuer %s", ErrSignature, m.Issuer))
	}

	res := Result{Message: m, Need: need, Total: total}
	seen := make(map[dag.PublicKey]bool, len(d.Checkpoints))
	for i, a := range d.Checkpoints {
		if err := verifyAttestation(m, a, trust.Network, weights); err != nil {
			return fail(i, err)
		}
		if !seen[a.Validator] {
			seen[a.Validator] = true
			res.Vouching = append(res.Vouching, a.Validator)
			res.Weight += weights[a.Validator]
		}
	}
	if res.Weight < need {
		return fail(-1, fmt.Errorf("%w: %d distinct validators weigh %d of %d, the threshold is %d",
			ErrThreshold, len(res.Vouching), res.Weight, total, need))
	}
	return res, nil
}

func verifyAttestation(m *dag.Message, a Attestation, network dag.NetworkID, weights map[dag.PublicKey]uint64) error {
	if _, ok := weights[a.Validator]; !ok {
		return fmt.Errorf("%w: %s", ErrValidator, a.Validator)
	}
	c, err := dag.Decode(a.Checkpoint, dag.MaxPayload)
	if err != nil {
		return fmt.Errorf("%w: the checkpoint message: %v", ErrCheckpoint, err)
	}
	if c.ID() != a.ID {
		return fmt.Errorf("%w: the checkpoint's ID is %s, the document says %s", ErrCheckpoint, c.ID(), a.ID)
	}
	if c.Issuer != a.Validator {
		return fmt.Errorf("%w: the checkpoint is issued by %s, the document says %s", ErrValidator, c.Issuer, a.Validator)
	}
	if c.Network != network {
		return fmt.Errorf("%w: the checkpoint is of network %016x, not %016x", ErrNetwork, uint64(c.Network), uint64(network))
	}
	if !c.VerifySignature() {
		return fmt.Errorf("%w: the checkpoint's, by validator %s", ErrSignature, c.Issuer)
	}
	cp, err := DecodeCheckpoint(c.Payload)
	if err != nil {
		return err
	}
	if m.Timestamp < cp.From || m.Timestamp > c.Timestamp {
		return fmt.Errorf("%w: timestamp %d, the checkpoint covers %d to %d", ErrRange, m.Timestamp, cp.From, c.Timestamp)
	}
	return VerifyPath(m.ID(), a.Leaf, uint64(cp.Count), a.Path, cp.Root)
}

// weights returns the validators' weights by key, the weight that confirms
// and the total. A key listed twice with one weight counts once.
func (t Trust) weights() (map[dag.PublicKey]uint64, uint64, uint64, error) {
	num, den := t.ThresholdNum, t.ThresholdDen
	if num == 0 && den == 0 {
		num, den = 2, 3
	}
	if num == 0 || den == 0 || num > den || den > 1<<20 {
		return nil, 0, 0, fmt.Errorf("%w: threshold %d/%d", ErrTrust, num, den)
	}
	if len(t.Validators) == 0 || len(t.Validators) > dag.MaxValidators {
		return nil, 0, 0, fmt.Errorf("%w: %d validators, want 1..%d", ErrTrust, len(t.Validators), dag.MaxValidators)
	}
	w := make(map[dag.PublicKey]uint64, len(t.Validators))
	var total uint64
	for _, v := range t.Validators {
		if v.Weight == 0 || v.Weight > 1<<32 {
			return nil, 0, 0, fmt.Errorf("%w: validator %s has weight %d, want 1..2^32", ErrTrust, v.Key, v.Weight)
		}
		if old, ok := w[v.Key]; ok {
			if old != v.Weight {
				return nil, 0, 0, fmt.Errorf("%w: validator %s listed with weights %d and %d", ErrTrust, v.Key, old, v.Weight)
			}
			continue
		}
		w[v.Key] = v.Weight
		total += v.Weight
	}
	return w, (total*num + den - 1) / den, total, nil
}
