package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"-1", -1},
		{"1767225600000000000", 1_767_225_600_000_000_000},
		{"2026-01-01T00:00:00Z", 1_767_225_600_000_000_000},
		{"2026-01-01T00:00:00.5Z", 1_767_225_600_500_000_000},
		{"2026-01-01T01:00:00.000000001+01:00", 1_767_225_600_000_000_001},
		{"1970-01-01T00:00:00Z", 0},
		{"9223372036854775807", math.MaxInt64},
		{"-9223372036854775808", math.MinInt64},
	} {
		got, err := ParseTime(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseTime(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "yesterday", "2026-01-01", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00", "1e9",
		"9223372036854775808", "+5", "0x10", "3000-01-01T00:00:00Z", "1600-01-01T00:00:00Z", strings.Repeat("1", 65)} {
		if got, err := ParseTime(in); !errors.Is(err, ErrQuery) {
			t.Errorf("ParseTime(%q) = %d, %v; want ErrQuery", in, got, err)
		}
	}
}

func TestCursor(t *testing.T) {
	r := TimeRange{Issuer: "ab", From: 10, To: 20, Confirmed: true}
	for _, p := range []Place{{10, 0}, {19, math.MaxUint64}, {15, 7}} {
		c := EncodeCursor(r, p)
		got, err := DecodeCursor(c, r)
		if err != nil || got != p {
			t.Errorf("cursor of %+v: %q decodes to %+v, %v", p, c, got, err)
		}
	}
	c := EncodeCursor(r, Place{12, 3})
	for _, other := range []TimeRange{{Issuer: "ac", From: 10, To: 20, Confirmed: true}, {Issuer: "ab", From: 11, To: 20, Confirmed: true},
		{Issuer: "ab", From: 10, To: 21, Confirmed: true}, {Issuer: "ab", From: 10, To: 20}} {
		if _, err := DecodeCursor(c, other); !errors.Is(err, ErrQuery) {
			t.Errorf("a cursor of %+v is accepted for %+v", r, other)
		}
	}
	// A place outside the range is refused even with a good tag.
	if _, err := DecodeCursor(EncodeCursor(r, Place{20, 0}), r); !errors.Is(err, ErrQuery) {
		t.Error("a cursor at to is accepted")
	}
	if _, err := DecodeCursor(EncodeCursor(r, Place{9, 0}), r); !errors.Is(err, ErrQuery) {
		t.Error("a cursor before from is accepted")
	}
	// Every single-character change is refused.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range c {
		for _, ch := range alphabet {
			if byte(ch) == c[i] {
				continue
			}
			b := []byte(c)
			b[i] = byte(ch)
			if _, err := DecodeCursor(string(b), r); !errors.Is(err, ErrQuery) {
				t.Fatalf("cursor %q, changed at %d to %q, is accepted", c, i, b)
			}
		}
	}
}

func TestParseTimeQuery(t *testing.T) {
	q := url.Values{"from": {"5"}, "to": {"2026-01-01T00:00:00Z"}, "confirmed": {"true"}, "limit": {"7"}}
	tq, err := ParseTimeQuery(q, "k")
	if err != nil || tq.From != 5 || tq.To != 1_767_225_600_000_000_000 || !tq.Confirmed || tq.Limit != 7 || tq.Start != (Place{5, 0}) {
		t.Fatalf("%+v, %v", tq, err)
	}
	q.Set("cursor", EncodeCursor(tq.TimeRange, Place{9, 4}))
	if tq, err = ParseTimeQuery(q, "k"); err != nil || tq.Start != (Place{9, 4}) {
		t.Fatalf("with a cursor: %+v, %v", tq, err)
	}
	tq, err = ParseTimeQuery(url.Values{}, "")
	if err != nil || tq.From != math.MinInt64 || tq.To != math.MaxInt64 || tq.Limit != DefaultPageLimit {
		t.Fatalf("defaults: %+v, %v", tq, err)
	}
}

