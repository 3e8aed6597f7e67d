// Package msggen builds messages ahead of a benchmark: signed, solved, and
// grown on a DAG of their own from the network's genesis, so that a node
// fed them in order finds every parent before its children.
package msggen

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/tipselect"
)

// Devices is the number of issuers the messages come from.
const Devices = 1000

// DAG returns n messages with payload-byte payloads from Devices devices
// (keys derived from seed), in an order a node can take them: each one's
// parents are two tips drawn uniformly from a generator core's pool.
// Timestamps start at now and step by a nanosecond; sequence numbers count
// from 1 per device. The proof of work meets params' difficulty. Every
// message carries the same payload, payload bytes of 't'.
func DAG(params dag.Params, n, payload int, seed uint64) ([]*dag.Message, error) {
	body := make([]byte, payload)
	for i := range body {
		body[i] = 't'
	}
	return DAGWith(params, n, seed, func(int) []byte { return body })
}

// DAGWith is DAG with message i's payload from payload(i), called once per
// message, in order, on the calling goroutine. The message keeps the slice
// it returns.
func DAGWith(params dag.Params, n int, seed uint64, payload func(i int) []byte) ([]*dag.Message, error) {
	var v dag.PublicKey
	gen, err := dag.New(dag.Config{Params: params, Validators: []dag.Validator{{Key: v, Weight: 1}}, MaxTips: 256})
	if err != nil {
		return nil, err
	}
	sel := tipselect.NewUniform(gen.TipPool())
	r := rand.New(rand.NewPCG(seed, 0x6d7367))
	keys := make([]ed25519.PrivateKey, Devices)
	for i := range keys {
		s := make([]byte, ed25519.SeedSize)
		binary.BigEndian.PutUint64(s, seed)
		binary.BigEndian.PutUint32(s[8:], uint32(i))
		keys[i] = ed25519.NewKeyFromSeed(s)
	}
	now := time.Now()
	out := make([]*dag.Message, n)
	for i := range out {
		a, b, _ := sel.Select(r)
		m := &dag.Message{Version: dag.Version, Network: params.Network, Parents: [2]dag.ID{a, b},
			Seq: uint64(i/Devices + 1), Timestamp: now.UnixNano() + int64(i), Payload: payload(i)}
		m.Sign(keys[i%Devices])
		if err := m.Solve(context.Background(), params, 1); err != nil {
			return nil, err
		}
		if st, err := gen.Add(now, m); st != dag.Solid {
			return nil, fmt.Errorf("msggen: message %d: %v %v", i, st, err)
		}
		gen.Ready()
		out[i] = m
	}
	return out, nil
}
