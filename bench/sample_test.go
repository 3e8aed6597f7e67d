package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// A /proc/PID/status as Linux 6.x writes it, cut short.
const statusText = `Name:	weft
Umask:	0022
State:	S (sleeping)
Tgid:	4242
VmPeak:	 2415916 kB
VmSize:	 2350380 kB
VmLck:	       0 kB
VmHWM:	  301236 kB
VmRSS:	  254100 kB
RssAnon:	  131072 kB
RssFile:	  122004 kB
RssShmem:	    1024 kB
VmData:	  400000 kB
Threads:	12
`

func TestParseStatus(t *testing.T) {
	m, ok := parseStatus([]byte(statusText))
	if !ok {
		t.Fatal("not parsed")
	}
	want := memory{rss: 254100 << 10, hwm: 301236 << 10, anon: 131072 << 10, file: 122004 << 10}
	if m != want {
		t.Errorf("parsed %+v, want %+v", m, want)
	}
	for name, text := range map[string]string{
		"no VmRSS (a kernel thread)": "Name:\tkthreadd\nState:\tS (sleeping)\n",
		"empty":                      "",
		"a bad number":               "VmRSS:\t12x4 kB\n",
	} {
		if m, ok := parseStatus([]byte(text)); ok {
			t.Errorf("%s: parsed as %+v", name, m)
		}
	}
	// VmRSSx or a field named inside another's value is not VmRSS.
	m, ok = parseStatus([]byte("Name:\tVmRSS: 9 kB\nVmRSS:\t7 kB\nRssFileX:\t5 kB\n"))
	if !ok || m.rss != 7<<10 || m.file != 0 {
		t.Errorf("parsed %+v, %v: want rss 7 kB and no file part", m, ok)
	}
}

