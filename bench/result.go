package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what a run measured. Rates are per second of the load window
// (from the first message offered to the moment the load stopped);
// latencies are in milliseconds; CPU is in seconds.
type Result struct {
	Scenario string `json:"scenario"`
	Setup    Setup  `json:"setup"`
	Machine  Host   `json:"machine"`

	StartedAt   time.Time `json:"started_at"`
	WindowS     float64   `json:"window_s"`    // the load window
	StopReason  string    `json:"stop_reason"` // "duration", "messages", "interrupted"
	Interrupted bool      `json:"interrupted"`

	Offered   uint64            `json:"offered"`
	Accepted  uint64            `json:"accepted"`
	Rejected  map[string]uint64 `json:"rejected"` // by the API's error code
	Confirmed uint64            `json:"confirmed"`
	// ConfirmedSource says how confirmations were counted.
	ConfirmedSource string `json:"confirmed_source"`
	// Unconfirmed is the accepted messages still unconfirmed when the drain
	// ended (or whose confirmation event was missed, see EventStreamCuts).
	Unconfirmed uint64  `json:"unconfirmed_after_drain"`
	DrainS      float64 `json:"drain_s"`
	// MaxBehindS is, at a fixed rate, the most the senders fell behind the
	// schedule: when the node does not keep up, messages wait in them.
	MaxBehindS float64 `json:"max_behind_s,omitempty"`

	OfferedPerS   float64 `json:"offered_per_s"`
	AcceptedPerS  float64 `json:"accepted_per_s"`
	ConfirmedPerS float64 `json:"confirmed_per_s"`

	P50ConfirmMs  float64 `json:"p50_confirm_ms"`
	P90ConfirmMs  float64 `json:"p90_confirm_ms"`
	P99ConfirmMs  float64 `json:"p99_confirm_ms"`
	MaxConfirmMs  float64 `json:"max_confirm_ms"`
	MeanConfirmMs float64 `json:"mean_confirm_ms"`
	// LatencySamples is the number of confirmations the latency figures
	// are computed from.
	LatencySamples uint64 `json:"latency_samples"`
	// LatencySource says which messages the latency figures are over.
	LatencySource string `json:"latency_source"`
	// LatencyFrom and LatencyTo say where the latency clock starts and stops.
	LatencyFrom string `json:"latency_from"`
	LatencyTo   string `json:"latency_to"`
	// EventStreamCuts counts the times the node cut the event stream (it
	// drops a client more than 65,536 events behind) and the bench had to
	// reconnect; confirmations in between were missed.
	EventStreamCuts int64 `json:"event_stream_cuts"`

	// Over a network (the Network scenario). The figures above are taken
	// on each message's entry node, the node it was submitted to;
	// ConfirmedEverywhere counts the measured messages confirmed on every
	// node, and the ConfirmAll latencies run from submission to the last
	// node's confirmed event. Propagation runs from the message being
	// durable on its entry node to being durable on another node.
	ConfirmedEverywhere uint64  `json:"confirmed_everywhere,omitempty"`
	ConfirmAllSamples   uint64  `json:"confirm_all_samples,omitempty"`
	P50ConfirmAllMs     float64 `json:"p50_confirm_all_ms,omitempty"`
	P99ConfirmAllMs     float64 `json:"p99_confirm_all_ms,omitempty"`
	MaxConfirmAllMs     float64 `json:"max_confirm_all_ms,omitempty"`
	PropagationSamples  uint64  `json:"propagation_samples,omitempty"`
	P50PropagationMs    float64 `json:"p50_propagation_ms,omitempty"`
	P90PropagationMs    float64 `json:"p90_propagation_ms,omitempty"`
	P99PropagationMs    float64 `json:"p99_propagation_ms,omitempty"`
	MaxPropagationMs    float64 `json:"max_propagation_ms,omitempty"`
	PropagationSource   string  `json:"propagation_source,omitempty"`
	// PerNode has each node's own figures, when the run started the nodes.
	PerNode []NodeFigures `json:"per_node,omitempty"`

	// CPU per 1,000 accepted messages, over the load window and the drain.
	NodeCPUPer1k      float64 `json:"node_cpu_s_per_1k"`
	ProcessCPUPer1k   float64 `json:"process_cpu_s_per_1k,omitempty"`
	GeneratorCPUPer1k float64 `json:"generator_cpu_s_per_1k,omitempty"`
	CPUSource         string  `json:"cpu_source"`

	PeakRSSBytes int64  `json:"peak_rss_bytes"`
	HWMBytes     int64  `json:"hwm_rss_bytes,omitempty"` // the process's lifetime peak
	RSSSource    string `json:"rss_source"`

	DiskBytes       int64   `json:"disk_bytes,omitempty"`
	StoredMessages  uint64  `json:"stored_messages,omitempty"`
	DiskBytesPerMsg float64 `json:"disk_bytes_per_msg,omitempty"`

	// VerifyPerS is the rate at which this machine verifies ed25519
	// signatures on all cores (dag.Verifier batches, GOMAXPROCS
	// goroutines), measured before the load; VerifyFraction is
	// ConfirmedPerS over it.
	VerifyPerS     float64 `json:"verify_per_s"`
	VerifyFraction float64 `json:"verify_fraction"`

	Prebuild *Prebuild   `json:"prebuild,omitempty"`
	Device   *DeviceCost `json:"device,omitempty"`
	// Fleet is what the gateways of the Gateway scenario did, the
	// cool-down included.
	Fleet *FleetStats `json:"fleet,omitempty"`

	// Acks is what the run found looking for the acknowledged messages on
	// the nodes (Config.CheckAcks).
	Acks *AckCheck `json:"acks,omitempty"`
	// Proofs is how soon after confirmation a sample of the messages had
	// their proofs (Config.ProofSample).
	Proofs *ProofDelay `json:"proofs,omitempty"`
	// Footprint sums up the timeline: the node's memory and disk over the
	// run, and its latency second by second.
	Footprint *Footprint `json:"footprint,omitempty"`
	Timeline  []Sample   `json:"timeline"`
	Notes     []string   `json:"notes,omitempty"`
}

