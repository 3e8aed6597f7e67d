package bench

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// pollInterval is how often the poller lists each sampled device; a
// device whose listing showed no new confirmation is listed half as often,
// down to once every pollIntervalMax, so that a node that stops confirming
// is not also asked for the same unconfirmed messages over and over.
const (
	pollInterval    = 250 * time.Millisecond
	pollIntervalMax = 4 * time.Second
)

// pollPage is the most messages one listing asks for: messages are mostly
// confirmed in order, so the oldest unsettled ones are what matter.
const pollPage = 100

// pollSample is the number of devices the poller samples, at most.
const pollSample = 20

// poller measures confirmation latency on a sample of the devices by
// listing their messages (GET /api/v1/issuers/{key}/messages) and reading
// each one's confirmed_at. It is the event stream's understudy: a node cuts
// a stream that falls 65,536 events behind, and one step of a busy node can
// publish more than that at once, so under heavy load the stream misses
// confirmations, and not at random (the confirmations come last in each
// step). The poller's sample is unbiased, and costs the node a few list
// requests a second. Its latency runs to the node's confirmed_at, so it
// assumes the node's clock agrees with this machine's (it is this
// machine's for an in-process node).
type poller struct {
	c       *client.Client
	stride  int // device d is sampled when d % stride == 0
	devs    map[int]*polledDevice
	mu      sync.Mutex // guards m, all, sec and the devices' after
	m       map[dag.ID]int64
	all     *histogram
	sec     *histogram
	pending atomic.Int64 // sampled messages not yet seen confirmed
}

type polledDevice struct {
	key   dag.PublicKey
	after uint64 // every message with seq <= after is settled
	has   bool   // after is set
	every int    // list it every so many ticks
	wait  int    // ticks until the next listing
}

func newPoller(base string, hc *http.Client, keys []dag.PublicKey) *poller {
	p := &poller{c: client.New(base, client.WithHTTPClient(hc), noRetry), stride: max(1, len(keys)/pollSample),
		devs: map[int]*polledDevice{}, m: map[dag.ID]int64{}, all: newHistogram(), sec: newHistogram()}
	for d := 0; d < len(keys); d += p.stride {
		p.devs[d] = &polledDevice{key: keys[d], every: 1}
	}
	return p
}

// sampled reports whether device d is in the sample.
func (p *poller) sampled(d int) bool { return d%p.stride == 0 }

// add records that device d (sampled) submitted id with sequence number seq at (unix ns).
func (p *poller) add(d int, id dag.ID, seq uint64, at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dev := p.devs[d]
	if dev == nil {
		return
	}
	if !dev.has || seq-1 < dev.after {
		dev.after, dev.has = seq-1, true
	}
	p.m[id] = at
	p.pending.Add(1)
}

// drop forgets id (refused).
func (p *poller) drop(id dag.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[id]; ok {
		delete(p.m, id)
		p.pending.Add(-1)
	}
}

// run polls until ctx ends.
func (p *poller) run(ctx context.Context) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, dev := range p.devs {
			p.mu.Lock()
			after, has := dev.after, dev.has
			p.mu.Unlock()
			if dev.wait--; !has || dev.wait > 0 {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			page, err := p.c.IssuerMessages(rctx, dev.key, &after, pollPage)
			cancel()
			if err != nil {
				dev.wait = dev.every
				continue
			}
			p.mu.Lock()
			settled, found := true, false
			for _, mi := range page.Messages {
				at, ours := p.m[mi.ID]
				if ours && mi.Confirmed {
					d := time.Duration(mi.ConfirmedAt - at)
					p.all.Record(d)
					p.sec.Record(d)
					delete(p.m, mi.ID)
					p.pending.Add(-1)
					ours, found = false, true
				}
				if settled && !ours {
					dev.after = max(dev.after, mi.Seq)
				} else {
					settled = false
				}
			}
			p.mu.Unlock()
			if found || len(page.Messages) == 0 {
				dev.every = 1
			} else {
				dev.every = min(2*dev.every, int(pollIntervalMax/pollInterval))
			}
			dev.wait = dev.every
		}
	}
}

// takeSecond returns the p50 and p99 of the latencies found since the
// last call.
func (p *poller) takeSecond() (p50, p99 time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p50, p99 = p.sec.Quantile(0.5), p.sec.Quantile(0.99)
	p.sec.Reset()
	return p50, p99
}

func (p *poller) snapshot() *histogram {
	h := newHistogram()
	p.mu.Lock()
	h.Merge(p.all)
	p.mu.Unlock()
	return h
}
