// Command flood floods a running weft node's gossip port, on 127.0.0.1
// only, with junk UDP (half well-formed-looking QUIC Initials, half random
// bytes, from 64 source ports) and reports the node's goroutines and
// resident memory over time, before, during and after the flood:
//
//	go run ./gossip/internal/flood -pid $(pgrep -n weft) \
//		-target 127.0.0.1:7070 -metrics http://127.0.0.1:8080/metrics
//
// RSS and threads come from /proc/PID/status; goroutines from the node's
// Prometheus metrics (go_goroutines). docs/BENCHMARKS.md has figures.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/gossip/internal/junk"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

func run() error {
	target := flag.String("target", "127.0.0.1:7070", "the node's gossip address (UDP); must be 127.0.0.1")
	pid := flag.Int("pid", 0, "the node's process id, for /proc/PID/status (required)")
	metrics := flag.String("metrics", "http://127.0.0.1:8080/metrics", "the node's metrics URL, for go_goroutines (empty: none)")
	rate := flag.Int("rate", 50_000, "datagrams per second")
	dur := flag.Duration("duration", 30*time.Second, "how long to flood")
	before := flag.Duration("before", 3*time.Second, "how long to watch before the flood")
	after := flag.Duration("after", 60*time.Second, "how long to watch after the flood")
	every := flag.Duration("every", time.Second, "sampling interval")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the junk")
	flag.Parse()
	if *pid <= 0 {
		return errors.New("-pid is required")
	}
	w := &watcher{pid: *pid, metrics: *metrics, start: time.Now()}
	if _, err := w.sample(); err != nil {
		return err
	}
	fmt.Printf("seed %d; flooding %s at %d/s for %v\n", *seed, *target, *rate, *dur)
	fmt.Println("t_s\tphase\tgoroutines\tthreads\trss_mib")
	w.watch(context.Background(), "before", *before, *every)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var st junk.Stats
	var ferr error
	go func() {
		defer close(done)
		st, ferr = junk.Flood(ctx, junk.Config{Target: *target, Rate: *rate, Duration: *dur, Seed: *seed})
		cancel()
	}()
	w.watch(ctx, "flood", *dur+time.Second, *every)
	<-done
	if ferr != nil {
		return ferr
	}
	w.watch(context.Background(), "after", *after, *every)
	fmt.Printf("sent %d Initials and %d random datagrams in %v (%.0f/s), %d send errors\n",
		st.Initials, st.Random, st.Elapsed.Round(time.Millisecond), float64(st.Sent())/st.Elapsed.Seconds(), st.Errors)
	fmt.Printf("peak: %d goroutines, %.1f MiB RSS (before the flood: %d, %.1f MiB)\n", w.peak.goroutines, w.peak.rss, w.first.goroutines, w.first.rss)
	return nil
}

// figures are one sample of the node.
type figures struct {
	goroutines int // -1 if unknown
	threads    int
	rss        float64 // MiB
}

type watcher struct {
	pid         int
	metrics     string
	start       time.Time
	first, peak figures
	sampled     bool
}

// watch prints a sample every interval for d or until ctx ends.
func (w *watcher) watch(ctx context.Context, phase string, d, every time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) && ctx.Err() == nil {
		f, err := w.sample()
		if err != nil {
			fmt.Fprintln(os.Stderr, "flood:", err)
		} else {
			fmt.Printf("%.0f\t%s\t%d\t%d\t%.1f\n", time.Since(w.start).Seconds(), phase, f.goroutines, f.threads, f.rss)
		}
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

func (w *watcher) sample() (figures, error) {
	f := figures{goroutines: -1}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", w.pid))
	if err != nil {
		return f, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, _ := strconv.Atoi(fs[0])
		switch k {
		case "VmRSS":
			f.rss = float64(n) / 1024 // kB
		case "Threads":
			f.threads = n
		}
	}
	if w.metrics != "" {
		if f.goroutines, err = goroutines(w.metrics); err != nil {
			return f, err
		}
	}
	if !w.sampled {
		w.first, w.sampled = f, true
	}
	w.peak.goroutines = max(w.peak.goroutines, f.goroutines)
	w.peak.threads = max(w.peak.threads, f.threads)
	w.peak.rss = max(w.peak.rss, f.rss)
	return f, nil
}

// goroutines reads go_goroutines from a Prometheus text exposition.
func goroutines(url string) (int, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(n), err
		}
	}
	if err := sc.Err(); err != nil {
		return -1, err
	}
	return -1, fmt.Errorf("no go_goroutines at %s", url)
}
