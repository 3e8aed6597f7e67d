package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	bolt "go.etcd.io/bbolt"
)

// TestDiskFill runs a node, with fsync on, on a small tmpfs that a filler
// file fills: a real full disk (bbolt's write of its pages fails with
// ENOSPC). While it is full the node must say so (/readyz, /info, the
// metrics, the log, once), refuse submissions with 503
// storage_unavailable, issue nothing, and hand out only durable parents.
// Once the filler is deleted the same process must take messages again
// within the store's retry pacing, and store what was in its pipeline.
// Filled again, it is stopped with SIGTERM and then SIGKILL on the full
// disk: after each restart every parent it handed out and every message
// it acknowledged must be there, and bbolt's check must pass. It never
// exits by itself. A device's answers are 201, or 503 with a code that
// says why.
func TestDiskFill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	mnt := mountTmpfs(t, 8<<20)
	dataDir := filepath.Join(mnt, "data")
	filler := filepath.Join(mnt, "filler")
	start := func() *proc { return startNode(t, dataDir, "--pow-base", "0") }

	p := start()
	load := startDiskLoad(t, p, seed)
	waitStatus(t, p, "/readyz", http.StatusOK)
	load.waitAcked(t, 50) // the store commits before the disk fills
	const leave = 256 << 10
	fill(t, mnt, filler, leave)

	// Full: every answer says so, and nothing more is acknowledged.
	full := time.Now()
	waitStatus(t, p, "/readyz", http.StatusServiceUnavailable)
	t.Logf("full %v after the filler", time.Since(full).Round(time.Millisecond))
	checkFull(t, p, load)
	// Hold the disk full past the submit timeout (5 s), so that nothing
	// of the pipeline waits for it, and until the store's wait between attempts is
	// at its cap (10 ms, doubling, at most 1 s: after 1.27 s of waits),
	// so that a longer cap would show below.
	for hold := full.Add(6 * time.Second); time.Now().Before(hold); {
		p.tips(t, load)
		time.Sleep(50 * time.Millisecond)
	}
	checkFull(t, p, load)
	resumed := makeRoom(t, p, load, filler)
	if resumed > 3*time.Second {
		t.Errorf("writes resumed %v after space was freed, want within the store's 1 s retry pacing (3 s with slack)", resumed)
	}
	checkLogBounded(t, p, 1, false)

	// Full again, and stopped and restarted on the full disk, cleanly and
	// not.
	fill(t, mnt, filler, leave)
	waitStatus(t, p, "/readyz", http.StatusServiceUnavailable)
	checkFull(t, p, load)
	p = restartFull(t, p, load, 2, syscall.SIGTERM, dataDir, start)
	p = restartFull(t, p, load, 1, syscall.SIGKILL, dataDir, start)
	makeRoom(t, p, load, filler)
	load.stop()
	if st := load.unexpected(); len(st) > 0 {
		t.Fatalf("answers that are not a device's to expect: %v", st)
	}
	checkLogBounded(t, p, 1, false)
	if err := stopChecked(t, p, syscall.SIGTERM, dataDir); err != nil {
		t.Fatalf("SIGTERM after the recovery: %v\n%s", err, p.logText())
	}
	p = start()
	checkStored(t, p, load)
	t.Logf("%d acknowledged, %d parents handed out, all stored after 3 restarts; answers: %v",
		load.ackCount(), len(load.parentList()), load.statusCounts())
}

