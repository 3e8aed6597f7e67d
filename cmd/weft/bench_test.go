package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/bench"
)

// TestBenchIngest runs a short `weft bench ingest --json --plot` and checks
// the report's fields and the chart, not the speed.
func TestBenchIngest(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(dir, "ingest.svg")
	stdout, stderr, err := run(t, "", "bench", "ingest", "--devices", "30", "--messages", "2000", "--batch", "128",
		"--clients", "2", "--json", "--plot", plot, "--quiet", "--verify-for", "100ms", "--work-dir", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("the report is not one JSON object: %v\n%s", err, stdout)
	}
	for _, k := range []string{"offered_per_s", "accepted_per_s", "confirmed_per_s", "p50_confirm_ms", "p99_confirm_ms",
		"max_confirm_ms", "peak_rss_bytes", "node_cpu_s_per_1k", "verify_per_s", "timeline"} {
		if _, ok := res[k]; !ok {
			t.Errorf("the report lacks %q", k)
		}
	}
	if res["accepted_per_s"].(float64) <= 0 || res["confirmed_per_s"].(float64) <= 0 {
		t.Errorf("nothing accepted or confirmed: %s", stdout)
	}
	p50, p99, mx := res["p50_confirm_ms"].(float64), res["p99_confirm_ms"].(float64), res["max_confirm_ms"].(float64)
	if !(0 < p50 && p50 <= p99 && p99 <= mx) {
		t.Errorf("latencies out of order: p50 %g, p99 %g, max %g", p50, p99, mx)
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(svg))
	for {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("the plot is not XML: %v", err)
		}
	}
	if strings.Contains(stderr, "accepted") {
		t.Errorf("--quiet printed progress: %s", stderr)
	}
}

