package bench

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"strings"
	"testing"
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
