package storage_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/storage"
)

// TestPagesReleased reads a store of about 10 MB through its mappings, so
// that their pages are resident in this process, and checks, from
// /proc/self/smaps, that the store gives them back within a few of
// its release periods (250 ms): what the node's RSS holds of its store is
// what reads touched in the last quarter of a second, not the store.
func TestPagesReleased(t *testing.T) {
	storage.SetReleaseGrowth(t, 1<<40) // the timer alone: TestReleaseOnGrowth
	s, path := open(t, storage.Config{NoSync: true})
	const n = 50_000
	for from := uint64(0); from < n; from += 5000 {
		mustSubmit(t, s, &storage.Write{Records: testRecords(from, 5000)})
	}
	dir := filepath.Dir(path)
	// A release may come between the reads and the look at smaps: read
	// again then.
	var read int
	var touched int64
	for try := 0; try < 5 && touched < 4<<20; try++ {
		read = 0
		if err := s.Range(0, func(e storage.Entry) error { read += len(e.Raw); return nil }); err != nil {
			t.Fatal(err)
		}
		touched = mappedRss(t, dir)
	}
	if touched < 4<<20 {
		t.Fatalf("%d bytes of the store's mappings resident after reading %d bytes: the reads did not go through the mapping", touched, read)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rss := mappedRss(t, dir)
		if rss <= 256<<10 {
			t.Logf("resident of the mappings: %d KiB after the reads, %d KiB after the release", touched>>10, rss>>10)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d KiB of the store's mappings still resident 5 s after the reads (%d KiB right after)", rss>>10, touched>>10)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mappedRss sums the resident bytes of this process's mappings of files in
// dir, from /proc/self/smaps.
func mappedRss(t *testing.T, dir string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-"): // a mapping's header
			in = len(fields) >= 6 && strings.HasPrefix(fields[5], dir+string(filepath.Separator))
		case in && fields[0] == "Rss:":
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestReleaseOnGrowth reads a store through its mappings without pause and
// checks that the store releases the pages as they grow (here past 1 MiB,
// SetReleaseGrowth), not only on its 250 ms timer: over a second of reads
// it releases several times more often than over a second idle.
func TestReleaseOnGrowth(t *testing.T) {
	storage.SetReleaseGrowth(t, 1<<20)
	s, _ := open(t, storage.Config{NoSync: true})
	for from := uint64(0); from < 50_000; from += 5000 {
		mustSubmit(t, s, &storage.Write{Records: testRecords(from, 5000)})
	}
	during := func(d time.Duration, f func()) uint64 {
		before := s.Stats().Releases
		for end := time.Now().Add(d); time.Now().Before(end); {
			f()
		}
		return s.Stats().Releases - before
	}
	idle := during(time.Second, func() { time.Sleep(time.Millisecond) })
	reading := during(time.Second, func() {
		if err := s.Range(0, func(storage.Entry) error { return nil }); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("releases in a second: %d idle, %d reading", idle, reading)
	if idle > 6 {
		t.Errorf("%d releases in an idle second, want about 4 (every 250 ms)", idle)
	}
	if reading < idle+4 {
		t.Errorf("%d releases in a second of reads, %d idle: the growth of the mappings did not release them", reading, idle)
	}
}