// NodeFigures are one node's figures in a run that started its nodes.
// CPU and RSS are known when the node is a process of its own.
type NodeFigures struct {
	URL             string  `json:"url"`
	CPUSeconds      float64 `json:"cpu_s,omitempty"` // over the window and the drain
	PeakRSSBytes    int64   `json:"peak_rss_bytes,omitempty"`
	StoredMessages  uint64  `json:"stored_messages,omitempty"`
	DiskBytes       int64   `json:"disk_bytes,omitempty"`
	DiskBytesPerMsg float64 `json:"disk_bytes_per_msg,omitempty"`
}

// Setup is the run's configuration, as used.
type Setup struct {
	Node       string  `json:"node"`            // "in-process", "processes" or the URL
	Nodes      int     `json:"nodes,omitempty"` // the Network scenario's
	Network    string  `json:"network,omitempty"`
	PoWBase    int     `json:"pow_base,omitempty"` // in-process node
	Difficulty int     `json:"pow_difficulty"`     // of the run's messages
	Devices    int     `json:"devices"`
	Rate       float64 `json:"rate"` // 0: as fast as possible
	Batch      int     `json:"batch"`
	Clients    int     `json:"clients"`
	LingerMs   float64 `json:"linger_ms,omitempty"`
	Payload    int     `json:"payload_bytes"`
	JSON       bool    `json:"json_payload,omitempty"` // payloads are JSON readings
	MsgBytes   int     `json:"message_bytes"`
	DurationS  float64 `json:"duration_s"`
	Messages   int     `json:"messages,omitempty"`
	Seed       uint64  `json:"seed"`
	// Retention is the store retention of the nodes the run started, when
	// set.
	Retention *Retention `json:"retention,omitempty"`
	// NodeEnv is the node settings the started node processes took from
	// the environment, such as "WEFT_MEMORY_LIMIT=200MiB".
	NodeEnv []string `json:"node_env,omitempty"`
}

