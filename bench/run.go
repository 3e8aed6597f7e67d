package bench

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// Run runs the benchmark cfg describes and returns what it measured. It
// always stops by itself: the measured load ends at cfg.Duration (or once
// cfg.Messages are answered), then the run keeps the load going (a
// cool-down, neither counted nor tracked) for at most cfg.Drain, until the
// measured messages are confirmed. If ctx ends during the load or the
// drain, Run stops at once and returns the partial result, with
// Interrupted set, and a nil error; if it ends before the load starts, Run
// returns ctx.Err(). Run may be called concurrently with distinct configs,
// except that a CPU profile can be taken by one run at a time.
func (cfg Config) Run(ctx context.Context) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	dir := cfg.WorkDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "weft-bench-"); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		if dir, err = os.MkdirTemp(dir, "run-"); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	r := &run{cfg: cfg, dir: dir, cnt: newCounts(), cool: newCounts(), hc: &http.Client{Timeout: 5 * time.Second}}
	if cfg.Node == "" {
		if cfg.Nodes > 1 {
			r.status("starting %d nodes", cfg.Nodes)
		}
		r.t, err = start(ctx, cfg, dir)
	} else {
		r.t, err = connect(ctx, []string{cfg.Node}, cfg.Payload)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if r.t != nil {
			r.t.stop()
		}
	}()
	if cfg.Payload > r.t.maxPayload {
		return nil, fmt.Errorf("%w: payload of %d bytes over the network's limit of %d", ErrConfig, cfg.Payload, r.t.maxPayload)
	}
	r.res = r.newResult()
	var stopChecks func() *AckCheck
	if cfg.CheckAcks {
		r.acks = newAckChecker(r.t.urls, ackCheckEvery(cfg.Retention), cfg.Retention.Retain, cfg.Seed)
		stop, checked := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(checked)
			r.acks.run(ctx, stop)
		}()
		stopChecks = func() *AckCheck {
			close(stop)
			<-checked
			// Unless the run was interrupted, look for the rest now;
			// interrupted, they stay unchecked.
			if ctx.Err() == nil {
				fctx, fcancel := context.WithTimeout(ctx, 10*time.Minute)
				r.acks.check(fctx, true)
				r.acks.equivocations(fctx)
				fcancel()
			}
			return r.acks.result()
		}
		defer func() {
			if stopChecks != nil {
				close(stop)
				<-checked
			}
		}()
	}
	r.status("measuring signature verification on %d cores", runtime.GOMAXPROCS(0))
	if r.res.VerifyPerS, err = measureVerify(ctx, cfg.VerifyFor, cfg.Seed); err != nil {
		return nil, err
	}
	switch cfg.Scenario {
	case Ingest, Network:
		err = r.ingest(ctx)
	case Devices:
		err = r.devices(ctx)
	case Gateway:
		err = r.gateway(ctx)
	}
	if err != nil {
		if r.res.StartedAt.IsZero() && ctx.Err() != nil {
			return nil, fmt.Errorf("bench: interrupted before the load started: %w", ctx.Err())
		}
		return nil, err
	}
	if stopChecks != nil {
		r.status("looking for the acknowledged messages not yet checked")
		r.res.Acks = stopChecks()
		stopChecks = nil
		r.ackNotes()
	}
	r.finish()
	return r.res, nil
}

