package bench

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/zeebo/blake3"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// deriveSeed returns 32 bytes for a key, derived from the run's seed, a
// purpose and an index, so that every run with one seed has the same keys.
func deriveSeed(purpose string, seed uint64, i int) []byte {
	h := blake3.New()
	h.WriteString("weft bench " + purpose)
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], seed)
	binary.BigEndian.PutUint64(b[8:], uint64(i))
	h.Write(b[:])
	return h.Sum(nil)[:32]
}

// genChunk is how many messages the generator hands a worker at once.
const genChunk = 32

// generator grows the load generator's messages on a DAG of its own, whose
// genesis is the network's, so that the node accepts them in order: each
// message's parents are earlier messages of the generator (or the genesis),
// chosen as tipPool says, so that every message is approved soon and is
// confirmed as it would be under devices that take the node's tips.
//
// Device keys, payload bytes and the choice of parents come from the seed;
// with json set, payloads are the readings of the messages' indexes.
// Timestamps follow a schedule (message i at start + i*step) and sequence
// numbers start at the schedule's start in unix nanoseconds, like
// client.Device's, so that a run against a node that saw an earlier one is
// not refused as stale.
//
// Signing and the proof of work run on all cores, a chunk of messages per
// worker; a chunk's parents are chosen among the chunks already finished,
// about (workers+2)*genChunk messages back.
type generator struct {
	network dag.NetworkID
	diff    int // proof-of-work difficulty of every message (one size)
	keys    []voi.PrivateKey
	pubs    []dag.PublicKey
	seqs    []uint64
	rng     *rand.Rand
	filler  []byte
	json    bool // payloads are JSON readings of len(filler) bytes
	// pools has one tip pool per lane: over a network, the messages sent
	// to one node (see split).
	pools   []tipPool
	lanes   int
	senders int
	next    int // index of the next message
	lastTS  int64

	start int64   // timestamp of message 0, unix ns
	step  float64 // ns between messages' timestamps
}

// newGenerator returns a generator for devices devices (keys from seed)
// whose choices (parents, payload bytes) come from seed and stream, on a
// DAG of its own that starts at the genesis.
func newGenerator(network dag.NetworkID, diff, devices, payload int, seed, stream uint64) *generator {
	g := &generator{
		network: network, diff: diff,
		keys: make([]voi.PrivateKey, devices), pubs: make([]dag.PublicKey, devices),
		seqs:  make([]uint64, devices),
		rng:   rand.New(rand.NewPCG(seed, 0x7765667462656e63^stream)),
		pools: []tipPool{{genesis: dag.Genesis(network).ID()}}, lanes: 1, senders: 1,
	}
	for d := range g.keys {
		g.keys[d] = voi.NewKeyFromSeed(deriveSeed("device", seed, d))
		copy(g.pubs[d][:], g.keys[d][32:])
	}
	g.filler = make([]byte, payload)
	for i := range g.filler {
		g.filler[i] = byte(' ' + g.rng.IntN(95)) // printable, like text telemetry
	}
	return g
}

// schedule sets the timestamps of the messages built from now on: the next
// message at start (unix ns), then one every 1/rate seconds. Sequence
// numbers of devices that have not sent yet start at start.
func (g *generator) schedule(start time.Time, rate float64) {
	s := max(start.UnixNano(), g.lastTS) // never older than what is built
	g.start, g.step = s-int64(float64(g.next)*1e9/rate), 1e9/rate
	for d := range g.seqs {
		if g.seqs[d] == 0 {
			g.seqs[d] = uint64(s)
		}
	}
}

// split makes the messages sent to each of nodes nodes take their parents
// among the messages sent to the same node, as devices that ask their node
// for tips mostly would: a parent sent to another node may not have reached
// this one when its child comes, and would make the child wait. Sender k
// (of senders, owning devices d with d % senders == k) sends to node
// k % nodes. The nodes' validators approve across the nodes' messages.
func (g *generator) split(senders, nodes int) {
	g.senders, g.lanes = senders, nodes
	g.pools = make([]tipPool, nodes)
	for k := range g.pools {
		g.pools[k].genesis = dag.Genesis(g.network).ID()
	}
}

// lane returns the pool of message i.
func (g *generator) lane(i int) *tipPool {
	return &g.pools[g.device(i)%g.senders%g.lanes]
}

// timestamp returns message i's timestamp.
func (g *generator) timestamp(i int) int64 { return g.start + int64(float64(i)*g.step) }

// device returns the device that sends message i.
func (g *generator) device(i int) int { return i % len(g.keys) }

type genMsg struct {
	i       int
	device  int
	seq     uint64
	ts      int64
	parents [2]dag.ID
	enc     []byte
	id      dag.ID
}

type chunk struct {
	msgs []genMsg
	err  error
	done chan struct{}
}

