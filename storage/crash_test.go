package storage_test

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weftnet/weft/storage"
)

const crashEnv = "WEFT_STORAGE_CRASH_CHILD"

// crashCfg flushes and merges runs often, so that kills land in the middle
// of every kind of transaction. fsync is on.
var crashCfg = storage.Config{FlushEvery: 64, MergeFanIn: 2}

// dropCfg also cuts an epoch every 1,000 records and drops each as soon as
// it is settled, so that kills land in cuts and drops too.
var dropCfg = storage.Config{FlushEvery: 64, MergeFanIn: 2, EpochRecords: 1000, EpochAge: time.Hour, Retain: time.Millisecond, KeepIDs: true}

// TestCrash runs a child process that writes continuously and prints each
// acknowledged position, kills it with SIGKILL at a random moment, and
// checks that the store opens cleanly with every acknowledged record and
// confirmation in it; five times over, on the same store.
func TestCrash(t *testing.T) {
	crashRounds(t, "TestCrash", "plain", 5)
}

// TestCrashDrops does the same with a store that cuts and drops epochs all
// the time; the kill lands between two steps of a cut or a drop (the child
// pauses there), a different one each round, each twice.
func TestCrashDrops(t *testing.T) {
	crashRounds(t, "TestCrashDrops", "drops", 12)
}

func crashRounds(t *testing.T, name, mode string, rounds int) {
	if v := os.Getenv(crashEnv); v != "" {
		m, path, _ := strings.Cut(v, ":")
		crashChild(m, path)
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	path := filepath.Join(t.TempDir(), "store")
	steps := []string{"cut", "frontier", "written", "closed", "truncated", "removed"}
	var acked, confirmed, dropped uint64
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$")
		cmd.Env = append(os.Environ(), crashEnv+"="+mode+":"+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Wait for the child's first acknowledgement, then let it run for
		// a random while and kill it: at once, or (drops) at the next
		// report of the round's step.
		var (
			kill   <-chan time.Time
			armed  bool
			killed string
			step   = steps[round%len(steps)]
		)
		for line := range lines {
			if at, ok := strings.CutPrefix(line, "step "); ok {
				if armed && killed == "" && at == step {
					if err := cmd.Process.Kill(); err != nil {
						t.Fatal(err)
					}
					killed = "after step " + at
				}
				continue
			}
			var n, c uint64
			if _, err := fmt.Sscanf(line, "ack %d %d", &n, &c); err != nil {
				continue
			}
			if n < acked || c < confirmed {
				t.Fatalf("round %d: acknowledgements went backwards: %q after %d %d", round, line, acked, confirmed)
			}
			acked, confirmed = n, c
			if kill == nil {
				kill = time.After(time.Duration(50+rng.IntN(400)) * time.Millisecond)
			}
			select {
			case <-kill:
				if mode == "drops" {
					armed = true
				} else if killed == "" {
					if err := cmd.Process.Kill(); err != nil {
						t.Fatal(err)
					}
					killed = "at random"
				}
			default:
			}
		}
		if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("round %d: child ended with %v, want killed", round, err)
		}
		t.Logf("round %d: killed %s after %d records acknowledged, %d confirmed", round, killed, acked, confirmed)
		dropped = max(dropped, checkCrashed(t, path, acked, confirmed))
	}
	if mode == "drops" && dropped == 0 {
		t.Fatalf("nothing was dropped in %d rounds", rounds)
	}
}

