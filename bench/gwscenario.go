package bench

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/dag"
)

// gateway runs the Gateway scenario: a Fleet of Config.Clients gateways
// for Config.Devices devices loads the node, and its messages are
// measured from their first submission; resends and rebuilds happen
// inside that time.
func (r *run) gateway(ctx context.Context) error {
	cfg := r.cfg
	keys := make([]dag.PublicKey, cfg.Devices)
	for d := range keys {
		copy(keys[d][:], ed25519.NewKeyFromSeed(deriveSeed("device", cfg.Seed, d))[32:])
	}
	stopFollow, err := r.follow(ctx, keys)
	if err != nil {
		return err
	}
	r.res.LatencyFrom = "the message's first submission, after the gateway built, signed and solved it on fresh tips (its resends count)"
	r.status("load: %s", loadDesc(cfg))
	var measuring atomic.Bool
	var taken atomic.Uint64 // measured messages, against cfg.Messages
	measuring.Store(true)
	counts := func(measured bool) *counts {
		if measured {
			return r.cnt
		}
		return r.cool
	}
	f := &Fleet{Node: r.t.urls[0], Gateways: cfg.Clients, Devices: cfg.Devices, Batch: cfg.Batch, Rate: cfg.Rate,
		Linger: cfg.Linger, Payload: cfg.Payload, JSONPayload: cfg.JSONPayload, Seed: cfg.Seed, HTTPClient: &http.Client{Timeout: 30 * time.Second}}
	if r.acks != nil {
		f.OnAck = func(a Ack) { r.acks.add(0, a) }
	}
	f.obs = &fleetObserver{
		sent: func(dev int, id dag.ID, seq uint64, at time.Time) bool {
			if !measuring.Load() || cfg.Messages > 0 && taken.Add(1) > uint64(cfg.Messages) {
				r.cool.offered.Add(1)
				return false
			}
			r.tr.add(id, at.UnixNano(), 0)
			if r.poll.sampled(dev) {
				r.poll.add(dev, id, seq, at.UnixNano())
			}
			r.cnt.offered.Add(1)
			return true
		},
		acked: func(_ dag.ID, measured bool) { counts(measured).accepted.Add(1) },
		dropped: func(id dag.ID, measured bool, code string) {
			if measured {
				r.tr.drop(id)
				r.poll.drop(id)
			}
			counts(measured).reject(code, 1)
		},
	}
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	r.measure(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(loadCtx) }()
	answered := func() bool { return r.cnt.answered() >= r.cnt.offered.Load() }
	r.waitLoad(ctx, cfg.Duration, func() bool {
		return cfg.Messages > 0 && taken.Load() >= uint64(cfg.Messages) && answered()
	}, nil)
	measuring.Store(false)
	r.closeWindow()
	if ctx.Err() == nil {
		r.drain(ctx, answered)
	}
	if ctx.Err() != nil {
		r.res.Interrupted = true
	}
	cancelLoad()
	err = <-done
	stopFollow()
	// The gateways' building, signing and HTTP run on the Go scheduler's
	// threads beside the node's: their CPU time is not separable.
	r.genCPUKnown = false
	r.endMeasure(ctx)
	st := f.Stats()
	r.res.Fleet = &st
	if len(st.Failed) > 0 {
		r.note("the node refused messages the gateways built, with final codes: %v", st.Failed)
	}
	return err
}