// FuzzParseTime: ParseTime never panics, refuses with ErrQuery, and
// accepts what it accepts as Unix nanoseconds or as RFC 3339 that means
// the same instant.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"0", "-1", "1767225600000000000", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00.123456789+01:00",
		"9223372036854775807", "2262-04-11T23:47:16.854775807Z", "1677-09-21T00:12:43.145224192Z", "yesterday", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ns, err := ParseTime(s)
		if err != nil {
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("ParseTime(%q): %v is not ErrQuery", s, err)
			}
			return
		}
		if n, perr := strconv.ParseInt(s, 10, 64); perr == nil {
			if n != ns {
				t.Fatalf("ParseTime(%q) = %d, want %d", s, ns, n)
			}
			return
		}
		if back, err := ParseTime(FormatTime(ns)); err != nil || back != ns {
			t.Fatalf("ParseTime(%q) = %d, but its RFC 3339 form %q reads %d, %v", s, ns, FormatTime(ns), back, err)
		}
	})
}

// FuzzDecodeCursor: DecodeCursor never panics, refuses with ErrQuery,
// and accepts only the one encoding of a place in the range.
func FuzzDecodeCursor(f *testing.F) {
	r := TimeRange{Issuer: "ab", From: 10, To: 1 << 40}
	for _, p := range []Place{{10, 0}, {1<<40 - 1, math.MaxUint64}, {12345, 6}} {
		f.Add(EncodeCursor(r, p))
	}
	f.Add("")
	f.Add("AQAAAAAAAAAKAAAAAAAAAAA")
	f.Add(strings.Repeat("_", 34))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodeCursor(s, r)
		if err != nil {
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("DecodeCursor(%q): %v is not ErrQuery", s, err)
			}
			return
		}
		if p.Time < r.From || p.Time >= r.To {
			t.Fatalf("DecodeCursor(%q) = %+v, outside [%d, %d)", s, p, r.From, r.To)
		}
		if c := EncodeCursor(r, p); c != s {
			t.Fatalf("DecodeCursor(%q) = %+v, whose cursor is %q", s, p, c)
		}
	})
}

// docExample returns the ```json block of docs/API.md that contains key.
func docExample(t *testing.T, key string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, blk := range strings.Split(string(b), "```json\n")[1:] {
		if ex, _, _ := strings.Cut(blk, "```"); strings.Contains(ex, key) {
			return []byte(ex)
		}
	}
	t.Fatalf("docs/API.md has no JSON example with %s", key)
	return nil
}

// TestDocTimeExamples: the examples of docs/API.md for a page of a time
// range and an export record are what the types decode, field for field,
// and the page's cursor is a cursor.
func TestDocTimeExamples(t *testing.T) {
	dec := json.NewDecoder(bytes.NewReader(docExample(t, `"next_cursor"`)))
	dec.DisallowUnknownFields()
	var p TimePage
	if err := dec.Decode(&p); err != nil || len(p.Messages) != 1 {
		t.Fatalf("the page example: %v", err)
	}
	if pl, err := DecodeCursor(p.NextCursor, TimeRange{From: math.MinInt64, To: math.MaxInt64}); err != nil ||
		pl.Time <= p.Messages[0].Timestamp && pl.Pos <= *p.Messages[0].Position {
		t.Errorf("the page example's cursor: %+v, %v; want a place after its message", pl, err)
	}
	dec = json.NewDecoder(bytes.NewReader(docExample(t, `"payload_encoding"`)))
	dec.DisallowUnknownFields()
	var r ExportRecord
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("the export example: %v", err)
	}
	var c bytes.Buffer
	if json.Compact(&c, r.Payload) != nil || !bytes.Equal(c.Bytes(), r.Payload) || r.PayloadEncoding != PayloadJSON {
		t.Errorf("the export example's payload %s is not compacted JSON", r.Payload)
	}
	if ts, err := ParseTime(r.Timestamp); err != nil || ts != r.TimestampNs || FormatTime(ts) != r.Timestamp {
		t.Errorf("the export example's timestamp %q is not %d as the export writes it", r.Timestamp, r.TimestampNs)
	}
	if at, err := ParseTime(r.ConfirmedAt); err != nil || r.ConfirmedAtNs == nil || at != *r.ConfirmedAtNs || FormatTime(at) != r.ConfirmedAt {
		t.Errorf("the export example's confirmed_at %q is not %v as the export writes it", r.ConfirmedAt, r.ConfirmedAtNs)
	}
}
