package bench

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// storeDir is the store's directory in a node's data directory: its epoch
// files, its state and its frontier (node.Config.DataDir).
const storeDir = "store"

// diskUsage returns the bytes allocated on disk to the files under dir:
// the sum of their st_blocks x 512, which for a sparse or preallocated
// file differs from its size. A file removed while the walk runs (an
// epoch the store drops) counts nothing; dir itself must exist.
func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += allocated(fi)
		return nil
	})
	return total, err
}

// memory is a process's memory as /proc/PID/status states it, in bytes.
type memory struct {
	rss  int64 // VmRSS: resident now, file-backed pages included
	hwm  int64 // VmHWM: the peak of VmRSS so far
	anon int64 // RssAnon: the resident anonymous memory (the Go heap and stacks)
	file int64 // RssFile: resident file-backed pages (bbolt's memory maps)
}

// parseStatus reads the memory fields of a /proc/PID/status file: lines
// "Name:\tvalue kB". It reports false when VmRSS is missing (a kernel
// thread, or not that file).
func parseStatus(b []byte) (memory, bool) {
	var m memory
	found := false
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(k) {
		case "VmRSS":
			dst, found = &m.rss, true
		case "VmHWM":
			dst = &m.hwm
		case "RssAnon":
			dst = &m.anon
		case "RssFile":
			dst = &m.file
		default:
			continue
		}
		v = bytes.TrimSpace(v)
		unit := int64(1)
		if n, ok := bytes.CutSuffix(v, []byte("kB")); ok {
			v, unit = bytes.TrimSpace(n), 1<<10
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return memory{}, false
		}
		*dst = n * unit
	}
	return m, found
}

// Footprint is what the timeline says of the node's memory and disk, and
// of its latency second by second, over the whole run (the window, the
// cool-down and the drain): the figures a soak is judged by.
type Footprint struct {
	// MaxRSSBytes is the largest resident memory sampled, at MaxRSSAtS
	// seconds; AnonAtMaxBytes and FileAtMaxBytes are its anonymous and
	// file-backed parts in that sample (0 if unknown). MaxAnonBytes and
	// MaxFileBytes are the largest of each part, at any time.
	MaxRSSBytes    int64   `json:"max_rss_bytes"`
	MaxRSSAtS      float64 `json:"max_rss_at_s"`
	AnonAtMaxBytes int64   `json:"rss_anon_at_max_bytes"`
	FileAtMaxBytes int64   `json:"rss_file_at_max_bytes"`
	MaxAnonBytes   int64   `json:"max_rss_anon_bytes"`
	MaxFileBytes   int64   `json:"max_rss_file_bytes"`

	// SteadyAfterS is when the store's size should have levelled off
	// (Config.SteadyAfter). DiskAtSteadyBytes is the first disk sample at
	// or after it; DiskMinBytes and DiskMaxBytes the least and most from
	// then to the end, and DiskFlatness their ratio (max/min; 1 is flat).
	// They are 0 when the run ended before, or the disk was not sampled.
	// DiskMaxAllBytes is the most at any time, DiskEndBytes the last.
	SteadyAfterS      float64 `json:"steady_after_s"`
	DiskAtSteadyBytes int64   `json:"disk_at_steady_bytes"`
	DiskMinBytes      int64   `json:"disk_min_after_steady_bytes"`
	DiskMaxBytes      int64   `json:"disk_max_after_steady_bytes"`
	DiskFlatness      float64 `json:"disk_flatness"`
	DiskMaxAllBytes   int64   `json:"disk_max_bytes"`
	DiskEndBytes      int64   `json:"disk_end_bytes"`

	// P99SecondMedianMs and P99SecondMaxMs are the median and the largest
	// of the seconds' p99 latencies (seconds with a confirmation), the
	// largest at P99SecondMaxAtS.
	P99SecondMedianMs float64 `json:"p99_second_median_ms"`
	P99SecondMaxMs    float64 `json:"p99_second_max_ms"`
	P99SecondMaxAtS   float64 `json:"p99_second_max_at_s"`
}

// footprint sums up samples, with the disk expected flat from steadyAfter
// on. It returns nil for no samples.
func footprint(samples []Sample, steadyAfter time.Duration) *Footprint {
	if len(samples) == 0 {
		return nil
	}
	f := &Footprint{SteadyAfterS: steadyAfter.Seconds()}
	var p99s []float64
	for _, s := range samples {
		if s.RSSBytes > f.MaxRSSBytes {
			f.MaxRSSBytes, f.MaxRSSAtS, f.AnonAtMaxBytes, f.FileAtMaxBytes = s.RSSBytes, s.T, s.AnonBytes, s.FileBytes
		}
		f.MaxAnonBytes, f.MaxFileBytes = max(f.MaxAnonBytes, s.AnonBytes), max(f.MaxFileBytes, s.FileBytes)
		if s.P99ConfirmMs > 0 {
			p99s = append(p99s, s.P99ConfirmMs)
			if s.P99ConfirmMs > f.P99SecondMaxMs {
				f.P99SecondMaxMs, f.P99SecondMaxAtS = s.P99ConfirmMs, s.T
			}
		}
		if s.DiskBytes <= 0 {
			continue // not sampled
		}
		f.DiskMaxAllBytes, f.DiskEndBytes = max(f.DiskMaxAllBytes, s.DiskBytes), s.DiskBytes
		if s.T < f.SteadyAfterS {
			continue
		}
		if f.DiskAtSteadyBytes == 0 {
			f.DiskAtSteadyBytes, f.DiskMinBytes = s.DiskBytes, s.DiskBytes
		}
		f.DiskMinBytes, f.DiskMaxBytes = min(f.DiskMinBytes, s.DiskBytes), max(f.DiskMaxBytes, s.DiskBytes)
	}
	if f.DiskMinBytes > 0 {
		f.DiskFlatness = float64(f.DiskMaxBytes) / float64(f.DiskMinBytes)
	}
	if len(p99s) > 0 {
		slices.Sort(p99s)
		f.P99SecondMedianMs = p99s[(len(p99s)+1)/2-1] // nearest rank
	}
	return f
}

// seriesColumns are the columns of SeriesCSV, in order.
var seriesColumns = []string{"t_s", "load", "offered_per_s", "accepted_per_s", "confirmed_per_s", "p50_confirm_ms", "p99_confirm_ms",
	"behind_s", "rss_bytes", "rss_anon_bytes", "rss_file_bytes", "live_heap_bytes", "disk_bytes", "ack_check"}

// SeriesCSV writes the timeline as CSV: a header, then one row a second,
// with the columns named as the JSON report's timeline fields (t_s for t;
// load is 1 during the measured load, 0 in the cool-down; ack_check 1 in
// a second a check of the acknowledgements ran). A figure the run did not
// measure is 0.
func (r *Result) SeriesCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(seriesColumns); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, s := range r.Timeline {
		if err := cw.Write([]string{f(s.T), flag(s.Load), f(s.OfferedPerS), f(s.AcceptedPerS), f(s.ConfirmedPerS), f(s.P50ConfirmMs),
			f(s.P99ConfirmMs), f(s.BehindS), i(s.RSSBytes), i(s.AnonBytes), i(s.FileBytes), i(s.LiveHeapBytes), i(s.DiskBytes),
			flag(s.AckCheck)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
