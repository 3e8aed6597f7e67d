package storage_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// corrupt closes s, lets fn change the file with bbolt directly, and
// returns the result of reopening it.
func corrupt(t *testing.T, s *storage.Store, cfg storage.Config, fn func(tx *bolt.Tx) error) (*storage.Store, error) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	editFile(t, storage.NewestEpochFile(s.Path()), fn)
	s, err := storage.Open(s.Path(), cfg)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

// editFile lets fn change the closed bbolt file at path in one transaction.
func editFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// firstRun returns the name of the first run bucket under parent.
func firstRun(tx *bolt.Tx, parent string) []byte {
	k, _ := tx.Bucket([]byte(parent)).Cursor().First()
	return k
}

// fill writes 40 records, 8 a Write: with FlushEvery 16 the ID and issuer
// indexes have runs [0, 16) and [16, 32), and 32..39 in the memtable.
func fill(t *testing.T, cfg storage.Config) *storage.Store {
	s, _ := open(t, cfg)
	for pos := uint64(0); pos < 40; pos += 8 {
		mustSubmit(t, s, &storage.Write{Records: testRecords(pos, 8)})
	}
	mustSubmit(t, s, &storage.Write{Confirmations: []storage.Confirmation{{Pos: 5, At: 1}}})
	// The second run is written in the transactions that follow, or by the
	// idle writer (flush.go).
	waitFor(t, "two runs", func() bool { return s.Stats().Runs == 2 })
	return s
}

