package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/proof"
	"github.com/weftnet/weft/storage"
)

// waitProof waits until n serves the proof of id, woken each time its
// keeper keeps a checkpoint.
func waitProof(t *testing.T, n *Node, id dag.ID) *proof.Document {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		kept := n.keptSignal() // before the look: a checkpoint kept after it wakes us
		doc, err := n.Proof(id)
		if err == nil {
			return doc
		}
		if !errors.Is(err, ErrNoProof) {
			t.Fatalf("proof of %s: %v", id, err)
		}
		select {
		case <-kept:
		case <-deadline.C:
			t.Fatalf("no proof of %s within 15 s: %v", id, err)
		}
	}
}

func trustOf(n *Node) proof.Trust {
	return proof.Trust{Network: n.Params().Network, Validators: n.cfg.Validators}
}

func submitReadings(t *testing.T, n *Node, dev int, k int) []*dag.Message {
	t.Helper()
	key := testKey(byte(dev))
	var msgs []*dag.Message
	for i := range k {
		m := device(t, n, key, uint64(time.Now().UnixNano()), fmt.Sprintf(`{"reading":%d}`, i))
		if err := n.Submit(context.Background(), []*dag.Message{m})[0]; err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// TestProofOneNode: a node alone is its own validator set; its checkpoints
// give every confirmed message a proof that verifies offline, for a stored
// message and for one given whole, before and after a restart; the
// checkpoints after the restart chain on and cover exactly what the
// restarted node rebuilds.
func TestProofOneNode(t *testing.T) {
	dir := t.TempDir()
	mod := func(c *Config) { c.CheckpointInterval = 50 * time.Millisecond }
	n, stop := startNode(t, dir, mod)
	msgs := submitReadings(t, n, 9, 40)
	for _, m := range msgs {
		doc := waitProof(t, n, m.ID())
		res, err := proof.Verify(doc, trustOf(n))
		if err != nil {
			t.Fatalf("proof of %s: %v", m.ID(), err)
		}
		if res.Weight != 1 || len(doc.Checkpoints) != 1 {
			t.Fatalf("proof of %s: weight %d, %d checkpoints", m.ID(), res.Weight, len(doc.Checkpoints))
		}
		byRaw, err := n.ProofFor(m.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if byRaw.Checkpoints[0].ID != doc.Checkpoints[0].ID || byRaw.Checkpoints[0].Leaf != doc.Checkpoints[0].Leaf {
			t.Fatalf("ProofFor and Proof disagree for %s", m.ID())
		}
	}
	first := lastCheckpoint(t, n)
	stop()

	n2, _ := startNode(t, dir, mod)
	if got := lastCheckpoint(t, n2); got != first {
		t.Fatalf("after restart the last checkpoint is %+v, before %+v", got, first)
	}
	if _, err := proof.Verify(waitProof(t, n2, msgs[0].ID()), trustOf(n2)); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	more := submitReadings(t, n2, 10, 20)
	for _, m := range more {
		if _, err := proof.Verify(waitProof(t, n2, m.ID()), trustOf(n2)); err != nil {
			t.Fatalf("after restart, new message: %v", err)
		}
	}
	if got := lastCheckpoint(t, n2); got.Index <= first.Index {
		t.Fatalf("checkpoints after restart start at index %d, the last before was %d", got.Index, first.Index)
	}
	if u := testutil.ToFloat64(n2.m.checkpoints.WithLabelValues("unmatched")); u != 0 {
		t.Fatalf("%v checkpoints not rebuilt after the restart", u)
	}
	// A message of another network, or bytes that are none, are refused.
	if _, err := n2.ProofFor([]byte("no message")); !errors.Is(err, dag.ErrMalformed) {
		t.Fatalf("ProofFor(garbage): %v", err)
	}
	if _, err := n2.Proof(dag.ID{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Proof(unknown): %v", err)
	}
}

// TestUnmatchedRoot: a kept checkpoint whose leaves do not have its
// payload's root (one leaf changed, the count the same) gives no proof; it
// is deleted and counted once, when the first proof is built from it.
func TestUnmatchedRoot(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) { c.CheckpointInterval = 50 * time.Millisecond })
	m := submitReadings(t, n, 9, 3)[1]
	waitProof(t, n, m.ID())
	e, err := n.store.Get(m.ID())
	if err != nil {
		t.Fatal(err)
	}
	err = n.store.StateUpdate(func(tx *storage.StateTx) error {
		kc, _, ok, err := n.covering(tx, n.self, m, e.Pos)
		if err != nil || !ok {
			return fmt.Errorf("no kept checkpoint covers %s: %v", m.ID(), err)
		}
		// The message's own leaf stays, so that the search still finds
		// it; another becomes the genesis, which no checkpoint covers.
		changed := false
		for i, p := range kc.pos {
			if p != e.Pos && p != 0 {
				kc.pos[i], changed = 0, true
				break
			}
		}
		if !changed {
			return fmt.Errorf("the checkpoint covers %s alone", m.ID())
		}
		key := checkpointKey(kc.msg.Issuer, kc.msg.Timestamp, kc.msg.ID())
		return tx.Put(stateCheckpoints, key[:], keptValue(dag.Checkpoint{Msg: kc.msg, Covered: kc.pos}))
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := n.Proof(m.ID()); !errors.Is(err, ErrNoProof) {
			t.Fatalf("proof from a checkpoint whose leaves do not have its root: %v", err)
		}
	}
	if u := testutil.ToFloat64(n.m.checkpoints.WithLabelValues("unmatched")); u != 1 {
		t.Fatalf("unmatched %v, want 1", u)
	}
	n.store.StateView(func(tx *storage.StateTx) error {
		if _, _, ok, _ := n.covering(tx, n.self, m, e.Pos); ok {
			t.Error("the unmatched checkpoint is still kept")
		}
		return nil
	})
}

// lastCheckpoint returns the node's own newest checkpoint, read on its loop.
func lastCheckpoint(t *testing.T, n *Node) proof.Checkpoint {
	var c proof.Checkpoint
	if err := n.query(context.Background(), func(*dag.Core) { c = n.ckpt.last }); err != nil {
		t.Fatal(err)
	}
	if c.Index == 0 {
		t.Fatal("no checkpoint yet")
	}
	return c
}

// TestNoProofYet: a message no checkpoint covers gets ErrNoProof with a
// Retry-After, not a proof.
func TestNoProofYet(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) { c.CheckpointInterval = time.Hour; c.CheckpointEvery = 1 << 30 })
	first := submitReadings(t, n, 9, 1)[0]
	waitProof(t, n, first.ID()) // the first checkpoint comes at once
	later := submitReadings(t, n, 9, 1)[0]
	waitConfirmed(t, n, later.ID())
	_, err := n.Proof(later.ID())
	var np *NoProofError
	if !errors.As(err, &np) || np.Weight != 0 || np.Need != 1 || np.RetryAfter <= 0 {
		t.Fatalf("Proof of a message no checkpoint covers: %v", err)
	}
}

// TestProofNetwork: four validators on loopback; each node serves a proof
// of the same message, built from the checkpoints of all four, and each
// verifies offline.
func TestProofNetwork(t *testing.T) {
	tn := startNetwork(t, 4, 0)
	dev := testKey(7)
	var ids []dag.ID
	for i := range 40 {
		nd := tn.nodes[i%4]
		m := device(t, nd, dev, uint64(i+1), fmt.Sprintf("reading %d", i))
		if err := nd.Submit(context.Background(), []*dag.Message{m})[0]; err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID())
	}
	converge(t, tn, ids, 30*time.Second)
	for _, id := range []dag.ID{ids[0], ids[17], ids[39]} {
		for i, nd := range tn.nodes {
			doc := waitProof(t, nd, id)
			res, err := proof.Verify(doc, trustOf(nd))
			if err != nil {
				t.Fatalf("node %d, proof of %s: %v", i, id, err)
			}
			if res.Weight < res.Need {
				t.Fatalf("node %d: weight %d of %d", i, res.Weight, res.Need)
			}
		}
	}
	for i, nd := range tn.nodes {
		if u := testutil.ToFloat64(nd.m.checkpoints.WithLabelValues("unmatched")); u != 0 {
			t.Errorf("node %d: %v checkpoints not rebuilt", i, u)
		}
		t.Logf("node %d kept %v checkpoints", i, testutil.ToFloat64(nd.m.checkpoints.WithLabelValues("kept")))
	}
}