// makeRoom deletes the filler and waits until p, not restarted, takes
// messages again; it returns how long that took. What p answered 503
// storage_unavailable from its pipeline while the disk was full (it was in
// the pipeline when the disk filled) must be stored then.
func makeRoom(t *testing.T, p *proc, load *diskLoad, filler string) time.Duration {
	t.Helper()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed, ackedBefore := time.Now(), load.ackCount()
	waitStatus(t, p, "/readyz", http.StatusOK)
	load.waitAcked(t, ackedBefore+20)
	resumed := time.Since(freed)
	p.waitLog(t, `"the store commits again: taking messages"`, 0)
	late := load.stored(p)
	for _, id := range late {
		if st, body := get(t, p, "/api/v1/messages/"+id.String()); st != http.StatusOK {
			t.Fatalf("%s, in the pipeline when the disk filled, not stored once it had room: %d %s", id, st, body)
		}
	}
	t.Logf("writes resumed %v after the filler was deleted; %d messages answered 503 storage_unavailable from the pipeline, stored now",
		resumed.Round(time.Millisecond), len(late))
	return resumed
}

// mountTmpfs mounts a tmpfs of size bytes in a temporary directory,
// unmounted by t.Cleanup after everything registered later (the nodes on
// it). It skips the test when it cannot: not root, or no tmpfs.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root: run as root to test a full disk")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("mount -t tmpfs -o size=%d: %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// fill grows the file filler on the filesystem at mnt until no more than
// leave bytes are free.
func fill(t *testing.T, mnt, filler string, leave uint64) {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(mnt, &fs); err != nil {
		t.Fatal(err)
	}
	free := fs.Bavail * uint64(fs.Bsize)
	if free <= leave {
		return
	}
	f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, free-leave)); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatal(err)
	}
}

// checkFull checks what the node says while its disk is full: /readyz and
// /info name the cause, the metrics count the failures, submissions are
// refused with 503 storage_unavailable and Retry-After, and what it
// acknowledged and handed out as parents is all stored (/info's durable).
func checkFull(t *testing.T, p *proc, load *diskLoad) {
	t.Helper()
	const nospace = "no space left on device"
	st, body := get(t, p, "/readyz")
	var e wire.ErrorBody
	if st != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil || e.Error.Code != "not_ready" ||
		!strings.Contains(e.Error.Message, "storage") || !strings.Contains(e.Error.Message, nospace) {
		t.Fatalf("/readyz on a full disk: %d %s", st, body)
	}
	t.Logf("/readyz: %d %s", st, bytes.TrimSpace(body))
	// Submissions are refused while the store fails, and the validator
	// issues nothing: once what passed the API before the failure has
	// reached the core, the count of messages stays put.
	waitRefusals(t, p, load, 20)
	before := p.info(t)
	waitRefusals(t, p, load, 20)
	info := p.info(t)
	if !strings.Contains(info.StorageError, nospace) || info.Durable > info.Messages || info.Messages != before.Messages {
		t.Fatalf("/info on a full disk: %+v, before the refusals %d messages", info, before.Messages)
	}
	if n := load.ackCount(); uint64(n) >= info.Durable {
		t.Fatalf("%d messages acknowledged, %d durable", n, info.Durable)
	}
	load.sawDurable(info.Durable)
	_, metrics := get(t, p, "/metrics")
	if !bytes.Contains(metrics, []byte("\nweft_storage_failing 1\n")) ||
		bytes.Contains(metrics, []byte("\nweft_storage_commit_failures_total 0\n")) {
		t.Fatalf("metrics on a full disk:\n%s", grepLines(metrics, "weft_storage"))
	}
	// A refusal carries its code and a Retry-After (API.md).
	_, key, _ := ed25519.GenerateKey(nil)
	m := rawMessage(t, p.url, key, 1, []byte("full"))
	load.addParents(m.Parents[:])
	sub := post(t, p, m.Bytes())
	if sub.status != http.StatusServiceUnavailable || sub.code != "storage_unavailable" || sub.retryAfter == "" {
		t.Fatalf("a submission on a full disk: %+v", sub)
	}
}

// waitRefusals waits, at most 30 s, until the devices are refused n more
// times with 503 storage_unavailable, and records the tips meanwhile.
func waitRefusals(t *testing.T, p *proc, load *diskLoad, n int) {
	t.Helper()
	refused := load.refusals() + n
	deadline := time.Now().Add(30 * time.Second)
	for load.refusals() < refused {
		if time.Now().After(deadline) {
			t.Fatalf("the devices were refused %d times in 30 s on a full disk", load.refusals())
		}
		p.tips(t, load)
		time.Sleep(20 * time.Millisecond)
	}
}