// run is the state of one Run.
type run struct {
	cfg  Config
	dir  string
	t    *target
	res  *Result
	cnt  *counts // the measured messages
	cool *counts // the cool-down's
	tr   *tracker
	poll *poller
	fols []*follower // one per node
	prov *prover     // nil without Config.ProofSample
	hc   *http.Client
	acks *ackChecker // nil: acknowledgements are not checked

	// The measurement window: from start to stopped for the rates; to the
	// end of the drain for CPU.
	start       time.Time
	stopped     time.Time
	loadActive  atomic.Bool
	procCPU0    time.Duration
	procKnown   bool
	genCPU      time.Duration // the load generator's threads
	genCPUKnown bool
	peakRSS     atomic.Int64
	samplerStop chan struct{}
	samplerDone chan struct{}
	samplesMu   sync.Mutex
	samples     []Sample
	atStop      struct{ offered, accepted, confirmed uint64 }
	profiling   bool
	// The node's own counters at the start of the window, at its end and
	// after the drain.
	m0, m1, m2 nodeMetrics
	mOK        bool
	// Each node's CPU at the start of the window and after the drain, and
	// its peak RSS, as its /metrics reports them.
	cpu0, cpu2 []float64
	nodesMu    sync.Mutex
	nodePeak   []float64
}

func (r *run) newResult() *Result {
	cfg := r.cfg
	res := &Result{
		Scenario: string(cfg.Scenario),
		Setup: Setup{Node: "in-process", Network: cfg.Network, PoWBase: cfg.PoWBase, Difficulty: r.t.difficulty,
			Devices: cfg.Devices, Rate: cfg.Rate, Batch: cfg.Batch, Clients: cfg.Clients, Payload: cfg.Payload, JSON: cfg.JSONPayload,
			MsgBytes: dag.MinSize + cfg.Payload, DurationS: cfg.Duration.Seconds(), Messages: cfg.Messages, Seed: cfg.Seed},
		Machine: Host{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(),
			GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH},
		Rejected: map[string]uint64{},
	}
	if cfg.Node != "" {
		res.Setup.Node, res.Setup.Network, res.Setup.PoWBase = cfg.Node, "", 0
	}
	if !cfg.Retention.IsZero() {
		ret := cfg.Retention
		res.Setup.Retention = &ret
	}
	if cfg.Scenario == Network {
		res.Setup.Nodes = cfg.Nodes
		if !r.t.local {
			res.Setup.Node = "processes"
			res.Setup.NodeEnv = cfg.NodeEnv
		}
	}
	if cfg.Rate > 0 && cfg.Batch > 1 && cfg.Scenario != Devices {
		res.Setup.LingerMs = ms(cfg.Linger)
	}
	return res
}

// ackNotes notes what the acknowledgement check could not tell.
func (r *run) ackNotes() {
	a := r.res.Acks
	if a.Expired > 0 {
		r.note("%d acknowledged messages were not looked for: their look began more than half the retention (%v) after they were acknowledged, and the store may have dropped them", a.Expired, r.cfg.Retention.Retain)
	}
	if a.Checked+a.Expired < a.Acked || a.Failed > 0 {
		r.note("%d of %d acknowledged messages were not looked for: %d looks failed (%s)", a.Acked-a.Checked-a.Expired, a.Acked, a.Failed, a.FirstError)
	}
	if r.cfg.Retention.MaxDisk > 0 {
		r.note("with --max-disk the store may drop an epoch sooner than the retention: a message it dropped before it was looked for counts as lost")
	}
}

func (r *run) note(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.res.Notes = append(r.res.Notes, msg)
	r.cfg.Log.Info().Msg(msg)
}

// status writes a line of what the run is doing to the progress writer.
func (r *run) status(format string, a ...any) {
	if r.cfg.Progress != nil {
		fmt.Fprintf(r.cfg.Progress, "bench: "+format+"\n", a...)
	}
}

