package bench

import (
	"context"
	"encoding/binary"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// ProofDelay is how soon after their confirmation the sampled messages'
// proofs were served (Config.ProofSample).
type ProofDelay struct {
	// Every is the sampling: one confirmed message in Every, by ID.
	Every   int     `json:"every"`
	Sampled uint64  `json:"sampled"`
	Served  uint64  `json:"served"`
	P50Ms   float64 `json:"p50_ms"`
	P90Ms   float64 `json:"p90_ms"`
	P99Ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	// Unserved are samples with no proof after ProofWait (or when the run
	// ended); Dropped those the prover had no room for; Failed those the
	// node answered with an error other than no_proof.
	Unserved uint64 `json:"unserved"`
	Dropped  uint64 `json:"dropped"`
	Failed   uint64 `json:"failed"`
	From     string `json:"from"`
	To       string `json:"to"`
}

// ProofWait is how long the prover asks for one sample's proof.
const ProofWait = time.Minute

// proverEvery is how often the prover asks again for each pending proof.
const proverEvery = 20 * time.Millisecond

// maxProbes bounds the samples waiting for their proofs.
const maxProbes = 4096

type probe struct {
	id dag.ID
	at time.Time // when its confirmed event arrived
}

// prover asks node 0 for the proofs of a sample of the messages it
// confirmed, until each is served, and records how long after the
// confirmed event that was.
type prover struct {
	every int
	c     *client.Client
	in    chan probe

	waiting atomic.Int64 // samples handed over and not yet settled

	mu   sync.Mutex // guards res and hist
	res  ProofDelay
	hist *histogram
}

func newProver(base string, every int) *prover {
	return &prover{
		every: every, c: client.New(base, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}), noRetry),
		in: make(chan probe, maxProbes), hist: newHistogram(),
		res: ProofDelay{Every: every, From: "the arrival of the entry node's confirmed event here", To: "the first 200 answer of GET /api/v1/messages/{id}/proof, asked every 20 ms"},
	}
}

// sample hands the prover a confirmed message, if it is one of the sample.
func (p *prover) sample(id dag.ID, at time.Time) {
	if p == nil || binary.BigEndian.Uint32(id[28:])%uint32(p.every) != 0 {
		return
	}
	p.mu.Lock()
	p.res.Sampled++
	p.mu.Unlock()
	p.waiting.Add(1)
	select {
	case p.in <- probe{id, at}:
	default:
		p.waiting.Add(-1)
		p.mu.Lock()
		p.res.Dropped++
		p.mu.Unlock()
	}
}

// run asks for the pending proofs every proverEvery until ctx ends.
func (p *prover) run(ctx context.Context) {
	var pending []probe
	tick := time.NewTicker(proverEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.res.Unserved += uint64(len(pending) + len(p.in))
			p.mu.Unlock()
			return
		case pr := <-p.in:
			if len(pending) < maxProbes {
				pending = append(pending, pr)
			}
		case <-tick.C:
			pending = p.ask(ctx, pending)
		}
	}
}

// ask asks once for each pending proof and returns those still pending.
func (p *prover) ask(ctx context.Context, pending []probe) []probe {
	kept := pending[:0]
	for _, pr := range pending {
		_, err := p.c.Proof(ctx, pr.id)
		now := time.Now()
		if ctx.Err() != nil || (client.IsCode(err, client.CodeNoProof) && now.Sub(pr.at) < ProofWait) {
			kept = append(kept, pr)
			continue
		}
		p.mu.Lock()
		switch {
		case err == nil:
			p.res.Served++
			p.hist.Record(now.Sub(pr.at))
		case client.IsCode(err, client.CodeNoProof):
			p.res.Unserved++
		default:
			p.res.Failed++
		}
		p.mu.Unlock()
		p.waiting.Add(-1)
	}
	return kept
}

// settle waits until every sample handed over is settled, or for at most
// d: the proofs of the last confirmations come a checkpoint later.
func (p *prover) settle(d time.Duration) {
	deadline := time.Now().Add(d)
	for p.waiting.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(proverEvery)
	}
}

// result returns the figures so far.
func (p *prover) result() *ProofDelay {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.res
	r.P50Ms, r.P90Ms, r.P99Ms = ms(p.hist.Quantile(0.5)), ms(p.hist.Quantile(0.9)), ms(p.hist.Quantile(0.99))
	r.MaxMs = ms(p.hist.Max())
	return &r
}
