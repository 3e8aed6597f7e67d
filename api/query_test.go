package api

import (
	"cmp"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/storegen"
	"github.com/weftnet/weft/internal/testseed"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/storage"
)

// ledger is a store written by storegen and what it holds, in position
// order (position 0 is the genesis message).
type ledger struct {
	msgs []ledgerMsg
}

type ledgerMsg struct {
	pos       uint64
	issuer    dag.PublicKey
	ts        int64
	confirmed bool
}

// want returns the positions of r's messages in (timestamp, position)
// order: the naive answer.
func (l *ledger) want(r client.TimeRange) []uint64 {
	from, to := int64(-1<<63), int64(1<<63-1)
	if !r.From.IsZero() {
		from = r.From.UnixNano()
	}
	if !r.To.IsZero() {
		to = r.To.UnixNano()
	}
	var sel []ledgerMsg
	for _, m := range l.msgs {
		if m.ts >= from && m.ts < to && (r.Device == nil || m.issuer == *r.Device) && (!r.Confirmed || m.confirmed) {
			sel = append(sel, m)
		}
	}
	slices.SortFunc(sel, func(a, b ledgerMsg) int { return cmp.Or(cmp.Compare(a.ts, b.ts), cmp.Compare(a.pos, b.pos)) })
	out := make([]uint64, len(sel))
	for i, m := range sel {
		out[i] = m.pos
	}
	return out
}

// ledgerServer writes gen's messages into a store with storegen and serves
// it from a node that is not a validator (so nothing it holds changes its
// confirmation while the test reads).
func ledgerServer(t *testing.T, n int, gen func(i int) storegen.Message) (*ledger, string, *client.Client) {
	t.Helper()
	return ledgerServerWrapped(t, n, gen, nil)
}

// ledgerServerWrapped is ledgerServer with the API behind wrap, if not nil.
func ledgerServerWrapped(t testing.TB, n int, gen func(i int) storegen.Message, wrap func(http.Handler) http.Handler) (*ledger, string, *client.Client) {
	t.Helper()
	dir := t.TempDir()
	s, err := storage.Open(filepath.Join(dir, "store"), storage.Config{NoSync: true, FlushEvery: 512, MergeFanIn: 4})
	if err != nil {
		t.Fatal(err)
	}
	g := dag.Genesis(dag.NetworkIDFromName("api-test"))
	l := &ledger{msgs: []ledgerMsg{{pos: 0, issuer: g.Issuer, ts: g.Timestamp, confirmed: true}}}
	err = storegen.Write(s, "api-test", n, func(i int) storegen.Message {
		m := gen(i)
		l.msgs = append(l.msgs, ledgerMsg{pos: uint64(i) + 1, issuer: m.Issuer, ts: m.Timestamp, confirmed: !m.Unconfirmed})
		return m
	})
	if err := cmp.Or(err, s.Close()); err != nil {
		t.Fatal(err)
	}
	srv, _ := testServerWrapped(t, func(c *node.Config) {
		c.DataDir = dir
		c.Validators = []dag.Validator{{Key: pubOf(key(99)), Weight: 1}}
		c.Store = storage.Config{NoSync: true, FlushEvery: 512, MergeFanIn: 4}
	}, Options{}, wrap)
	return l, srv.URL, client.New(srv.URL, client.WithRetry(client.Retry{Attempts: 1}))
}

// pageAll reads r through c in pages of limit and returns the positions.
func pageAll(t *testing.T, c *client.Client, r client.TimeRange, limit int) []uint64 {
	t.Helper()
	var got []uint64
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100_000 {
			t.Fatal("the listing does not end")
		}
		p, err := c.Messages(context.Background(), r, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Messages {
			got = append(got, m.Position)
		}
		if p.NextCursor == "" {
			return got
		}
		cursor = p.NextCursor
	}
}