// restartFull stops p with sig while the disk is full, checks that it
// stopped in time, restarts it on the still full disk, and checks that
// every parent handed out and every message acknowledged is stored, and
// that the node says again that it cannot commit. The disk was filled
// fills times while p ran.
func restartFull(t *testing.T, p *proc, load *diskLoad, fills int, sig syscall.Signal, dataDir string, start func() *proc) *proc {
	t.Helper()
	p.tips(t, load)
	load.pause()
	checkLogBounded(t, p, fills, true)
	err := stopChecked(t, p, sig, dataDir)
	var ee *exec.ExitError
	// Stopping gives up on the Writes the store could not commit: exit
	// status 1, and the last line says why.
	logs := strings.TrimSpace(p.logText())
	stopped := logs[strings.LastIndexByte(logs, '\n')+1:]
	if sig == syscall.SIGTERM && (!errors.As(err, &ee) || ee.ExitCode() != 1 ||
		!strings.Contains(stopped, "storage: writer failed") || !strings.Contains(stopped, "no space left on device")) {
		t.Fatalf("SIGTERM on a full disk: exit %v, last line %q, want status 1 and the cause:\n%s", err, stopped, logs)
	}
	p = start()
	checkStored(t, p, load)
	load.resume(p)
	waitStatus(t, p, "/readyz", http.StatusServiceUnavailable)
	checkFull(t, p, load)
	return p
}

// checkStored checks that every parent handed out and every message
// acknowledged is on p.
func checkStored(t *testing.T, p *proc, load *diskLoad) {
	t.Helper()
	ids := append(load.parentList(), load.ackedList()...)
	for _, id := range ids {
		if st, body := get(t, p, "/api/v1/messages/"+id.String()); st != http.StatusOK {
			t.Fatalf("after the restart, %s (handed out or acknowledged before): %d %s", id, st, body)
		}
	}
	// What /info said was durable is: the store holds at least as much.
	if info, durable := p.info(t), load.durable(); info.Durable < durable || info.Durable <= uint64(load.ackCount()) {
		t.Fatalf("after the restart: %+v; %d said durable and %d acknowledged before", info, durable, load.ackCount())
	}
}

// stopChecked checks that p is still running, stops it with sig, and
// runs bbolt's consistency check on its store. It returns how p exited.
func stopChecked(t *testing.T, p *proc, sig syscall.Signal, dataDir string) error {
	t.Helper()
	if p.exited() {
		t.Fatalf("the node exited by itself:\n%s", p.logText())
	}
	began := time.Now()
	err := p.kill(sig)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%v: %v\n%s", sig, err, p.logText())
	}
	t.Logf("%v: exit %v after %v", sig, err, time.Since(began).Round(time.Millisecond))
	files, _ := filepath.Glob(filepath.Join(dataDir, "store", "*.db"))
	if len(files) < 2 {
		t.Fatalf("after %v: the store holds %v", sig, files)
	}
	for _, file := range files {
		db, oerr := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if oerr != nil {
			t.Fatalf("after %v: opening %s: %v", sig, file, oerr)
		}
		oerr = db.View(func(tx *bolt.Tx) error {
			var errs []error
			for e := range tx.Check() {
				errs = append(errs, e)
			}
			return errors.Join(errs...)
		})
		db.Close()
		if oerr != nil {
			t.Fatalf("after %v: the pages of %s are inconsistent: %v", sig, file, oerr)
		}
	}
	return err
}

