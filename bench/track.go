package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// tracker remembers when each message the load generator submitted was
// submitted, and to which node, until the node reports it confirmed; it
// then records the confirmation latency. Over a network it also follows
// each message to the other nodes: the arrival of each node's message event
// (the message durable there) and confirmed event. Submitters add and drop
// (on refusal); the event followers report. Safe for concurrent use.
type tracker struct {
	shards [64]trackShard
	nodes  int
	// nodeClock: latency runs to the node's confirmed_at (same clock as the
	// submitter, in-process node); otherwise to the event's arrival here.
	nodeClock bool

	outstanding atomic.Int64  // not yet confirmed on the node they were submitted to
	confirmed   atomic.Uint64 // confirmed on the node they were submitted to
	everywhere  atomic.Uint64 // confirmed on every node (nodes > 1)
	// notEverywhere counts the messages not yet confirmed on every node
	// nor refused.
	notEverywhere atomic.Int64

	mu   sync.Mutex // guards the histograms
	all  *histogram
	sec  *histogram // since the sampler last took it
	conf *histogram // submission to confirmed on the last node (nodes > 1)
	prop *histogram // durable on the entry node to durable on another (nodes > 1)
}

type trackShard struct {
	mu sync.Mutex
	m  map[dag.ID]tracked
	_  [40]byte // keep shards on separate cache lines
}

// tracked is a message in flight.
type tracked struct {
	sub       int64 // submitted at, unix ns
	entry     uint8 // the node it was submitted to
	entryDone bool  // confirmed on the entry node (and counted)
	confirmed uint16
	durable   uint16  // nodes whose message event arrived
	durAt     []int64 // when each node's message event arrived (nodes > 1)
	latest    int64   // the latest confirmation time among the nodes so far
}

func newTracker(nodes int, nodeClock bool) *tracker {
	t := &tracker{nodes: nodes, nodeClock: nodeClock, all: newHistogram(), sec: newHistogram(),
		conf: newHistogram(), prop: newHistogram()}
	for i := range t.shards {
		t.shards[i].m = make(map[dag.ID]tracked)
	}
	return t
}

func (t *tracker) shard(id dag.ID) *trackShard { return &t.shards[id[0]&63] }

func (t *tracker) full() uint16 { return uint16(1)<<t.nodes - 1 }

// add records that id was submitted to node at (unix ns).
func (t *tracker) add(id dag.ID, at int64, node int) {
	m := tracked{sub: at, entry: uint8(node)}
	if t.nodes > 1 {
		m.durAt = make([]int64, t.nodes)
	}
	s := t.shard(id)
	s.mu.Lock()
	s.m[id] = m
	s.mu.Unlock()
	t.outstanding.Add(1)
	t.notEverywhere.Add(1)
}

// drop forgets id (the node refused it).
func (t *tracker) drop(id dag.ID) {
	s := t.shard(id)
	s.mu.Lock()
	m, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ok && !m.entryDone {
		t.outstanding.Add(-1)
	}
	if ok {
		t.notEverywhere.Add(-1)
	}
}

// durable records that node's message event for id arrived here at now
// (unix ns). Only a network's messages are followed this way.
func (t *tracker) durable(node int, id dag.ID, now int64) {
	if t.nodes < 2 {
		return
	}
	s := t.shard(id)
	s.mu.Lock()
	if m, ok := s.m[id]; ok && m.durable&(1<<node) == 0 {
		m.durable |= 1 << node
		m.durAt[node] = now
		s.m[id] = m
	}
	s.mu.Unlock()
}

// confirm records that node confirmed id at the node's time at (unix ns),
// the event arriving here at now (unix ns). Messages not submitted by the
// load generator (the nodes' own, or others') are ignored. It reports
// whether id is a measured message this node had not confirmed before.
func (t *tracker) confirm(node int, id dag.ID, at, now int64) bool {
	end := now
	if t.nodeClock && at > 0 {
		end = at
	}
	s := t.shard(id)
	s.mu.Lock()
	m, ok := s.m[id]
	if !ok || m.confirmed&(1<<node) != 0 {
		s.mu.Unlock()
		return false
	}
	m.confirmed |= 1 << node
	m.latest = max(m.latest, end)
	atEntry := node == int(m.entry) && !m.entryDone
	m.entryDone = m.entryDone || atEntry
	last := m.confirmed == t.full()
	if last {
		delete(s.m, id)
	} else {
		s.m[id] = m
	}
	s.mu.Unlock()
	if !atEntry && !last {
		return true
	}
	d := time.Duration(end - m.sub)
	t.mu.Lock()
	if atEntry {
		t.all.Record(d)
		t.sec.Record(d)
	}
	if last && t.nodes > 1 {
		// To the latest confirmation, not the last event to arrive: with
		// the nodes' own clocks, an event may arrive after a later one.
		t.conf.Record(time.Duration(m.latest - m.sub))
		if m.durable == t.full() {
			e := m.durAt[m.entry]
			for j, at := range m.durAt {
				if j != int(m.entry) {
					t.prop.Record(time.Duration(max(at-e, 0)))
				}
			}
		}
	}
	t.mu.Unlock()
	if atEntry {
		t.outstanding.Add(-1)
		t.confirmed.Add(1)
	}
	if last && t.nodes > 1 {
		t.everywhere.Add(1)
	}
	if last {
		t.notEverywhere.Add(-1)
	}
	return true
}

