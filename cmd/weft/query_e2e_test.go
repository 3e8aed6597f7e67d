package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/storegen"
	"github.com/weftnet/weft/storage"
)

// weft runs the weft binary with args and returns its standard output; it
// fails the test if weft exits with another status than want.
func weft(t *testing.T, want int, args ...string) string {
	t.Helper()
	cmd := exec.Command(weftBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("weft %s: %v", strings.Join(args, " "), err)
	}
	if code != want {
		t.Fatalf("weft %s: exit status %d, want %d\n%s%s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String()
}

// TestGetMessagesAndExport runs a node, sends a device's readings (JSON
// and not), and reads them back with `weft get messages` and `weft
// export`, whole and by time, as NDJSON and as CSV.
func TestGetMessagesAndExport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	p := startNode(t, t.TempDir(), "--pow-base", "4")
	_, key, _ := ed25519.GenerateKey(nil)
	var dev dag.PublicKey
	copy(dev[:], key.Public().(ed25519.PublicKey))
	const n = 12
	var msgs []*dag.Message
	for i := range n {
		payload := []byte(fmt.Sprintf(`{"temp_c":%d.5}`, i))
		if i%4 == 3 {
			payload = []byte{0xff, byte(i)}
		}
		m := rawMessage(t, p.url, key, uint64(i+1), payload)
		if st, err := postRaw(p.url, m.Bytes()); err != nil || st != http.StatusCreated {
			t.Fatalf("message %d: %d %v", i, st, err)
		}
		msgs = append(msgs, m)
	}
	c := client.New(p.url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, m := range msgs {
		if _, err := c.WaitConfirmed(ctx, m.ID()); err != nil {
			t.Fatal(err)
		}
	}

	// weft get messages: the device's, whole, then a window by RFC 3339
	// and by Unix nanoseconds (from inclusive, to exclusive).
	lines := func(out string) []client.MessageInfo {
		var got []client.MessageInfo
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var mi client.MessageInfo
			if err := json.Unmarshal(sc.Bytes(), &mi); err != nil {
				t.Fatalf("%v: %s", err, sc.Bytes())
			}
			got = append(got, mi)
		}
		return got
	}
	got := lines(weft(t, 0, "get", "messages", "--node", p.url, "--device", dev.String()))
	if len(got) != n {
		t.Fatalf("get messages: %d messages, want %d", len(got), n)
	}
	for i, mi := range got {
		if mi.ID != msgs[i].ID() || !mi.Confirmed {
			t.Fatalf("get messages: line %d is %s (confirmed %v), want %s confirmed", i, mi.ID, mi.Confirmed, msgs[i].ID())
		}
	}
	from := time.Unix(0, msgs[2].Timestamp).UTC().Format(time.RFC3339Nano)
	to := strconv.FormatInt(msgs[7].Timestamp, 10)
	got = lines(weft(t, 0, "get", "messages", "--node", p.url, "--device", dev.String(), "--from", from, "--to", to))
	if len(got) != 5 || got[0].ID != msgs[2].ID() || got[4].ID != msgs[6].ID() {
		t.Fatalf("get messages [%s, %s): %d messages", from, to, len(got))
	}
	// Every device's: the device's among the node's own.
	all := lines(weft(t, 0, "get", "messages", "--node", p.url, "--confirmed"))
	mine := 0
	for _, mi := range all {
		if mi.Issuer == dev {
			mine++
		}
	}
	if mine != n || len(all) <= n {
		t.Fatalf("get messages of every device: %d of %d are the device's, want %d of more", mine, len(all), n)
	}
	if out := weft(t, 0, "get", "messages", "--node", p.url, "--max", "3"); len(lines(out)) != 3 {
		t.Fatalf("--max 3: %q", out)
	}
	weft(t, exitUsage, "get", "messages", "--node", p.url, "--from", "yesterday")
	weft(t, exitUsage, "get", "messages", "--node", p.url, "--from", to, "--to", from)

	// weft export: NDJSON to standard output, CSV to a file.
	var recs []wire.ExportRecord
	sc := bufio.NewScanner(strings.NewReader(weft(t, 0, "export", "--node", p.url, "--device", dev.String())))
	for sc.Scan() {
		var r wire.ExportRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		recs = append(recs, r)
	}
	if len(recs) != n {
		t.Fatalf("export: %d records, want %d", len(recs), n)
	}
	for i, r := range recs {
		enc := wire.PayloadJSON
		if i%4 == 3 {
			enc = wire.PayloadBase64
		}
		if r.ID != msgs[i].ID().String() || r.Seq != uint64(i+1) || r.TimestampNs != msgs[i].Timestamp || !r.Confirmed ||
			r.ConfirmedAtNs == nil || r.PayloadEncoding != enc {
			t.Fatalf("export: record %d is %+v", i, r)
		}
	}
	if string(recs[0].Payload) != `{"temp_c":0.5}` {
		t.Fatalf("export: payload %s, want the JSON itself", recs[0].Payload)
	}
	file := filepath.Join(t.TempDir(), "out.csv")
	weft(t, 0, "export", "--node", p.url, "--device", dev.String(), "--format", "csv", "--out", file, "--from", from, "--to", to)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 6 || strings.Join(rows[0], ",") != strings.Join(wire.ExportColumns, ",") || rows[1][0] != msgs[2].ID().String() {
		t.Fatalf("export --format csv: %q", rows)
	}
	weft(t, exitUsage, "export", "--node", p.url, "--format", "xml")
}

// exportHeapBound is what TestExportHeapFlat lets the node's heap in use
// grow by over an export of a million messages.
const exportHeapBound = 32 << 20

// TestExportHeapFlat exports 1,000,000 messages from a node built without
// the race detector (plainWeftBin), reading the answer as fast as it
// comes, and samples the node's heap in use (go_memstats_heap_inuse_bytes)
// every 50 ms meanwhile: it must stay within exportHeapBound of what it
// was before. The store is written directly with storegen; the test logs
// the heap before and at its peak, and the rate.
func TestExportHeapFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary on a million messages")
	}
	const n = 1_000_000
	dir := t.TempDir()
	s, err := storage.Open(filepath.Join(dir, "store"), storage.Config{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	var devices [100]dag.PublicKey
	for i := range devices {
		devices[i][0], devices[i][1] = 0xd0, byte(i)
	}
	start := time.Now()
	const base = int64(1_767_225_600_000_000_000)
	err = storegen.Write(s, "e2e", n, func(i int) storegen.Message {
		return storegen.Message{Issuer: devices[i%len(devices)], Timestamp: base + int64(i)*1e6,
			Payload: []byte(`{"temp_c":` + strconv.Itoa(i%40) + `.5,"door":"closed"}`)}
	})
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d messages in %v", n, time.Since(start).Round(time.Millisecond))

	p := startNodeBin(t, plainWeftBin(t), dir, "--pow-base", "4")
	heap := func() float64 { return metric(t, p.url, "go_memstats_heap_inuse_bytes") }
	before := heap()
	stopSampling := peakOf(50*time.Millisecond, before, func() (float64, bool) {
		resp, err := http.Get(p.url + "/metrics")
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		return scanMetric(resp.Body, "go_memstats_heap_inuse_bytes")
	})
	start = time.Now()
	resp, err := http.Get(p.url + wire.PathExport + "?from=" + strconv.FormatInt(base, 10))
	if err != nil {
		t.Fatal(err)
	}
	lines, err := countLines(resp.Body)
	resp.Body.Close()
	el := time.Since(start)
	peak := stopSampling()
	if err != nil {
		t.Fatalf("export: after %d lines: %v", lines, err)
	}
	if lines != n {
		t.Fatalf("export: %d records, want %d", lines, n)
	}
	t.Logf("exported %d messages in %v (%.0f msgs/s); heap in use %.1f MiB before, %.1f MiB at the peak",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds(), before/(1<<20), peak/(1<<20))
	if peak-before > exportHeapBound {
		t.Fatalf("the heap in use grew from %.1f MiB to %.1f MiB during the export, more than %d MiB", before/(1<<20), peak/(1<<20), exportHeapBound>>20)
	}
}

// countLines counts the newlines of r.
func countLines(r io.Reader) (int, error) {
	buf := make([]byte, 256<<10)
	n := 0
	for {
		k, err := r.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