// follow starts tracking confirmations: every node's event stream for
// every measured message, and the poller for a sample of the devices
// (keys) on the first node. The returned function stops them and waits.
func (r *run) follow(ctx context.Context, keys []dag.PublicKey) (func(), error) {
	r.tr = newTracker(len(r.t.urls), r.t.local)
	r.poll = newPoller(r.t.urls[0], &http.Client{Timeout: 10 * time.Second}, keys)
	fctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, len(r.t.urls))
	r.fols = nil
	if r.cfg.ProofSample > 0 {
		r.prov = newProver(r.t.urls[0], r.cfg.ProofSample)
	}
	for i, u := range r.t.urls {
		f := newFollower(u, i, r.tr)
		if i == 0 {
			f.prov = r.prov
		}
		r.fols = append(r.fols, f)
		go func() { errc <- f.run(fctx) }()
	}
	running := len(r.fols)
	stopFollowers := func() {
		cancel()
		for ; running > 0; running-- {
			<-errc
		}
	}
	for _, f := range r.fols {
		select {
		case <-f.ready:
		case err := <-errc:
			running--
			stopFollowers()
			return nil, fmt.Errorf("bench: following the events of %s: %w", f.base, err)
		case <-ctx.Done():
			stopFollowers()
			return nil, ctx.Err()
		}
	}
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		r.poll.run(fctx)
	}()
	provCtx, stopProv := context.WithCancel(context.Background())
	provDone := make(chan struct{})
	go func() {
		defer close(provDone)
		if r.prov != nil {
			r.prov.run(provCtx)
		}
	}()
	return func() {
		stopFollowers()
		<-pollDone
		if r.prov != nil {
			r.prov.settle(10 * time.Second)
		}
		stopProv()
		<-provDone
		if r.prov != nil {
			r.res.Proofs = r.prov.result()
		}
		for _, f := range r.fols {
			r.res.EventStreamCuts += f.overflows.Load()
			if f.cpuKnown.Load() {
				r.genCPU += time.Duration(f.cpu.Load())
			} else {
				r.genCPUKnown = false
			}
		}
	}, nil
}

// cuts returns the times the nodes cut their event streams so far.
func (r *run) cuts() int64 {
	var n int64
	for _, f := range r.fols {
		n += f.overflows.Load()
	}
	return n
}

// measure starts the measurement window: CPU, memory, the per-second
// samples and the progress line.
func (r *run) measure(ctx context.Context) {
	r.start = time.Now()
	r.res.StartedAt = r.start.UTC()
	r.res.Machine.LoadAvg[0] = loadAvg()
	r.genCPUKnown = true
	var each []nodeMetrics
	r.m0, each, r.mOK = r.scrape(ctx)
	r.cpu0 = cpuOf(each)
	if r.t.local {
		r.procCPU0, r.procKnown = processCPU()
	}
	if r.cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(r.cfg.CPUProfile); err != nil {
			r.note("no CPU profile: %v", err)
		} else {
			r.profiling = true
		}
	}
	r.loadActive.Store(true)
	r.samplerStop, r.samplerDone = make(chan struct{}), make(chan struct{})
	go r.sampler(ctx)
}

// scrape reads the nodes' metrics: CPU summed over the nodes, the largest
// RSS, and the first node's confirmation counters (every node confirms the
// same messages). each has every node's.
func (r *run) scrape(ctx context.Context) (sum nodeMetrics, each []nodeMetrics, ok bool) {
	each, ok = r.scrapeEach(ctx)
	if !ok {
		return sum, nil, false
	}
	for i, m := range each {
		if i == 0 {
			sum = m
			continue
		}
		sum.cpuSeconds += m.cpuSeconds
		sum.rssBytes = max(sum.rssBytes, m.rssBytes)
	}
	return sum, each, true
}

func cpuOf(each []nodeMetrics) []float64 {
	out := make([]float64, len(each))
	for i, m := range each {
		out[i] = m.cpuSeconds
	}
	return out
}

// scrapeEach reads every node's metrics and keeps each node's peak RSS.
func (r *run) scrapeEach(ctx context.Context) ([]nodeMetrics, bool) {
	each := make([]nodeMetrics, len(r.t.urls))
	for i, u := range r.t.urls {
		m, err := scrapeMetrics(ctx, r.hc, u)
		if err != nil {
			return nil, false
		}
		each[i] = m
	}
	r.nodesMu.Lock()
	if r.nodePeak == nil {
		r.nodePeak = make([]float64, len(each))
	}
	for i, m := range each {
		r.nodePeak[i] = max(r.nodePeak[i], m.rssBytes)
	}
	r.nodesMu.Unlock()
	return each, true
}

