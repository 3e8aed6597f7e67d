package storage_test

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// testIssuers is how many issuers the test records rotate through.
const testIssuers = 5

func hashOf(kind string, n uint64) [32]byte {
	return sha256.Sum256(binary.BigEndian.AppendUint64([]byte(kind), n))
}

// testRecord returns the record at pos of a deterministic ledger: parents
// at pos-1 and pos/2, issuers in rotation with increasing sequence numbers
// (and an equivocation every 37 positions), timestamps that mostly but not
// always increase, and Raw the encoding of a message with those fields and
// a payload of varying length (sometimes empty).
func testRecord(pos uint64) storage.Record {
	r := storage.Record{
		Pos:       pos,
		ID:        hashOf("id", pos),
		Issuer:    hashOf("issuer", pos%testIssuers),
		Seq:       pos / testIssuers,
		Timestamp: 1_000_000 + int64(pos)*1000 - int64(pos%3)*1500,
	}
	if pos%37 == 36 && pos >= testIssuers {
		r.Seq-- // the same issuer and sequence as the record testIssuers back
	}
	if pos == 0 {
		r.ParentPos = [2]uint64{storage.NoPos, storage.NoPos}
	} else {
		r.ParentPos = [2]uint64{pos - 1, pos / 2}
		r.Parents = [2][32]byte{hashOf("id", pos-1), hashOf("id", pos/2)}
	}
	r.Raw = rawOf(&r, int(pos%50))
	return r
}

// rawOf returns the encoding of a message with r's parents, issuer,
// sequence and timestamp, a payload of n bytes and a signature and nonce
// that vary with r.Pos.
func rawOf(r *storage.Record, n int) []byte {
	m := dag.Message{
		Version: dag.Version, Network: 7, Parents: [2]dag.ID{r.Parents[0], r.Parents[1]},
		Issuer: r.Issuer, Seq: r.Seq, Timestamp: r.Timestamp, Payload: make([]byte, n), Nonce: r.Pos,
	}
	for i := range m.Payload {
		m.Payload[i] = byte(r.Pos) + byte(i)
	}
	sig := hashOf("sig", r.Pos)
	copy(m.Signature[:], sig[:])
	return m.Bytes()
}

func testRecords(from, n uint64) []storage.Record {
	rs := make([]storage.Record, n)
	for i := range rs {
		rs[i] = testRecord(from + uint64(i))
	}
	return rs
}

// open opens a store in a new temporary directory.
func open(t testing.TB, cfg storage.Config) (*storage.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "weft.db")
	s, err := storage.Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func reopen(t testing.TB, s *storage.Store, cfg storage.Config) *storage.Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := storage.Open(s.Path(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

// submit submits w and waits for its outcome.
func submit(t testing.TB, s *storage.Store, w *storage.Write) error {
	t.Helper()
	ch := make(chan error, 1)
	s.Submit(w, func(err error) { ch <- err })
	select {
	case err := <-ch:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("done was not called")
		return nil
	}
}

func mustSubmit(t testing.TB, s *storage.Store, w *storage.Write) {
	t.Helper()
	if err := submit(t, s, w); err != nil {
		t.Fatal(err)
	}
}

// model is the naive reference: what the store must answer, computed from
// the records and confirmations written, the slow and obvious way.
type model struct {
	recs []storage.Record
	conf map[uint64]int64      // first confirmation of each position
	kids map[uint64][][32]byte // children of each position
}

func newModel() *model { return &model{conf: map[uint64]int64{}, kids: map[uint64][][32]byte{}} }

func (m *model) apply(w *storage.Write) {
	m.recs = append(m.recs, w.Records...)
	for _, r := range w.Records {
		for j, pp := range r.ParentPos {
			if pp < r.Pos && (j == 0 || r.ParentPos[1] != r.ParentPos[0]) {
				m.kids[pp] = append(m.kids[pp], r.ID)
			}
		}
	}
	for _, c := range w.Confirmations {
		if _, ok := m.conf[c.Pos]; !ok {
			m.conf[c.Pos] = c.At
		}
	}
}

func (m *model) entry(pos uint64) storage.Entry {
	at, ok := m.conf[pos]
	if ok && at == storage.OrphanedAt {
		return storage.Entry{Record: m.recs[pos], Orphaned: true}
	}
	return storage.Entry{Record: m.recs[pos], Confirmed: ok, ConfirmedAt: at}
}

func (m *model) confirmedPrefix() uint64 {
	var p uint64
	for {
		if _, ok := m.conf[p]; !ok {
			return p
		}
		p++
	}
}

func (m *model) children(pos uint64) [][32]byte { return m.kids[pos] }

func (m *model) byIssuer(issuer [32]byte) []storage.Entry {
	var out []storage.Entry
	for _, r := range m.recs {
		if r.Issuer == issuer {
			out = append(out, m.entry(r.Pos))
		}
	}
	slices.SortFunc(out, func(a, b storage.Entry) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Pos, b.Pos))
	})
	return out
}