// TestProofRetain: checkpoints past proof-retain are deleted, and their
// proofs go with them.
func TestProofRetain(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) {
		c.CheckpointInterval = 20 * time.Millisecond
		c.ProofRetain = time.Nanosecond
	})
	m := submitReadings(t, n, 9, 5)[4]
	waitProof(t, n, m.ID())
	if err := n.pruneCheckpoints(); err != nil {
		t.Fatal(err)
	}
	if p := testutil.ToFloat64(n.m.checkpoints.WithLabelValues("pruned")); p == 0 {
		t.Fatal("nothing pruned")
	}
	if _, err := n.Proof(m.ID()); !errors.Is(err, ErrNoProof) {
		t.Fatalf("proof after its checkpoints were pruned: %v", err)
	}
}

// TestKeptIDsForgotten: with proof-retain, the ID files of the epochs
// retention dropped stay while kept checkpoints name their positions (the
// proof of a dropped message is served from them), and go once those
// checkpoints are pruned.
func TestKeptIDsForgotten(t *testing.T) {
	dir := t.TempDir()
	n, _ := startNode(t, dir, func(c *Config) {
		c.CheckpointInterval = 20 * time.Millisecond
		c.ProofRetain = time.Hour
		c.Store = storage.Config{NoSync: true, EpochRecords: 100, EpochAge: time.Hour, Retain: time.Millisecond}
	})
	kept := func() int {
		files, err := filepath.Glob(filepath.Join(dir, "store", "ids-*.ids"))
		if err != nil {
			t.Fatal(err)
		}
		return len(files)
	}
	m := submitReadings(t, n, 9, 1)[0]
	waitProof(t, n, m.ID())
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := n.Raw(m.ID()); errors.Is(err, ErrPruned) || errors.Is(err, ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the message was not dropped: %+v", n.History())
		}
		submitReadings(t, n, 9, 20)
	}
	if kept() == 0 {
		t.Fatal("no ID file kept after the drops")
	}
	// Pruned to the hour: every checkpoint stays, and so do the files.
	if err := n.pruneCheckpoints(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.ProofFor(m.Bytes()); err != nil {
		t.Fatalf("proof of the dropped message: %v", err)
	}
	before := kept()
	if err := n.pruneKept(math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if at, err := n.oldestLeaf(math.MaxInt64); err != nil || at != math.MaxInt64 {
		t.Fatalf("oldest leaf with no checkpoint kept: %d, %v", at, err)
	}
	if _, err := n.store.ForgetIDs(math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if kept() != 0 {
		t.Fatalf("%d of %d ID files left once no checkpoint names them", kept(), before)
	}
	if _, err := n.ProofFor(m.Bytes()); !errors.Is(err, ErrNoProof) {
		t.Fatalf("proof after its material went: %v", err)
	}
}

// FuzzParseKept: a kept checkpoint read back from the state is checked
// whole; anything else is ErrCorrupt, never a panic, a wrong leaf count or
// positions out of order.
func FuzzParseKept(f *testing.F) {
	m := &dag.Message{Version: dag.Version, Seq: 1, Timestamp: 10,
		Payload: proof.Checkpoint{Index: 1, From: 5, Count: 2, Root: proof.Hash{1}}.Encode()}
	good := keptValue(dag.Checkpoint{Msg: m, Covered: []uint64{300, 7}})
	f.Add(good)
	f.Add(append(binary.BigEndian.AppendUint16(nil, uint16(m.Size())), m.Bytes()...)) // format 1
	f.Add(good[:len(good)-1])
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseKept(b, dag.MaxPayload)
		if err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(k.pos) != int(k.cp.Count) {
			t.Fatalf("%d leaves for a count of %d", len(k.pos), k.cp.Count)
		}
		for i := 1; i < len(k.pos); i++ {
			if k.pos[i] <= k.pos[i-1] {
				t.Fatalf("leaves' positions %v do not ascend", k.pos)
			}
		}
	})
}