// closeWindow ends the measured load: the rates are taken over the window
// up to now.
func (r *run) closeWindow() {
	r.stopped = time.Now()
	r.loadActive.Store(false)
	r.atStop.offered, r.atStop.accepted = r.cnt.offered.Load(), r.cnt.accepted.Load()
	r.atStop.confirmed = r.tr.confirmed.Load()
	m, _, ok := r.scrape(context.Background())
	r.m1, r.mOK = m, r.mOK && ok
}

// waitLoad waits for the end of the measured load: d passes, reached
// reports true (checked every 10 ms), ctx ends, or done closes. It sets the
// stop reason, except when done closed, which it reports.
func (r *run) waitLoad(ctx context.Context, d time.Duration, reached func() bool, done <-chan struct{}) (exhausted bool) {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-end.C:
			r.res.StopReason = "duration"
			return false
		case <-tick.C:
			if reached() {
				r.res.StopReason = "messages"
				return false
			}
		case <-done:
			return true
		case <-ctx.Done():
			r.res.StopReason, r.res.Interrupted = "interrupted", true
			return false
		}
	}
}

// settled reports whether the measured messages are all confirmed (on
// every node) or refused, as far as the run can tell: by the event
// streams, or, once a node has cut its stream, by the poller's sample.
func (r *run) settled() bool {
	if r.cuts() > 0 {
		return r.poll.pending.Load() <= 0
	}
	return r.tr.outstanding.Load() <= 0 && r.tr.notEverywhere.Load() <= 0
}

// drain waits, at most cfg.Drain, until the measured messages are settled
// (answered, and confirmed or refused). The cool-down load goes on meanwhile.
func (r *run) drain(ctx context.Context, answered func() bool) {
	start := time.Now()
	for !(answered() && r.settled()) && time.Since(start) < r.cfg.Drain && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	r.res.DrainS = time.Since(start).Seconds()
}

// endMeasure closes the measurement window, after the drain and after the
// load generator's threads have reported their CPU time.
func (r *run) endMeasure(ctx context.Context) {
	if r.profiling {
		pprof.StopCPUProfile()
	}
	close(r.samplerStop)
	<-r.samplerDone
	if r.cfg.Progress != nil && r.cfg.ProgressInPlace {
		fmt.Fprintln(r.cfg.Progress)
	}
	m, each, ok := r.scrape(ctx)
	r.m2, r.mOK = m, r.mOK && ok
	r.cpu2 = cpuOf(each)
	r.res.Machine.LoadAvg[1] = loadAvg()
	if r.t.dataDirs != nil {
		r.res.PerNode = make([]NodeFigures, len(r.t.urls))
		r.nodesMu.Lock()
		for i, u := range r.t.urls {
			f := &r.res.PerNode[i]
			f.URL = u
			if !r.t.local && i < len(r.nodePeak) {
				f.PeakRSSBytes = int64(r.nodePeak[i])
			}
			if !r.t.local && r.mOK && i < len(r.cpu0) && i < len(r.cpu2) {
				f.CPUSeconds = r.cpu2[i] - r.cpu0[i]
			}
		}
		r.nodesMu.Unlock()
	}
	// CPU is taken until the end of the drain, so it is divided by every
	// message accepted meanwhile, the cool-down's included.
	accepted := float64(r.cnt.accepted.Load() + r.cool.accepted.Load())
	per1k := func(s float64) float64 {
		if accepted == 0 {
			return 0
		}
		return s / (accepted / 1000)
	}
	switch {
	case r.t.local && r.procKnown:
		cpu, _ := processCPU()
		proc := (cpu - r.procCPU0).Seconds()
		r.res.ProcessCPUPer1k = per1k(proc)
		if r.genCPUKnown {
			r.res.GeneratorCPUPer1k = per1k(r.genCPU.Seconds())
			r.res.NodeCPUPer1k = per1k(proc - r.genCPU.Seconds())
			r.res.CPUSource = "this process's CPU time (getrusage) minus the CPU time of the load generator's threads"
			if r.cfg.Scenario == Devices {
				r.res.CPUSource += " (the devices' signing and proof of work; their HTTP client work is still counted as the node's)"
			}
		} else {
			r.res.NodeCPUPer1k = r.res.ProcessCPUPer1k
			r.res.CPUSource = "this process's CPU time (getrusage): the node and the load generator"
		}
	case !r.t.local && r.mOK:
		r.res.NodeCPUPer1k = per1k(r.m2.cpuSeconds - r.m0.cpuSeconds)
		r.res.CPUSource = "the node's process_cpu_seconds_total (/metrics): the node process alone"
		if n := len(r.t.urls); n > 1 {
			r.res.CPUSource = fmt.Sprintf("the %d nodes' process_cpu_seconds_total (/metrics), summed", n)
		}
	default:
		r.res.CPUSource = "unavailable"
	}
}