// checkLogBounded checks that p logged the store's failure once per
// failure, as the node promises (then every 30 s, longer than one lasts
// here), and each recovery: no other error. The disk was filled fills
// times while p ran, and is full now if full. A nearly full disk can take
// a small commit (bbolt reuses the pages earlier commits freed), so one
// fill may be seen as a failure, a recovery and a failure again: the log
// may hold a few pairs per fill, never a line per failed attempt.
func checkLogBounded(t *testing.T, p *proc, fills int, full bool) {
	t.Helper()
	const perFill = 3
	logs := p.logText()
	failures := strings.Count(logs, `"the store cannot commit: taking no messages until it can; retrying"`)
	recoveries := strings.Count(logs, `"the store commits again: taking messages"`)
	errorLines := strings.Count(logs, `"level":"error"`)
	want := failures
	if full {
		want--
	}
	if failures < fills || failures > perFill*fills || recoveries != want || errorLines != failures {
		t.Fatalf("%d failure lines, %d recoveries and %d error lines in the log, want %d to %d failures, each recovered unless the disk is still full (%v), and no other error:\n%s",
			failures, recoveries, errorLines, fills, perFill*fills, full, logs)
	}
	if failures > fills {
		t.Logf("%d failures logged over %d fills: the nearly full disk took a commit between them", failures, fills)
	}
}

// diskLoad is devices that submit to a node as fast as it takes messages,
// each building on /tips. It records every message acknowledged and every
// parent handed out.
type diskLoad struct {
	t      *testing.T
	wg     sync.WaitGroup
	mu     sync.Mutex
	p      *proc // nil while paused
	quit   bool
	cond   *sync.Cond
	acked  []dag.ID
	parent map[dag.ID]bool
	late   map[*proc][]dag.ID // answered 503 overloaded, by the node that answered
	maxDur uint64             // the most /info said was durable
	status map[string]int     // answers by status and code
	odd    []string           // answers no device should get
}

const diskDevices = 4

func startDiskLoad(t *testing.T, p *proc, seed uint64) *diskLoad {
	l := &diskLoad{t: t, p: p, parent: map[dag.ID]bool{}, status: map[string]int{}, late: map[*proc][]dag.ID{}}
	l.cond = sync.NewCond(&l.mu)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < diskDevices; i++ {
		keySeed := make([]byte, ed25519.SeedSize)
		binary.LittleEndian.PutUint64(keySeed, r.Uint64())
		key := ed25519.NewKeyFromSeed(keySeed)
		l.wg.Add(1)
		go l.device(key)
	}
	t.Cleanup(l.stop)
	return l
}

// device submits messages of key, one at a time, with a payload near the
// network's limit so that the disk fills fast.
func (l *diskLoad) device(key ed25519.PrivateKey) {
	defer l.wg.Done()
	payload := bytes.Repeat([]byte("t"), 900)
	for seq := uint64(1); ; seq++ {
		p := l.wait()
		if p == nil {
			return
		}
		m, err := buildRaw(p.url, key, seq, payload)
		if err != nil {
			time.Sleep(10 * time.Millisecond) // the node is stopping
			continue
		}
		l.addParents(m.Parents[:])
		sub, err := submit(p, m.Bytes())
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		l.status[fmt.Sprint(sub.status, " ", sub.code)]++
		switch {
		case sub.status == http.StatusCreated:
			l.acked = append(l.acked, m.ID())
		case sub.status == http.StatusServiceUnavailable && sub.code == "storage_unavailable" && sub.retryAfter != "" &&
			strings.Contains(sub.message, "stored once the store commits again"):
			// The message was in the pipeline when the disk filled: it is
			// stored once the disk has room, unless the node stops before.
			l.late[p] = append(l.late[p], m.ID())
		case sub.status == http.StatusServiceUnavailable && sub.code == "storage_unavailable" && sub.retryAfter != "":
		case sub.status == http.StatusServiceUnavailable && sub.code == "shutting_down":
		default:
			l.odd = append(l.odd, fmt.Sprintf("%+v", sub))
		}
		l.mu.Unlock()
		if sub.status == http.StatusServiceUnavailable {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// wait returns the node to submit to, waiting while the load is paused;
// nil once it stopped.
func (l *diskLoad) wait() *proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.p == nil && !l.quit {
		l.cond.Wait()
	}
	if l.quit {
		return nil
	}
	return l.p
}

func (l *diskLoad) pause() {
	l.mu.Lock()
	l.p = nil
	l.mu.Unlock()
}

func (l *diskLoad) resume(p *proc) {
	l.mu.Lock()
	l.p = p
	l.cond.Broadcast()
	l.mu.Unlock()
}

func (l *diskLoad) stop() {
	l.mu.Lock()
	l.quit = true
	l.cond.Broadcast()
	l.mu.Unlock()
	l.wg.Wait()
}

func (l *diskLoad) addParents(ids []dag.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.parent[id] = true
	}
}

func (l *diskLoad) sawDurable(n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maxDur = max(l.maxDur, n)
}

func (l *diskLoad) durable() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.maxDur
}