// TestKeeperBounded: checkpoints handed to a keeper that does not keep up
// are dropped, and counted, once 16 updates or the bytes of leaves wait.
func TestKeeperBounded(t *testing.T) {
	n, err := New(Config{DataDir: t.TempDir(), Identity: testKey(1), Network: "node-test", NoPoW: true, Store: storage.Config{NoSync: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.store.Close()
	other := &dag.Message{Version: dag.Version, Issuer: dag.PublicKey{9}}
	cp := func(leaves int) []dag.Checkpoint {
		return []dag.Checkpoint{{Msg: other, Covered: make([]uint64, leaves)}}
	}
	dropped := func() float64 { return testutil.ToFloat64(n.m.checkpoints.WithLabelValues("dropped")) }
	// Not running: nothing drains the queue. 16 updates wait, the 17th is dropped.
	for range 16 {
		n.handCheckpoints(cp(1))
	}
	n.handCheckpoints(cp(1))
	if dropped() != 1 || n.keeping.Load() != 16*posBytes {
		t.Fatalf("after 17 updates: %v dropped, %d bytes waiting", dropped(), n.keeping.Load())
	}
	// Drain the queue as the keeper would, then bound the bytes.
	for range 16 {
		for _, c := range <-n.keepQ {
			n.keeping.Add(-int64(len(c.Covered)) * posBytes)
		}
	}
	n.keepLimit = 100 * posBytes
	n.handCheckpoints(cp(60))
	n.handCheckpoints(cp(60)) // 120 leaves > 100: dropped
	if dropped() != 2 || n.keeping.Load() != 60*posBytes {
		t.Fatalf("over the byte bound: %v dropped, %d bytes waiting", dropped(), n.keeping.Load())
	}
}

// TestProofAfterBurst: fifty messages on the same parents, all tips at
// once, then quiet. The validator's messages approve them two at a time;
// because they chain, the checkpoints after them cover every one, and
// each gets a proof. (With a random tip as a checkpoint's parent instead,
// most of the burst stayed uncovered once the traffic stopped.)
func TestProofAfterBurst(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) { c.CheckpointInterval = 20 * time.Millisecond })
	key := testKey(12)
	tips := n.Tips(8)
	var burst []*dag.Message
	for i := range 50 {
		m := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: tips.Parents, Seq: uint64(i + 1),
			Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: []byte(fmt.Sprintf("burst %02d", i))}
		m.Sign(key)
		burst = append(burst, m)
	}
	for i, err := range n.Submit(context.Background(), burst) {
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	for _, m := range burst {
		if _, err := proof.Verify(waitProof(t, n, m.ID()), trustOf(n)); err != nil {
			t.Fatal(err)
		}
	}
}
