package storage_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/storegen"
	"github.com/weftnet/weft/storage"
)

// The store of BenchmarkIssuerDay: WEFT_BENCH_RECORDS messages (default
// 1,000,000) over one day, of which one device's day of readings, one a
// second (86,400), is spread evenly through the log, and the rest come
// from 1,000 other devices. Building it takes a while, so it is built once
// into WEFT_BENCH_DIR (default the system's temporary directory) and
// reused by later runs; delete the directory to rebuild it.
const (
	dayReadings = 86_400
	dayStart    = int64(1_767_225_600_000_000_000) // 2026-01-01T00:00:00Z
	dayNs       = int64(86_400) * 1e9
)

// dayDevice is the device whose day BenchmarkIssuerDay reads.
var dayDevice = dag.PublicKey{0xda, 0x7}

// dayStore opens the store of BenchmarkIssuerDay, building it if needed.
func dayStore(b *testing.B) *storage.Store {
	n := 1_000_000
	if v := os.Getenv("WEFT_BENCH_RECORDS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < dayReadings {
			b.Fatalf("WEFT_BENCH_RECORDS %q: want a number of at least %d", v, dayReadings)
		}
	}
	dir := os.Getenv("WEFT_BENCH_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, fmt.Sprintf("weft-bench-issuerday-%d", n))
	path, done := filepath.Join(dir, "weft.db"), filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err != nil {
		b.Logf("building %s: %d messages", path, n)
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		s, err := storage.Open(path, storage.Config{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		others := make([]dag.PublicKey, 1000)
		for i := range others {
			binary.BigEndian.PutUint64(others[i][:], rng.Uint64())
		}
		payload := make([]byte, 100)
		every := n / dayReadings
		err = storegen.Write(s, "bench", n, func(i int) storegen.Message {
			ts := dayStart + int64(i)*(dayNs/int64(n))
			if i%every == 0 && i/every < dayReadings {
				// The device's clock: a reading a second, jittered by up
				// to 2 s, so not always in sequence order.
				return storegen.Message{Issuer: dayDevice, Timestamp: dayStart + int64(i/every)*1e9 + rng.Int64N(2e9), Payload: payload}
			}
			return storegen.Message{Issuer: others[rng.IntN(len(others))], Timestamp: ts, Payload: payload}
		})
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(done, nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	s, err := storage.Open(path, storage.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkIssuerDay reads one device's day of readings (86,400 messages)
// out of the store of dayStore: whole, and in pages of 1,000 as the API
// serves them. An op is the whole day. cpu-ns/op is the CPU time the
// process spent per op (user and system): on a shared machine it varies
// less than the wall time, ns/op.
func BenchmarkIssuerDay(b *testing.B) {
	s := dayStore(b)
	b.Logf("%d records, %d runs", s.NextPos(), s.Stats().Runs)
	from, until := storage.TimePos{Time: dayStart}, dayStart+dayNs+2e9
	b.Run("whole", func(b *testing.B) {
		cpu := cpuTime(b)
		for b.Loop() {
			es, err := s.ByIssuerTime(dayDevice, from, until, 0)
			if err != nil || len(es) != dayReadings {
				b.Fatalf("%d entries, %v; want %d", len(es), err, dayReadings)
			}
		}
		cpu(b)
	})
	b.Run("pages=1000", func(b *testing.B) {
		cpu := cpuTime(b)
		for b.Loop() {
			n := 0
			for tp := from; ; {
				es, err := s.ByIssuerTime(dayDevice, tp, until, 1000)
				if err != nil {
					b.Fatal(err)
				}
				n += len(es)
				if len(es) < 1000 {
					break
				}
				last := es[len(es)-1]
				tp = storage.TimePos{Time: last.Timestamp, Pos: last.Pos + 1}
			}
			if n != dayReadings {
				b.Fatalf("%d entries, want %d", n, dayReadings)
			}
		}
		cpu(b)
	})
}

// cpuTime starts counting the process's CPU time; the function it returns
// reports it per op as cpu-ns/op.
func cpuTime(b *testing.B) func(*testing.B) {
	used := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := used()
	return func(b *testing.B) {
		b.ReportMetric(float64(used()-start)/float64(b.N), "cpu-ns/op")
	}
}