// TestBenchDevicesTable runs a short `weft bench devices` and checks the
// table and the progress lines.
func TestBenchDevicesTable(t *testing.T) {
	stdout, stderr, err := run(t, "", "bench", "devices", "--devices", "8", "--duration", "1500ms",
		"--verify-for", "100ms", "--work-dir", t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"weft bench devices", "accepted (durable)", "confirmed", "p99", "sign", "proof of work", "peak RSS"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the table lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "accepted") {
		t.Errorf("no progress line on stderr: %q", stderr)
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, bad := range [][]string{{"--batch", "0"}, {"--batch", "5000"}, {"--devices", "0"}, {"--rate", "-1"}, {"--payload", "0"}} {
		if _, _, err := run(t, "", append([]string{"bench", "ingest", "--verify-for", "1ms"}, bad...)...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, _, err := run(t, "", "bench", "ingest", "--node", "ftp://x", "--verify-for", "1ms"); err == nil {
		t.Error("an ftp node URL accepted")
	}
	for _, bad := range [][]string{{"--max-disk", "12 parsecs"}, {"--epoch-records", "0"}, {"--epoch-age", "0s"},
		{"--node", "http://127.0.0.1:1", "--retain", "1m"}, {"--node", "http://127.0.0.1:1", "--max-disk", "1GB"}} {
		_, _, err := run(t, "", append([]string{"bench", "ingest", "--verify-for", "1ms"}, bad...)...)
		if err == nil || !strings.Contains(err.Error(), "bench: --") {
			t.Errorf("%v: %v, want a usage error naming the flag", bad, err)
		}
	}
}

// TestRetentionArgs checks the flags a started node is given for the
// bench's retention settings.
func TestRetentionArgs(t *testing.T) {
	for _, c := range []struct {
		r    bench.Retention
		want string
	}{
		{bench.Retention{}, ""},
		{bench.Retention{Retain: 5 * time.Minute}, "--retain 5m0s"},
		{bench.Retention{Retain: time.Minute, MaxDisk: 50e9, EpochRecords: 4096, EpochAge: 10 * time.Second},
			"--retain 1m0s --max-disk 50000000000 --epoch-records 4096 --epoch-age 10s"},
	} {
		if got := strings.Join(retentionArgs(c.r), " "); got != c.want {
			t.Errorf("%+v: %q, want %q", c.r, got, c.want)
		}
	}
	// What they say, the node reads back.
	args := retentionArgs(bench.Retention{Retain: time.Minute, MaxDisk: 50e9, EpochRecords: 4096, EpochAge: 10 * time.Second})
	if md, err := parseBytes(args[3]); err != nil || md != 50e9 {
		t.Errorf("--max-disk %s reads as %d, %v", args[3], md, err)
	}
	for _, d := range []string{args[1], args[7]} {
		if _, err := time.ParseDuration(d); err != nil {
			t.Errorf("%q is not a duration: %v", d, err)
		}
	}
}

// TestBenchNetworkProcesses runs `weft bench network` from the built
// binary, so that its nodes are `weft node` processes of their own, and
// checks that each node's figures come from its own process.
func TestBenchNetworkProcesses(t *testing.T) {
	dir := t.TempDir()
	plot := filepath.Join(dir, "network.svg")
	var res struct {
		Setup struct {
			Node  string `json:"node"`
			Nodes int    `json:"nodes"`
		} `json:"setup"`
		Accepted            uint64  `json:"accepted"`
		ConfirmedEverywhere uint64  `json:"confirmed_everywhere"`
		P99PropagationMs    float64 `json:"p99_propagation_ms"`
		PropagationSamples  uint64  `json:"propagation_samples"`
		CPUSource           string  `json:"cpu_source"`
		PerNode             []struct {
			PeakRSSBytes   int64   `json:"peak_rss_bytes"`
			CPUSeconds     float64 `json:"cpu_s"`
			StoredMessages uint64  `json:"stored_messages"`
		} `json:"per_node"`
	}
	benchReport(t, &res, "bench", "network", "--nodes", "3", "--devices", "30", "--messages", "1500",
		"--batch", "100", "--clients", "3", "--json", "--plot", plot, "--quiet", "--verify-for", "100ms", "--work-dir", dir)
	t.Logf("accepted %d, confirmed everywhere %d, propagation p99 %.1f ms", res.Accepted, res.ConfirmedEverywhere, res.P99PropagationMs)
	if res.Setup.Node != "processes" || res.Setup.Nodes != 3 || len(res.PerNode) != 3 {
		t.Fatalf("setup %+v with %d per-node figures: want 3 node processes", res.Setup, len(res.PerNode))
	}
	if res.Accepted == 0 || res.ConfirmedEverywhere != res.Accepted || res.PropagationSamples == 0 {
		t.Errorf("accepted %d, confirmed on every node %d, %d propagation samples", res.Accepted, res.ConfirmedEverywhere, res.PropagationSamples)
	}
	if !strings.Contains(res.CPUSource, "3 nodes' process_cpu_seconds_total") {
		t.Errorf("CPU source %q: want the nodes' own counters", res.CPUSource)
	}
	for i, n := range res.PerNode {
		if n.PeakRSSBytes <= 0 || n.CPUSeconds <= 0 || n.StoredMessages < res.Accepted {
			t.Errorf("node %d: %+v", i, n)
		}
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Errorf("no chart: %v", err)
	}
}

// TestBenchGateway runs a short `weft bench gateway --json` and checks the
// fleet's part of the report.
func TestBenchGateway(t *testing.T) {
	stdout, stderr, err := run(t, "", "bench", "gateway", "--devices", "30", "--messages", "1500", "--batch", "64",
		"--gateways", "2", "--json", "--quiet", "--verify-for", "100ms", "--work-dir", t.TempDir())
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res struct {
		Setup struct {
			Batch   int `json:"batch"`
			Clients int `json:"clients"`
		} `json:"setup"`
		Accepted uint64            `json:"accepted"`
		Fleet    *bench.FleetStats `json:"fleet"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("the report is not one JSON object: %v\n%s", err, stdout)
	}
	if res.Setup.Batch != 64 || res.Setup.Clients != 2 {
		t.Errorf("setup %+v: want batches of 64 from 2 gateways", res.Setup)
	}
	if f := res.Fleet; res.Accepted == 0 || f == nil || f.Acked < res.Accepted || f.Requests == 0 || len(f.Failed) > 0 {
		t.Errorf("accepted %d, fleet %+v", res.Accepted, f)
	}
}

// TestBenchSoakShort runs `weft bench soak` with two kills, from the built
// binary (its nodes are that binary's `weft node` processes): the soak's
// own code, kept from rotting. The real soak is run by hand (TESTING.md).
func TestBenchSoakShort(t *testing.T) {
	cmd := exec.Command(weftBin, "bench", "soak", "--kills", "2", "--up-min", "1s", "--up-max", "2s", "--tail", "1s",
		"--rate", "300", "--devices", "40", "--gateways", "2", "--batch", "32", "--by-id", "50", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stderr:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	var rep struct {
		Kills      int              `json:"kills"`
		Acked      int              `json:"acked"`
		Lost       int              `json:"lost"`
		ByID       int              `json:"checked_by_id"`
		Fleet      bench.FleetStats `json:"fleet"`
		FirstAckMs []float64        `json:"first_ack_after_restart_ms"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("the report is not one JSON object: %v\n%s", err, stdout.String())
	}
	if rep.Kills != 2 || len(rep.FirstAckMs) != 2 || rep.Acked == 0 || rep.Lost != 0 || rep.ByID != 50 {
		t.Errorf("report %+v", rep)
	}
	if rep.Fleet.Unanswered == 0 {
		t.Errorf("no request went unanswered across two kills: %+v", rep.Fleet)
	}
	if !strings.Contains(stderr.String(), "soak: seed ") {
		t.Error("the seed is not printed")
	}
}

func TestBenchSoakBadFlags(t *testing.T) {
	for _, bad := range [][]string{{"--up-min", "3s", "--up-max", "2s"}, {"--kills", "-1"}, {"--up-min", "0s"}} {
		if _, _, err := run(t, "", append([]string{"bench", "soak"}, bad...)...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, _, err := run(t, "", "bench", "gateway", "--gateways", "0", "--verify-for", "1ms"); err == nil {
		t.Error("--gateways 0 accepted")
	}
}

// TestBenchNetworkRetentionSample runs `weft bench network` on one node
// process with retention flags, and checks that the node got them (its
// first epoch is dropped), that every second's sample has the node
// process's memory, from /proc, and its store's size on disk, and that
// every acknowledged message was found while the store dropped epochs;
// the chart has the disk's panel, and the CSV a row a second.
func TestBenchNetworkRetentionSample(t *testing.T) {
	dir := t.TempDir()
	plot, series := filepath.Join(dir, "soak.svg"), filepath.Join(dir, "soak.csv")
	var res struct {
		Setup struct {
			Retention *bench.Retention `json:"retention"`
		} `json:"setup"`
		Accepted  uint64           `json:"accepted"`
		Acks      *bench.AckCheck  `json:"acks"`
		RSSSource string           `json:"rss_source"`
		HWMBytes  int64            `json:"hwm_rss_bytes"`
		Footprint *bench.Footprint `json:"footprint"`
		Timeline  []bench.Sample   `json:"timeline"`
	}
	benchReport(t, &res, "bench", "network", "--nodes", "1", "--devices", "30", "--rate", "400", "--duration", "12s",
		"--batch", "50", "--clients", "2", "--retain", "8s", "--epoch-age", "1s", "--steady-after", "3s", "--check-acks",
		"--json", "--plot", plot, "--csv", series, "--quiet", "--verify-for", "100ms", "--work-dir", dir)
	if r := res.Setup.Retention; r == nil || *r != (bench.Retention{Retain: 8 * time.Second, EpochAge: time.Second}) {
		t.Errorf("setup retention %+v", r)
	}
	if a := res.Acks; a == nil || a.Acked < res.Accepted || a.Checked != a.Acked || a.Lost != 0 || a.Checks < 3 || a.EveryS != 2 ||
		a.Exported == 0 || a.Issuers != 30 {
		t.Errorf("accepted %d; acknowledgements looked for: %+v", res.Accepted, a)
	}
	if !strings.Contains(res.RSSSource, "/proc/PID/status") {
		t.Errorf("RSS from %q, want the node process's status", res.RSSSource)
	}
	if len(res.Timeline) < 9 {
		t.Fatalf("%d samples in a 12 s run", len(res.Timeline))
	}
	var maxRSS, maxDisk int64
	for _, s := range res.Timeline {
		if s.AnonBytes <= 0 || s.FileBytes < 0 || s.AnonBytes+s.FileBytes > s.RSSBytes || s.DiskBytes <= 0 {
			t.Errorf("sample at %.1f s: rss %d = anon %d + file %d?, disk %d", s.T, s.RSSBytes, s.AnonBytes, s.FileBytes, s.DiskBytes)
		}
		maxRSS, maxDisk = max(maxRSS, s.RSSBytes), max(maxDisk, s.DiskBytes)
	}
	f := res.Footprint
	// VmHWM is no exact bound on the samples: the kernel keeps it lazily,
	// and it was seen a little below one.
	if f == nil || f.MaxRSSBytes != maxRSS || f.DiskMaxAllBytes != maxDisk || res.HWMBytes <= 0 ||
		f.SteadyAfterS != 3 || f.DiskAtSteadyBytes <= 0 || f.DiskFlatness < 1 {
		t.Errorf("footprint %+v (timeline max RSS %d, disk %d; VmHWM %d)", f, maxRSS, maxDisk, res.HWMBytes)
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !strings.Contains(string(svg), "store on disk (MB)") || !strings.Contains(string(svg), `class="disk"`) {
		t.Errorf("the chart has no disk panel (%v)", err)
	}
	csvText, err := os.ReadFile(series)
	if lines := strings.Split(strings.TrimSpace(string(csvText)), "\n"); err != nil || len(lines) != 1+len(res.Timeline) ||
		!strings.HasPrefix(lines[0], "t_s,load,") || !strings.Contains(lines[0], "disk_bytes") {
		t.Errorf("the CSV (%v):\n%s", err, csvText)
	}
	epochs, _ := filepath.Glob(filepath.Join(dir, "run-*", "node0", "store", "epoch-*.db"))
	if len(epochs) == 0 {
		t.Fatalf("no epoch files under %s", dir)
	}
	if filepath.Base(epochs[0]) == "epoch-0000000000000000.db" {
		t.Errorf("the first epoch is still there after 12 s with --retain 8s --epoch-age 1s: %v", epochs)
	}
}

// benchReport runs weft with args and decodes its JSON report into res.
func benchReport(t *testing.T, res any, args ...string) {
	t.Helper()
	cmd := exec.Command(weftBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), res); err != nil {
		t.Fatalf("the report is not one JSON object: %v\n%s", err, stdout.String())
	}
}

// TestNodeEnv: the report records the node settings that the started
// nodes take from the environment, and never a token.
func TestNodeEnv(t *testing.T) {
	got := nodeEnv([]string{"PATH=/bin", "WEFT_MEMORY_LIMIT=200MiB", "WEFT_SEED=7", "WEFT_API_TOKENS=ops:0123456789abcdef", "WEFT_RETAIN=5m"})
	want := []string{"WEFT_API_TOKENS=(set)", "WEFT_MEMORY_LIMIT=200MiB", "WEFT_RETAIN=5m"}
	if !slices.Equal(got, want) {
		t.Fatalf("nodeEnv = %q, want %q", got, want)
	}
}
