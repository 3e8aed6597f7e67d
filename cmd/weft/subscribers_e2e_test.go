package main

import (
	"bufio"
	"crypto/ed25519"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssBytes returns the resident set of process pid, from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// metric returns the value of an unlabelled metric of the node's /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	v, ok := scanMetric(resp.Body, name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return v
}

// scanMetric returns the value of the unlabelled metric name in the
// Prometheus text r, and whether it is there.
func scanMetric(r io.Reader, name string) (float64, bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// peakOf calls sample every period, on a goroutine of its own, until the
// function it returns is called; that function returns the largest value
// sampled, or floor if none was larger. A sample that fails (false) is
// skipped.
func peakOf(period time.Duration, floor float64, sample func() (float64, bool)) (stop func() float64) {
	var (
		mu   sync.Mutex
		peak = floor
		done = make(chan struct{})
		quit = make(chan struct{})
	)
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
				if v, ok := sample(); ok {
					mu.Lock()
					peak = max(peak, v)
					mu.Unlock()
				}
			}
		}
	}()
	return func() float64 {
		close(quit)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// idleStreamsRSSBound is what TestIdleSubscribers allows the node's
// resident memory to reach, on a node built without the race detector.
const idleStreamsRSSBound = 200 << 20

// TestIdleSubscribers: 2,000 event streams that never read leave the
// resident memory of a node built without the race detector (plainWeftBin)
// under idleStreamsRSSBound while an honest device
// submits at 50 messages a second, each answered 201; the stream past
// --max-subscribers is refused with 503 and Retry-After. The submissions'
// p99 is logged (a figure, not a check: timing is the benchmarks' job;
// docs/BENCHMARKS.md has it measured without the race detector).
func TestIdleSubscribers(t *testing.T) {
	const streams, rate, load = 2000, 50, 20 * time.Second
	p := startNodeBin(t, plainWeftBin(t), t.TempDir(), "--pow-base", "4", "--max-subscribers", strconv.Itoa(streams))
	pid := p.cmd.Process.Pid
	before := rssBytes(t, pid)
	addr := strings.TrimPrefix(p.url, "http://")
	conns := make([]net.Conn, 0, streams)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range streams {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("stream %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		if _, err := fmt.Fprintf(c, "GET /api/v1/events HTTP/1.1\r\nHost: weft\r\n\r\n"); err != nil { // and never read
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for metric(t, p.url, "weft_event_subscribers") < streams {
		if time.Now().After(deadline) {
			t.Fatalf("%v streams open after a minute, want %d", metric(t, p.url, "weft_event_subscribers"), streams)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp, err := http.Get(p.url + "/api/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stream %d: %d, Retry-After %q; want 503 with Retry-After", streams+1, resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	stopSampling := peakOf(100*time.Millisecond, float64(rssBytes(t, pid)), func() (float64, bool) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil && len(b) > 0 {
			return float64(rssBytes(t, pid)), true
		}
		return 0, false
	})
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	var lat []time.Duration
	start := time.Now()
	for seq := uint64(1); time.Since(start) < load; seq++ {
		m := rawMessage(t, p.url, key, seq, []byte(fmt.Sprintf(`{"t":%d}`, seq)))
		t0 := time.Now()
		st, err := postRaw(p.url, m.Bytes())
		lat = append(lat, time.Since(t0))
		if err != nil || st != 201 {
			t.Fatalf("message %d: %d %v", seq, st, err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(seq) * time.Second / rate)))
	}
	peak := int64(stopSampling())
	open := metric(t, p.url, "weft_event_subscribers")
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("%d idle streams (%v still open at the end): node RSS %d MiB before them, peak %d MiB after; %d submissions, p50 %v, p99 %v",
		streams, open, before>>20, peak>>20, len(lat), lat[len(lat)/2], p99)
	if peak > idleStreamsRSSBound {
		t.Fatalf("peak RSS %d MiB with %d idle streams, want under %d MiB", peak>>20, streams, idleStreamsRSSBound>>20)
	}
}
