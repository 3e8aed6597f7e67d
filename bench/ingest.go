package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
)

// coolDown bounds how much load the tape holds past the measured window,
// to go on while the last measured messages are confirmed.
const coolDown = 5 * time.Second

// Bounds of the probe that sizes the tape of a run as fast as possible.
const (
	probeMin = 20_000
	probeMax = 100_000
	probeFor = 3 * time.Second
)

// ingest runs the Ingest scenario: pre-build the messages into tapes, then
// send them.
func (r *run) ingest(ctx context.Context) error {
	cfg := r.cfg
	senders := cfg.Clients
	// The load's messages grow on a DAG of their own, from the genesis: a
	// probe's messages may not all have been sent, and none may be a parent.
	g := newGenerator(r.t.network, r.t.difficulty, cfg.Devices, cfg.Payload, cfg.Seed, 0)
	g.json = cfg.JSONPayload
	g.split(senders, len(r.t.urls))
	buildRate, err := r.calibrateBuild(ctx)
	if err != nil {
		return err
	}
	// startAfter returns when a build of n messages started now should be done.
	startAfter := func(n int) time.Time {
		return time.Now().Add(time.Duration(float64(n)/buildRate*1.15*float64(time.Second)) + 500*time.Millisecond)
	}
	pre := &Prebuild{}
	r.res.Prebuild = pre
	cool := min(cfg.Drain, coolDown).Seconds()
	var window, n int // measured messages (0: by duration), messages on the tape
	var tsRate float64
	switch {
	case cfg.Rate > 0:
		n = int(math.Ceil(cfg.Rate * cfg.Duration.Seconds()))
		if cfg.Messages > 0 && cfg.Messages < n {
			window, n = cfg.Messages, cfg.Messages
		}
		tsRate = cfg.Rate
		n += int(math.Ceil(cfg.Rate * cool))
	case cfg.Messages > 0:
		window = cfg.Messages
		tsRate = float64(window) / cfg.Duration.Seconds()
		n = window + min(window/2, int(math.Ceil(tsRate*cool)))
	default:
		// As fast as possible for a duration: how many messages that takes
		// depends on the node, and messages must be timestamped close to
		// when they are sent (a node takes none more than a minute ahead
		// of its clock, and timestamps far behind would misstate what a
		// device does). So a short probe measures the node's
		// rate first; the tape then holds 1.5 times that rate over the
		// duration, plus the cool-down, timestamped at the probe's rate.
		p := min(max(int(r.res.VerifyPerS/2), probeMin), probeMax)
		r.status("probing the node's rate with %s messages", group(float64(p)))
		pg := newGenerator(r.t.network, r.t.difficulty, cfg.Devices, cfg.Payload, cfg.Seed, 1)
		pg.json = cfg.JSONPayload
		pg.split(senders, len(r.t.urls))
		rate, err := r.probe(ctx, pg, p, senders, startAfter(p), max(r.res.VerifyPerS/3, 1000))
		if err != nil {
			return err
		}
		pre.ProbePerS = rate
		tsRate = max(rate, 100)
		n = int(math.Ceil(tsRate * (1.5*cfg.Duration.Seconds() + cool)))
	}
	r.status("pre-building %s messages (signed and solved) on %d cores", group(float64(n)), runtime.GOMAXPROCS(0))
	planned := startAfter(n)
	bstart := time.Now()
	tapes, err := r.buildTapes(ctx, g, "load", n, senders, planned, tsRate)
	if err != nil {
		return err
	}
	pre.Messages, pre.Seconds, pre.TimestampRate = n, time.Since(bstart).Seconds(), tsRate
	pre.PerS = float64(n) / pre.Seconds
	stopFollow, err := r.follow(ctx, g.pubs)
	if err != nil {
		return err
	}
	if !sleepUntil(ctx, planned.UnixNano()) {
		stopFollow()
		return ctx.Err()
	}
	// A build that overran its estimate starts the load late: the schedule
	// then shifts by as much (the messages are that much older than their
	// due time), rather than everything already due going at once.
	var late time.Duration
	if late = time.Since(planned); late > 0 {
		pre.LateS = late.Seconds()
		if late > 10*time.Second {
			r.note("the load started %.1f s later than the messages' timestamps planned", late.Seconds())
		}
	}
	r.res.LatencyFrom = "the message's submission (the start of its request)"
	if cfg.Rate > 0 {
		r.res.LatencyFrom = "the time the message was due under the offered rate, so that a sender's queueing counts"
	}
	r.status("load: %s", loadDesc(cfg))
	ord := newOrder()
	if window > 0 {
		ord.windowEnd.Store(int64(window))
	}
	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	r.measure(ctx)
	ss, done, err := r.send(loadCtx, tapes, g, max(late, 0), true, cfg.Rate, ord)
	if err != nil {
		stopFollow()
		return err
	}
	// answered reports whether every measured message has its answer.
	answered := func() bool {
		return window > 0 && r.cnt.answered() >= uint64(window)
	}
	if r.waitLoad(ctx, cfg.Duration, answered, done) {
		r.res.StopReason = "tape exhausted"
		if window > 0 {
			r.res.StopReason = "messages"
		} else {
			r.note("the node took all %s pre-built messages before the duration ended (the tape held 1.5 times the probe's rate)", group(float64(n)))
		}
	}
	ord.closeWindow()
	r.closeWindow()
	if ctx.Err() == nil {
		r.drain(ctx, func() bool { return r.cnt.answered() >= r.cnt.offered.Load() })
	}
	ord.stop()
	if ctx.Err() != nil {
		r.res.Interrupted = true
		cancelLoad()
	}
	<-done
	var errs []error
	for _, s := range ss {
		if s.err != nil {
			errs = append(errs, s.err)
		}
		if s.cpuKnown {
			r.genCPU += s.cpu
		} else {
			r.genCPUKnown = false
		}
	}
	stopFollow()
	r.endMeasure(ctx)
	if _, rejected := r.cool.rejections(); rejected > 0 {
		m, _ := r.cool.rejections()
		r.note("refused during the cool-down (not counted above): %v", m)
	}
	return errors.Join(errs...)
}