// sampler records a Sample a second, and a last one for the part of a
// second left when it stops, and writes the progress line.
func (r *run) sampler(ctx context.Context) {
	defer close(r.samplerDone)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last struct{ offered, accepted, confirmed uint64 }
	lastT, lastM := r.start, r.m0
	var checks uint64
	sample := func(now time.Time) {
		s := Sample{T: now.Sub(r.start).Seconds(), Load: r.loadActive.Load()}
		dt := now.Sub(lastT).Seconds()
		if dt <= 0 {
			return
		}
		lastT = now
		o := r.cnt.offered.Load() + r.cool.offered.Load()
		a := r.cnt.accepted.Load() + r.cool.accepted.Load()
		c := r.tr.confirmed.Load()
		s.OfferedPerS = float64(o-last.offered) / dt
		s.AcceptedPerS = float64(a-last.accepted) / dt
		s.ConfirmedPerS = float64(c-last.confirmed) / dt
		last.offered, last.accepted, last.confirmed = o, a, c
		p50, p99, running := r.tr.takeSecond()
		s.P50ConfirmMs, s.P99ConfirmMs = ms(p50), ms(p99)
		s.BehindS = float64(max(r.cnt.behind.Swap(0), r.cool.behind.Swap(0), 0)) / 1e9
		pp50, pp99 := r.poll.takeSecond()
		s.polledP50Ms, s.polledP99Ms = ms(pp50), ms(pp99)
		m, _, ok := r.scrape(ctx)
		if ok {
			s.nodeConfirmedPerS = max(m.confirmedOthers()-lastM.confirmedOthers(), 0) / dt
			lastM = m
		}
		mem, memOK := r.nodeMemory()
		s.RSSBytes = r.rss(mem, memOK, m, ok)
		if memOK {
			s.AnonBytes, s.FileBytes = mem.anon, mem.file
		}
		if r.t.local {
			s.LiveHeapBytes = liveHeap()
		}
		s.DiskBytes = r.storeDisk()
		if r.acks != nil {
			s.AckCheck, checks = r.acks.ranSince(checks)
		}
		r.samplesMu.Lock()
		r.samples = append(r.samples, s)
		r.samplesMu.Unlock()
		if r.cfg.Progress != nil {
			conf, p99 := s.ConfirmedPerS, ms(running)
			if r.cuts() > 0 {
				conf = s.nodeConfirmedPerS
				if h := r.poll.snapshot(); h.Count() > 0 {
					p99 = ms(h.Quantile(0.99))
				}
			}
			phase := ""
			if !s.Load {
				phase = " (cool-down, draining)"
			}
			disk := ""
			if s.DiskBytes > 0 {
				disk = "  disk " + mib(s.DiskBytes)
			}
			line := fmt.Sprintf("%5.0fs  accepted %9s/s  confirmed %9s/s  p99 %7.1f ms  rss %s%s%s",
				s.T, group(s.AcceptedPerS), group(conf), p99, mib(s.RSSBytes), disk, phase)
			if r.cfg.ProgressInPlace {
				fmt.Fprintf(r.cfg.Progress, "\r%-100s", line)
			} else {
				fmt.Fprintln(r.cfg.Progress, line)
			}
		}
	}
	for {
		select {
		case <-r.samplerStop:
			if now := time.Now(); now.Sub(lastT) >= 100*time.Millisecond || len(r.samples) == 0 {
				sample(now)
			}
			return
		case now := <-tick.C:
			sample(now)
		}
	}
}