// TestTimeRangePaging: a ledger whose devices stamp messages out of
// sequence order and often with equal timestamps, a fifth unconfirmed,
// read through the API in pages of random sizes, per device and for
// every device, with and without confirmed=true: every message of the
// range comes exactly once, in (timestamp, position) order.
func TestTimeRangePaging(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	const devices, n, base = 4, 3000, int64(1_767_225_600_000_000_000)
	l, _, c := ledgerServer(t, n, func(i int) storegen.Message {
		return storegen.Message{Issuer: pubOf(key(byte(10 + rng.IntN(devices)))), Timestamp: base + rng.Int64N(500)*1e6,
			Payload: []byte(`{"i":` + strconv.Itoa(i) + `}`), Unconfirmed: rng.IntN(5) == 0}
	})
	for range 30 {
		var r client.TimeRange
		if d := rng.IntN(devices + 1); d < devices {
			k := pubOf(key(byte(10 + d)))
			r.Device = &k
		}
		if rng.IntN(4) > 0 {
			r.From = time.Unix(0, base+rng.Int64N(520)*1e6-10e6)
		}
		if rng.IntN(4) > 0 {
			r.To = time.Unix(0, max(r.From.UnixNano(), base)+rng.Int64N(520)*1e6+1)
		}
		r.Confirmed = rng.IntN(2) == 0
		limit := []int{1, 3, 17, 100, 1000}[rng.IntN(5)]
		want := l.want(r)
		got := pageAll(t, c, r, limit)
		if !slices.Equal(got, want) {
			t.Fatalf("%+v in pages of %d: %d messages, want %d (positions %v..., want %v...)", r, limit, len(got), len(want),
				got[:min(len(got), 10)], want[:min(len(want), 10)])
		}
	}
}

// TestTimeRangeBounds: from is inclusive and to exclusive, in Unix
// nanoseconds and in RFC 3339, and the listing of one timestamp holds
// every message at it.
func TestTimeRangeBounds(t *testing.T) {
	const base = int64(1_767_225_600_000_000_000) // 2026-01-01T00:00:00Z
	dev := pubOf(key(10))
	ts := []int64{base, base + 1, base + 1, base + 2, base + 1_000_000_000}
	_, url, c := ledgerServer(t, len(ts), func(i int) storegen.Message {
		return storegen.Message{Issuer: dev, Timestamp: ts[i]}
	})
	for _, tc := range []struct {
		from, to string
		want     []uint64
	}{
		{"1767225600000000000", "1767225600000000001", []uint64{1}},
		{"1767225600000000001", "1767225600000000002", []uint64{2, 3}},
		{"1767225600000000001", "1767225600000000003", []uint64{2, 3, 4}},
		{"2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", []uint64{1, 2, 3, 4}},
		{"2026-01-01T00:00:00.000000001Z", "2026-01-01T01:00:01.000000001+01:00", []uint64{2, 3, 4, 5}},
		{"2026-01-01T00:00:00.000000001Z", "2026-01-01T01:00:01+01:00", []uint64{2, 3, 4}},
		{"2026-01-01T00:00:01Z", "", []uint64{5}},
		{"", "2026-01-01T00:00:00Z", nil},
	} {
		for _, path := range []string{"/api/v1/messages", "/api/v1/issuers/" + dev.String() + "/messages"} {
			q := "limit=1000"
			if tc.from != "" {
				q += "&from=" + tc.from
			}
			if tc.to != "" {
				q += "&to=" + tc.to
			}
			var p wire.TimePage
			getOK(t, url+path+"?"+strings.ReplaceAll(q, "+", "%2B"), &p)
			var got []uint64
			for _, m := range p.Messages {
				if m.Issuer == dev.String() {
					got = append(got, *m.Position)
				}
			}
			if !slices.Equal(got, tc.want) || p.NextCursor != "" {
				t.Errorf("%s [%s, %s): positions %v next %q, want %v", path, tc.from, tc.to, got, p.NextCursor, tc.want)
			}
		}
	}
	// Each item carries its confirmation.
	p, err := c.Messages(context.Background(), client.TimeRange{Device: &dev}, "", 1)
	if err != nil || len(p.Messages) != 1 || !p.Messages[0].Confirmed || p.Messages[0].ConfirmedAt != base+storegen.ConfirmDelay {
		t.Fatalf("%+v, %v: want the first message, confirmed at %d", p, err, base+storegen.ConfirmDelay)
	}
}

// getOK GETs u, requires 200 and decodes the body into v.
func getOK(t *testing.T, u string, v any) http.Header {
	t.Helper()
	resp, b := do(t, "GET", u, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", u, err, b)
	}
	return resp.Header
}