// calibrateBuild returns how many messages a second the generator builds
// on this machine, from a short throwaway build.
func (r *run) calibrateBuild(ctx context.Context) (float64, error) {
	g := newGenerator(r.t.network, r.t.difficulty, 1, r.cfg.Payload, r.cfg.Seed, 2)
	g.json = r.cfg.JSONPayload
	g.schedule(time.Now(), 1000)
	n := genChunk * runtime.GOMAXPROCS(0) * 32
	start := time.Now()
	if err := g.build(ctx, n, func(*genMsg) error { return nil }); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// tapeSet is a set of tapes, one per sender.
type tapeSet struct{ names []string }

// buildTapes builds n messages on g, timestamped from start at tsRate, into
// one tape per sender: device d's messages go to sender d % senders.
func (r *run) buildTapes(ctx context.Context, g *generator, name string, n, senders int, start time.Time, tsRate float64) (*tapeSet, error) {
	g.schedule(start, tsRate)
	ts := &tapeSet{names: make([]string, senders)}
	ws := make([]*tapeWriter, senders)
	for k := range ws {
		ts.names[k] = fmt.Sprintf("%s-%03d.tape", name, k)
		w, err := createTape(r.dir, ts.names[k])
		if err != nil {
			for _, w := range ws[:k] {
				w.finish()
			}
			return nil, err
		}
		ws[k] = w
	}
	err := g.build(ctx, n, func(m *genMsg) error { return ws[m.device%senders].write(m) })
	for _, w := range ws {
		if ferr := w.finish(); err == nil {
			err = ferr
		}
	}
	if err != nil {
		return nil, err
	}
	return ts, nil
}

// send runs one sender per tape until they are done, ord stops them, or ctx
// ends; track says whether the measured messages are tracked. It returns a
// channel closed when all are done.
func (r *run) send(ctx context.Context, ts *tapeSet, g *generator, late time.Duration, track bool, rate float64, ord *order) ([]*sender, chan struct{}, error) {
	due := func(i int) int64 { return g.timestamp(i) + int64(late) }
	senders := make([]*sender, len(ts.names))
	for k, name := range ts.names {
		tape, err := openTape(r.dir, name)
		if err != nil {
			for _, s := range senders[:k] {
				s.tape.Close()
			}
			return nil, nil, err
		}
		s := &sender{url: r.t.urls[k%len(r.t.urls)], node: k % len(r.t.urls), tape: tape, batch: r.cfg.Batch, rate: rate,
			linger: r.cfg.Linger, due: due, ts: g.timestamp, device: g.device,
			cnt: r.cnt, cool: r.cool, ord: ord}
		if track {
			s.tr, s.poll = r.tr, r.poll
			if r.acks != nil {
				s.acks, s.issuer = r.acks, func(i int) dag.PublicKey { return g.pubs[g.device(i)] }
			}
		}
		senders[k] = s
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.tape.Close()
			s.run(ctx)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
	return senders, done, nil
}

// probe builds p messages and sends them as fast as the node takes them,
// for at most probeFor, and returns the accepted rate. Its counts are not
// the run's.
func (r *run) probe(ctx context.Context, g *generator, p, senders int, start time.Time, guess float64) (float64, error) {
	tapes, err := r.buildTapes(ctx, g, "probe", p, senders, start, guess)
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, name := range tapes.names {
			os.Remove(filepath.Join(r.dir, name))
		}
	}()
	if !sleepUntil(ctx, start.UnixNano()) {
		return 0, ctx.Err()
	}
	cnt, cool := r.cnt, r.cool
	defer func() { r.cnt, r.cool = cnt, cool }()
	r.cnt, r.cool = newCounts(), newCounts()
	ord := newOrder()
	t0 := time.Now()
	_, done, err := r.send(ctx, tapes, g, 0, false, 0, ord)
	if err != nil {
		return 0, err
	}
	end := time.NewTimer(probeFor)
	defer end.Stop()
	select {
	case <-end.C:
		ord.stop()
	case <-done:
	case <-ctx.Done():
	}
	el := time.Since(t0).Seconds()
	acc := r.cnt.accepted.Load()
	<-done
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	rej, total := r.cnt.rejections()
	if acc == 0 {
		return 0, fmt.Errorf("bench: the node accepted none of the %d messages of the probe it was offered in %.1f s (refused: %v)", r.cnt.offered.Load(), el, rej)
	}
	if total > 0 {
		r.note("the probe had refusals: %v", rej)
	}
	return float64(acc) / el, nil
}
