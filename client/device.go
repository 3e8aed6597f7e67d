package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// Device is what a constrained device does to put telemetry in the ledger:
// Send builds a message (asking the node for parents, the lowest
// timestamp, the difficulty and the network), signs it with Key, solves
// its proof of work and submits it.
//
// Set the exported fields before the first call and do not change them
// after. A Device must not be copied after first use.
//
// # Sequence numbers
//
// Each message carries the next number of a counter that starts, at the
// Device's first message, at the wall clock in unix nanoseconds. A device
// that restarts therefore continues above its earlier numbers, as long as
// it sent fewer than a billion messages a second and its clock did not step
// back; the node refuses a sequence number at or below one it already
// holds from the issuer (CodeStaleSequence).
//
// # Concurrency
//
// Build and Send are safe for concurrent use. Send submits one message at a
// time, in sequence order. Messages built concurrently with Build get
// distinct sequence numbers but may reach the node out of order, and the
// node then refuses the late lower ones.
type Device struct {
	// Key is the device's ed25519 private key; its public key is the
	// messages' issuer.
	Key ed25519.PrivateKey
	// Client is the node to ask and to submit to.
	Client *Client
	// Workers is the number of goroutines solving the proof of work
	// (0: all cores).
	Workers int
	// RemotePoW makes Build leave the proof of work undone (nonce 0) and
	// Send submit with Client.SubmitRemotePoW: the node does the work, for
	// the keys its operator lists.
	RemotePoW bool
	// Network, if set, is the name of the network the device belongs to:
	// Build refuses a node of another network.
	Network string
	// Now returns the current time (nil: time.Now).
	Now func() time.Time

	sendMu sync.Mutex // serialises Send

	mu      sync.Mutex // guards nextSeq
	nextSeq uint64     // 0: not started
}

// Build returns a new message carrying payload: its parents, network and
// lowest timestamp from the node's Tips, its timestamp the later of now
// and that lowest one, the Device's next sequence number, signed with Key
// and, unless RemotePoW, with its proof of work solved at the difficulty
// the node stated. It returns ctx.Err() if ctx ends first.
//
// A payload over the node's limit fails with an error wrapping
// dag.ErrTooLarge.
func (d *Device) Build(ctx context.Context, payload []byte) (*dag.Message, error) {
	if len(d.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("client: device has no ed25519 private key")
	}
	if d.Client == nil {
		return nil, errors.New("client: device has no client")
	}
	if len(payload) > dag.MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes, the encoding carries at most %d", dag.ErrTooLarge, len(payload), dag.MaxPayload)
	}
	tips, err := d.Client.Tips(ctx, len(payload))
	if err != nil {
		return nil, err
	}
	if d.Network != "" && tips.Network != d.Network {
		return nil, fmt.Errorf("%w: the node serves %q, the device belongs to %q", ErrWrongNetwork, tips.Network, d.Network)
	}
	if len(payload) > tips.MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes, the network's limit is %d", dag.ErrTooLarge, len(payload), tips.MaxPayload)
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	m := &dag.Message{
		Version:   dag.Version,
		Network:   tips.NetworkID,
		Parents:   tips.Parents,
		Seq:       d.takeSeq(now),
		Timestamp: max(now().UnixNano(), tips.MinTimestamp),
		Payload:   bytes.Clone(payload),
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	m.Sign(d.Key)
	if d.RemotePoW {
		return m, nil
	}
	enc := bytes.Clone(m.Bytes())
	n, err := pow.Solve(ctx, enc, tips.Difficulty, d.Workers)
	if err != nil {
		return nil, err
	}
	m.SetNonce(n)
	return m, nil
}

// takeSeq returns the next sequence number.
func (d *Device) takeSeq(now func() time.Time) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nextSeq == 0 {
		d.nextSeq = uint64(max(now().UnixNano(), 1))
	}
	s := d.nextSeq
	d.nextSeq++
	return s
}

// Send builds a message carrying payload (see Build), submits it, and
// returns its ID once the node has made it durable; an error wrapping
// ErrPending (with the ID) when the node holds it for its parents, as
// Client.Submit. The node's refusal is an *APIError. Sends are serialised, so that sequence numbers reach the
// node in order.
func (d *Device) Send(ctx context.Context, payload []byte) (dag.ID, error) {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	m, err := d.Build(ctx, payload)
	if err != nil {
		return dag.ID{}, err
	}
	if d.RemotePoW {
		id, _, err := d.Client.SubmitRemotePoW(ctx, m.Bytes())
		return id, err
	}
	return d.Client.Submit(ctx, m.Bytes())
}
