package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

func testKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

// startNode runs a test node on dir (fast issuing, no fsync) until the
// test ends; mod may change its config.
func startNode(t *testing.T, dir string, mod func(*Config)) (*Node, func()) {
	t.Helper()
	cfg := Config{DataDir: dir, Identity: testKey(1), Network: "node-test", NoPoW: true,
		IssueInterval: 5 * time.Millisecond, Store: storage.Config{NoSync: true}}
	if mod != nil {
		mod(&cfg)
	}
	return runNode(t, cfg)
}

// runNode runs a node with cfg until the test or benchmark ends, or until
// the returned stop is called (it may be called more than once).
func runNode(tb testing.TB, cfg Config) (*Node, func()) {
	tb.Helper()
	n, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run: %v", err)
		}
	}
	tb.Cleanup(stop)
	return n, stop
}

// device builds a signed message on the node's tips.
func device(t *testing.T, n *Node, key ed25519.PrivateKey, seq uint64, payload string) *dag.Message {
	t.Helper()
	tips := n.Tips(len(payload))
	m := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: tips.Parents, Seq: seq,
		Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: []byte(payload)}
	m.Sign(key)
	if err := m.Solve(context.Background(), n.Params(), 1); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSubmitConfirmRestart(t *testing.T) {
	dir := t.TempDir()
	n, stop := startNode(t, dir, nil)
	dev := testKey(9)
	var ids []dag.ID
	for i := 0; i < 20; i++ {
		m := device(t, n, dev, uint64(i+1), "reading")
		errs := n.Submit(context.Background(), []*dag.Message{m})
		if errs[0] != nil {
			t.Fatalf("submit %d: %v", i, errs[0])
		}
		ids = append(ids, m.ID())
	}
	for _, id := range ids {
		waitConfirmed(t, n, id)
	}
	// A duplicate, a replayed sequence, a bad signature.
	m := device(t, n, dev, 100, "x")
	if errs := n.Submit(context.Background(), []*dag.Message{m}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if errs := n.Submit(context.Background(), []*dag.Message{m}); !errors.Is(errs[0], ErrDuplicate) {
		t.Fatalf("duplicate: %v", errs[0])
	}
	if errs := n.Submit(context.Background(), []*dag.Message{device(t, n, dev, 50, "old")}); !errors.Is(errs[0], ErrStaleSequence) {
		t.Fatalf("stale: %v", errs[0])
	}
	bad := device(t, n, dev, 101, "y")
	bad.Signature[3] ^= 1
	bad, _ = dag.Decode(bad.AppendEncoding(nil), 0)
	if errs := n.Submit(context.Background(), []*dag.Message{bad}); !errors.Is(errs[0], dag.ErrSignature) {
		t.Fatalf("bad signature: %v", errs[0])
	}
	stop()
	before := n.Info() // after Run returned: the last flush is in it

	n2, _ := startNode(t, dir, nil)
	after := n2.Info()
	if after.Messages != before.Messages {
		t.Fatalf("after restart %d messages, before %d", after.Messages, before.Messages)
	}
	for _, id := range ids {
		if mi, err := n2.Message(context.Background(), id); err != nil || !mi.Confirmed {
			t.Fatalf("after restart %s: %v %+v", id, err, mi)
		}
	}
	// It remembers the device's sequence: a message below the last one
	// stored is still stale.
	if errs := n2.Submit(context.Background(), []*dag.Message{device(t, n2, dev, 99, "old")}); !errors.Is(errs[0], ErrStaleSequence) {
		t.Fatalf("stale after restart: %v", errs[0])
	}
	// The restarted node goes on.
	m2 := device(t, n2, dev, 200, "again")
	if errs := n2.Submit(context.Background(), []*dag.Message{m2}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	waitConfirmed(t, n2, m2.ID())
}

func TestSecondNodeOnDirRefused(t *testing.T) {
	dir := t.TempDir()
	startNode(t, dir, nil)
	_, err := New(Config{DataDir: dir, Identity: testKey(2), Network: "node-test"})
	if !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("second node: %v", err)
	}
}

// TestOldStoreRefused: a data directory holding weft.db, the one-file
// store of format 3 and older, is refused with what to do, and left alone.
func TestOldStoreRefused(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "weft.db")
	if err := os.WriteFile(old, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{DataDir: dir, Identity: testKey(2), Network: "node-test"})
	if !errors.Is(err, storage.ErrFormat) || !strings.Contains(err.Error(), "move the data directory away") {
		t.Fatalf("New on a directory with weft.db: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a store was created beside weft.db: %v", err)
	}
}

func TestReady(t *testing.T) {
	n, err := New(Config{DataDir: t.TempDir(), Identity: testKey(1), Network: "node-test", NoPoW: true,
		Store: storage.Config{NoSync: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("before Run: Ready() = %v, want ErrNotReady", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for n.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := n.Ready(); err != nil {
		t.Fatalf("running alone: Ready() = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("after Run: Ready() = %v, want ErrNotReady", err)
	}
}

// TestRunWaitsForItsGoroutines: when Run returns, no goroutine the node
// started is left: each has an owner that waited for it.
func TestRunWaitsForItsGoroutines(t *testing.T) {
	addrs := freeAddrs(t, 1)
	n, stop := startNode(t, t.TempDir(), func(c *Config) { c.GossipListen = addrs[0] })
	dev := testKey(9)
	for i := uint64(1); i <= 5; i++ {
		m := device(t, n, dev, i, "reading")
		if err := submit1(n, m); err != nil {
			t.Fatal(err)
		}
		waitConfirmed(t, n, m.ID()) // the node issues messages of its own meanwhile
	}
	stop()
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	for _, g := range strings.Split(stacks, "\n\n") {
		// A test helper of an earlier test (a feed that its node's stop
		// ends) may still be on its way out: it was started in a _test.go
		// file, and it is not the node's.
		if _, created, ok := strings.Cut(g, "\ncreated by "); ok && strings.Contains(created, "_test.go:") {
			continue
		}
		if strings.Contains(g, "weft/node.(*") { // a method of the package, or a closure in one
			t.Errorf("a goroutine of the node outlived Run:\n%s", g)
		}
	}
}

// TestCommitsBeyondTheStoreQueue: with a store queue of one Write, the
// loop has more commits to hand over than the store holds; every
// submission is still answered, stored (the loop settles a result itself
// before it submits past its bound, so the writer never waits on it).
func TestCommitsBeyondTheStoreQueue(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) {
		c.Store = storage.Config{QueueLen: 1} // and fsync on: commits are slow beside the loop
	})
	const devices, each = 16, 25
	var msgs [devices][]*dag.Message
	for d := range msgs {
		key := testKey(byte(20 + d))
		for i := 0; i < each; i++ {
			msgs[d] = append(msgs[d], device(t, n, key, uint64(i+1), fmt.Sprintf("d%d m%d", d, i)))
		}
	}
	errs := make(chan error, devices*each)
	for d := range msgs {
		go func() { // each device in order, the devices at once
			for _, m := range msgs[d] {
				errs <- submit1(n, m)
			}
		}()
	}
	for k := 0; k < devices*each; k++ {
		if err := <-errs; err != nil {
			t.Fatalf("submission %d: %v", k, err)
		}
	}
	for d := range msgs {
		for _, m := range msgs[d] {
			if _, err := n.Raw(m.ID()); err != nil {
				t.Fatalf("answered stored, not in the store: %v", err)
			}
		}
	}
}
