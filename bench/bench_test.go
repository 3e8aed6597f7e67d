package bench_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/bench"
	"github.com/weftnet/weft/node"
)

// smoke runs cfg (a short run against an in-process node) and checks that
// it measured something plausible, never how fast.
func smoke(t *testing.T, cfg bench.Config) *bench.Result {
	t.Helper()
	cfg.VerifyFor = 100 * time.Millisecond
	cfg.Drain = 10 * time.Second
	cfg.WorkDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := cfg.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %.0f accepted/s, %.0f confirmed/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms, in %v",
		res.Scenario, res.AcceptedPerS, res.ConfirmedPerS, res.P50ConfirmMs, res.P99ConfirmMs, res.MaxConfirmMs, time.Since(start))
	if res.Interrupted {
		t.Error("interrupted")
	}
	if res.Accepted == 0 || res.AcceptedPerS <= 0 {
		t.Errorf("nothing accepted: %+v", res)
	}
	if res.Confirmed == 0 || res.ConfirmedPerS <= 0 {
		t.Errorf("nothing confirmed: %+v", res)
	}
	if res.Accepted > res.Offered || res.Confirmed > res.Accepted {
		t.Errorf("offered %d, accepted %d, confirmed %d", res.Offered, res.Accepted, res.Confirmed)
	}
	if res.LatencySamples == 0 || !(0 < res.P50ConfirmMs && res.P50ConfirmMs <= res.P90ConfirmMs &&
		res.P90ConfirmMs <= res.P99ConfirmMs && res.P99ConfirmMs <= res.MaxConfirmMs) {
		t.Errorf("latencies out of order: p50 %g, p90 %g, p99 %g, max %g over %d", res.P50ConfirmMs,
			res.P90ConfirmMs, res.P99ConfirmMs, res.MaxConfirmMs, res.LatencySamples)
	}
	// Under retention the node counts the messages of dropped epochs: no
	// figure per message.
	if res.VerifyPerS <= 0 || res.PeakRSSBytes <= 0 || res.NodeCPUPer1k <= 0 || (res.DiskBytesPerMsg <= 0) == cfg.Retention.IsZero() {
		t.Errorf("missing measures: verify %g/s, rss %d, cpu %g s/1k, disk %g B/msg",
			res.VerifyPerS, res.PeakRSSBytes, res.NodeCPUPer1k, res.DiskBytesPerMsg)
	}
	if len(res.Timeline) == 0 {
		t.Error("no timeline")
	}

	// The JSON report carries the fields machines rely on.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"offered_per_s", "accepted_per_s", "confirmed_per_s", "p50_confirm_ms", "p90_confirm_ms",
		"p99_confirm_ms", "max_confirm_ms", "peak_rss_bytes", "node_cpu_s_per_1k", "disk_bytes_per_msg", "verify_per_s",
		"rejected", "timeline", "setup", "machine"} {
		if k == "disk_bytes_per_msg" && !cfg.Retention.IsZero() {
			continue
		}
		if _, ok := fields[k]; !ok {
			t.Errorf("the JSON report lacks %q", k)
		}
	}
	var table, svg bytes.Buffer
	if err := res.Table(&table); err != nil || table.Len() == 0 {
		t.Errorf("table: %v", err)
	}
	if err := res.PlotSVG(&svg); err != nil {
		t.Fatal(err)
	}
	checkXML(t, svg.Bytes())
	return res
}

func checkXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("the SVG does not parse as XML: %v", err)
		}
	}
}

func TestSmokeIngestBatches(t *testing.T) {
	res := smoke(t, bench.Config{Scenario: bench.Ingest, Devices: 50, Batch: 256, Clients: 4, Messages: 3000, Duration: 20 * time.Second})
	if res.StopReason != "messages" || res.Offered != 3000 {
		t.Errorf("stopped by %s after %d messages, want after the 3000 messages", res.StopReason, res.Offered)
	}
}

func TestSmokeIngestRate(t *testing.T) {
	res := smoke(t, bench.Config{Scenario: bench.Ingest, Devices: 50, Batch: 64, Clients: 4, Rate: 1000, Duration: 2 * time.Second})
	if res.StopReason != "duration" {
		t.Errorf("stopped by %s", res.StopReason)
	}
}