// checkCrashed checks the store after a kill: bbolt's own consistency
// check of each epoch file, then every acknowledged record and confirmation
// through the Store. It returns the first position kept. The files are
// checked after an Open: a file below the frontier (a drop's, cut short
// in its removal) is no longer the store's, and Open removes it unread.
func checkCrashed(t *testing.T, path string, acked, confirmed uint64) uint64 {
	t.Helper()
	s, err := storage.Open(path, storage.Config{FlushEvery: 64, MergeFanIn: 2, KeepIDs: true})
	if err != nil {
		t.Fatalf("reopening after the kill: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, file := range storage.EpochFiles(path) {
		db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.View(func(tx *bolt.Tx) error {
			var errs []error
			for err := range tx.Check() {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		}); err != nil {
			t.Fatalf("bbolt check of %s: %v", file, err)
		}
		db.Close()
	}

	s, err = storage.Open(path, storage.Config{FlushEvery: 64, MergeFanIn: 2, KeepIDs: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A drop under way was finished or forgotten: the first epoch file
	// holds the first position kept.
	first := s.FirstPos()
	if files := storage.EpochFiles(path); files[0] != storage.EpochFile(path, first) {
		t.Fatalf("first position %d, but the first epoch file is %s", first, files[0])
	}
	if first > confirmed+1000 {
		t.Fatalf("first position %d: more than the settled %d (and the epoch after) was dropped", first, confirmed)
	}
	next := s.NextPos()
	if next < acked {
		t.Fatalf("NextPos %d, but %d records were acknowledged", next, acked)
	}
	if s.ConfirmedPrefix() < confirmed {
		t.Fatalf("ConfirmedPrefix %d, but %d were acknowledged", s.ConfirmedPrefix(), confirmed)
	}
	// Every record, in one pass; then the indexes for a sample.
	want := first
	err = s.Range(0, func(e storage.Entry) error {
		// The child confirms each position at its position plus one, in
		// order, so exactly the positions below the watermark are confirmed.
		wantE := storage.Entry{Record: testRecord(want)}
		if want < s.ConfirmedPrefix() {
			wantE.Confirmed, wantE.ConfirmedAt = true, int64(want)+1
		}
		if !equalEntry(e, wantE) {
			return fmt.Errorf("position %d: %+v", want, e)
		}
		want++
		return nil
	})
	if err != nil || want != next {
		t.Fatalf("Range: %v after %d of %d records", err, want, next)
	}
	for pos := first; pos < next; pos += 1 + pos/50 {
		e, err := s.Get(testRecord(pos).ID)
		if err != nil || e.Pos != pos {
			t.Fatalf("Get(id of %d) = %d, %v", pos, e.Pos, err)
		}
		kids, err := s.Children(e.ID)
		if err != nil || len(kids) == 0 && pos+1 < next {
			t.Fatalf("Children(id of %d) = %d children, %v", pos, len(kids), err)
		}
	}
	// Every ID by position, of the dropped epochs too (their ID files are
	// kept): a kill during a drop loses none.
	checkIDs(t, s, span(0, next, 1))
	issuer := testRecord(0).Issuer
	got, err := s.ByIssuer(issuer, storage.SeqPos{}, 0)
	if err != nil || uint64(len(got)) < (next-first)/testIssuers {
		t.Fatalf("ByIssuer: %d entries, %v; want at least %d", len(got), err, (next-first)/testIssuers)
	}
	return first
}

// crashChild writes until it is killed: Writes of 1..40 records, each
// confirming the positions 100 behind, printing "ack <NextPos> <confirmed>"
// from each done.
func crashChild(mode, path string) {
	cfg := crashCfg
	if mode == "drops" {
		cfg = dropCfg
		storage.SetMaintainEvery(10 * time.Millisecond)
		storage.SetRemoveChunk(1<<20, time.Millisecond) // a dropped file goes in steps
	}
	s, err := storage.Open(path, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	if mode == "drops" {
		storage.SetDropHook(s, func(step string) {
			os.Stdout.WriteString("step " + step + "\n")
			time.Sleep(5 * time.Millisecond) // for the kill to land here
		})
	}
	next, conf := s.NextPos(), s.ConfirmedPrefix()
	rng := rand.New(rand.NewPCG(next, 1))
	for {
		w := &storage.Write{Records: testRecords(next, 1+rng.Uint64N(40))}
		next += uint64(len(w.Records))
		for ; conf+100 < next; conf++ {
			w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: conf, At: int64(conf) + 1})
		}
		line := "ack " + strconv.FormatUint(next, 10) + " " + strconv.FormatUint(conf, 10) + "\n"
		s.Submit(w, func(err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "child:", err)
				os.Exit(2)
			}
			os.Stdout.WriteString(line)
		})
	}
}
