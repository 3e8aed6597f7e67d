package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// parseSVG checks that b is well-formed XML with an <svg> root and returns
// the number of elements of each name.
func parseSVG(t *testing.T, b []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	names := map[string]int{}
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG does not parse: %v\n%s", err, b)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (tk.Name.Local != "svg" || tk.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root element %v, want svg in the SVG namespace", tk.Name)
			}
			depth++
			names[tk.Name.Local]++
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 || names["svg"] != 1 {
		t.Fatalf("unbalanced document: %v", names)
	}
	return names
}

func TestChartSVG(t *testing.T) {
	c := chart{
		title:  `throughput & latency <"quoted">`,
		xlabel: "seconds",
		panels: []panel{
			{left: "msgs/s", right: "ms", series: []series{
				{name: "a", color: "#000", pts: [][2]float64{{1, 10}, {2, 30000}, {3, 25000}}},
				{name: "b", color: "#f00", right: true, dashed: true, pts: [][2]float64{{1, 0.5}, {2, 120}, {3, math.NaN()}, {4, 80}, {5, 90}}},
				{name: "empty", color: "#0f0"},
			}},
			{left: "MiB", series: []series{{name: "rss", color: "#00f", pts: [][2]float64{{1, 100}, {3, 120}}}}},
		},
		marks: []mark{{x: 2.5, label: "end & drain"}},
	}
	var b bytes.Buffer
	if err := c.writeSVG(&b); err != nil {
		t.Fatal(err)
	}
	names := parseSVG(t, b.Bytes())
	if names["polyline"] != 4 {
		t.Errorf("%d polylines, want 4 (one per series with points, and one more for the gap)", names["polyline"])
	}
	if !strings.Contains(b.String(), "throughput &amp; latency &lt;") {
		t.Error("the title is not escaped")
	}
	if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
		t.Error("the SVG has NaN or Inf coordinates")
	}
}

func TestChartSVGEmpty(t *testing.T) {
	var b bytes.Buffer
	r := &Result{Scenario: "ingest"}
	if err := r.PlotSVG(&b); err != nil {
		t.Fatal(err)
	}
	parseSVG(t, b.Bytes())
	if strings.Contains(b.String(), "NaN") || strings.Contains(b.String(), "Inf") {
		t.Error("the SVG of an empty run has NaN or Inf coordinates")
	}
}

func TestNiceTicks(t *testing.T) {
	for _, c := range []struct{ lo, hi float64 }{{0, 1}, {0, 7}, {0, 31234}, {0, 0.004}, {0, 0}, {0, math.NaN()}, {0, 999999}, {3, 17}} {
		ts := niceTicks(c.lo, c.hi, 5)
		if len(ts) < 2 || len(ts) > 12 {
			t.Errorf("niceTicks(%g, %g): %d ticks: %v", c.lo, c.hi, len(ts), ts)
			continue
		}
		if ts[0] > c.lo || (!math.IsNaN(c.hi) && ts[len(ts)-1] < c.hi) {
			t.Errorf("niceTicks(%g, %g) = %v does not cover the range", c.lo, c.hi, ts)
		}
		step := ts[1] - ts[0]
		mant := step / math.Pow(10, math.Floor(math.Log10(step)))
		if m := math.Round(mant*1e6) / 1e6; m != 1 && m != 2 && m != 5 {
			t.Errorf("niceTicks(%g, %g): step %g is not 1, 2 or 5 times a power of ten", c.lo, c.hi, step)
		}
	}
}

func TestTickLabel(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 5: "5", 2500: "2500", 20000: "20k", 1500000: "1.5M", 0.25: "0.25"} {
		if got := tickLabel(v); got != want {
			t.Errorf("tickLabel(%g) = %q, want %q", v, got, want)
		}
	}
}

// polylines returns the points of the SVG's polylines by class, one slice
// per polyline.
func polylines(t *testing.T, b []byte) map[string][][][2]float64 {
	t.Helper()
	out := map[string][][][2]float64{}
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok || el.Name.Local != "polyline" {
			continue
		}
		var class, points string
		for _, a := range el.Attr {
			switch a.Name.Local {
			case "class":
				class = a.Value
			case "points":
				points = a.Value
			}
		}
		var pts [][2]float64
		for _, p := range strings.Fields(points) {
			var x, y float64
			if _, err := fmt.Sscanf(p, "%g,%g", &x, &y); err != nil {
				t.Fatalf("point %q: %v", p, err)
			}
			pts = append(pts, [2]float64{x, y})
		}
		out[class] = append(out[class], pts)
	}
}

