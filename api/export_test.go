package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/storegen"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/storage"
)

// exportLedger is the ledger of the export tests: two devices, timestamps
// one second apart from 2026-01-01, every third message unconfirmed, the
// payloads JSON (an object, a number, a string with a comma, quote and
// newline, padded with spaces) or not JSON (bytes, empty).
func exportLedger(i int) storegen.Message {
	payloads := [][]byte{[]byte(`{"temp_c": 4.5, "i": ` + strconv.Itoa(i) + `}`), []byte(`12`),
		[]byte(" \"a,\\\"b\\\"\\nc\" "), {0xff, 0, 1}, {}}
	return storegen.Message{Issuer: pubOf(key(byte(10 + i%2))), Timestamp: exportBase + int64(i)*1e9,
		Payload: payloads[i%len(payloads)], Unconfirmed: i%3 == 2}
}

const exportBase = int64(1_767_225_600_000_000_000) // 2026-01-01T00:00:00Z

// wantRecord is the export record of message i of exportLedger.
func wantRecord(i int) wire.ExportRecord {
	m := exportLedger(i)
	r := wire.ExportRecord{Issuer: m.Issuer.String(), Seq: uint64(i/2 + 1), Timestamp: wire.FormatTime(m.Timestamp),
		TimestampNs: m.Timestamp, Position: uint64(i + 1), Confirmed: !m.Unconfirmed, PayloadEncoding: wire.PayloadJSON}
	if r.Confirmed {
		at := m.Timestamp + storegen.ConfirmDelay
		r.ConfirmedAt, r.ConfirmedAtNs = wire.FormatTime(at), &at
	}
	var c bytes.Buffer
	if json.Compact(&c, m.Payload) == nil {
		r.Payload = c.Bytes()
	} else {
		r.PayloadEncoding = wire.PayloadBase64
		r.Payload, _ = json.Marshal(base64.StdEncoding.EncodeToString(m.Payload))
	}
	return r
}

// TestExportFormats exports a ledger as NDJSON and as CSV, whole, one
// device's, a window, and only the confirmed, and checks every record and
// field against the ledger.
func TestExportFormats(t *testing.T) {
	const n = 2500 // several of the node's pages
	_, _, c := ledgerServer(t, n, exportLedger)
	dev := pubOf(key(11))
	for _, tc := range []struct {
		name string
		r    client.TimeRange
		want func(i int) bool
	}{
		{"all", client.TimeRange{From: time.Unix(0, exportBase)}, func(int) bool { return true }},
		{"device", client.TimeRange{Device: &dev, From: time.Unix(0, exportBase)}, func(i int) bool { return i%2 == 1 }},
		{"window", client.TimeRange{From: time.Unix(0, exportBase+100e9), To: time.Unix(0, exportBase+1300e9)},
			func(i int) bool { return i >= 100 && i < 1300 }},
		{"confirmed", client.TimeRange{From: time.Unix(0, exportBase), Confirmed: true}, func(i int) bool { return i%3 != 2 }},
	} {
		var want []wire.ExportRecord
		for i := range n {
			if tc.want(i) {
				want = append(want, wantRecord(i))
			}
		}
		for _, format := range []string{client.FormatNDJSON, client.FormatCSV} {
			var out bytes.Buffer
			if _, err := c.Export(context.Background(), tc.r, format, &out); err != nil {
				t.Fatalf("%s %s: %v", tc.name, format, err)
			}
			var got []wire.ExportRecord
			if format == client.FormatCSV {
				got = readCSV(t, &out)
			} else {
				got = readNDJSON(t, &out)
			}
			if len(got) != len(want) {
				t.Fatalf("%s %s: %d records, want %d", tc.name, format, len(got), len(want))
			}
			for i := range got {
				w := want[i]
				w.ID = got[i].ID // checked below
				if g, _ := json.Marshal(got[i]); string(g) != string(must(json.Marshal(w))) {
					t.Fatalf("%s %s: record %d is\n%s, want\n%s", tc.name, format, i, g, must(json.Marshal(w)))
				}
			}
			if len(got) > 0 {
				p, err := c.Messages(context.Background(), client.TimeRange{From: time.Unix(0, got[0].TimestampNs)}, "", 1)
				if err != nil || len(p.Messages) != 1 || p.Messages[0].ID.String() != got[0].ID {
					t.Fatalf("%s %s: the first record's id %s is not the message's (%+v, %v)", tc.name, format, got[0].ID, p, err)
				}
			}
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// readNDJSON decodes an NDJSON export, one record a line.
func readNDJSON(t *testing.T, r io.Reader) []wire.ExportRecord {
	t.Helper()
	var out []wire.ExportRecord
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var rec wire.ExportRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v: %s", len(out)+1, err, sc.Bytes())
		}
		out = append(out, rec)
	}
	return out
}

// readCSV decodes a CSV export, checking its header row, into the records
// NDJSON would give.
func readCSV(t *testing.T, r io.Reader) []wire.ExportRecord {
	t.Helper()
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != strings.Join(wire.ExportColumns, ",") {
		t.Fatalf("header row %q, want %q", rows[0], wire.ExportColumns)
	}
	var out []wire.ExportRecord
	for _, row := range rows[1:] {
		atoi := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
		rec := wire.ExportRecord{ID: row[0], Issuer: row[1], Seq: uint64(atoi(row[2])), Timestamp: row[3], TimestampNs: atoi(row[4]),
			Position: uint64(atoi(row[5])), Confirmed: row[6] == "true", ConfirmedAt: row[7], PayloadEncoding: row[9]}
		if row[8] != "" {
			at := atoi(row[8])
			rec.ConfirmedAtNs = &at
		}
		if rec.PayloadEncoding == wire.PayloadJSON {
			rec.Payload = []byte(row[10])
		} else {
			rec.Payload = must(json.Marshal(row[10]))
		}
		out = append(out, rec)
	}
	return out
}

// countingWriter counts what a handler writes and flushes.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestExportClientGone: a client that reads the start of a large export
// and hangs up ends it: the handler returns soon after, having written a
// small part of the export.
func TestExportClientGone(t *testing.T) {
	const n = 40_000
	var written atomic.Int64
	returned := make(chan struct{}, 1)
	_, url, _ := ledgerServerWrapped(t, n, exportLedger, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if r.URL.Path == wire.PathExport {
					returned <- struct{}{}
				}
			}()
			h.ServeHTTP(countingWriter{w, &written}, r)
		})
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+wire.PathExport, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("the export went on 30 s after its client left")
	}
	// A full export of n records is over 12 MB.
	if w := written.Load(); w > 4<<20 {
		t.Fatalf("the export wrote %d bytes after its client left after 4 KiB", w)
	}
	t.Logf("the handler wrote %d bytes", written.Load())
}

