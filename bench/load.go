package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// maxAhead is how far ahead of the clock a message's timestamp may be when
// it is sent. Nodes refuse device messages more than their clock skew
// (1 min by default) ahead; the senders wait rather than cross it.
const maxAhead = 45 * time.Second

// counts are the load's counters, shared by its senders.
type counts struct {
	offered  atomic.Uint64 // messages sent in requests
	accepted atomic.Uint64 // answered 201: durable
	// behind is the most a sender at a fixed rate has been behind its
	// schedule (ns) since the sampler last took it; behindMax, ever.
	behind, behindMax atomic.Int64
	nrejected         atomic.Uint64
	mu                sync.Mutex
	rejected          map[string]uint64 // by the API's error code
}

func newCounts() *counts { return &counts{rejected: map[string]uint64{}} }

func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// late records that a message due at due was sent at now.
func (c *counts) late(due, now int64) {
	storeMax(&c.behind, now-due)
	storeMax(&c.behindMax, now-due)
}

// answered returns the messages answered, accepted or not.
func (c *counts) answered() uint64 { return c.accepted.Load() + c.nrejected.Load() }

func (c *counts) reject(code string, n uint64) {
	c.mu.Lock()
	c.rejected[code] += n
	c.mu.Unlock()
	c.nrejected.Add(n)
}

func (c *counts) rejections() (map[string]uint64, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.rejected))
	var total uint64
	for k, v := range c.rejected {
		out[k] = v
		total += v
	}
	return out, total
}

// order keeps the senders' view of the run consistent. They stop before
// the first message at or past cutoff, which is set, when the run ends,
// just past the furthest message sent: every message below it is then
// sent, so that no message sent waits for a parent that never comes. A
// batch is measured when its first message is below windowEnd, which is
// set the same way when the load window closes (or from the start, to a
// message count); the batches after it are the cool-down: sent as before,
// so that the last measured messages are approved as in a steady state,
// but neither counted nor tracked.
type order struct {
	mu        sync.Mutex // serialises claim, stop and closeWindow
	cutoff    atomic.Int64
	windowEnd atomic.Int64
	maxSent   atomic.Int64
}

func newOrder() *order {
	o := &order{}
	o.cutoff.Store(math.MaxInt64)
	o.windowEnd.Store(math.MaxInt64)
	o.maxSent.Store(-1)
	return o
}

// claim is called with the indexes of a batch about to be sent, in
// increasing order. It returns how many of them, from the first, may be
// sent (those below cutoff), records them as sent, and says whether the
// batch is measured.
func (o *order) claim(idxs []int) (n int, measured bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	cut := o.cutoff.Load()
	for n < len(idxs) && int64(idxs[n]) < cut {
		n++
	}
	if n > 0 {
		storeMax(&o.maxSent, int64(idxs[n-1]))
		measured = int64(idxs[0]) < o.windowEnd.Load()
	}
	return n, measured
}

// stop makes the senders stop past the furthest message sent so far.
func (o *order) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cutoff.Store(min(o.cutoff.Load(), o.maxSent.Load()+1))
}

// closeWindow ends the measured batches past the furthest message sent so
// far, unless they end earlier already.
func (o *order) closeWindow() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.windowEnd.Store(min(o.windowEnd.Load(), o.maxSent.Load()+1))
}

func (o *order) past(i int) bool     { return int64(i) >= o.cutoff.Load() }
func (o *order) inWindow(i int) bool { return int64(i) < o.windowEnd.Load() }

// sender submits one tape's messages over one connection, one request at a
// time, so that the messages of its devices arrive in order. It runs on a
// locked OS thread and does all its work there, so that the thread's CPU
// time is the load generator's cost of sending.
type sender struct {
	url    string
	node   int // the index of the node at url
	tape   *tapeReader
	batch  int
	rate   float64       // 0: as fast as answers come
	linger time.Duration // at a fixed rate, wait this long for a batch to fill
	due    func(i int) int64
	ts     func(i int) int64 // a message's timestamp
	tr     *tracker          // nil: do not track confirmations
	poll   *poller           // nil: no latency sample
	device func(i int) int   // the device that sends message i
	cnt    *counts           // the measured messages'
	cool   *counts           // the cool-down's
	ord    *order
	// acks, if set, is told of every message acknowledged (201), of the
	// window and the cool-down; issuer names message i's device key.
	acks   *ackChecker
	issuer func(i int) dag.PublicKey

	cpu      time.Duration
	cpuKnown bool
	err      error
}