// Host describes the machine.
type Host struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	// LoadAvg is the machine's 1-minute load average (/proc/loadavg) when
	// the load started and when the drain ended: other work on the machine
	// shows here.
	LoadAvg [2]float64 `json:"load_avg,omitempty"`
}

// Prebuild describes the pre-built messages of Ingest.
type Prebuild struct {
	Messages int     `json:"messages"`
	Seconds  float64 `json:"seconds"`
	PerS     float64 `json:"per_s"`
	// ProbePerS is the accepted rate of the short probe that sized the
	// tape for a run as fast as possible (0: no probe).
	ProbePerS float64 `json:"probe_per_s,omitempty"`
	// TimestampRate is the rate the messages' timestamps were planned at.
	TimestampRate float64 `json:"timestamp_rate"`
	// LateS is how much later than planned the load started (the messages
	// were that much older than planned).
	LateS float64 `json:"late_s"`
}

// DeviceCost is what the simulated devices of Devices spent per message,
// in CPU time of the thread that did the work.
type DeviceCost struct {
	Messages    uint64  `json:"messages"` // built
	SignUs      float64 `json:"sign_cpu_us"`
	PoWUs       float64 `json:"pow_cpu_us"`
	PoWHashes   float64 `json:"pow_expected_hashes"`
	Difficulty  int     `json:"pow_difficulty"`
	PoWUsAt10   float64 `json:"pow_cpu_us_at_base_10"` // scaled to the default base
	TipsP50Ms   float64 `json:"tips_p50_ms"`
	TipsP99Ms   float64 `json:"tips_p99_ms"`
	SubmitP50Ms float64 `json:"submit_p50_ms"`
	SubmitP99Ms float64 `json:"submit_p99_ms"`
}

