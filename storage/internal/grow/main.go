// Command grow fills a store to several million records through Submit, the
// way a node would (one goroutine handing over Writes of a few hundred
// records, fsync on, every index), and prints the commit rate as the store
// grows, then the cost of reopening and of lookups at that size. It answers
// the question the storage layout was chosen for: does the rate hold as the
// store grows? See docs/STORAGE.md for the figures measured with it.
//
//	go run ./storage/internal/grow -n 3500000 -dir /tmp/weft-grow
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/storage"
	"github.com/weftnet/weft/storage/internal/synth"
)

func main() {
	var (
		dir      = flag.String("dir", "", "directory for the store (default: a new temporary one, removed at the end)")
		n        = flag.Int("n", 3_500_000, "records to write")
		perWrite = flag.Int("write", 512, "records per Write")
		every    = flag.Int("every", 500_000, "report every this many records")
		issuers  = flag.Int("issuers", 1000, "distinct issuers")
		nosync   = flag.Bool("nosync", false, "skip fsync (not what a node does)")
		flush    = flag.Int("flush", 0, "Config.FlushEvery (0: default)")
		fanin    = flag.Int("fanin", 0, "Config.MergeFanIn (0: default)")
		maxBatch = flag.Int("maxbatch", 0, "Config.MaxBatch (0: default)")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile here")
		reads    = flag.Bool("reads", false, "do not write: measure reads on the store already in -dir")
	)
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "weft-grow-")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	check(os.MkdirAll(*dir, 0o755))
	path := filepath.Join(*dir, "weft.db")
	if *reads {
		s, err := storage.Open(path, storage.Config{})
		check(err)
		var sample [][32]byte
		for pos := uint64(0); pos < s.NextPos(); pos += 1 + s.NextPos()/10_000 {
			e, err := s.GetByPos(pos)
			check(err)
			sample = append(sample, e.ID)
		}
		if *cpuprof != "" {
			f, err := os.Create(*cpuprof)
			check(err)
			check(pprof.StartCPUProfile(f))
			defer pprof.StopCPUProfile()
		}
		measureReads(s, sample)
		check(s.Close())
		return
	}
	check(os.RemoveAll(path))
	cfg := storage.Config{NoSync: *nosync, FlushEvery: *flush, MergeFanIn: *fanin, MaxBatch: *maxBatch}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}

	s, err := storage.Open(path, cfg)
	check(err)
	gen := synth.New(synth.Config{Issuers: *issuers})
	fmt.Printf("# %d records of %d-byte Raw, %d per Write, %d issuers, fsync %v, %s\n",
		*n, 300, *perWrite, *issuers, !*nosync, time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("%10s %12s %12s %10s %8s %6s %10s\n", "records", "msgs/s", "avg msgs/s", "commits", "rec/tx", "runs", "file MB")

	var (
		acked    atomic.Int64
		failed   atomic.Value
		sample   [][32]byte
		wg       sync.WaitGroup
		start    = time.Now()
		last     = start
		lastN    = 0
		lastTx   = uint64(0)
		reported = 0
	)
	for written := 0; written < *n; {
		k := min(*perWrite, *n-written)
		w := gen.Next(k)
		if len(sample) < 100_000 {
			sample = append(sample, w.Records[0].ID)
		} else {
			sample[rand.IntN(len(sample))] = w.Records[0].ID
		}
		wg.Add(1)
		s.Submit(w, func(err error) {
			if err != nil {
				failed.Store(err)
			}
			acked.Add(int64(k))
			wg.Done()
		})
		written += k
		if written/(*every) != reported || written == *n {
			reported = written / (*every)
			wg.Wait() // report committed records only
			if err, _ := failed.Load().(error); err != nil {
				check(err)
			}
			now := time.Now()
			st := s.Stats()
			fi, err := os.Stat(path)
			check(err)
			fmt.Printf("%10d %12.0f %12.0f %10d %8.0f %6d %10d\n", written,
				float64(written-lastN)/now.Sub(last).Seconds(), float64(written)/now.Sub(start).Seconds(),
				st.Commits, float64(written-lastN)/float64(st.Commits-lastTx), st.Runs, fi.Size()>>20)
			last, lastN, lastTx = now, written, st.Commits
		}
	}
	check(s.Close())

	t := time.Now()
	s, err = storage.Open(path, cfg)
	check(err)
	fmt.Printf("# reopen: %v (NextPos %d, ConfirmedPrefix %d, runs %d)\n", time.Since(t).Round(time.Millisecond), s.NextPos(), s.ConfirmedPrefix(), s.Stats().Runs)
	measureReads(s, sample)
	check(s.Close())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "grow:", err)
		os.Exit(1)
	}
}

// measureReads prints the cost of Get (of the sample, twice: the first
// pass pays for faulting the file's pages in) and of Has of absent IDs.
func measureReads(s *storage.Store, sample [][32]byte) {
	var t time.Time
	for _, pass := range []string{"first touch", "again"} {
		t = time.Now()
		for _, id := range sample {
			if _, err := s.Get(id); err != nil {
				check(err)
			}
		}
		fmt.Printf("# Get of %d stored IDs (%s): %v each\n", len(sample), pass, (time.Since(t) / time.Duration(len(sample))).Round(100*time.Nanosecond))
	}
	t = time.Now()
	var id [32]byte
	for i := range 100_000 {
		id[0], id[1], id[2] = byte(i), byte(i>>8), byte(i>>16)
		if ok, err := s.Has(id); err != nil || ok {
			check(fmt.Errorf("Has of an absent ID: %v %v", ok, err))
		}
	}
	fmt.Printf("# Has of 100000 absent IDs: %v each\n", (time.Since(t) / 100_000).Round(100*time.Nanosecond))
}
