package storage_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/storage"
)

// TestConfirmationLog: the first confirmation of each position, and no
// orphan's settlement, takes the next place in the confirmation log, in
// submission order, also across Writes committed together; each Write
// learns its places; ByConfirmation pages through the log exactly, before
// and after a reopen.
func TestConfirmationLog(t *testing.T) {
	t.Run("one epoch", func(t *testing.T) { testConfirmationLog(t, storage.Config{NoSync: true}) })
	// The log's places spread over the epochs' files, and confirmations of
	// older epochs' positions go to theirs.
	t.Run("epochs", func(t *testing.T) {
		testConfirmationLog(t, storage.Config{NoSync: true, EpochRecords: 90, EpochAge: time.Hour})
	})
}

func testConfirmationLog(t *testing.T, cfg storage.Config) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s, _ := open(t, cfg)
	const n = 700
	for p := uint64(0); p < n; p += 100 {
		mustSubmit(t, s, &storage.Write{Records: testRecords(p, 100)})
		time.Sleep(10 * time.Millisecond) // for a cut
	}

	var want []uint64 // the log, by the obvious rule
	seen := map[uint64]bool{}
	var writes []*storage.Write
	dones := make(chan error, 64)
	for len(seen) < n-50 {
		w := &storage.Write{}
		for range rng.IntN(12) {
			c := storage.Confirmation{Pos: rng.Uint64N(n), At: int64(rng.IntN(1000) + 1)}
			if rng.IntN(10) == 0 {
				c.At = storage.OrphanedAt
			}
			w.Confirmations = append(w.Confirmations, c)
			if !seen[c.Pos] {
				seen[c.Pos] = true
				if c.At != storage.OrphanedAt {
					want = append(want, c.Pos)
				}
			}
		}
		writes = append(writes, w)
		s.Submit(w, func(err error) { dones <- err }) // many queue up: group commit
		if len(writes)%32 == 0 {
			for range 32 {
				if err := <-dones; err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for range len(writes) % 32 {
		if err := <-dones; err != nil {
			t.Fatal(err)
		}
	}
	// Each Write's ConfirmSeq names its first confirmations' places.
	var got []uint64
	for _, w := range writes {
		for i, seq := range w.ConfirmSeq {
			if seq == storage.NoSeq {
				continue
			}
			if seq != uint64(len(got)) {
				t.Fatalf("a confirmation of %d got place %d, want %d", w.Confirmations[i].Pos, seq, len(got))
			}
			got = append(got, w.Confirmations[i].Pos)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ConfirmSeq order %v, want %v", got, want)
	}
	check := func(s *storage.Store) {
		t.Helper()
		if c := s.ConfirmCount(); c != uint64(len(want)) {
			t.Fatalf("ConfirmCount %d, want %d", c, len(want))
		}
		for _, limit := range []int{1, 7, 64, 1000} {
			var read []uint64
			for from := uint64(0); ; {
				page, err := s.ByConfirmation(from, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				if len(page) > limit {
					t.Fatalf("limit %d: a page of %d", limit, len(page))
				}
				for _, c := range page {
					if c.Seq != from || !c.Confirmed || c.Orphaned {
						t.Fatalf("limit %d: entry %+v at place %d", limit, c.Entry, from)
					}
					read = append(read, c.Pos)
					from++
				}
			}
			if !slices.Equal(read, want) {
				t.Fatalf("limit %d: read %d places, want %d", limit, len(read), len(want))
			}
		}
		if page, err := s.ByConfirmation(uint64(len(want))+100, 10); err != nil || len(page) != 0 {
			t.Fatalf("past the end: %d entries, %v", len(page), err)
		}
	}
	check(s)
	if cfg.EpochRecords != 0 && s.Stats().Epochs < 5 {
		t.Fatalf("%d epochs", s.Stats().Epochs)
	}
	s = reopen(t, s, cfg)
	check(s)
	// After a reopen the log goes on where it ended.
	var last uint64
	for p := uint64(0); p < n; p++ {
		if !seen[p] {
			last = p
			break
		}
	}
	w := &storage.Write{Confirmations: []storage.Confirmation{{Pos: last, At: 5}}}
	mustSubmit(t, s, w)
	if w.ConfirmSeq[0] != uint64(len(want)) {
		t.Fatalf("after reopen: place %d, want %d", w.ConfirmSeq[0], len(want))
	}
}