// TestCorruptValues writes bad bytes into each bucket and checks that the
// reads that meet them return ErrCorrupt, and nothing panics.
func TestCorruptValues(t *testing.T) {
	cfg := storage.Config{NoSync: true, FlushEvery: 16, MergeFanIn: 4}
	rec := testRecord(5)
	for _, tc := range []struct {
		name string
		fn   func(tx *bolt.Tx) error
		read func(s *storage.Store) error
	}{
		{"short log value", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("log")).Put(be64(5), []byte{1, 2, 3})
		}, func(s *storage.Store) error { _, err := s.GetByPos(5); return err }},
		{"unknown log format", func(tx *bolt.Tx) error {
			v := append([]byte(nil), tx.Bucket([]byte("log")).Get(be64(5))...)
			v[0] = 9
			return tx.Bucket([]byte("log")).Put(be64(5), v)
		}, func(s *storage.Store) error { _, err := s.Get(rec.ID); return err }},
		{"log value with a Raw shorter than a message", func(tx *bolt.Tx) error {
			v := tx.Bucket([]byte("log")).Get(be64(5))
			return tx.Bucket([]byte("log")).Put(be64(5), append([]byte(nil), v[:len(v)-len(rec.Raw)+dag.MinSize-1]...))
		}, func(s *storage.Store) error { _, err := s.GetByPos(5); return err }},
		{"log value seen by Range", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("log")).Put(be64(5), nil)
		}, func(s *storage.Store) error {
			return s.Range(0, func(storage.Entry) error { return nil })
		}},
		{"a hole in the log", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("log")).Delete(be64(5))
		}, func(s *storage.Store) error { _, err := s.Get(rec.ID); return err }},
		{"confirmation block", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("conf")).Put(be64(0), []byte{1})
		}, func(s *storage.Store) error { _, err := s.GetByPos(5); return err }},
		{"confirmation block seen by Range", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("conf")).Put(be64(0), make([]byte, 8+64*8+1))
		}, func(s *storage.Store) error {
			return s.Range(0, func(storage.Entry) error { return nil })
		}},
		{"time of an unconfirmed position", func(tx *bolt.Tx) error {
			v := append([]byte(nil), tx.Bucket([]byte("conf")).Get(be64(0))...)
			v[8+6*8+7] = 1 // position 6 has no confirmation (5 has)
			return tx.Bucket([]byte("conf")).Put(be64(0), v)
		}, func(s *storage.Store) error { _, err := s.GetByPos(6); return err }},
		{"ID index value", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("ids")).Bucket(firstRun(tx, "ids"))
			return b.Put(rec.ID[:], []byte{0, 5})
		}, func(s *storage.Store) error { _, err := s.Get(rec.ID); return err }},
		{"ID index points elsewhere", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("ids")).Bucket(firstRun(tx, "ids"))
			return b.Put(rec.ID[:], be64(6))
		}, func(s *storage.Store) error { _, err := s.Get(rec.ID); return err }},
		{"ID index points out of its run", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("ids")).Bucket(firstRun(tx, "ids"))
			return b.Put(rec.ID[:], be64(20))
		}, func(s *storage.Store) error { _, err := s.Get(rec.ID); return err }},
		{"children value", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("children")).Put(be64(5), append(be64(6), 7))
		}, func(s *storage.Store) error { _, err := s.Children(rec.ID); return err }},
		{"children out of order", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("children")).Put(be64(5), append(be64(10), be64(6)...))
		}, func(s *storage.Store) error { _, err := s.Children(rec.ID); return err }},
		{"children not after their parent", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("children")).Put(be64(5), be64(5))
		}, func(s *storage.Store) error { _, err := s.Children(rec.ID); return err }},
		{"children name nothing", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("children")).Put(be64(5), append(be64(6), be64(1000)...))
		}, func(s *storage.Store) error { _, err := s.Children(rec.ID); return err }},
		{"issuer key", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("issuers")).Bucket(firstRun(tx, "issuers"))
			return b.Put(append(rec.Issuer[:], 0xff), nil)
		}, func(s *storage.Store) error { _, err := s.ByIssuer(rec.Issuer, storage.SeqPos{}, 0); return err }},
		{"issuer key names another record", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("issuers")).Bucket(firstRun(tx, "issuers"))
			k := append(append(rec.Issuer[:], be64(rec.Seq)...), be64(6)...)
			return b.Put(k, nil)
		}, func(s *storage.Store) error { _, err := s.ByIssuer(rec.Issuer, storage.SeqPos{}, 0); return err }},
		{"issuer-time key", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("issuertimes")).Bucket(firstRun(tx, "issuertimes"))
			return b.Put(append(rec.Issuer[:], 0xff), nil)
		}, func(s *storage.Store) error {
			_, err := s.ByIssuerTime(rec.Issuer, storage.TimePos{Time: math.MinInt64}, math.MaxInt64, 0)
			return err
		}},
		{"issuer-time key names another record", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("issuertimes")).Bucket(firstRun(tx, "issuertimes"))
			k := append(append(rec.Issuer[:], be64(uint64(rec.Timestamp)^1<<63)...), be64(6)...)
			return b.Put(k, nil)
		}, func(s *storage.Store) error {
			_, err := s.ByIssuerTime(rec.Issuer, storage.TimePos{Time: math.MinInt64}, math.MaxInt64, 0)
			return err
		}},
		{"time key", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("time")).Put([]byte{0x80, 0, 0, 0, 0, 0, 0, 0, 1}, nil)
		}, func(s *storage.Store) error { _, err := s.ByTime(storage.TimePos{Time: 0}, 1<<62, 0); return err }},
		{"a run's bucket is missing", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("ids")).DeleteBucket(firstRun(tx, "ids"))
		}, func(s *storage.Store) error { _, err := s.Get(rec.ID); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fill(t, cfg)
			s, err := corrupt(t, s, cfg, tc.fn)
			if err != nil {
				if !errors.Is(err, storage.ErrCorrupt) {
					t.Fatalf("Open: %v, want nil or ErrCorrupt", err)
				}
				return // refused at Open: fine, and typed
			}
			if err := tc.read(s); !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("read: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestCorruptOpen breaks what Open reads and checks that it refuses the
// file with ErrCorrupt.
func TestCorruptOpen(t *testing.T) {
	cfg := storage.Config{NoSync: true, FlushEvery: 16, MergeFanIn: 4}
	for _, tc := range []struct {
		name string
		fn   func(tx *bolt.Tx) error
	}{
		{"next", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("next"), []byte{1}) }},
		{"next beyond the log", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("next"), be64(99)) }},
		{"confirmed", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("confirmed")) }},
		{"confirmed beyond next", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("meta")).Put([]byte("confirmed"), be64(41))
		}},
		{"format", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte{2, 0}) }},
		{"runs length", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("runs"), []byte{1, 2}) }},
		{"runs not contiguous", func(tx *bolt.Tx) error {
			v := append(append(append(be64(0), be64(16)...), 0), append(append(be64(17), be64(32)...), 0)...)
			return tx.Bucket([]byte("meta")).Put([]byte("runs"), v)
		}},
		{"runs beyond the log", func(tx *bolt.Tx) error {
			v := append(append(be64(0), be64(400)...), 0)
			return tx.Bucket([]byte("meta")).Put([]byte("runs"), v)
		}},
		{"merge", func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("merge"), []byte{1}) }},
		{"merge of no runs", func(tx *bolt.Tx) error {
			v := append(append(be64(3), be64(16)...), 1)
			return tx.Bucket([]byte("meta")).Put([]byte("merge"), v)
		}},
		{"ID index key", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("ids")).Bucket(firstRun(tx, "ids")).Put([]byte{1}, be64(3))
		}},
		{"log value in the memtable", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("log")).Put(be64(35), []byte{1})
		}},
		{"log key", func(tx *bolt.Tx) error { return tx.Bucket([]byte("log")).Put([]byte{1}, []byte{1}) }},
		{"missing bucket", func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket([]byte("meta")); err != nil {
				return err
			}
			_, err := tx.CreateBucket([]byte("meta"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fill(t, cfg)
			if _, err := corrupt(t, s, cfg, tc.fn); !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestCorruptFile(t *testing.T) {
	path := t.TempDir() + "/weft.db"
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Open(path, storage.Config{}); !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("Open of a file of junk: %v, want ErrCorrupt", err)
	}
}