// TestProcMemory reads this process's and a child's status from /proc.
func TestProcMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	self, ok := processMemory()
	if !ok || self.rss <= 0 || self.hwm < self.rss || self.anon <= 0 || self.anon+self.file > self.rss+(1<<20) {
		t.Errorf("this process: %+v, %v", self, ok)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	child, ok := pidMemory(cmd.Process.Pid)
	if !ok || child.rss <= 0 || child.rss >= self.rss {
		t.Errorf("sleep's memory %+v (%v), this process's %+v: want a small positive RSS", child, ok, self)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if m, ok := pidMemory(cmd.Process.Pid); ok {
		t.Errorf("a reaped process's memory read: %+v", m)
	}
}

// TestDiskUsage checks that the store's size is the blocks of its files,
// as the file system counts them: a sparse file counts what was written,
// not its length.
func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("epoch-0000000000000000.db", 1<<20)
	write("state.db", 64<<10)
	write("sub/frontier", 4096)
	sparse, err := os.Create(filepath.Join(dir, "sparse.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	sparse.Close()
	got, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	written := int64(1<<20 + 64<<10 + 4096)
	if runtime.GOOS == "linux" {
		// Blocks: at least what was written, far below the sparse file's
		// length (a file system may allocate a few blocks ahead).
		if got < written || got > written+(16<<20) {
			t.Errorf("%d bytes on disk, want about %d (the 1 GiB sparse file counts its blocks only)", got, written)
		}
	} else if got != written+1<<30 {
		t.Errorf("%d bytes, want the files' sizes %d", got, written+1<<30)
	}
	if err := os.Remove(filepath.Join(dir, "epoch-0000000000000000.db")); err != nil {
		t.Fatal(err)
	}
	after, err := diskUsage(dir)
	if err != nil || after > got-(1<<20)+(16<<20) || after >= got {
		t.Errorf("after dropping a 1 MiB epoch: %d (%v), before %d", after, err, got)
	}
	if _, err := diskUsage(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing store measured")
	}
}

func TestFootprint(t *testing.T) {
	if f := footprint(nil, time.Minute); f != nil {
		t.Errorf("no samples: %+v", f)
	}
	const M = 1e6
	samples := []Sample{
		{T: 1, RSSBytes: 100 * M, AnonBytes: 60 * M, FileBytes: 40 * M, DiskBytes: 10 * M, P99ConfirmMs: 50},
		{T: 2, RSSBytes: 250 * M, AnonBytes: 90 * M, FileBytes: 160 * M, DiskBytes: 40 * M, P99ConfirmMs: 300},
		{T: 3, RSSBytes: 200 * M, AnonBytes: 120 * M, FileBytes: 80 * M, DiskBytes: 100 * M}, // no confirmation: p99 0
		{T: 4, RSSBytes: 150 * M, AnonBytes: 100 * M, FileBytes: 50 * M, DiskBytes: 90 * M, P99ConfirmMs: 80},
		{T: 5, RSSBytes: 160 * M, DiskBytes: 0, P99ConfirmMs: 70}, // disk not read that second
		{T: 6, RSSBytes: 170 * M, AnonBytes: 100 * M, FileBytes: 70 * M, DiskBytes: 108 * M, P99ConfirmMs: 60, Load: false},
	}
	f := footprint(samples, 3*time.Second)
	want := Footprint{MaxRSSBytes: 250 * M, MaxRSSAtS: 2, AnonAtMaxBytes: 90 * M, FileAtMaxBytes: 160 * M,
		MaxAnonBytes: 120 * M, MaxFileBytes: 160 * M,
		SteadyAfterS: 3, DiskAtSteadyBytes: 100 * M, DiskMinBytes: 90 * M, DiskMaxBytes: 108 * M, DiskFlatness: 1.2,
		DiskMaxAllBytes: 108 * M, DiskEndBytes: 108 * M,
		P99SecondMedianMs: 70, P99SecondMaxMs: 300, P99SecondMaxAtS: 2}
	if math.Abs(f.DiskFlatness-1.2) < 1e-9 {
		f.DiskFlatness = 1.2
	}
	if *f != want {
		t.Errorf("footprint\n%+v\nwant\n%+v", *f, want)
	}
	// A run that ends before the store levels off gives no figures after.
	f = footprint(samples, time.Minute)
	if f.DiskAtSteadyBytes != 0 || f.DiskMinBytes != 0 || f.DiskMaxBytes != 0 || f.DiskFlatness != 0 || f.DiskMaxAllBytes != 108*M {
		t.Errorf("steady after the end: %+v", *f)
	}
	// A steady time between samples starts at the first one after it.
	f = footprint(samples, 3500*time.Millisecond)
	if f.DiskAtSteadyBytes != 90*M || f.DiskMinBytes != 90*M || f.DiskMaxBytes != 108*M {
		t.Errorf("steady after 3.5 s: %+v", *f)
	}
}

// TestSeriesCSV checks the per-second CSV: a column for every field of a
// sample (so that none is added to the JSON alone), and rows that read back
// as the samples.
func TestSeriesCSV(t *testing.T) {
	r := soakResult()
	var b bytes.Buffer
	if err := r.SeriesCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+len(r.Timeline) {
		t.Fatalf("%d rows, want a header and %d", len(rows), len(r.Timeline))
	}
	col := map[string]int{}
	for k, name := range rows[0] {
		col[name] = k
	}
	js, _ := json.Marshal(Sample{T: 1, OfferedPerS: 1, AcceptedPerS: 1, ConfirmedPerS: 1, P50ConfirmMs: 1, P99ConfirmMs: 1, BehindS: 1,
		RSSBytes: 1, AnonBytes: 1, FileBytes: 1, LiveHeapBytes: 1, DiskBytes: 1, Load: true, AckCheck: true})
	var fields map[string]any
	json.Unmarshal(js, &fields)
	for k := range fields {
		if k == "t" {
			k = "t_s"
		}
		if _, ok := col[k]; !ok {
			t.Errorf("the CSV has no column for the timeline's %q", k)
		}
	}
	num := func(row []string, name string) float64 {
		v, err := strconv.ParseFloat(row[col[name]], 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	for i, s := range r.Timeline {
		row := rows[i+1]
		load := 0.0
		if s.Load {
			load = 1
		}
		got := []float64{num(row, "t_s"), num(row, "load"), num(row, "p50_confirm_ms"), num(row, "p99_confirm_ms"),
			num(row, "rss_bytes"), num(row, "rss_anon_bytes"), num(row, "rss_file_bytes"), num(row, "disk_bytes"), num(row, "accepted_per_s")}
		want := []float64{s.T, load, s.P50ConfirmMs, s.P99ConfirmMs, float64(s.RSSBytes), float64(s.AnonBytes), float64(s.FileBytes),
			float64(s.DiskBytes), s.AcceptedPerS}
		if !slices.Equal(got, want) {
			t.Errorf("row %d: %v, want %v", i, got, want)
		}
	}
}
