package storage_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/storage"
	"github.com/weftnet/weft/storage/internal/synth"
)

// BenchmarkCommit measures the commit rate of the node's write path: one
// goroutine (the DAG core) submits Writes of a few hundred 300-byte records
// and their confirmations, fsync on, every index kept. b.N counts records.
// The growth of the rate with the store's size is measured by
// storage/internal/grow (see docs/STORAGE.md).
func BenchmarkCommit(b *testing.B) {
	for _, perWrite := range []int{256, 1024} {
		b.Run(fmt.Sprintf("write=%d", perWrite), func(b *testing.B) {
			s, _ := open(b, storage.Config{})
			gen := synth.New(synth.Config{})
			// Make the Writes first: the generator is not what is measured.
			var ws []*storage.Write
			for n := 0; n < b.N; n += perWrite {
				ws = append(ws, gen.Next(min(perWrite, b.N-n)))
			}
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for _, w := range ws {
				wg.Add(1)
				s.Submit(w, func(err error) {
					if err != nil {
						b.Error(err)
					}
					wg.Done()
				})
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(st.Records)/float64(max(st.Commits, 1)), "records/tx")
		})
	}
}

// filled returns a store of n synthetic records (written without fsync,
// which does not change what is read) and some of their IDs.
func filled(b *testing.B, n int) (*storage.Store, [][32]byte) {
	s, _ := open(b, storage.Config{NoSync: true})
	gen := synth.New(synth.Config{})
	var ids [][32]byte
	for written := 0; written < n; written += 1024 {
		w := gen.Next(1024)
		for i := 0; i < len(w.Records); i += 97 {
			ids = append(ids, w.Records[i].ID)
		}
		mustSubmit(b, s, w)
	}
	return s, ids
}

// BenchmarkRead measures the reads on a store of 500,000 records, whose
// ID index has runs of two levels and a memtable.
func BenchmarkRead(b *testing.B) {
	s, ids := filled(b, 500_000)
	b.Logf("%d runs", s.Stats().Runs)
	b.Run("Get", func(b *testing.B) {
		for i := range b.N {
			if _, err := s.Get(ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("HasAbsent", func(b *testing.B) {
		var id [32]byte
		for i := range b.N {
			id[0], id[1], id[2], id[3] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24)
			if ok, err := s.Has(id); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("GetByPos", func(b *testing.B) {
		for i := range b.N {
			if _, err := s.GetByPos(uint64(i*7919) % 500_000); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ByIssuer100", func(b *testing.B) {
		e, _ := s.GetByPos(1000)
		for range b.N {
			if es, err := s.ByIssuer(e.Issuer, storage.SeqPos{}, 100); err != nil || len(es) != 100 {
				b.Fatal(len(es), err)
			}
		}
	})
	b.Run("Range", func(b *testing.B) {
		n := 0
		for range b.N {
			if err := s.Range(490_000, func(storage.Entry) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "entries/s")
	})
}

// BenchmarkHasNew measures the duplicate check of a new message (an ID the
// store does not hold, a timestamp after every record's) on a store of 30
// epochs, as a node with retention holds: Has consults every epoch's runs,
// HasAt only the epochs whose records' timestamps span the message's.
func BenchmarkHasNew(b *testing.B) {
	const epochs, perEpoch = 30, 10_000
	s, _ := open(b, storage.Config{NoSync: true, EpochRecords: perEpoch, EpochAge: time.Hour})
	gen := synth.New(synth.Config{})
	var last int64
	for written := 0; written < epochs*perEpoch; written += 1000 {
		w := gen.Next(1000)
		for _, r := range w.Records {
			last = max(last, r.Timestamp)
		}
		mustSubmit(b, s, w)
		for s.Stats().Epochs < uint64(written/perEpoch+1) {
			time.Sleep(time.Millisecond) // let the writer cut, as a node's load would
		}
	}
	b.Logf("%d epochs, %d runs", s.Stats().Epochs, s.Stats().Runs)
	absent := func(i int) [32]byte {
		var id [32]byte
		id[0], id[1], id[2], id[3], id[31] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24), 0xa5
		return id
	}
	b.Run("Has", func(b *testing.B) {
		for i := range b.N {
			if ok, err := s.Has(absent(i)); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("HasAt", func(b *testing.B) {
		for i := range b.N {
			if ok, err := s.HasAt(absent(i), last+int64(i)); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}
