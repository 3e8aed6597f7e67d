package storage_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/weftnet/weft/internal/testseed"
	"github.com/weftnet/weft/storage"
)

// TestByIssuerTimeRandom writes a ledger whose devices stamp their messages
// out of sequence order (timestamps drawn from a narrow window, so many are
// equal, within one issuer and across issuers), small runs that flush and
// merge often, and a reopen halfway; then it reads random windows of every
// issuer, whole and in pages of random sizes, and requires exactly the
// naive model's answer: each entry of the window once, in (Timestamp, Pos)
// order, from inclusive and until exclusive.
func TestByIssuerTimeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(testseed.Seed(t), 0))
	cfg := storage.Config{NoSync: true, FlushEvery: 16 + rng.IntN(48), MergeFanIn: 2 + rng.IntN(3)}
	s, _ := open(t, cfg)
	m := newModel()
	const issuers = 4
	seqs := make([]uint64, issuers)
	write := func(n int) {
		w := &storage.Write{}
		for range n {
			pos := uint64(len(m.recs) + len(w.Records))
			i := rng.IntN(issuers)
			seqs[i]++
			r := storage.Record{Pos: pos, ID: hashOf("rid", pos), Issuer: hashOf("issuer", uint64(i)), Seq: seqs[i],
				Timestamp: 1_000 + rng.Int64N(200)} // 200 values for ~1,000 records: many equal
			if pos == 0 {
				r.ParentPos = [2]uint64{storage.NoPos, storage.NoPos}
			} else {
				r.ParentPos = [2]uint64{pos - 1, pos / 2}
				r.Parents = [2][32]byte{hashOf("rid", pos-1), hashOf("rid", pos/2)}
			}
			r.Raw = rawOf(&r, int(pos%20))
			w.Records = append(w.Records, r)
		}
		mustSubmit(t, s, w)
		m.apply(w)
	}
	for range 40 {
		write(1 + rng.IntN(25))
	}
	s = reopen(t, s, cfg)
	for range 40 {
		write(1 + rng.IntN(25))
	}
	if s.Stats().Merges == 0 {
		t.Fatalf("no merge ran (FlushEvery %d, MergeFanIn %d): the test would not cover merged runs", cfg.FlushEvery, cfg.MergeFanIn)
	}

	for range 50 {
		i := uint64(rng.IntN(issuers + 1)) // one issuer with no records
		issuer := hashOf("issuer", i)
		from := 990 + rng.Int64N(220)
		until := from + rng.Int64N(220)
		want := m.byIssuerTime(&issuer, from, until)
		got, err := s.ByIssuerTime(issuer, storage.TimePos{Time: from}, until, 0)
		if err != nil {
			t.Fatal(err)
		}
		equalEntries(t, "ByIssuerTime", got, want)
		limit := 1 + rng.IntN(7)
		equalEntries(t, "ByIssuerTime paged", pageByTime(t, from, limit, func(tp storage.TimePos, limit int) ([]storage.Entry, error) {
			return s.ByIssuerTime(issuer, tp, until, limit)
		}), want)
		// ByTime, paged, is the same window of every issuer.
		equalEntries(t, "ByTime paged", pageByTime(t, from, limit, func(tp storage.TimePos, limit int) ([]storage.Entry, error) {
			return s.ByTime(tp, until, limit)
		}), m.byTime(from, until))
	}
}

// TestByIssuerTimeBounds: from is inclusive, until exclusive, a page
// starts at (Time, Pos) exactly, and an empty or inverted window is empty.
func TestByIssuerTimeBounds(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	// Records 0..9 of testIssuers issuers in rotation; issuer 0 has
	// positions 0 and 5.
	w := &storage.Write{Records: testRecords(0, 10)}
	mustSubmit(t, s, w)
	issuer := w.Records[0].Issuer
	t0, t5 := w.Records[0].Timestamp, w.Records[5].Timestamp
	for _, tc := range []struct {
		from        storage.TimePos
		until       int64
		wantPosList []uint64
	}{
		{storage.TimePos{Time: t0}, t5, []uint64{0}},
		{storage.TimePos{Time: t0}, t5 + 1, []uint64{0, 5}},
		{storage.TimePos{Time: t0 + 1}, t5 + 1, []uint64{5}},
		{storage.TimePos{Time: t0, Pos: 1}, t5 + 1, []uint64{5}},
		{storage.TimePos{Time: t5}, t5, nil},
		{storage.TimePos{Time: t5}, t0, nil},
		{storage.TimePos{Time: math.MinInt64}, math.MaxInt64, []uint64{0, 5}},
	} {
		got, err := s.ByIssuerTime(issuer, tc.from, tc.until, 0)
		if err != nil {
			t.Fatal(err)
		}
		var pos []uint64
		for _, e := range got {
			pos = append(pos, e.Pos)
		}
		if !slices.Equal(pos, tc.wantPosList) {
			t.Errorf("ByIssuerTime(%+v, %d) = positions %v, want %v", tc.from, tc.until, pos, tc.wantPosList)
		}
	}
}