func (m *model) byTime(from, until int64) []storage.Entry {
	return m.byIssuerTime(nil, from, until)
}

// byIssuerTime is byTime of issuer's records only (every issuer's if issuer
// is nil).
func (m *model) byIssuerTime(issuer *[32]byte, from, until int64) []storage.Entry {
	var out []storage.Entry
	for _, r := range m.recs {
		if r.Timestamp >= from && r.Timestamp < until && (issuer == nil || r.Issuer == *issuer) {
			out = append(out, m.entry(r.Pos))
		}
	}
	slices.SortFunc(out, func(a, b storage.Entry) int {
		return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), cmp.Compare(a.Pos, b.Pos))
	})
	return out
}

func equalEntry(a, b storage.Entry) bool {
	ar, br := a.Record, b.Record
	return ar.Pos == br.Pos && ar.ID == br.ID && ar.Parents == br.Parents && ar.ParentPos == br.ParentPos &&
		ar.Issuer == br.Issuer && ar.Seq == br.Seq && ar.Timestamp == br.Timestamp && string(ar.Raw) == string(br.Raw) &&
		a.Orphaned == b.Orphaned && a.Confirmed == b.Confirmed && a.ConfirmedAt == b.ConfirmedAt
}

func equalEntries(t *testing.T, what string, got, want []storage.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !equalEntry(got[i], want[i]) {
			t.Fatalf("%s: entry %d is %+v, want %+v", what, i, got[i], want[i])
		}
	}
}

