// Command grow fills a store to several million records through Submit, the
// way a node would (one goroutine handing over Writes of a few hundred
// records, fsync on, every index), and prints the commit rate as the store
// grows, then the cost of reopening and of lookups at that size. It answers
// the question the storage layout was chosen for: does the rate hold as the
// store grows? See docs/STORAGE.md for the figures measured with it.
//
//	go run ./storage/internal/grow -n 3500000 -dir /tmp/weft-grow
//
// After writing it prints where each epoch file's bytes go: each bucket's pages
// (allocated and in use) and bbolt's free pages, per record.
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
	"syscall"
	"text/tabwriter"
	"time"

	bolt "go.etcd.io/bbolt"

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
		rawSize  = flag.Int("raw", 0, "bytes of Raw per record (0: synth's default)")
		nosync   = flag.Bool("nosync", false, "skip fsync (not what a node does)")
		flush    = flag.Int("flush", 0, "Config.FlushEvery (0: default)")
		fanin    = flag.Int("fanin", 0, "Config.MergeFanIn (0: default)")
		maxBatch = flag.Int("maxbatch", 0, "Config.MaxBatch (0: default)")
		cpuprof  = flag.String("cpuprofile", "", "write a CPU profile here")
		reads    = flag.Bool("reads", false, "do not write: measure reads on the store already in -dir")
		space    = flag.Bool("space", false, "do not write: print where the bytes of the store already in -dir go")
	)
	flag.Parse()
	if *dir == "" {
		d, err := os.MkdirTemp("", "weft-grow-")
		check(err)
		defer os.RemoveAll(d)
		*dir = d
	}
	check(os.MkdirAll(*dir, 0o755))
	path := filepath.Join(*dir, "store")
	if *space {
		files, err := filepath.Glob(filepath.Join(path, "epoch-*.db"))
		check(err)
		for _, f := range files {
			fmt.Println(filepath.Base(f))
			check(printSpace(f))
		}
		return
	}
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
	gen := synth.New(synth.Config{Issuers: *issuers, RawSize: *rawSize})
	fmt.Printf("# %d records of %d-byte Raw, %d per Write, %d issuers, fsync %v, %s\n",
		*n, len(gen.Next(1).Records[0].Raw), *perWrite, *issuers, !*nosync, time.Now().UTC().Format(time.RFC3339))
	gen = synth.New(synth.Config{Issuers: *issuers, RawSize: *rawSize})
	fmt.Printf("%10s %12s %12s %10s %8s %6s %10s\n", "records", "msgs/s", "avg msgs/s", "commits", "rec/tx", "runs", "disk MB")

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
			fmt.Printf("%10d %12.0f %12.0f %10d %8.0f %6d %10d\n", written,
				float64(written-lastN)/now.Sub(last).Seconds(), float64(written)/now.Sub(start).Seconds(),
				st.Commits, float64(written-lastN)/float64(st.Commits-lastTx), st.Runs, s.DiskUsage()>>20)
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
	files, err := filepath.Glob(filepath.Join(path, "epoch-*.db"))
	check(err)
	for _, f := range files {
		fmt.Println(filepath.Base(f))
		check(printSpace(f))
	}
}

// printSpace prints where the bytes of the store at path go: the pages of
// each bucket (nested run buckets included in their parent's), bbolt's free
// pages, and the rest (meta pages, the freelist), in bytes per record.
func printSpace(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	// Not read-only: bbolt loads the freelist only for writing. Nothing is
	// written.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		records := tx.Bucket([]byte("log")).Stats().KeyN
		if records == 0 {
			return fmt.Errorf("no records in %s", path)
		}
		per := func(bytes int64) float64 { return float64(bytes) / float64(records) }
		tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "# space\tkeys\tpages\tB/record\tin use %%\t\n")
		var buckets int64
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			st := b.Stats()
			alloc := int64(st.BranchAlloc + st.LeafAlloc)
			inuse := int64(st.BranchInuse + st.LeafInuse)
			buckets += alloc
			pct := 0.0
			if alloc > 0 {
				pct = 100 * float64(inuse) / float64(alloc)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t\n", name, st.KeyN,
				st.BranchPageN+st.BranchOverflowN+st.LeafPageN+st.LeafOverflowN, per(alloc), pct)
			return nil
		})
		if err != nil {
			return err
		}
		dst := db.Stats()
		free := int64(dst.FreePageN+dst.PendingPageN) * int64(db.Info().PageSize)
		fmt.Fprintf(tw, "free pages\t\t%d\t%.1f\t\t\n", dst.FreePageN+dst.PendingPageN, per(free))
		fmt.Fprintf(tw, "other (meta, freelist)\t\t\t%.1f\t\t\n", per(tx.Size()-buckets-free))
		fmt.Fprintf(tw, "data (high-water mark)\t\t\t%.1f\t\t\n", per(tx.Size()))
		fmt.Fprintf(tw, "file size\t\t\t%.1f\t\t\n", per(fi.Size()))
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			// bbolt grows the file ahead of its data; blocks are allocated
			// only as pages are written.
			fmt.Fprintf(tw, "file blocks allocated\t\t\t%.1f\t\t\n", per(st.Blocks*512))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Printf("# %d records, file %d bytes\n", records, fi.Size())
		return nil
	})
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