// liveHeap returns the Go heap live after the last garbage collection.
func liveHeap() int64 {
	sm := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sm)
	if sm[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(sm[0].Value.Uint64())
}

// nodeMemory returns the memory of the node now, from /proc: this
// process's for an in-process node, else the node process's with the
// largest VmRSS. It reports false for a node at a URL, or if no node's
// status could be read.
func (r *run) nodeMemory() (memory, bool) {
	if r.t.local {
		return processMemory()
	}
	var top memory
	found := false
	for _, pid := range r.t.pids {
		if m, ok := pidMemory(pid); ok && (!found || m.rss > top.rss) {
			top, found = m, true
		}
	}
	return top, found
}

// storeDisk returns the bytes the largest store of the nodes the run
// started takes on disk now, 0 if the run started none.
func (r *run) storeDisk() int64 {
	var top int64
	for _, dir := range r.t.dataDirs {
		if du, err := diskUsage(filepath.Join(dir, storeDir)); err == nil {
			top = max(top, du)
		}
	}
	return top
}

// rss returns the node's resident memory now, from /proc if mem is known
// (memOK), else from its metrics, and keeps the peak.
func (r *run) rss(mem memory, memOK bool, m nodeMetrics, mOK bool) int64 {
	var v int64
	if memOK {
		v = mem.rss
	} else if mOK {
		v = int64(m.rssBytes)
	}
	for {
		p := r.peakRSS.Load()
		if v <= p || r.peakRSS.CompareAndSwap(p, v) {
			return v
		}
	}
}