// soakResult is a run of ten seconds with the node's memory and disk
// sampled, a second without confirmations, and retention.
func soakResult() *Result {
	r := &Result{Scenario: "network", WindowS: 8, Setup: Setup{Node: "processes", Rate: 10000, Batch: 1024, Devices: 1000,
		Retention: &Retention{Retain: time.Minute, EpochAge: 10 * time.Second}}}
	disk := []int64{10, 20, 30, 40, 50, 45, 55, 50, 60, 52}
	for i := range 10 {
		s := Sample{T: float64(i + 1), OfferedPerS: 10000, AcceptedPerS: 9990, ConfirmedPerS: 9980, P50ConfirmMs: 80, P99ConfirmMs: 150 + float64(i),
			RSSBytes: int64(200+i) * 1e6, AnonBytes: 120e6, FileBytes: int64(80+i) * 1e6, DiskBytes: disk[i] * 1e6, Load: i < 8}
		if i == 4 {
			s.P50ConfirmMs, s.P99ConfirmMs = 0, 0
		}
		r.Timeline = append(r.Timeline, s)
	}
	r.Footprint = footprint(r.Timeline, 5*time.Second)
	return r
}

// TestPlotSoakPanels checks the chart of a run with the node's memory and
// disk: a panel each for throughput, latency (median and p99 of each
// second), memory (total and its parts) and disk, with the disk's line
// following the samples.
func TestPlotSoakPanels(t *testing.T) {
	r := soakResult()
	var b bytes.Buffer
	if err := r.PlotSVG(&b); err != nil {
		t.Fatal(err)
	}
	svg := b.String()
	parseSVG(t, b.Bytes())
	for _, want := range []string{"messages per second", "confirmation latency (ms)", "resident memory (MB)", "store on disk (MB)",
		"retain 1m0s, epoch age 10s", "disk expected flat from here", "end of the measured load"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart lacks %q", want)
		}
	}
	lines := polylines(t, b.Bytes())
	for class, n := range map[string]int{"offered": 1, "accepted": 1, "confirmed": 1, "p99": 2, "p50": 2, "rss": 1, "anon": 1, "file": 1, "disk": 1} {
		if len(lines[class]) != n {
			t.Errorf("%d polylines of class %q, want %d", len(lines[class]), class, n)
		}
	}
	if _, ok := lines["live"]; ok {
		t.Error("a live heap line for a node process")
	}
	d := lines["disk"][0]
	if len(d) != 10 {
		t.Fatalf("the disk line has %d points, want 10", len(d))
	}
	for i := 1; i < len(d); i++ {
		up, higher := r.Timeline[i].DiskBytes > r.Timeline[i-1].DiskBytes, d[i][1] < d[i-1][1] // SVG's y runs down
		if up != higher || d[i][0] <= d[i-1][0] {
			t.Errorf("disk point %d at %v after %v: the samples went %v", i, d[i], d[i-1], map[bool]string{true: "up", false: "down"}[up])
		}
	}
	// p50 below p99 in the same panel: drawn higher on the page.
	if p50, p99 := lines["p50"][0][0], lines["p99"][0][0]; p50[1] <= p99[1] {
		t.Errorf("the median is drawn at y %g, the p99 at %g", p50[1], p99[1])
	}
}

// TestPlotNoDisk checks that a run without disk samples (a node at a URL)
// has no disk panel.
func TestPlotNoDisk(t *testing.T) {
	r := soakResult()
	for i := range r.Timeline {
		r.Timeline[i].DiskBytes, r.Timeline[i].AnonBytes, r.Timeline[i].FileBytes = 0, 0, 0
	}
	r.Footprint = footprint(r.Timeline, 5*time.Second)
	var b bytes.Buffer
	if err := r.PlotSVG(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "store on disk") || strings.Contains(b.String(), "disk expected flat") {
		t.Error("a disk panel without disk samples")
	}
	lines := polylines(t, b.Bytes())
	if len(lines["rss"]) != 1 || len(lines["disk"]) != 0 || len(lines["anon"]) != 0 {
		t.Errorf("lines %v", lines)
	}
}
