package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// deviceStats gathers what the simulated devices spend.
type deviceStats struct {
	built             atomic.Uint64
	signNs, powNs     atomic.Int64
	signN, powN       atomic.Int64 // samples (a sample is dropped if the goroutine changed threads)
	mu                sync.Mutex
	tips, submit      *histogram
	errMu             sync.Mutex
	firstErr          error
	transportFailures atomic.Int64
}

// devices runs the Devices scenario: each simulated device is a goroutine
// that, for every message, asks the node for tips, builds the message,
// signs it, solves its proof of work and submits it, then waits for the
// next one due (at a fixed rate) or goes on at once.
func (r *run) devices(ctx context.Context) error {
	cfg := r.cfg
	ds := &deviceStats{tips: newHistogram(), submit: newHistogram()}
	tr := &http.Transport{MaxIdleConns: cfg.Devices, MaxIdleConnsPerHost: cfg.Devices, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	clients := make([]*client.Client, len(r.t.urls))
	for k, u := range r.t.urls {
		clients[k] = client.New(u, client.WithHTTPClient(hc), noRetry)
	}
	keys := make([]dag.PublicKey, cfg.Devices)
	privs := make([]ed25519.PrivateKey, cfg.Devices)
	for d := range keys {
		privs[d] = ed25519.NewKeyFromSeed(deriveSeed("device", cfg.Seed, d))
		copy(keys[d][:], privs[d][32:])
	}
	stopFollow, err := r.follow(ctx, keys)
	if err != nil {
		return err
	}
	r.res.LatencyFrom = "the message's submission (after the device built, signed and solved it)"
	r.status("load: %s", loadDesc(cfg))
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	// Devices build messages while measuring is set (the window), then go
	// on untracked (the cool-down) until stop is set.
	var measuring, stop atomic.Bool
	measuring.Store(true)
	start := time.Now().Add(100 * time.Millisecond)
	r.measure(ctx)
	var wg sync.WaitGroup
	for d := range cfg.Devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.device(loadCtx, d, privs[d], clients[d%len(clients)], start, &measuring, &stop, ds)
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	answered := func() bool { return r.cnt.answered() >= r.cnt.offered.Load() }
	r.waitLoad(ctx, time.Until(start)+cfg.Duration, func() bool {
		return cfg.Messages > 0 && ds.built.Load() >= uint64(cfg.Messages) && answered()
	}, nil)
	measuring.Store(false)
	r.closeWindow()
	if ctx.Err() == nil {
		r.drain(ctx, answered)
	}
	stop.Store(true)
	if ctx.Err() != nil {
		r.res.Interrupted = true
		cancelLoad()
	}
	<-done
	stopFollow()
	// The devices' signing and proof of work are load-generator CPU time,
	// measured on the threads that did them; their HTTP client work is not.
	r.genCPU += time.Duration(ds.signNs.Load() + ds.powNs.Load())
	r.endMeasure(ctx)
	dc := &DeviceCost{Messages: ds.built.Load(), Difficulty: r.t.difficulty, PoWHashes: powHashes(r.t.difficulty)}
	if n := ds.signN.Load(); n > 0 {
		dc.SignUs = float64(ds.signNs.Load()) / float64(n) / 1e3
	}
	if n := ds.powN.Load(); n > 0 {
		dc.PoWUs = float64(ds.powNs.Load()) / float64(n) / 1e3
		at10 := pow.Difficulty(dag.MinSize+cfg.Payload, 10)
		dc.PoWUsAt10 = dc.PoWUs * powHashes(at10) / powHashes(r.t.difficulty)
	}
	dc.TipsP50Ms, dc.TipsP99Ms = ms(ds.tips.Quantile(0.5)), ms(ds.tips.Quantile(0.99))
	dc.SubmitP50Ms, dc.SubmitP99Ms = ms(ds.submit.Quantile(0.5)), ms(ds.submit.Quantile(0.99))
	r.res.Device = dc
	if n := ds.transportFailures.Load(); n > 0 {
		r.note("%d device requests failed in transport (not answered by the node)", n)
	}
	if !r.res.Interrupted && ds.firstErr != nil && r.cnt.accepted.Load() == 0 {
		return ds.firstErr
	}
	return nil
}

// device is one simulated device's loop.
func (r *run) device(ctx context.Context, d int, key ed25519.PrivateKey, c *client.Client, start time.Time, measuring, stop *atomic.Bool, ds *deviceStats) {
	cfg := r.cfg
	seq := uint64(start.UnixNano())
	payload := make([]byte, cfg.Payload)
	for i := range payload {
		payload[i] = byte(' ' + (i*31+d)%95)
	}
	fail := func(err error) {
		ds.errMu.Lock()
		if ds.firstErr == nil {
			ds.firstErr = err
		}
		ds.errMu.Unlock()
	}
	for j := 0; ; j++ {
		if cfg.Rate > 0 {
			due := start.UnixNano() + int64(float64(j*cfg.Devices+d)/cfg.Rate*1e9)
			if !sleepUntil(ctx, due) {
				return
			}
		}
		if stop.Load() || ctx.Err() != nil {
			return
		}
		measured := measuring.Load()
		if measured && cfg.Messages > 0 && ds.built.Add(1) > uint64(cfg.Messages) {
			measured = false // the cool-down: past the count, devices go on untracked
		} else if measured && cfg.Messages == 0 {
			ds.built.Add(1)
		}
		cnt := r.cool
		if measured {
			cnt = r.cnt
		}
		t0 := time.Now()
		tips, err := c.Tips(ctx, len(payload))
		if err != nil {
			if ctx.Err() == nil {
				ds.transportFailures.Add(1)
				fail(err)
			}
			continue
		}
		t1 := time.Now()
		if cfg.JSONPayload {
			payload = appendReading(payload[:0], uint64(j*cfg.Devices+d), cfg.Payload)
		} else if len(payload) >= 8 {
			binary.BigEndian.PutUint64(payload, uint64(j))
		}
		m := &dag.Message{Version: dag.Version, Network: tips.NetworkID, Parents: tips.Parents, Seq: seq,
			Timestamp: max(t1.UnixNano(), tips.MinTimestamp), Payload: payload}
		seq++
		// Sign and solve as client.Device does, timing each on this thread.
		c0, ok0 := threadCPU()
		tid0 := threadID()
		m.Sign(key)
		enc := bytes.Clone(m.Bytes())
		c1, ok1 := threadCPU()
		tid1 := threadID()
		nonce, err := pow.Solve(ctx, enc, tips.Difficulty, 1)
		if err != nil {
			return
		}
		c2, ok2 := threadCPU()
		tid2 := threadID()
		if ok0 && ok1 && tid0 == tid1 {
			ds.signNs.Add(int64(c1 - c0))
			ds.signN.Add(1)
		}
		if ok1 && ok2 && tid1 == tid2 {
			ds.powNs.Add(int64(c2 - c1))
			ds.powN.Add(1)
		}
		m.SetNonce(nonce)
		id := m.ID()
		t2 := time.Now()
		if measured {
			r.tr.add(id, t2.UnixNano(), d%len(r.t.urls))
			if r.poll.sampled(d) {
				r.poll.add(d, id, m.Seq, t2.UnixNano())
			}
		}
		cnt.offered.Add(1)
		_, err = c.Submit(ctx, m.Bytes())
		t3 := time.Now()
		ds.mu.Lock()
		ds.tips.Record(t1.Sub(t0))
		ds.submit.Record(t3.Sub(t2))
		ds.mu.Unlock()
		if err == nil {
			cnt.accepted.Add(1)
			continue
		}
		if measured {
			r.tr.drop(id)
			r.poll.drop(id)
		}
		var ae *client.APIError
		switch {
		case errors.Is(err, client.ErrPending):
			cnt.reject("pending", 1) // held for its parents: not durable, not counted as accepted
		case errors.As(err, &ae):
			cnt.reject(ae.Code, 1)
		case ctx.Err() != nil:
			cnt.reject("interrupted", 1)
			return
		default:
			ds.transportFailures.Add(1)
			cnt.reject("transport", 1)
			fail(err)
		}
	}
}