// finish computes the result's figures from the counters and stops an
// in-process node, to measure its data directory.
func (r *run) finish() {
	res := r.res
	window := r.stopped.Sub(r.start).Seconds()
	res.WindowS = window
	res.Offered, res.Accepted = r.cnt.offered.Load(), r.cnt.accepted.Load()
	res.Rejected, _ = r.cnt.rejections()
	res.Confirmed = r.tr.confirmed.Load()
	res.Unconfirmed = uint64(max(r.tr.outstanding.Load(), 0))
	if window > 0 {
		res.OfferedPerS = float64(r.atStop.offered) / window
		res.AcceptedPerS = float64(r.atStop.accepted) / window
		res.ConfirmedPerS = float64(r.atStop.confirmed) / window
	}
	res.ConfirmedSource = "the node's confirmed events for the measured messages"
	res.LatencySource = "the node's confirmed event of every measured message"
	h, hAll, hProp := r.tr.snapshot()
	if res.EventStreamCuts > 0 {
		// Confirmations were missed, and not at random: count them with the
		// node's counter and take the latencies from the poller's sample.
		polled := r.poll.snapshot()
		res.LatencySource = fmt.Sprintf("a sample: the messages of %d devices, polled (GET /api/v1/issuers/{key}/messages), to their confirmed_at; the node cut the event stream", len(r.poll.devs))
		h = polled
		for k := range r.samples {
			r.samples[k].P50ConfirmMs, r.samples[k].P99ConfirmMs = r.samples[k].polledP50Ms, r.samples[k].polledP99Ms
		}
		if r.mOK && window > 0 {
			res.ConfirmedPerS = max(r.m1.confirmedOthers()-r.m0.confirmedOthers(), 0) / window
			for k := range r.samples {
				r.samples[k].ConfirmedPerS = r.samples[k].nodeConfirmedPerS
			}
		}
		sampled := float64(polled.Count()) + float64(max(r.poll.pending.Load(), 0))
		if sampled > 0 {
			res.Unconfirmed = uint64(math.Round(float64(res.Accepted) * float64(max(r.poll.pending.Load(), 0)) / sampled))
			res.Confirmed = res.Accepted - min(res.Unconfirmed, res.Accepted)
		}
		res.ConfirmedSource = "rate: the node's weft_messages_confirmed_total minus weft_own_messages_total over the window; totals: estimated from the polled sample (the event stream was cut)"
		r.note("the node cut the event stream %d times (it drops a client more than 65,536 events behind, and one step of the node can publish more than that): confirmations were missed, so the latencies come from the polled sample", res.EventStreamCuts)
	}
	res.LatencySamples = h.Count()
	res.P50ConfirmMs, res.P90ConfirmMs = ms(h.Quantile(0.5)), ms(h.Quantile(0.9))
	res.P99ConfirmMs, res.MaxConfirmMs, res.MeanConfirmMs = ms(h.Quantile(0.99)), ms(h.Max()), ms(h.Mean())
	if n := len(r.t.urls); n > 1 {
		res.ConfirmedEverywhere = r.tr.everywhere.Load()
		res.ConfirmAllSamples = hAll.Count()
		res.P50ConfirmAllMs, res.P99ConfirmAllMs, res.MaxConfirmAllMs = ms(hAll.Quantile(0.5)), ms(hAll.Quantile(0.99)), ms(hAll.Max())
		res.PropagationSamples = hProp.Count()
		res.P50PropagationMs, res.P90PropagationMs = ms(hProp.Quantile(0.5)), ms(hProp.Quantile(0.9))
		res.P99PropagationMs, res.MaxPropagationMs = ms(hProp.Quantile(0.99)), ms(hProp.Max())
		res.PropagationSource = fmt.Sprintf("for each measured message and each of the %d other nodes: the arrival here of that node's message event (the message durable there) minus the arrival of the entry node's", n-1)
	}
	res.LatencyTo = "the arrival of the node's confirmed event here"
	if r.tr.nodeClock || res.EventStreamCuts > 0 {
		res.LatencyTo = "the node's confirmed_at"
		if r.t.local {
			res.LatencyTo += " (the same clock: the node is in this process)"
		} else {
			res.LatencyTo += " (the node's clock: assumed in agreement with this machine's)"
		}
	}
	if res.VerifyPerS > 0 {
		res.VerifyFraction = res.ConfirmedPerS / res.VerifyPerS
	}
	if behind := time.Duration(max(r.cnt.behindMax.Load(), r.cool.behindMax.Load())); r.cfg.Rate > 0 && r.cfg.Scenario != Devices {
		res.MaxBehindS = behind.Seconds()
		if behind > 5*time.Second {
			r.note("the senders fell %.0f s behind the offered rate: the nodes did not keep up, and the rates above are their capacity rather than the offered rate", behind.Seconds())
		}
	}
	res.PeakRSSBytes = r.peakRSS.Load()
	res.RSSSource = "the node's process_resident_memory_bytes (/metrics), sampled every second"
	if n := len(r.t.urls); n > 1 {
		res.RSSSource = fmt.Sprintf("the largest of the %d nodes' process_resident_memory_bytes (/metrics), sampled every second", n)
	}
	if r.t.local {
		res.RSSSource = "VmRSS of this process (node and load generator), sampled every second"
		if n := len(r.t.urls); n > 1 {
			res.RSSSource = fmt.Sprintf("VmRSS of this process (all %d nodes and the load generator), sampled every second", n)
		}
		if mem, ok := processMemory(); ok {
			res.HWMBytes = mem.hwm
		}
	} else if n := len(r.t.pids); n > 0 {
		res.RSSSource = "VmRSS of the node's process (/proc/PID/status), file-backed pages included, sampled every second"
		if n > 1 {
			res.RSSSource = fmt.Sprintf("the largest VmRSS of the %d node processes (/proc/PID/status), file-backed pages included, sampled every second", n)
		}
		for _, pid := range r.t.pids {
			if mem, ok := pidMemory(pid); ok {
				res.HWMBytes = max(res.HWMBytes, mem.hwm)
			}
		}
	}
	r.samplesMu.Lock()
	res.Timeline = r.samples
	r.samplesMu.Unlock()
	if res.Timeline == nil {
		res.Timeline = []Sample{}
	}
	res.Footprint = footprint(res.Timeline, r.cfg.SteadyAfter)
	if len(r.t.dataDirs) > 0 {
		r.measureDisk()
	}
	r.note("proof of work: the node checks it with one hash at any difficulty, so the low difficulty here (%d bits) does not lighten the node's work; it only makes building messages quick", res.Setup.Difficulty)
}