// TestSmokeCheckAcks runs ingest (batches and single messages) and the
// gateways with their acknowledgements looked for on the node: every one
// is found, in the listings after the drain, and, with a retention short
// enough to look every second, in exports during the load.
func TestSmokeCheckAcks(t *testing.T) {
	short := bench.Retention{Retain: 20 * time.Second, EpochAge: time.Second} // a look every 5 s
	for _, cfg := range []bench.Config{
		{Scenario: bench.Ingest, Devices: 50, Batch: 128, Clients: 4, Messages: 3000, Duration: 20 * time.Second},
		{Scenario: bench.Ingest, Devices: 20, Batch: 1, Clients: 8, Messages: 500, Duration: 20 * time.Second},
		{Scenario: bench.Gateway, Devices: 40, Batch: 32, Clients: 2, Messages: 1000, Duration: 20 * time.Second},
		{Scenario: bench.Ingest, Devices: 50, Batch: 64, Clients: 4, Rate: 1000, Duration: 7 * time.Second, Retention: short},
		{Scenario: bench.Gateway, Devices: 40, Batch: 32, Clients: 2, Rate: 1000, Duration: 7 * time.Second, Retention: short},
	} {
		cfg.CheckAcks = true
		res := smoke(t, cfg)
		a := res.Acks
		every := bench.DefaultAckCheckEvery
		if !cfg.Retention.IsZero() {
			every = 5 * time.Second
		}
		// A short run's looks are all after the drain; with a look a
		// second, the last may leave none for then.
		if a == nil || a.Acked < res.Accepted || a.Checked != a.Acked || a.Expired != 0 || a.Exported+a.Listed != a.Checked || a.Lost != 0 ||
			a.Checks < 1 || a.ByID == 0 || a.Failed != 0 || a.Equivocations != 0 || a.Issuers != cfg.Devices || a.EveryS != every.Seconds() ||
			(a.Exported == 0) != cfg.Retention.IsZero() || (cfg.Retention.IsZero() && a.Listed == 0) {
			t.Errorf("%s, batch %d, %+v: accepted %d, acks %+v", cfg.Scenario, cfg.Batch, cfg.Retention, res.Accepted, a)
		}
		var table bytes.Buffer
		res.Table(&table)
		if !strings.Contains(table.String(), "lost  ") {
			t.Errorf("the table has no row for the lost messages:\n%s", table.String())
		}
	}
	if _, err := (bench.Config{Scenario: bench.Devices, CheckAcks: true}).Run(context.Background()); !errors.Is(err, bench.ErrConfig) {
		t.Errorf("devices with CheckAcks: %v, want ErrConfig", err)
	}
}

func TestSmokeIngestSingle(t *testing.T) {
	smoke(t, bench.Config{Scenario: bench.Ingest, Devices: 40, Batch: 1, Clients: 16, Messages: 1000, Duration: 20 * time.Second})
}

func TestSmokeDevices(t *testing.T) {
	res := smoke(t, bench.Config{Scenario: bench.Devices, Devices: 20, Duration: 2 * time.Second})
	d := res.Device
	if d == nil || d.Messages == 0 || d.SignUs <= 0 || d.PoWUs <= 0 || d.Difficulty != 5 {
		t.Errorf("device costs: %+v", d)
	}
}

// TestSmokeNetwork runs the network scenario on three in-process nodes:
// every measured message must reach, and be confirmed on, every node.
func TestSmokeNetwork(t *testing.T) {
	res := smoke(t, bench.Config{Scenario: bench.Network, Nodes: 3, Devices: 60, Batch: 128, Clients: 6, Messages: 3000,
		Duration: 30 * time.Second})
	checkNetwork(t, res, 3)
}