// Sample is one second of the run.
type Sample struct {
	T             float64 `json:"t"` // seconds since the load started
	OfferedPerS   float64 `json:"offered_per_s"`
	AcceptedPerS  float64 `json:"accepted_per_s"`
	ConfirmedPerS float64 `json:"confirmed_per_s"`
	// P50ConfirmMs and P99ConfirmMs are the median and p99 latency of the
	// confirmations of this second (0: none).
	P50ConfirmMs float64 `json:"p50_confirm_ms"`
	P99ConfirmMs float64 `json:"p99_confirm_ms"`
	// BehindS is, at a fixed rate, the most a sender was behind the
	// schedule in this second.
	BehindS float64 `json:"behind_s,omitempty"`
	// RSSBytes is the node's resident memory: VmRSS of this process for an
	// in-process node, of the node's process for a node process the run
	// started (the largest, for several), else the node's
	// process_resident_memory_bytes. AnonBytes and FileBytes split it when
	// it comes from /proc (RssAnon and RssFile): anonymous memory (the Go
	// heap, stacks) and file-backed pages (bbolt's memory maps of the
	// store's files, which the kernel can drop and read back).
	RSSBytes  int64 `json:"rss_bytes"`
	AnonBytes int64 `json:"rss_anon_bytes,omitempty"`
	FileBytes int64 `json:"rss_file_bytes,omitempty"`
	// DiskBytes is the space the store takes on disk (the sum of st_blocks
	// x 512 of the files in DATA_DIR/store; the largest store, for several
	// nodes), for nodes the run started.
	DiskBytes int64 `json:"disk_bytes,omitempty"`
	// LiveHeapBytes is the Go heap live after the last collection (an
	// in-process node and the load generator); the heap grows to about
	// twice that before the next (GOGC=100).
	LiveHeapBytes int64 `json:"live_heap_bytes,omitempty"`
	Load          bool  `json:"load"` // false during the drain
	// AckCheck is set when a check of the acknowledged messages
	// (Config.CheckAcks) ran during the second.
	AckCheck bool `json:"ack_check,omitempty"`

	nodeConfirmedPerS float64 // from the node's counters
	polledP50Ms       float64 // of the poller's sample
	polledP99Ms       float64
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// group formats n with thousands separators.
func group(n float64) string {
	s := strconv.FormatFloat(math.Round(n), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// footprintTable writes the rows of r.Footprint.
func (r *Result) footprintTable(tw io.Writer, row func(k, v string, a ...any)) {
	f := r.Footprint
	fmt.Fprintf(tw, "over time (every second of the run, cool-down included)\n")
	parts := ""
	if f.AnonAtMaxBytes > 0 || f.FileAtMaxBytes > 0 {
		parts = fmt.Sprintf(" (anonymous %s, file-backed %s)", mb(f.AnonAtMaxBytes), mb(f.FileAtMaxBytes))
	}
	row("max RSS", "%s at %.0f s%s", mb(f.MaxRSSBytes), f.MaxRSSAtS, parts)
	if f.MaxAnonBytes > 0 {
		row("most anonymous, file-backed", "%s, %s (at any time)", mb(f.MaxAnonBytes), mb(f.MaxFileBytes))
	}
	if r.HWMBytes > 0 {
		row("VmHWM", "%s (the kernel's high-water mark of the process's RSS, kept lazily: it sees between samples, and can be a little below one)", mb(r.HWMBytes))
	}
	switch {
	case f.DiskMaxAllBytes == 0:
	case f.DiskAtSteadyBytes == 0:
		row("store on disk", "at most %s, %s at the end; the run ended before %.0f s, when it should level off", mb(f.DiskMaxAllBytes), mb(f.DiskEndBytes), f.SteadyAfterS)
	default:
		row("store on disk", "%s at %.0f s; from then on %s to %s (max/min %.3f); %s at the end", mb(f.DiskAtSteadyBytes), f.SteadyAfterS,
			mb(f.DiskMinBytes), mb(f.DiskMaxBytes), f.DiskFlatness, mb(f.DiskEndBytes))
	}
	if f.P99SecondMaxMs > 0 {
		row("p99 of each second", "median %.1f ms, highest %.1f ms (at %.0f s)", f.P99SecondMedianMs, f.P99SecondMaxMs, f.P99SecondMaxAtS)
	}
}

// mb formats bytes in megabytes (10^6 bytes), the unit of the soak's
// targets.
func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// Table writes the result for people: a few sections of aligned rows.
func (r *Result) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string, a ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(v, a...)) }
	s := r.Setup
	load := "as fast as the node takes"
	if s.Rate > 0 {
		load = group(s.Rate) + " msgs/s"
	}
	via := fmt.Sprintf("batches of %d from %d gateways", s.Batch, s.Clients)
	if s.Batch == 1 {
		via = fmt.Sprintf("single messages from %d clients", s.Clients)
	}
	fmt.Fprintf(tw, "weft bench %s\n", r.Scenario)
	if s.Nodes > 1 {
		row("nodes", "%d (%s), all validators, full mesh over QUIC on loopback, network %s; senders spread over them", s.Nodes, s.Node, s.Network)
	} else {
		row("node", "%s, network %s", s.Node, s.Network)
	}
	payload := fmt.Sprintf("payload %d B", s.Payload)
	if s.JSON {
		payload += " JSON readings"
	}
	row("load", "%s; %s devices; %s; %s (message %d B)", load, group(float64(s.Devices)), via, payload, s.MsgBytes)
	row("proof of work", "%d bits a message; the node checks it with one hash at any difficulty", s.Difficulty)
	if s.Retention != nil {
		row("store retention", "%s", s.Retention)
	}
	row("machine", "%d CPUs (GOMAXPROCS %d) %s, %s; load average %.2f at the start, %.2f at the end",
		r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.CPUModel, r.Machine.GoVersion, r.Machine.LoadAvg[0], r.Machine.LoadAvg[1])
	row("window", "%.1f s (stopped by %s), seed %d", r.WindowS, r.StopReason, s.Seed)
	if p := r.Prebuild; p != nil {
		probe := ""
		if p.ProbePerS > 0 {
			probe = fmt.Sprintf("; sized by a probe at %s/s", group(p.ProbePerS))
		}
		row("pre-built", "%s messages in %.1f s (%s/s)%s", group(float64(p.Messages)), p.Seconds, group(p.PerS), probe)
	}
	fmt.Fprintf(tw, "throughput\tmsgs/s\ttotal\n")
	fmt.Fprintf(tw, "  offered\t%s\t%s\n", group(r.OfferedPerS), group(float64(r.Offered)))
	fmt.Fprintf(tw, "  accepted (durable)\t%s\t%s\n", group(r.AcceptedPerS), group(float64(r.Accepted)))
	fmt.Fprintf(tw, "  confirmed\t%s\t%s\n", group(r.ConfirmedPerS), group(float64(r.Confirmed)))
	codes := make([]string, 0, len(r.Rejected))
	for c := range r.Rejected {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	for _, c := range codes {
		fmt.Fprintf(tw, "  rejected %s\t\t%s\n", c, group(float64(r.Rejected[c])))
	}
	if len(codes) == 0 {
		fmt.Fprintf(tw, "  rejected\t\t0\n")
	}
	fmt.Fprintf(tw, "  unconfirmed after %.1f s drain\t\t%s\n", r.DrainS, group(float64(r.Unconfirmed)))
	if r.MaxBehindS > 0 {
		row("senders behind the rate", "%.2f s at most", r.MaxBehindS)
	}
	row("confirmations counted by", "%s", r.ConfirmedSource)
	fmt.Fprintf(tw, "confirmation latency\tms\n")
	for _, q := range []struct {
		k string
		v float64
	}{{"p50", r.P50ConfirmMs}, {"p90", r.P90ConfirmMs}, {"p99", r.P99ConfirmMs}, {"max", r.MaxConfirmMs}, {"mean", r.MeanConfirmMs}} {
		fmt.Fprintf(tw, "  %s\t%.1f\n", q.k, q.v)
	}
	row("over", "%s (%s confirmations)", r.LatencySource, group(float64(r.LatencySamples)))
	row("from", "%s", r.LatencyFrom)
	row("to", "%s", r.LatencyTo)
	if s.Nodes > 1 {
		row("on", "the node each message was submitted to")
		fmt.Fprintf(tw, "across the %d nodes\tms\n", s.Nodes)
		row("confirmed on every node", "%s of %s accepted", group(float64(r.ConfirmedEverywhere)), group(float64(r.Accepted)))
		row("confirmed on every node, p50 / p99 / max", "%.1f / %.1f / %.1f (from submission to the last node's confirmed event)",
			r.P50ConfirmAllMs, r.P99ConfirmAllMs, r.MaxConfirmAllMs)
		row("propagation, p50 / p90 / p99 / max", "%.1f / %.1f / %.1f / %.1f (%s samples)",
			r.P50PropagationMs, r.P90PropagationMs, r.P99PropagationMs, r.MaxPropagationMs, group(float64(r.PropagationSamples)))
		row("propagation is", "%s", r.PropagationSource)
	}
	fmt.Fprintf(tw, "cost\n")
	row("node CPU", "%.3f s per 1,000 messages (%s)", r.NodeCPUPer1k, r.CPUSource)
	if r.ProcessCPUPer1k > 0 {
		row("process CPU", "%.3f s per 1,000 messages (node and load generator)", r.ProcessCPUPer1k)
	}
	if r.GeneratorCPUPer1k > 0 {
		row("generator CPU", "%.3f s per 1,000 messages (measured on its own threads)", r.GeneratorCPUPer1k)
	}
	row("peak RSS", "%s (%s)", mib(r.PeakRSSBytes), r.RSSSource)
	switch {
	case r.DiskBytes > 0 && r.StoredMessages > 0:
		row("disk", "%s for %s messages: %.0f B a message", mib(r.DiskBytes), group(float64(r.StoredMessages)), r.DiskBytesPerMsg)
	case r.DiskBytes > 0:
		row("disk", "%s (the data directories after the run)", mib(r.DiskBytes))
	}
	for i, n := range r.PerNode {
		if len(r.PerNode) < 2 {
			break
		}
		v := fmt.Sprintf("%s; %.0f B a message on disk", n.URL, n.DiskBytesPerMsg)
		if n.StoredMessages == 0 {
			v = fmt.Sprintf("%s; %s on disk", n.URL, mib(n.DiskBytes))
		}
		if n.PeakRSSBytes > 0 {
			v += fmt.Sprintf("; peak RSS %s; CPU %.1f s", mib(n.PeakRSSBytes), n.CPUSeconds)
		}
		row(fmt.Sprintf("node%d", i), "%s", v)
	}
	row("signature checks", "this machine verifies %s ed25519 signatures/s on all cores; confirmed = %.0f %% of it",
		group(r.VerifyPerS), 100*r.VerifyFraction)
	if s.Nodes > 1 {
		row("", "each of the %d nodes checks every signature: %d x confirmed = %.0f %% of it", s.Nodes, s.Nodes, 100*float64(s.Nodes)*r.VerifyFraction)
	}
	if d := r.Device; d != nil {
		fmt.Fprintf(tw, "device side (per message, CPU of one core)\n")
		row("sign", "%.1f µs (crypto/ed25519, as client.Device)", d.SignUs)
		row("proof of work", "%.1f µs at %d bits (%.0f hashes expected); %.0f µs at the default base 10",
			d.PoWUs, d.Difficulty, d.PoWHashes, d.PoWUsAt10)
		row("tips round trip", "p50 %.2f ms, p99 %.2f ms", d.TipsP50Ms, d.TipsP99Ms)
		row("submit round trip", "p50 %.2f ms, p99 %.2f ms (answered once durable)", d.SubmitP50Ms, d.SubmitP99Ms)
	}
	if f := r.Fleet; f != nil {
		fmt.Fprintf(tw, "gateways (the cool-down included)\n")
		row("messages", "%s built, %s acknowledged, %s sent again as the same bytes, %s rebuilt on fresh tips",
			group(float64(f.Built)), group(float64(f.Acked)), group(float64(f.Resends)), group(float64(f.Rebuilds)))
		row("requests", "%s batches, %s unanswered; %s readings skipped", group(float64(f.Requests)),
			group(float64(f.Unanswered)), group(float64(f.Skipped)))
		codes := make([]string, 0, len(f.Answers))
		for c := range f.Answers {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		for _, c := range codes {
			row("answered "+c, "%s", group(float64(f.Answers[c])))
		}
	}
	if a := r.Acks; a != nil {
		fmt.Fprintf(tw, "acknowledged messages, looked for on their node\n")
		row("acknowledged", "%s (201s, the cool-down's included)", group(float64(a.Acked)))
		row("looked for", "%s, in %d checks: %s in exports every %.0f s during the load, %s in the devices' listings after the drain; %d checks failed; the oldest %.0f s old when looked for; %d also read by id",
			group(float64(a.Checked)), a.Checks, group(float64(a.Exported)), a.EveryS, group(float64(a.Listed)), a.Failed, a.MaxAgeS, a.ByID)
		row("checking took", "%.1f s in all, %.1f s at most", a.CheckS, a.MaxCheckS)
		row("lost", "%s", group(float64(a.Lost)))
		if a.Expired > 0 {
			row("not looked for", "%s: acknowledged more than half the retention before their look", group(float64(a.Expired)))
		}
		if len(a.LostIDs) > 0 {
			row("lost, the first", "%s", strings.Join(a.LostIDs, " "))
		}
		row("equivocations", "%d (listed for %d issuers after the drain)", a.Equivocations, a.Issuers)
	}
	if f := r.Footprint; f != nil {
		r.footprintTable(tw, row)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "note: %s\n", n)
	}
	return tw.Flush()
}