// check compares every read of s with the model.
func (m *model) check(t *testing.T, s *storage.Store) {
	t.Helper()
	n := uint64(len(m.recs))
	if got := s.NextPos(); got != n {
		t.Fatalf("NextPos = %d, want %d", got, n)
	}
	if got, want := s.ConfirmedPrefix(), m.confirmedPrefix(); got != want {
		t.Fatalf("ConfirmedPrefix = %d, want %d", got, want)
	}
	for pos := range n {
		want := m.entry(pos)
		got, err := s.GetByPos(pos)
		if err != nil || !equalEntry(got, want) {
			t.Fatalf("GetByPos(%d) = %+v, %v; want %+v", pos, got, err, want)
		}
		got, err = s.Get(want.ID)
		if err != nil || !equalEntry(got, want) {
			t.Fatalf("Get(id of %d) = %+v, %v; want %+v", pos, got, err, want)
		}
		if ok, err := s.Has(want.ID); !ok || err != nil {
			t.Fatalf("Has(id of %d) = %v, %v", pos, ok, err)
		}
		kids, err := s.Children(want.ID)
		if err != nil || !slices.Equal(kids, m.children(pos)) {
			t.Fatalf("Children(id of %d) = %x, %v; want %x", pos, kids, err, m.children(pos))
		}
	}
	if _, err := s.GetByPos(n); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetByPos(%d) past the end: %v, want ErrNotFound", n, err)
	}
	absent := hashOf("absent", n)
	if _, err := s.Get(absent); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
	}
	if ok, err := s.Has(absent); ok || err != nil {
		t.Fatalf("Has(absent) = %v, %v", ok, err)
	}
	if _, err := s.Children(absent); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Children(absent) = %v, want ErrNotFound", err)
	}

	// ByIssuer, whole and in pages of 3 (equivocations included).
	for i := range uint64(testIssuers + 1) {
		issuer := hashOf("issuer", i)
		want := m.byIssuer(issuer)
		got, err := s.ByIssuer(issuer, storage.SeqPos{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		equalEntries(t, "ByIssuer", got, want)
		var paged []storage.Entry
		for from := (storage.SeqPos{}); ; {
			page, err := s.ByIssuer(issuer, from, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 3 {
				t.Fatalf("ByIssuer page of %d entries, limit 3", len(page))
			}
			paged = append(paged, page...)
			if len(page) < 3 {
				break
			}
			last := page[len(page)-1]
			from = storage.SeqPos{Seq: last.Seq, Pos: last.Pos + 1}
		}
		equalEntries(t, "ByIssuer paged", paged, want)
		if len(want) > 2 {
			mid := want[len(want)/2]
			got, err := s.ByIssuer(issuer, storage.SeqPos{Seq: mid.Seq}, 0)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(want, func(e storage.Entry) bool { return e.Seq == mid.Seq })
			equalEntries(t, "ByIssuer from the middle", got, want[i:])
		}
	}

	// ByTime: a window, whole and in pages of 4.
	if n > 0 {
		from, until := m.recs[n/4].Timestamp, m.recs[3*n/4].Timestamp
		want := m.byTime(from, until)
		got, err := s.ByTime(storage.TimePos{Time: from}, until, 0)
		if err != nil {
			t.Fatal(err)
		}
		equalEntries(t, "ByTime", got, want)
		paged := pageByTime(t, from, 4, func(tp storage.TimePos, limit int) ([]storage.Entry, error) {
			return s.ByTime(tp, until, limit)
		})
		equalEntries(t, "ByTime paged", paged, want)
	}

	// ByIssuerTime: every issuer's records in the window, whole and in
	// pages of 3.
	if n > 0 {
		from, until := m.recs[n/4].Timestamp, m.recs[3*n/4].Timestamp
		for i := range uint64(testIssuers + 1) {
			issuer := hashOf("issuer", i)
			want := m.byIssuerTime(&issuer, from, until)
			got, err := s.ByIssuerTime(issuer, storage.TimePos{Time: from}, until, 0)
			if err != nil {
				t.Fatal(err)
			}
			equalEntries(t, "ByIssuerTime", got, want)
			equalEntries(t, "ByIssuerTime paged", pageByTime(t, from, 3, func(tp storage.TimePos, limit int) ([]storage.Entry, error) {
				return s.ByIssuerTime(issuer, tp, until, limit)
			}), want)
		}
	}

	// Range from a few starting points.
	for _, from := range []uint64{0, n / 3, n} {
		var got []storage.Entry
		if err := s.Range(from, func(e storage.Entry) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		var want []storage.Entry
		for pos := from; pos < n; pos++ {
			want = append(want, m.entry(pos))
		}
		equalEntries(t, "Range", got, want)
	}
}

// pageByTime reads a time range in pages of limit entries through read,
// from (from, 0) on, each page starting after the last entry of the one
// before, until a page is short, and returns every page's entries.
func pageByTime(t *testing.T, from int64, limit int, read func(storage.TimePos, int) ([]storage.Entry, error)) []storage.Entry {
	t.Helper()
	var out []storage.Entry
	for tp := (storage.TimePos{Time: from}); ; {
		page, err := read(tp, limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > limit {
			t.Fatalf("a page of %d entries, limit %d", len(page), limit)
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
		last := page[len(page)-1]
		tp = storage.TimePos{Time: last.Timestamp, Pos: last.Pos + 1}
	}
}