// stored counts the messages p answered 503 from its pipeline as acknowledged:
// they are stored now.
func (l *diskLoad) stored(p *proc) []dag.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := l.late[p]
	delete(l.late, p)
	l.acked = append(l.acked, ids...)
	return ids
}

func (l *diskLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *diskLoad) refusals() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status["503 storage_unavailable"]
}

func (l *diskLoad) ackedList() []dag.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]dag.ID(nil), l.acked...)
}

func (l *diskLoad) parentList() []dag.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]dag.ID, 0, len(l.parent))
	for id := range l.parent {
		ids = append(ids, id)
	}
	return ids
}

func (l *diskLoad) statusCounts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.status)
}

func (l *diskLoad) unexpected() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.odd
}

// waitAcked waits, at most 30 s, until n messages are acknowledged.
func (l *diskLoad) waitAcked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for l.ackCount() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages acknowledged in 30 s, want %d; answers %v", l.ackCount(), n, l.statusCounts())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// submission is the answer to a POST /api/v1/messages.
type submission struct {
	message    string
	status     int
	code       string
	retryAfter string
}

func submit(p *proc, b []byte) (submission, error) {
	resp, err := http.Post(p.url+"/api/v1/messages", "application/octet-stream", bytes.NewReader(b))
	if err != nil {
		return submission{}, err
	}
	defer resp.Body.Close()
	s := submission{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	if resp.StatusCode >= 300 {
		var e wire.ErrorBody
		if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
			return s, err
		}
		s.code, s.message = e.Error.Code, e.Error.Message
	}
	return s, nil
}

func post(t *testing.T, p *proc, b []byte) submission {
	t.Helper()
	s, err := submit(p, b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get returns the status and body of GET path on p.
func get(t *testing.T, p *proc, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(p.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// waitStatus waits, at most 30 s, until GET path answers status.
func waitStatus(t *testing.T, p *proc, path string, status int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, body := get(t, p, path)
		if st == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s after 30 s, want %d", path, st, body, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proc) info(t *testing.T) wire.Info {
	t.Helper()
	var in wire.Info
	if st, body := get(t, p, "/api/v1/info"); st != http.StatusOK || json.Unmarshal(body, &in) != nil {
		t.Fatalf("/api/v1/info: %d %s", st, body)
	}
	return in
}

// tips records the parents GET /api/v1/tips hands out.
func (p *proc) tips(t *testing.T, load *diskLoad) {
	t.Helper()
	var tips wire.Tips
	st, body := get(t, p, "/api/v1/tips?size=900")
	if st != http.StatusOK || json.Unmarshal(body, &tips) != nil || len(tips.Parents) != 2 {
		t.Fatalf("/api/v1/tips: %d %s", st, body)
	}
	for _, s := range tips.Parents {
		id, err := dag.ParseID(s)
		if err != nil {
			t.Fatalf("/api/v1/tips: %s", body)
		}
		load.addParents([]dag.ID{id})
	}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

func grepLines(b []byte, substr string) string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