func sleepUntil(ctx context.Context, t int64) bool {
	d := time.Duration(t - time.Now().UnixNano())
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *sender) run(ctx context.Context) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, ok0 := threadCPU()
	defer func() {
		c1, ok1 := threadCPU()
		s.cpu, s.cpuKnown = c1-c0, ok0 && ok1
	}()
	c, err := newConn(s.url)
	if err != nil {
		s.err = err
		return
	}
	defer c.Close()
	path, ctype := wire.PathBatch, wire.ContentBatch
	if s.batch == 1 {
		path, ctype = wire.PathMessages, wire.ContentMessage
	}
	var (
		body []byte
		ids  = make([]dag.ID, 0, s.batch)
		idxs = make([]int, 0, s.batch)
		seqs = make([]uint64, 0, s.batch)
		offs = make([]int, 0, s.batch) // where each message starts in body
		ans  wire.BatchResults
		// acked are a batch's acknowledgements, for s.acks.
		acked []Ack
	)
	for ctx.Err() == nil {
		rec, ok, err := s.tape.peek()
		if err != nil {
			s.err = err
			return
		}
		if !ok || s.ord.past(rec.i) {
			return
		}
		if s.rate > 0 {
			due := s.due(rec.i)
			if !sleepUntil(ctx, due) {
				return
			}
			if s.batch > 1 && s.linger > 0 && !sleepUntil(ctx, due+int64(s.linger)) {
				return
			}
		} else if ahead := s.ts(rec.i) - int64(maxAhead); ahead > time.Now().UnixNano() {
			if !sleepUntil(ctx, ahead) {
				return
			}
		}
		now := time.Now().UnixNano()
		body, ids, idxs, seqs, offs = body[:0], ids[:0], idxs[:0], seqs[:0], offs[:0]
		inWindow := s.ord.inWindow(rec.i)
		for len(ids) < s.batch {
			rec, ok, err := s.tape.peek()
			if err != nil {
				s.err = err
				return
			}
			// A batch does not straddle the end of the window, so that the
			// cool-down's messages are not counted as measured.
			if !ok || s.ord.past(rec.i) || (s.rate > 0 && s.due(rec.i) > now) || s.ord.inWindow(rec.i) != inWindow {
				break
			}
			offs = append(offs, len(body))
			if s.batch > 1 {
				body = binary.BigEndian.AppendUint32(body, uint32(len(rec.enc)))
			}
			body = append(body, rec.enc...)
			ids, idxs, seqs = append(ids, rec.id), append(idxs, rec.i), append(seqs, rec.seq)
			s.tape.take()
		}
		if len(ids) == 0 {
			continue
		}
		n, measured := s.ord.claim(idxs)
		if n == 0 {
			return // past the cutoff: the run is stopping
		}
		if n < len(ids) {
			body, ids, idxs = body[:offs[n]], ids[:n], idxs[:n]
		}
		cnt := s.cool
		if measured {
			cnt = s.cnt
			if s.tr != nil {
				for k, id := range ids {
					at := now
					if s.rate > 0 {
						at = s.due(idxs[k])
					}
					s.tr.add(id, at, s.node)
					if d := s.device(idxs[k]); s.poll != nil && s.poll.sampled(d) {
						s.poll.add(d, id, seqs[k], at)
					}
				}
			}
		}
		if s.rate > 0 {
			cnt.late(s.due(idxs[0]), now)
		}
		cnt.offered.Add(uint64(len(ids)))
		st, out, err := c.post(ctx, path, ctype, body)
		if err != nil {
			s.refuse(cnt, measured, ids, "transport")
			if ctx.Err() != nil {
				return
			}
			continue
		}
		switch {
		case s.batch == 1 && st == http.StatusCreated:
			cnt.accepted.Add(1)
			if s.acks != nil {
				s.acks.add(s.node, s.ack(idxs[0], ids[0], seqs[0], time.Now()))
			}
		case s.batch > 1 && st == http.StatusOK:
			ans.Results = ans.Results[:0]
			if json.Unmarshal(out, &ans) != nil || len(ans.Results) != len(ids) {
				s.refuse(cnt, measured, ids, "bad_response")
				continue
			}
			var accepted uint64
			at := time.Now()
			acked = acked[:0]
			for k, r := range ans.Results {
				if r.Status == http.StatusCreated {
					accepted++
					if s.acks != nil {
						acked = append(acked, s.ack(idxs[k], ids[k], seqs[k], at))
					}
					continue
				}
				code := "unknown"
				switch {
				case r.Error != nil:
					code = r.Error.Code
				case r.Status == http.StatusAccepted:
					code = wire.CodePending // held, not durable: not counted as accepted
				}
				s.refuse(cnt, measured, ids[k:k+1], code)
			}
			cnt.accepted.Add(accepted)
			if len(acked) > 0 {
				s.acks.add(s.node, acked...)
			}
		default:
			var e wire.ErrorBody
			code := "http_" + http.StatusText(st)
			if st == http.StatusAccepted {
				code = wire.CodePending
			} else if json.Unmarshal(out, &e) == nil && e.Error.Code != "" {
				code = e.Error.Code
			}
			s.refuse(cnt, measured, ids, code)
		}
	}
}

// ack is the acknowledgement of message i.
func (s *sender) ack(i int, id dag.ID, seq uint64, at time.Time) Ack {
	return Ack{Device: s.device(i), Issuer: s.issuer(i), Seq: seq, ID: id, At: at, Timestamp: s.ts(i)}
}

func (s *sender) refuse(cnt *counts, measured bool, ids []dag.ID, code string) {
	cnt.reject(code, uint64(len(ids)))
	if measured && s.tr != nil {
		for _, id := range ids {
			s.tr.drop(id)
			if s.poll != nil {
				s.poll.drop(id)
			}
		}
	}
}