// checkNetwork checks the figures a network run adds.
func checkNetwork(t *testing.T, res *bench.Result, nodes int) {
	t.Helper()
	t.Logf("confirmed everywhere %d of %d; propagation p50 %.1f ms, p99 %.1f ms over %d samples",
		res.ConfirmedEverywhere, res.Accepted, res.P50PropagationMs, res.P99PropagationMs, res.PropagationSamples)
	if res.Setup.Nodes != nodes || len(res.PerNode) != nodes {
		t.Fatalf("setup %d nodes, %d per-node figures: want %d", res.Setup.Nodes, len(res.PerNode), nodes)
	}
	if res.ConfirmedEverywhere != res.Confirmed || res.Unconfirmed != 0 {
		t.Errorf("confirmed %d on the entry nodes, %d everywhere, %d unconfirmed: every accepted message must be confirmed on every node",
			res.Confirmed, res.ConfirmedEverywhere, res.Unconfirmed)
	}
	// Every confirmed message was durable on the other nodes first: one
	// propagation sample per other node, at most (a cut stream loses some).
	if most := res.ConfirmedEverywhere * uint64(nodes-1); res.PropagationSamples == 0 || res.PropagationSamples > most {
		t.Errorf("%d propagation samples for %d messages on %d nodes", res.PropagationSamples, res.ConfirmedEverywhere, nodes)
	}
	if !(0 <= res.P50PropagationMs && res.P50PropagationMs <= res.P99PropagationMs && res.P99PropagationMs <= res.MaxPropagationMs) {
		t.Errorf("propagation latencies out of order: %g, %g, %g", res.P50PropagationMs, res.P99PropagationMs, res.MaxPropagationMs)
	}
	if res.P50ConfirmAllMs < res.P50ConfirmMs || res.MaxConfirmAllMs < res.MaxConfirmMs {
		t.Errorf("confirmation on every node (p50 %g, max %g) before confirmation on the entry node (p50 %g, max %g)",
			res.P50ConfirmAllMs, res.MaxConfirmAllMs, res.P50ConfirmMs, res.MaxConfirmMs)
	}
	var stored uint64
	for i, n := range res.PerNode {
		if n.StoredMessages < res.Accepted || n.DiskBytesPerMsg <= 0 {
			t.Errorf("node %d stores %d messages (%g B each); %d were accepted", i, n.StoredMessages, n.DiskBytesPerMsg, res.Accepted)
		}
		stored += n.StoredMessages
	}
	if stored != res.StoredMessages {
		t.Errorf("stored %d in all, %d summed over the nodes", res.StoredMessages, stored)
	}
}

// TestInterrupt checks that a run cut short by its context still returns
// a (partial) report, promptly.
func TestInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := bench.Config{Scenario: bench.Devices, Devices: 10, Duration: time.Minute, VerifyFor: 50 * time.Millisecond, WorkDir: t.TempDir()}
	go func() {
		time.Sleep(1500 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	res, err := cfg.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.StopReason != "interrupted" {
		t.Errorf("interrupted %v, stop reason %q", res.Interrupted, res.StopReason)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("took %v to stop", el)
	}
}

// TestSmokeRemoteNode loads a node through its URL (--node), as for a node
// in another process: CPU and memory then come from its /metrics.
func TestSmokeRemoteNode(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	n, err := node.New(node.Config{DataDir: t.TempDir(), Identity: key, Network: "remote-bench", PoWBase: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	a := api.New(n, "test", zerolog.Nop())
	srv := httptest.NewServer(a)
	defer func() {
		a.EndStreams()
		srv.Close()
		cancel()
		<-done
	}()
	cfg := bench.Config{Scenario: bench.Ingest, Node: srv.URL, Devices: 20, Batch: 100, Clients: 2, Messages: 1500,
		Duration: 20 * time.Second, VerifyFor: 50 * time.Millisecond, Drain: 10 * time.Second, WorkDir: t.TempDir()}
	res, err := cfg.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted == 0 || res.Confirmed == 0 || res.LatencySamples == 0 {
		t.Errorf("accepted %d, confirmed %d, latency samples %d", res.Accepted, res.Confirmed, res.LatencySamples)
	}
	if res.Setup.Node != srv.URL || res.Setup.Difficulty != 4 {
		t.Errorf("setup %+v: want the node's URL and its difficulty (base 3, 4 bits for this size)", res.Setup)
	}
	if res.PeakRSSBytes <= 0 || res.NodeCPUPer1k <= 0 || !strings.Contains(res.CPUSource, "process_cpu_seconds_total") {
		t.Errorf("rss %d, cpu %g (%s): want them from /metrics", res.PeakRSSBytes, res.NodeCPUPer1k, res.CPUSource)
	}
	if res.DiskBytes != 0 {
		t.Error("disk usage measured for a node in another place")
	}
}

// TestSmokeProofSample: with ProofSample 1 every measured message is a
// sample once confirmed, and each gets its proof from the in-process node.
func TestSmokeProofSample(t *testing.T) {
	res := smoke(t, bench.Config{Scenario: bench.Ingest, Devices: 20, Batch: 32, Clients: 2, Rate: 300, Duration: 2 * time.Second, ProofSample: 1})
	p := res.Proofs
	if p == nil || p.Sampled != res.Confirmed || p.Served != p.Sampled || p.Unserved+p.Dropped+p.Failed != 0 || p.P50Ms <= 0 || p.MaxMs < p.P99Ms {
		t.Fatalf("confirmed %d, proofs %+v", res.Confirmed, p)
	}
	t.Logf("proofs of %d messages: p50 %.0f ms, p99 %.0f ms after confirmation", p.Served, p.P50Ms, p.P99Ms)
}