// storedMessages returns the number of messages the node at base stores,
// 0 if it does not answer.
func (r *run) storedMessages(base string) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := client.New(base, client.WithHTTPClient(r.hc), noRetry).Info(ctx)
	if err != nil {
		return 0
	}
	return info.Messages
}

// measureDisk stops the nodes the run started and measures their data
// directories: bytes on disk per stored message, per node and in all.
func (r *run) measureDisk() {
	res, t := r.res, r.t
	stored := make([]uint64, len(t.urls))
	for i, u := range t.urls {
		stored[i] = r.storedMessages(u)
	}
	r.t = nil
	if err := t.stop(); err != nil {
		r.note("a node stopped with an error: %v", err)
	}
	for i, dir := range t.dataDirs {
		du, err := diskUsage(dir)
		if err != nil || stored[i] == 0 {
			continue
		}
		res.DiskBytes += du
		res.StoredMessages += stored[i]
		if i < len(res.PerNode) {
			res.PerNode[i].DiskBytes, res.PerNode[i].StoredMessages = du, stored[i]
			res.PerNode[i].DiskBytesPerMsg = float64(du) / float64(stored[i])
		}
	}
	if !r.cfg.Retention.IsZero() {
		// The node counts every message it stored; the dropped epochs'
		// are no longer on disk.
		res.StoredMessages = 0
		for i := range res.PerNode {
			res.PerNode[i].StoredMessages, res.PerNode[i].DiskBytesPerMsg = 0, 0
		}
		r.note("with retention the store keeps only its latest epochs: disk_bytes is the data directories at the end, and no figure per message is given")
	} else if res.StoredMessages > 0 {
		res.DiskBytesPerMsg = float64(res.DiskBytes) / float64(res.StoredMessages)
	}
}

func loadDesc(cfg Config) string {
	var b strings.Builder
	if cfg.Rate > 0 {
		fmt.Fprintf(&b, "%s msgs/s", group(cfg.Rate))
	} else {
		b.WriteString("as fast as the node takes")
	}
	if cfg.Scenario == Devices {
		fmt.Fprintf(&b, " from %s live devices", group(float64(cfg.Devices)))
	} else if cfg.Scenario == Gateway {
		fmt.Fprintf(&b, ", built live by %d gateways for %s devices, batches of at most %d", cfg.Clients, group(float64(cfg.Devices)), cfg.Batch)
	} else if cfg.Batch > 1 {
		fmt.Fprintf(&b, ", batches of %d from %d gateways", cfg.Batch, cfg.Clients)
	} else {
		fmt.Fprintf(&b, ", single messages from %d clients", cfg.Clients)
	}
	fmt.Fprintf(&b, ", for %v", cfg.Duration)
	if cfg.Messages > 0 {
		fmt.Fprintf(&b, " or %s messages", group(float64(cfg.Messages)))
	}
	return b.String()
}

// powHashes is the expected number of hashes to meet difficulty d.
func powHashes(d int) float64 { return math.Ldexp(1, d) }
