package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// DefaultAckCheckEvery is how often a run with Config.CheckAcks looks for
// the messages acknowledged since its last look, unless retention asks
// for sooner (see ackCheckEvery).
const DefaultAckCheckEvery = 30 * time.Second

// ackCheckByID is how many of each check's messages are also read one by
// one (GET /api/v1/messages/{id}), a sample.
const ackCheckByID = 100

// exportPace returns how many records a second a look during the load
// reads of its export: enough to take n acknowledgements' messages in
// half the time between looks, and at least minExportPace. The node sends
// as the look reads, so its work for the look is spread over that time
// rather than landing in a burst that holds up the load.
func exportPace(n int, every time.Duration) float64 {
	return max(float64(n)/(every.Seconds()/2), minExportPace)
}

// minExportPace is the least pace of exportPace, records a second.
const minExportPace = 5000

// maxLostIDs bounds the lost messages a report names.
const maxLostIDs = 20

// ackCheckEvery returns how often to check with retention r: a quarter of
// the retention at most, so that every message is looked for well before
// the store may drop it.
func ackCheckEvery(r Retention) time.Duration {
	every := DefaultAckCheckEvery
	if r.Retain > 0 {
		every = min(every, max(r.Retain/4, time.Second))
	}
	return every
}

// AckCheck is what a run found when it looked for the messages the nodes
// acknowledged (answered 201) on the node that acknowledged each
// (Config.CheckAcks). It looks while the load runs, every EveryS, for the
// messages acknowledged since its last look, with CheckExported (one
// export of their time range: a listing per device would cost the node as
// much as the load, and it would fall behind); and once more after the
// drain, for the rest, with CheckAcks (each device's listing); and then
// the equivocations of every issuer acknowledged. A node that drops old
// epochs (retention) must still
// hold them when they are looked for, since an epoch is kept for the
// retention after it was cut, which is after its messages were written.
type AckCheck struct {
	// Acked counts the messages acknowledged, the cool-down's included;
	// Checked, those looked for; Lost, those looked for and not stored.
	// Expired counts those not looked for because their look began more
	// than half the retention after they were acknowledged: the store may
	// have dropped them, and a dropped message cannot be told from a lost
	// one. (A look runs every quarter of the retention at most; only looks
	// that fell far behind leave any.)
	// Exported and Listed split Checked: found (or not) in an export during
	// the load, in the devices' listings after it.
	Acked    uint64 `json:"acked"`
	Checked  uint64 `json:"checked"`
	Exported uint64 `json:"checked_in_exports"`
	Listed   uint64 `json:"checked_in_listings"`
	Lost     uint64 `json:"lost"`
	Expired  uint64 `json:"expired,omitempty"`
	// LostIDs names the first lost messages (at most 20).
	LostIDs []string `json:"lost_ids,omitempty"`
	// ByID counts the messages also read one by one, a sample of each
	// check.
	ByID int `json:"checked_by_id"`
	// Equivocations is the equivocations the nodes list, after the drain,
	// for the issuers of the messages they acknowledged (Issuers of them,
	// counted once a node): a load generator must cause none.
	Equivocations int `json:"equivocations"`
	Issuers       int `json:"issuers"`
	// Checks counts the looks; Failed, those the node did not answer
	// (their messages are looked for again at the next). FirstError is
	// the first failure's.
	Checks     int    `json:"checks"`
	Failed     int    `json:"checks_failed"`
	FirstError string `json:"first_error,omitempty"`
	// EveryS is the time between looks; MaxAgeS the age of the oldest
	// acknowledgement when its look began. A message older than the
	// nodes' retention may have been dropped, and would count as lost.
	EveryS  float64 `json:"every_s"`
	MaxAgeS float64 `json:"max_age_s"`
	// CheckS is the time the looks took in all, MaxCheckS the longest:
	// the node answered them beside the load (the timeline marks the
	// seconds, ack_check).
	CheckS    float64 `json:"check_s"`
	MaxCheckS float64 `json:"max_check_s"`
}

// ackChecker keeps the acknowledgements of a run, per node, and looks for
// them on the nodes (see AckCheck). Senders add from their threads; one
// goroutine checks (run, then final).
type ackChecker struct {
	clients []*client.Client
	every   time.Duration
	retain  time.Duration // the nodes' retention; 0: none
	seed    uint64
	now     func() time.Time

	mu      sync.Mutex
	pending [][]Ack // per node, not yet looked for
	acked   uint64
	issuers []map[dag.PublicKey]struct{} // per node, every issuer acknowledged

	// busy is set while a check runs; started counts the checks begun.
	// The sampler reads both, to mark the seconds a check ran in.
	busy    atomic.Bool
	started atomic.Uint64

	// Written by the checking goroutine only.
	res AckCheck
}