// prepare fills the next n messages' fields (not their signatures).
func (g *generator) prepare(n int) *chunk {
	c := &chunk{msgs: make([]genMsg, n), done: make(chan struct{})}
	for k := range c.msgs {
		i := g.next
		g.next++
		d := g.device(i)
		a, b := g.lane(i).pick(g.rng)
		ts := max(g.timestamp(i), g.lastTS)
		g.lastTS = ts
		c.msgs[k] = genMsg{i: i, device: d, seq: g.seqs[d], ts: ts, parents: [2]dag.ID{a, b}}
		g.seqs[d]++
	}
	return c
}

// solve encodes, signs and solves a chunk's messages.
func (g *generator) solve(ctx context.Context, c *chunk) error {
	payload := make([]byte, len(g.filler))
	for k := range c.msgs {
		m := &c.msgs[k]
		if g.json {
			payload = appendReading(payload[:0], uint64(m.i), len(g.filler))
		} else {
			copy(payload, g.filler)
			if len(payload) >= 8 {
				binary.BigEndian.PutUint64(payload, uint64(m.i))
			}
		}
		msg := dag.Message{Version: dag.Version, Network: g.network, Parents: m.parents,
			Issuer: g.pubs[m.device], Seq: m.seq, Timestamp: m.ts, Payload: payload}
		enc := msg.AppendEncoding(make([]byte, 0, msg.Size()))
		sigAt := len(enc) - dag.TrailerSize
		// ed25519 signatures are deterministic (RFC 8032): these are the
		// bytes crypto/ed25519 (dag.Message.Sign) would produce, in about
		// half the time.
		copy(enc[sigAt:], voi.Sign(g.keys[m.device], enc[:sigAt]))
		if _, err := pow.Solve(ctx, enc, g.diff, 1); err != nil {
			return err
		}
		m.enc, m.id = enc, pow.Hash(enc)
	}
	return nil
}

// build makes the next n messages and hands them to sink in order, on the
// calling goroutine. It returns early with sink's error or ctx.Err().
func (g *generator) build(ctx context.Context, n int, sink func(m *genMsg) error) error {
	workers := runtime.GOMAXPROCS(0)
	depth := workers + 2
	jobs := make(chan *chunk, depth)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				c.err = g.solve(ctx, c)
				close(c.done)
			}
		}()
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()
	var window []*chunk
	finish := func(c *chunk) error {
		<-c.done
		if c.err != nil {
			return c.err
		}
		for k := range c.msgs {
			g.lane(c.msgs[k].i).add(c.msgs[k].id)
			if err := sink(&c.msgs[k]); err != nil {
				return err
			}
			c.msgs[k].enc = nil
		}
		return nil
	}
	for left := n; left > 0; {
		if len(window) == depth {
			if err := finish(window[0]); err != nil {
				return err
			}
			window = window[1:]
		}
		c := g.prepare(min(genChunk, left))
		left -= len(c.msgs)
		select {
		case jobs <- c:
		case <-ctx.Done():
			return ctx.Err()
		}
		window = append(window, c)
	}
	for _, c := range window {
		if err := finish(c); err != nil {
			return err
		}
	}
	return nil
}

// tipPool is the generator's tip selection, modelled on the node's tip
// pool: a message is a tip until it has two children. A new message takes
// two distinct tips uniformly at random (a tip's second child retires it);
// while fewer than two tips are eligible, the rest come from the last
// messages finished, or the genesis. Each new message retires as many
// approvals as it will offer, so the pool keeps a steady size (about the
// generator's pipeline depth), every message is approved twice soon after
// it is eligible, and the node's own tip pool holds only recent messages,
// as with devices that take their parents from the node.
type tipPool struct {
	genesis dag.ID
	tips    []poolTip
	recent  [256]dag.ID
	nrecent int
	head    int
}

type poolTip struct {
	id       dag.ID
	children int
}

// tipChildren is the number of children that retire a tip (the node's
// default TipMaxChildren).
const tipChildren = 2

func (p *tipPool) add(id dag.ID) {
	p.tips = append(p.tips, poolTip{id: id})
	p.recent[p.head] = id
	p.head = (p.head + 1) % len(p.recent)
	p.nrecent = min(p.nrecent+1, len(p.recent))
}

// approve gives the tip at k a child and retires it at tipChildren.
func (p *tipPool) approve(k int) dag.ID {
	t := &p.tips[k]
	id := t.id
	t.children++
	if t.children >= tipChildren {
		last := len(p.tips) - 1
		p.tips[k] = p.tips[last]
		p.tips = p.tips[:last]
	}
	return id
}

func (p *tipPool) fallback(r *rand.Rand) dag.ID {
	if p.nrecent > 0 {
		return p.recent[r.IntN(p.nrecent)]
	}
	return p.genesis
}

func (p *tipPool) pick(r *rand.Rand) (dag.ID, dag.ID) {
	switch n := len(p.tips); {
	case n >= 2:
		i := r.IntN(n)
		j := r.IntN(n - 1)
		if j >= i {
			j++
		}
		if i < j { // approve the later index first: retiring i may move the last tip to i
			i, j = j, i
		}
		return p.approve(i), p.approve(j)
	case n == 1:
		return p.approve(0), p.fallback(r)
	}
	return p.fallback(r), p.fallback(r)
}