// TestTimeRangeRefused: bad times, ranges, limits and cursors, and a
// cursor changed in any way or handed to another query, are 400
// bad_request with a message that says what is wrong; the pages of a
// long range say where the next one is in the body and in Link.
func TestTimeRangeRefused(t *testing.T) {
	dev := pubOf(key(10))
	_, base, _ := ledgerServer(t, 30, func(i int) storegen.Message {
		return storegen.Message{Issuer: dev, Timestamp: 1_000 + int64(i)}
	})
	list := base + "/api/v1/issuers/" + dev.String() + "/messages"
	var p wire.TimePage
	h := getOK(t, list+"?from=0&limit=10", &p)
	if len(p.Messages) != 10 || p.NextCursor == "" {
		t.Fatalf("first page: %d messages, next %q", len(p.Messages), p.NextCursor)
	}
	link := h.Get("Link")
	if !strings.HasSuffix(link, `>; rel="next"`) || !strings.Contains(link, "cursor="+p.NextCursor) {
		t.Errorf("Link %q does not name the next page", link)
	}
	var p2 wire.TimePage
	getOK(t, base+strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`), &p2)
	if len(p2.Messages) != 10 || p2.Messages[0].Seq != p.Messages[9].Seq+1 {
		t.Errorf("the Link's page starts at seq %d, want %d", p2.Messages[0].Seq, p.Messages[9].Seq+1)
	}

	cur := p.NextCursor
	flip := func(i int) string { // another character at i
		b := []byte(cur)
		if b[i] = 'A'; cur[i] == 'A' {
			b[i] = 'B'
		}
		return string(b)
	}
	for _, tc := range []struct{ path, query, says string }{
		{list, "from=yesterday", "RFC 3339"},
		{list, "from=2026-13-01T00:00:00Z", "RFC 3339"},
		{list, "to=3000-01-01T00:00:00Z", "2262"},
		{list, "from=10&to=10", "before"},
		{list, "from=11&to=10", "before"},
		{list, "from=" + strings.Repeat("9", 70), "Unix nanoseconds"},
		{list, "confirmed=maybe", "confirmed"},
		{list, "from=0&limit=0", "limit"},
		{list, "from=0&limit=1001", "limit"},
		{list, "from=0&after_seq=3", "after_seq"},
		{list, "from=0&cursor=", "cursor"},
		{list, "from=0&cursor=not-a-cursor", "cursor"},
		{list, "from=0&cursor=" + strings.Repeat("A", 100), "too long"},
		{list, "from=0&cursor=" + cur[:len(cur)-1], "cursor"},
		{list, "from=0&cursor=" + cur + "A", "cursor"},
		{list, "from=0&cursor=" + flip(0), "cursor"},
		{list, "from=0&cursor=" + flip(5), "changed"},
		{list, "from=0&cursor=" + flip(len(cur)-1), "cursor"},
		{list, "from=1&cursor=" + cur, "another query"}, // another range
		{list, "from=0&confirmed=true&cursor=" + cur, "another query"},
		{base + "/api/v1/messages", "from=0&cursor=" + cur, "another query"}, // every device
		{base + "/api/v1/issuers/" + pubOf(key(11)).String() + "/messages", "from=0&cursor=" + cur, "another query"},
		{base + "/api/v1/export", "format=xml", "format"},
		{base + "/api/v1/export", "device=abc", "device"},
		{base + "/api/v1/export", "to=yesterday", "to"},
	} {
		resp, b := do(t, "GET", tc.path+"?"+tc.query, nil)
		e := errorBody(t, b)
		if resp.StatusCode != http.StatusBadRequest || e.Code != wire.CodeBadRequest || !strings.Contains(e.Message, tc.says) {
			t.Errorf("%s?%s: %d %s %q, want 400 bad_request saying %q", strings.TrimPrefix(tc.path, base), tc.query, resp.StatusCode, e.Code, e.Message, tc.says)
		}
	}
	// The listing by sequence number is unchanged without a time parameter.
	var ip wire.IssuerPage
	getOK(t, list+"?after_seq=28", &ip)
	if len(ip.Messages) != 2 || ip.NextAfterSeq != nil {
		t.Errorf("after_seq=28: %d messages, next %v; want 2 and no next", len(ip.Messages), ip.NextAfterSeq)
	}
}
