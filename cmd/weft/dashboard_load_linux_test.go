package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardUnderLoad is a measurement, run by hand (docs/DASHBOARD.md):
// a node process at 10,000 msgs/s (weft bench ingest), its CPU over 20 s
// without the dashboard open and then with it, and the page's frame times
// meanwhile.
func TestDashboardUnderLoad(t *testing.T) {
	if os.Getenv("WEFT_DASHBOARD_LOAD") == "" {
		t.Skip("a measurement, not a test: set WEFT_DASHBOARD_LOAD=1 (docs/DASHBOARD.md)")
	}
	b := newBrowser(t)
	bin := plainWeftBin(t)
	p := startNodeBin(t, bin, t.TempDir(), "--pow-base", "4")
	var out, errOut bytes.Buffer
	load := exec.Command(bin, "bench", "ingest", "--node", p.url, "--rate", "10000", "--duration", "75s", "--quiet", "--json")
	load.Stdout, load.Stderr = &out, &errOut
	if err := load.Start(); err != nil {
		t.Fatal(err)
	}
	defer load.Process.Kill()
	time.Sleep(15 * time.Second) // the messages are built, the load reaches its rate
	pid := p.cmd.Process.Pid
	off := cpuOver(t, pid, 20*time.Second)

	b.do(t, "open the overview", chromedp.Navigate(p.url+"/"))
	b.wait(t, "the DAG view", `weft.dag.nodes.size > 0 && weft.series.confirmed.some(v => v > 5000)`)
	time.Sleep(3 * time.Second)
	eval[bool](t, b, `weft.frames = []; true`)
	on := cpuOver(t, pid, 20*time.Second)
	frames := eval[[]float64](t, b, `weft.frames`)
	k := eval[int](t, b, `weft.dag.k`)
	rate := eval[float64](t, b, `weft.dag.rate`)
	b.screenshot(t, "dashboard-load.png")
	if err := load.Wait(); err != nil {
		t.Fatalf("weft bench ingest: %v\n%s", err, errOut.String())
	}
	var rep struct {
		Confirmed float64 `json:"confirmed_per_s"`
		Accepted  float64 `json:"accepted_per_s"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("the load's report: %v\n%s", err, out.String())
	}
	if len(frames) < 100 {
		t.Fatalf("%d frames in 20 s", len(frames))
	}
	slices.Sort(frames)
	q := func(f float64) float64 { return frames[min(len(frames)-1, int(f*float64(len(frames))))] }
	long := 0
	for _, f := range frames {
		if f > 50 {
			long++
		}
	}
	t.Logf("load: %.0f accepted, %.0f confirmed msgs/s; the page saw %.0f message events/s, drew 1 in %d", rep.Accepted, rep.Confirmed, rate, k)
	t.Logf("node CPU: %.2f cores without the page, %.2f with it (%+.2f)", off, on, on-off)
	t.Logf("frames in 20 s: %d (%.1f/s); frame time p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d over 50 ms",
		len(frames), float64(len(frames))/20, q(0.5), q(0.99), frames[len(frames)-1], long)
	b.errors(t)
}

// cpuOver measures process pid's CPU over d, in cores: user and system
// time from /proc/PID/stat (clock ticks of 1/100 s, Linux's USER_HZ).
func cpuOver(t *testing.T, pid int, d time.Duration) float64 {
	t.Helper()
	read := func() float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		return (u + s) / 100
	}
	start, t0 := read(), time.Now()
	time.Sleep(d)
	return (read() - start) / time.Since(t0).Seconds()
}