// TestExportEmpty: a range with no message is a complete, empty export
// (CSV: the header row only).
func TestExportEmpty(t *testing.T) {
	_, _, c := ledgerServer(t, 3, exportLedger)
	var out bytes.Buffer
	r := client.TimeRange{From: time.Unix(0, exportBase+10e9)}
	if _, err := c.Export(context.Background(), r, client.FormatCSV, &out); err != nil || out.String() != strings.Join(wire.ExportColumns, ",")+"\n" {
		t.Fatalf("%q, %v", out.String(), err)
	}
	out.Reset()
	if _, err := c.Export(context.Background(), r, client.FormatNDJSON, &out); err != nil || out.Len() != 0 {
		t.Fatalf("%q, %v", out.String(), err)
	}
}

// TestExportHead: HEAD answers the export's headers without a body.
func TestExportHead(t *testing.T) {
	_, url, _ := ledgerServer(t, 3, exportLedger)
	resp, b := do(t, "HEAD", url+wire.PathExport+"?format=csv", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != wire.ContentCSV || len(b) != 0 {
		t.Fatalf("HEAD: %d %v %q", resp.StatusCode, resp.Header, b)
	}
}

// stopAfter writes to w and calls stop once, after more than n bytes.
type stopAfter struct {
	w    io.Writer
	n    int
	stop func()
}

func (s *stopAfter) Write(b []byte) (int, error) {
	if s.n -= len(b); s.n < 0 && s.stop != nil {
		s.stop()
		s.stop = nil
	}
	return s.w.Write(b)
}

// TestExportAborted: when the store fails during an export (here: the node
// stops and closes it), the answer is cut without its end, and the client
// reports the export as incomplete instead of returning a shorter one.
func TestExportAborted(t *testing.T) {
	const n = 40_000
	dir := t.TempDir()
	s, err := storage.Open(filepath.Join(dir, "store"), storage.Config{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := storegen.Write(s, "api-test", n, exportLedger); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	nd, err := node.New(node.Config{DataDir: dir, Identity: key(1), Network: "api-test", PoWBase: testPoWBase,
		Validators: []dag.Validator{{Key: pubOf(key(99)), Weight: 1}}, Store: storage.Config{NoSync: true}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopNode := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	srv := httptest.NewServer(New(nd, "test", zerolog.Nop()))
	defer srv.Close()
	out := &stopAfter{w: io.Discard, n: 1 << 20, stop: func() { stopNode(); <-done }}
	c := client.New(srv.URL, client.WithRetry(client.Retry{Attempts: 1}))
	got, err := c.Export(context.Background(), client.TimeRange{}, client.FormatNDJSON, out)
	if err == nil {
		t.Fatalf("an export cut by a closed store returned %d bytes and no error", got)
	}
	t.Logf("%d bytes, then: %v", got, err)
}
