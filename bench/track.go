package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/dag"
)

// tracker remembers when each message the load generator submitted was
// submitted, until the node reports it confirmed; it then records the
// confirmation latency. Submitters add and drop (on refusal); the event
// follower confirms. Safe for concurrent use.
type tracker struct {
	shards [64]trackShard
	// nodeClock: latency runs to the node's confirmed_at (same clock as the
	// submitter, in-process node); otherwise to the event's arrival here.
	nodeClock bool

	outstanding atomic.Int64
	confirmed   atomic.Uint64

	mu  sync.Mutex // guards all and sec
	all *histogram
	sec *histogram // since the sampler last took it
}

type trackShard struct {
	mu sync.Mutex
	m  map[dag.ID]int64 // submitted at, unix ns
	_  [40]byte         // keep shards on separate cache lines
}

func newTracker(nodeClock bool) *tracker {
	t := &tracker{nodeClock: nodeClock, all: newHistogram(), sec: newHistogram()}
	for i := range t.shards {
		t.shards[i].m = make(map[dag.ID]int64)
	}
	return t
}

func (t *tracker) shard(id dag.ID) *trackShard { return &t.shards[id[0]&63] }

// add records that id was submitted at (unix ns).
func (t *tracker) add(id dag.ID, at int64) {
	s := t.shard(id)
	s.mu.Lock()
	s.m[id] = at
	s.mu.Unlock()
	t.outstanding.Add(1)
}

// drop forgets id (the node refused it).
func (t *tracker) drop(id dag.ID) {
	s := t.shard(id)
	s.mu.Lock()
	_, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ok {
		t.outstanding.Add(-1)
	}
}

// confirm records that id was confirmed at the node's time at (unix ns),
// the event arriving here at now (unix ns). Messages not submitted by the
// load generator (the node's own, or others') are ignored.
func (t *tracker) confirm(id dag.ID, at, now int64) {
	s := t.shard(id)
	s.mu.Lock()
	sub, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if !ok {
		return
	}
	t.outstanding.Add(-1)
	end := now
	if t.nodeClock && at > 0 {
		end = at
	}
	d := time.Duration(end - sub)
	t.mu.Lock()
	t.all.Record(d)
	t.sec.Record(d)
	t.mu.Unlock()
	t.confirmed.Add(1)
}

// takeSecond returns the latencies recorded since the last call, and the
// running p99.
func (t *tracker) takeSecond() (sec time.Duration, running time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sec, running = t.sec.Quantile(0.99), t.all.Quantile(0.99)
	t.sec.Reset()
	return sec, running
}

// snapshot returns a copy of the latency histogram.
func (t *tracker) snapshot() *histogram {
	h := newHistogram()
	t.mu.Lock()
	h.Merge(t.all)
	t.mu.Unlock()
	return h
}

// follower reads a node's event stream and hands confirmations to a
// tracker. It runs on a locked OS thread so that its CPU time, which is
// load-generator time, can be measured.
type follower struct {
	base     string
	tr       *tracker
	ready    chan struct{} // closed once the first stream is open
	cpu      atomic.Int64  // ns of thread CPU, when known
	cpuKnown atomic.Bool
	// overflows counts the times the node cut the stream for falling behind
	// (or it ended otherwise) and the follower had to reconnect: the
	// confirmations sent in between are missed.
	overflows atomic.Int64
}

func newFollower(base string, tr *tracker) *follower {
	return &follower{base: base, tr: tr, ready: make(chan struct{})}
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

var (
	eventConfirmed = []byte("event: confirmed")
	eventOverflow  = []byte("event: overflow")
	dataPrefix     = []byte("data: ")
)

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
	fmt.Fprintf(c.bw, "GET /api/v1/events HTTP/1.1\r\nHost: %s\r\nUser-Agent: weft-bench\r\nAccept: text/event-stream\r\n\r\n", c.host)
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
	br := bufio.NewReaderSize(resp.Body, 256<<10)
	confirmedNext := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than any event of the API: skip the rest of it.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			confirmedNext = false
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			confirmedNext = false
		case bytes.Equal(line, eventConfirmed):
			confirmedNext = true
		case bytes.Equal(line, eventOverflow):
			return nil
		case confirmedNext && bytes.HasPrefix(line, dataPrefix):
			if id, at, ok := parseConfirmed(line[len(dataPrefix):]); ok {
				f.tr.confirm(id, at, time.Now().UnixNano())
			}
		}
	}
}

// parseConfirmed reads the id and confirmed_at of a "confirmed" event's
// data, {"confirmed_at":..., "id":"...", "position":...}: by a quick scan,
// falling back to encoding/json when the quick scan does not fit.
func parseConfirmed(data []byte) (dag.ID, int64, bool) {
	var id dag.ID
	if i := bytes.Index(data, []byte(`"id":"`)); i >= 0 && len(data) >= i+6+64 {
		if _, err := hex.Decode(id[:], data[i+6:i+6+64]); err == nil {
			if j := bytes.Index(data, []byte(`"confirmed_at":`)); j >= 0 {
				rest := data[j+len(`"confirmed_at":`):]
				k := 0
				for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
					k++
				}
				if at, err := strconv.ParseInt(string(rest[:k]), 10, 64); err == nil {
					return id, at, true
				}
			}
		}
	}
	var v struct {
		ID          string `json:"id"`
		ConfirmedAt int64  `json:"confirmed_at"`
	}
	if json.Unmarshal(data, &v) != nil {
		return id, 0, false
	}
	id, err := dag.ParseID(v.ID)
	return id, v.ConfirmedAt, err == nil
}