// takeSecond returns the p50 and p99 of the latencies recorded since the
// last call, and the running p99.
func (t *tracker) takeSecond() (p50, p99, running time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p50, p99, running = t.sec.Quantile(0.5), t.sec.Quantile(0.99), t.all.Quantile(0.99)
	t.sec.Reset()
	return p50, p99, running
}

// snapshot returns copies of the latency histograms: to confirmation on
// the entry node, to confirmation on every node, and of propagation.
func (t *tracker) snapshot() (entry, everywhere, prop *histogram) {
	entry, everywhere, prop = newHistogram(), newHistogram(), newHistogram()
	t.mu.Lock()
	entry.Merge(t.all)
	everywhere.Merge(t.conf)
	prop.Merge(t.prop)
	t.mu.Unlock()
	return entry, everywhere, prop
}

// follower reads a node's event stream and hands confirmations (and, over
// a network, message events) to a tracker. It runs on a locked OS thread so that its CPU time, which is
// load-generator time, can be measured.
type follower struct {
	base     string
	node     int // the node's index in the run
	tr       *tracker
	prov     *prover       // samples confirmations for proofs; nil: none
	ready    chan struct{} // closed once the first stream is open
	cpu      atomic.Int64  // ns of thread CPU, when known
	cpuKnown atomic.Bool
	// overflows counts the times the node cut the stream for falling behind
	// (or it ended otherwise) and the follower had to reconnect: the
	// confirmations sent in between are missed.
	overflows atomic.Int64
}

func newFollower(base string, node int, tr *tracker) *follower {
	return &follower{base: base, node: node, tr: tr, ready: make(chan struct{})}
}

// run follows the stream until ctx ends, reconnecting when the node cuts it.
// It returns the error of the first connection attempt if that fails.
func (f *follower) run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok := threadCPU()
	defer func() {
		if c1, ok1 := threadCPU(); ok && ok1 {
			f.cpu.Store(int64(c1 - c0))
			f.cpuKnown.Store(true)
		}
	}()
	first := true
	for ctx.Err() == nil {
		err := f.stream(ctx, first)
		if first && err != nil && ctx.Err() == nil {
			return err
		}
		first = false
		if ctx.Err() != nil {
			return nil
		}
		f.overflows.Add(1)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

func (f *follower) stream(ctx context.Context, first bool) error {
	c, err := newConn(f.base)
	if err != nil {
		return err
	}
	if err := c.dial(ctx); err != nil {
		return err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fmt.Fprintf(c.bw, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: weft-bench\r\nAccept: text/event-stream\r\n\r\n", wire.PathEvents, c.host)
	if err := c.bw.Flush(); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: events: %s", resp.Status)
	}
	if first {
		close(f.ready)
	}
	er := wire.NewEventReader(resp.Body)
	for {
		ev, err := er.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		f.handle(ev)
		if ev.Name == wire.EventOverflow {
			return nil
		}
	}
}

// handle passes a confirmation, and over a network a message event, to
// the tracker. An event whose data does not decode is skipped.
func (f *follower) handle(ev wire.Event) {
	switch {
	case ev.Name == wire.EventConfirmed:
		if c, err := wire.DecodeConfirmed(ev.Data); err == nil {
			now := time.Now()
			if f.tr.confirm(f.node, c.ID, c.ConfirmedAt, now.UnixNano()) {
				f.prov.sample(c.ID, now)
			}
		}
	case ev.Name == wire.EventMessage && f.tr.nodes > 1:
		if m, err := wire.DecodeMessage(ev.Data); err == nil {
			f.tr.durable(f.node, m.ID, time.Now().UnixNano())
		}
	}
}