// newAckChecker returns a checker of the acknowledgements of the nodes at
// urls, looking every every; retain is their retention (0: none).
func newAckChecker(urls []string, every, retain time.Duration, seed uint64) *ackChecker {
	c := &ackChecker{every: every, retain: retain, seed: seed, now: time.Now, pending: make([][]Ack, len(urls)),
		issuers: make([]map[dag.PublicKey]struct{}, len(urls))}
	for i := range c.issuers {
		c.issuers[i] = map[dag.PublicKey]struct{}{}
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, u := range urls {
		c.clients = append(c.clients, client.New(u, client.WithHTTPClient(hc)))
	}
	c.res.EveryS = every.Seconds()
	return c
}

// add records acknowledgements by node. Safe for concurrent use.
func (c *ackChecker) add(node int, acks ...Ack) {
	c.mu.Lock()
	c.pending[node] = append(c.pending[node], acks...)
	c.acked += uint64(len(acks))
	for _, a := range acks {
		c.issuers[node][a.Issuer] = struct{}{}
	}
	c.mu.Unlock()
}

// run looks (check, not final) every c.every until stop closes or ctx
// ends. A look under way when stop closes is finished; ctx ending cuts it
// short.
func (c *ackChecker) run(ctx context.Context, stop <-chan struct{}) {
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
			c.check(ctx, false)
		}
	}
}

// ranSince reports whether a check ran since the call that returned
// last, and returns the count to pass next.
func (c *ackChecker) ranSince(last uint64) (bool, uint64) {
	n := c.started.Load()
	return c.busy.Load() || n != last, n
}

// check looks for the pending acknowledgements on their nodes: in an
// export during the load, in the devices' listings (CheckAcks) when final.
// Those of a node that did not answer stay pending.
func (c *ackChecker) check(ctx context.Context, final bool) {
	c.mu.Lock()
	taken := c.pending
	c.pending = make([][]Ack, len(taken))
	c.mu.Unlock()
	some := false
	for _, acks := range taken {
		some = some || len(acks) > 0
	}
	if !some {
		return
	}
	c.res.Checks++
	c.busy.Store(true)
	c.started.Add(1)
	start := c.now()
	defer func() {
		d := c.now().Sub(start).Seconds()
		c.res.CheckS += d
		c.res.MaxCheckS = max(c.res.MaxCheckS, d)
		c.busy.Store(false)
	}()
	failed := false
	for node, acks := range taken {
		if len(acks) == 0 {
			continue
		}
		acks = c.unexpired(acks, start)
		if len(acks) == 0 {
			continue
		}
		oldest := acks[0].At
		for _, a := range acks {
			if a.At.Before(oldest) {
				oldest = a.At
			}
		}
		c.res.MaxAgeS = max(c.res.MaxAgeS, start.Sub(oldest).Seconds())
		var chk *Check
		var err error
		if final {
			chk, err = CheckAcks(ctx, c.clients[node], acks, ackCheckByID, c.seed+uint64(c.res.Checks))
		} else {
			chk, err = checkExported(ctx, c.clients[node], acks, ackCheckByID, c.seed+uint64(c.res.Checks), exportPace(len(acks), c.every))
		}
		if err != nil {
			if !failed {
				c.res.Failed++
				failed = true
			}
			if c.res.FirstError == "" {
				c.res.FirstError = err.Error()
			}
			c.mu.Lock()
			c.pending[node] = append(acks, c.pending[node]...)
			c.mu.Unlock()
			continue
		}
		c.res.Checked += uint64(len(acks))
		if final {
			c.res.Listed += uint64(len(acks))
		} else {
			c.res.Exported += uint64(len(acks))
		}
		c.res.Lost += uint64(len(chk.Lost))
		for _, a := range chk.Lost {
			if len(c.res.LostIDs) < maxLostIDs {
				c.res.LostIDs = append(c.res.LostIDs, a.ID.String())
			}
		}
		c.res.ByID += chk.ByID
	}
}

// unexpired returns the acknowledgements of acks that are young enough at
// now to be looked for, and counts the others as Expired.
func (c *ackChecker) unexpired(acks []Ack, now time.Time) []Ack {
	if c.retain <= 0 {
		return acks
	}
	young := acks[:0]
	for _, a := range acks {
		if now.Sub(a.At) > c.retain/2 {
			c.res.Expired++
			continue
		}
		young = append(young, a)
	}
	return young
}

// equivocations counts the equivocations the nodes list for the issuers
// they acknowledged, once the load is over. A node that does not answer
// fails it (FirstError); the issuers counted say how far it got.
func (c *ackChecker) equivocations(ctx context.Context) {
	c.mu.Lock()
	issuers := make([][]dag.PublicKey, len(c.issuers))
	for node, m := range c.issuers {
		issuers[node] = slices.SortedFunc(maps.Keys(m), func(a, b dag.PublicKey) int { return bytes.Compare(a[:], b[:]) })
	}
	c.mu.Unlock()
	for node, keys := range issuers {
		for _, key := range keys {
			eqs, err := c.clients[node].Equivocations(ctx, &key, 1000)
			if err != nil {
				c.res.Failed++
				if c.res.FirstError == "" {
					c.res.FirstError = fmt.Sprintf("bench: equivocations of %s: %v", key, err)
				}
				return
			}
			c.res.Equivocations += len(eqs)
			c.res.Issuers++
		}
	}
}

// result returns what every check found. Call it once run has returned.
func (c *ackChecker) result() *AckCheck {
	c.mu.Lock()
	c.res.Acked = c.acked
	c.mu.Unlock()
	res := c.res
	return &res
}

// ErrLost: a run with Config.CheckAcks found acknowledged messages missing
// from the node that acknowledged them.
var ErrLost = errors.New("bench: acknowledged messages lost")

// Err returns an error wrapping ErrLost if a was lost, else nil.
func (a *AckCheck) Err() error {
	if a == nil || a.Lost == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d of %d looked for (%v)", ErrLost, a.Lost, a.Checked, a.LostIDs)
}
