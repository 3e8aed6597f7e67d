package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
}
