package storage_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weftnet/weft/storage"
)

// TestFlushInShares writes memtables big enough to be flushed over many
// transactions (flush.go), while readers check that every committed record
// is found by ID and appears exactly once in its issuer's history, through
// the whole life of each frozen memtable; then the model's full check,
// before and after a reopen. "full" freezes memtables as they fill;
// "cuts" freezes each at an epoch's cut.
func TestFlushInShares(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  storage.Config
	}{
		{"full", storage.Config{NoSync: true, FlushEvery: 2048}},
		{"cuts", storage.Config{NoSync: true, FlushEvery: 1 << 16, EpochRecords: 4500, EpochAge: time.Hour, Retain: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t, tc.cfg)
			done := make(chan struct{})
			errs := make(chan error, 2)
			var wg sync.WaitGroup
			for g := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := uint64(0); ; i++ {
						select {
						case <-done:
							return
						default:
						}
						if err := checkCommitted(s, i*31+uint64(g), i%16 == 0); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			m := newModel()
			const total, per = 10_000, 50
			for pos := uint64(0); pos < total; pos += per {
				w := &storage.Write{Records: testRecords(pos, per)}
				m.apply(w)
				mustSubmit(t, s, w)
			}
			close(done)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if tc.cfg.EpochRecords > 0 {
				waitFor(t, "the cuts", func() bool { return s.Stats().Cuts >= 2 })
			}
			waitFor(t, "the flushes", func() bool { return s.Stats().Runs >= 3 })
			m.check(t, s)
			s = reopen(t, s, tc.cfg)
			m.check(t, s)
			t.Logf("%+v", s.Stats())
		})
	}
}

// checkCommitted checks, for the record at pos modulo NextPos, that Get
// finds it and, with history, that its issuer's history holds every
// committed record of that issuer once, in order.
func checkCommitted(s *storage.Store, pos uint64, history bool) error {
	n := s.NextPos()
	if n == 0 {
		return nil
	}
	pos %= n
	if e, err := s.Get(testRecord(pos).ID); err != nil || e.Pos != pos {
		return fmt.Errorf("Get(id of %d) = position %d, %v", pos, e.Pos, err)
	}
	if !history {
		return nil
	}
	issuer := testRecord(pos).Issuer
	got, err := s.ByIssuer(issuer, storage.SeqPos{}, 0)
	if err != nil {
		return err
	}
	// The records of an issuer are every testIssuers-th position; got may
	// also hold some committed after n was read.
	want := pos % testIssuers
	for _, e := range got {
		if e.Pos >= n {
			break
		}
		if e.Pos != want {
			return fmt.Errorf("ByIssuer of position %d's issuer: position %d where %d was due (NextPos %d)", pos, e.Pos, want, n)
		}
		want += testIssuers
	}
	if want < n {
		return fmt.Errorf("ByIssuer of position %d's issuer ends before position %d (NextPos %d)", pos, want, n)
	}
	return nil
}

// TestPartialFlushDropped plants what a crash in the middle of a flush
// leaves (meta/flush naming a run whose buckets are partly written and that
// no run list holds) and checks that Open deletes it and loses nothing.
func TestPartialFlushDropped(t *testing.T) {
	cfg := storage.Config{NoSync: true, FlushEvery: 64}
	s, _ := open(t, cfg)
	m := newModel()
	w := &storage.Write{Records: testRecords(0, 100)}
	m.apply(w)
	mustSubmit(t, s, w)
	name := append(be64(64), be64(100)...)
	indexes := []string{"ids", "issuers", "issuertimes"}
	s, err := corrupt(t, s, cfg, func(tx *bolt.Tx) error {
		for _, ix := range indexes {
			b, err := tx.Bucket([]byte(ix)).CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			if err := b.Put([]byte("partly"), []byte("written")); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("flush"), append(name, 0))
	})
	if err != nil {
		t.Fatal(err)
	}
	m.check(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editFile(t, storage.NewestEpochFile(s.Path()), func(tx *bolt.Tx) error {
		for _, ix := range indexes {
			if b := tx.Bucket([]byte(ix)).Bucket(name); b != nil && b.Get([]byte("partly")) != nil {
				t.Errorf("the partly written run of %s is still there", ix)
			}
		}
		if v := tx.Bucket([]byte("meta")).Get([]byte("flush")); v != nil {
			t.Errorf("meta/flush is still there: %x", v)
		}
		return nil
	})
}
