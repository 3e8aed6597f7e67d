package netfault

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// acked is a message a node answered 201 Created: durable on that node.
type acked struct {
	id   dag.ID
	dev  dag.PublicKey
	seq  uint64
	node int
	sent time.Time // when the device asked the node for tips
	at   time.Time // when the node answered 201
}

// device is one simulated device: its key and its sequence counter. Each
// device is driven by one goroutine, so its sequence numbers only grow.
type device struct {
	key ed25519.PrivateKey
	pub dag.PublicKey
	seq uint64
}

// loadGen submits device messages over HTTP, round-robin to the nodes it
// is told are live, at a bounded rate, and records every ID acknowledged.
// Each message is built the way a device does it: tips from the node it
// goes to, signed, proof of work solved, POSTed.
type loadGen struct {
	c       *cluster
	rate    float64
	devices []*device

	targets atomic.Pointer[[]int]
	rr      atomic.Uint64

	mu        sync.Mutex // guards the fields below
	acked     []acked
	attempts  int
	failures  map[string]int // by kind: "node0: connection refused", "node1: 503 overloaded"
	abandoned int            // in flight when the load stopped
	bad       []string       // refusals that mean a bug: the message was valid

	stop context.CancelFunc
	wg   sync.WaitGroup
}

// newLoad makes a load of rate messages a second from n devices, whose keys
// come from rng.
func newLoad(c *cluster, rng *rand.Rand, n int, rate float64) *loadGen {
	l := &loadGen{c: c, rate: rate, failures: map[string]int{}}
	for i := 0; i < n; i++ {
		var seed [ed25519.SeedSize]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		k := ed25519.NewKeyFromSeed(seed[:])
		d := &device{key: k, seq: uint64(time.Now().UnixNano())}
		copy(d.pub[:], k.Public().(ed25519.PublicKey))
		l.devices = append(l.devices, d)
	}
	return l
}

// issuers returns the devices' public keys.
func (l *loadGen) issuers() []dag.PublicKey {
	var out []dag.PublicKey
	for _, d := range l.devices {
		out = append(out, d.pub)
	}
	return out
}

// setTargets changes the nodes that get the next messages.
func (l *loadGen) setTargets(nodes []int) {
	nodes = append([]int(nil), nodes...)
	l.targets.Store(&nodes)
}

// start begins submitting to nodes, until stopLoad.
func (l *loadGen) start(nodes []int) {
	l.setTargets(nodes)
	ctx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	tokens := make(chan struct{}, len(l.devices))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / l.rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case tokens <- struct{}{}:
				default: // the devices are behind: the offered rate is not reached
				}
			}
		}
	}()
	for _, d := range l.devices {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tokens:
				}
				l.submitOne(ctx, d)
			}
		}()
	}
}

// stopLoad stops the load and waits for the submissions in flight.
func (l *loadGen) stopLoad() {
	l.stop()
	l.wg.Wait()
}

// submitOne builds one message for d on the next target and submits it.
func (l *loadGen) submitOne(ctx context.Context, d *device) {
	if ctx.Err() != nil {
		return // stopping
	}
	targets := *l.targets.Load()
	if len(targets) == 0 {
		return
	}
	node := targets[int(l.rr.Add(1)%uint64(len(targets)))]
	c := l.c.client(node)
	d.seq++
	payload := fmt.Appendf(nil, `{"device":"%x","seq":%d,"temp":%d}`, d.pub[:4], d.seq, 150+d.seq%100)

	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	sent := time.Now()
	l.mu.Lock()
	l.attempts++
	l.mu.Unlock()
	m, err := buildMessage(rctx, c, d, payload)
	if err != nil {
		l.fail(ctx, node, "tips", err)
		return
	}
	id, err := c.Submit(rctx, m.Bytes())
	if err != nil {
		l.fail(ctx, node, "submit", err)
		return
	}
	if id != m.ID() {
		l.mu.Lock()
		l.bad = append(l.bad, fmt.Sprintf("node%d answered id %s for %s", node, id, m.ID()))
		l.mu.Unlock()
		return
	}
	l.mu.Lock()
	l.acked = append(l.acked, acked{id: id, dev: d.pub, seq: m.Seq, node: node, sent: sent, at: time.Now()})
	l.mu.Unlock()
}

// buildMessage asks c for tips and builds, signs and solves a message.
func buildMessage(ctx context.Context, c *client.Client, d *device, payload []byte) (*dag.Message, error) {
	tips, err := c.Tips(ctx, len(payload))
	if err != nil {
		return nil, err
	}
	m := &dag.Message{
		Version:   dag.Version,
		Network:   tips.NetworkID,
		Parents:   tips.Parents,
		Issuer:    d.pub,
		Seq:       d.seq,
		Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp),
		Payload:   payload,
	}
	m.Sign(d.key)
	nonce, err := pow.Solve(ctx, bytes.Clone(m.Bytes()), tips.Difficulty, 1)
	if err != nil {
		return nil, err
	}
	m.SetNonce(nonce)
	return m, nil
}

// fail records a failed submission. Refusals of a valid message are bugs;
// transport errors and overload are what faults cause.
func (l *loadGen) fail(ctx context.Context, node int, step string, err error) {
	if ctx.Err() != nil {
		l.mu.Lock()
		l.abandoned++
		l.mu.Unlock()
		return
	}
	kind := err.Error()
	var ae *client.APIError
	if errors.As(err, &ae) {
		kind = fmt.Sprintf("%d %s", ae.Status, ae.Code)
		switch ae.Code {
		case client.CodeOverloaded, client.CodeShuttingDown, client.CodeUnknownParents, client.CodeRateLimited:
		default:
			l.mu.Lock()
			l.bad = append(l.bad, fmt.Sprintf("node%d refused a valid message at %s: %v", node, step, err))
			l.mu.Unlock()
		}
	} else if i := strings.LastIndex(kind, ": "); i >= 0 {
		kind = kind[i+2:] // "connection refused", "context deadline exceeded", ...
	}
	l.mu.Lock()
	l.failures[fmt.Sprintf("node%d %s: %s", node, step, kind)]++
	l.mu.Unlock()
}

// ackedIDs returns what was acknowledged so far.
func (l *loadGen) ackedIDs() []acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]acked(nil), l.acked...)
}

// summary describes the load: attempts, acknowledgements, failures.
func (l *loadGen) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var kinds []string
	for k, n := range l.failures {
		kinds = append(kinds, fmt.Sprintf("%s x%d", k, n))
	}
	sort.Strings(kinds)
	s := fmt.Sprintf("%d submissions, %d acknowledged, %d abandoned when the load stopped", l.attempts, len(l.acked), l.abandoned)
	if len(kinds) > 0 {
		s += "; failed: " + strings.Join(kinds, "; ")
	}
	return s
}

// bugs returns the refusals that should not have happened.
func (l *loadGen) bugs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.bad...)
}
