package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
	"github.com/weftnet/weft/internal/loopback"
	"github.com/weftnet/weft/storage"
)

// freeAddrs returns n UDP addresses on loopback that were free a moment ago.
func freeAddrs(t testing.TB, n int) []string {
	addrs, err := loopback.FreeAddrs("udp", n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// mesh describes a full mesh on addrs: node i has key testKey(keyBase+i);
// every node is a validator of weight 1; peersOf[i] lists every node but i.
func mesh(addrs []string, keyBase int) (vals []dag.Validator, peersOf [][]gossip.Peer) {
	var peers []gossip.Peer
	for i, addr := range addrs {
		var pk dag.PublicKey
		copy(pk[:], testKey(byte(keyBase+i)).Public().(ed25519.PublicKey))
		vals = append(vals, dag.Validator{Key: pk, Weight: 1})
		peers = append(peers, gossip.Peer{Key: pk, Addr: addr})
	}
	for i := range addrs {
		var others []gossip.Peer
		for j, p := range peers {
			if j != i {
				others = append(others, p)
			}
		}
		peersOf = append(peersOf, others)
	}
	return vals, peersOf
}

type testNet struct {
	nodes []*Node
	stops []func()
	dirs  []string
	cfgs  []Config
}

// startNetwork runs n nodes, all validators, peered in a full mesh over
// QUIC on loopback.
func startNetwork(t *testing.T, n int, powBase int) *testNet {
	addrs := freeAddrs(t, n)
	vals, peersOf := mesh(addrs, 100)
	tn := &testNet{}
	for i := 0; i < n; i++ {
		others := peersOf[i]
		// The genesis of "net-test-pow" has 1 leading zero bit: it fails
		// proof of work at base 4, so a node that sent it would be caught.
		network := "net-test"
		if powBase > 0 {
			network = "net-test-pow"
		}
		cfg := Config{DataDir: t.TempDir(), Identity: testKey(byte(100 + i)), Network: network,
			NoPoW: powBase == 0, PoWBase: powBase,
			Validators: vals, GossipListen: addrs[i], Peers: others, IssueInterval: 10 * time.Millisecond,
			SyncInterval: time.Second, Store: storage.Config{NoSync: true}}
		tn.cfgs = append(tn.cfgs, cfg)
		tn.dirs = append(tn.dirs, cfg.DataDir)
		nd, stop := runNode(t, cfg)
		tn.nodes = append(tn.nodes, nd)
		tn.stops = append(tn.stops, stop)
	}
	return tn
}

// ledger reads what a node stored: every ID and whether it is confirmed.
func ledger(t *testing.T, n *Node) (all, confirmed map[dag.ID]bool) {
	all, confirmed = map[dag.ID]bool{}, map[dag.ID]bool{}
	err := n.store.Range(0, func(e storage.Entry) error {
		all[e.ID] = true
		if e.Confirmed {
			confirmed[e.ID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all, confirmed
}

func sameSet(a, b map[dag.ID]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// converge waits until every node stores the same messages, has confirmed
// the same ones, and has confirmed every id in want. It looks again each
// time a node publishes an event, and fails after within.
func converge(t *testing.T, tn *testNet, want []dag.ID, within time.Duration) {
	t.Helper()
	ch := watchChanges(t, tn.nodes) // before the first look: no change goes unseen
	defer ch.stop()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		ok, why := converged(t, tn, want)
		if ok {
			return
		}
		select {
		case <-ch.C:
		case <-deadline.C:
			t.Fatalf("no convergence after %v: %s", within, why)
		}
	}
}

// converged reports whether the nodes agree and have confirmed want, or
// why not.
func converged(t *testing.T, tn *testNet, want []dag.ID) (bool, string) {
	all0, conf0 := ledger(t, tn.nodes[0])
	for _, id := range want {
		if !conf0[id] {
			return false, fmt.Sprintf("node 0 has not confirmed %s", id)
		}
	}
	for i, nd := range tn.nodes[1:] {
		all, conf := ledger(t, nd)
		if !sameSet(all, all0) {
			return false, fmt.Sprintf("node %d stores %d messages, node 0 %d", i+1, len(all), len(all0))
		}
		if !sameSet(conf, conf0) {
			return false, fmt.Sprintf("node %d confirmed %d messages, node 0 %d", i+1, len(conf), len(conf0))
		}
	}
	return true, ""
}

func testNetwork(t *testing.T, size, msgs, powBase int) {
	tn := startNetwork(t, size, powBase)
	dev := testKey(7)
	var ids []dag.ID
	for i := 0; i < msgs; i++ {
		nd := tn.nodes[i%size]
		m := device(t, nd, dev, uint64(i+1), fmt.Sprintf("reading %d", i))
		if err := nd.Submit(context.Background(), []*dag.Message{m})[0]; err != nil {
			t.Fatalf("message %d to node %d: %v", i, i%size, err)
		}
		ids = append(ids, m.ID())
	}
	converge(t, tn, ids, 30*time.Second)
	_, conf := ledger(t, tn.nodes[0])
	t.Logf("%d nodes: %d messages submitted round-robin, %d confirmed on every node", size, msgs, len(conf))
	for i, nd := range tn.nodes {
		for _, p := range nd.Peers() {
			if !p.Connected || p.Invalid != 0 {
				t.Errorf("node %d: peer %s connected=%v invalid=%d", i, p.Key, p.Connected, p.Invalid)
			}
		}
	}
}

// Proof of work on: the genesis, which has none, must never travel.
func TestNetwork3(t *testing.T) { testNetwork(t, 3, 300, 4) }
func TestNetwork5(t *testing.T) { testNetwork(t, 5, 300, 0) }

// TestCatchUp: a node stopped while the others go on, and a node that joins
// with an empty store, both get everything through catch-up sync.
func TestCatchUp(t *testing.T) {
	tn := startNetwork(t, 3, 4)
	dev := testKey(8)
	seq := uint64(0)
	send := func(to *Node, k int) []dag.ID {
		var ids []dag.ID
		for i := 0; i < k; i++ {
			seq++
			m := device(t, to, dev, seq, fmt.Sprintf("m%d", seq))
			if err := to.Submit(context.Background(), []*dag.Message{m})[0]; err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID())
		}
		return ids
	}
	ids := send(tn.nodes[0], 100)
	converge(t, tn, ids, 30*time.Second)

	// Node 2 goes away; 2 of 3 validators still confirm.
	tn.stops[2]()
	ids = append(ids, send(tn.nodes[1], 500)...)

	// Node 2 comes back on its store; it missed 500 messages. It is ready
	// once it has caught up with a peer.
	cfg := tn.cfgs[2]
	back, _ := runNode(t, cfg)
	tn.nodes[2] = back
	converge(t, tn, ids, 60*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for back.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := back.Ready(); err != nil {
		t.Fatalf("caught up, Ready() = %v", err)
	}
}

// TestReadyWaitsForAPeer: a node with peers is not ready until it has
// caught up with one of them.
func TestReadyWaitsForAPeer(t *testing.T) {
	addrs := freeAddrs(t, 2)
	vals, peersOf := mesh(addrs, 100)
	// Only node 0 runs: its one peer never answers.
	n, _ := runNode(t, Config{DataDir: t.TempDir(), Identity: testKey(100), Network: "node-test", NoPoW: true,
		Validators: vals, GossipListen: addrs[0], Peers: peersOf[0], Store: storage.Config{NoSync: true}})
	deadline := time.Now().Add(5 * time.Second)
	for !n.running.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	err := n.Ready()
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "caught up") {
		t.Fatalf("peer away: Ready() = %v, want not caught up", err)
	}
}

// TestPageCopiesCheckedOnce: a catch-up page's copy of a message that is
// already in the pipeline is not handed to the verifiers again; the page
// waits for the first copy's job instead.
func TestPageCopiesCheckedOnce(t *testing.T) {
	addrs := freeAddrs(t, 1)
	n, _ := startNode(t, t.TempDir(), func(c *Config) { c.GossipListen = addrs[0] })
	dev := testKey(9)
	parent := device(t, n, dev, 1, "parent")
	// A child of a parent the node does not have yet stays in the pipeline
	// (the core holds it for its parent) until the parent comes.
	child := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: [2]dag.ID{parent.ID(), parent.ID()},
		Seq: 2, Timestamp: parent.Timestamp + 1, Payload: []byte("child")}
	child.Sign(dev)
	peerA, peerB := dag.PublicKey{1}, dag.PublicKey{2}
	first, others := n.gossip.fromPeer(peerA, [][]byte{child.Bytes()}, false)
	if len(first) != 1 || len(others) != 0 {
		t.Fatalf("first copy: %d jobs, %d others; want 1 job", len(first), len(others))
	}
	in := testutil.ToFloat64(n.m.in.WithLabelValues("gossip"))
	again, others := n.gossip.fromPeer(peerB, [][]byte{child.Bytes()}, false)
	if len(again) != 0 || len(others) != 1 || others[0] != first[0] {
		t.Fatalf("second copy: %d jobs, %d others; want none, and the first copy's job to wait for", len(again), len(others))
	}
	if got := testutil.ToFloat64(n.m.in.WithLabelValues("gossip")); got != in {
		t.Errorf("the second copy went into the pipeline: %v messages in, %v before", got, in)
	}
	// The parent comes; the first copy's job ends with the child stored.
	if jobs, _ := n.gossip.fromPeer(peerA, [][]byte{parent.Bytes()}, false); len(jobs) != 1 {
		t.Fatalf("parent: %d jobs", len(jobs))
	}
	if errs := first[0].wait(context.Background(), 10*time.Second, errNotStoredInTime); errs[0] != nil {
		t.Fatalf("child: %v", errs[0])
	}
	if _, err := n.Message(context.Background(), child.ID()); err != nil {
		t.Fatalf("child not stored: %v", err)
	}
	// Settled, it leaves the in-flight set: a later copy goes in again (and
	// is dropped as a duplicate by a lookup).
	if jobs, _ := n.gossip.fromPeer(peerB, [][]byte{child.Bytes()}, false); len(jobs) != 1 {
		t.Errorf("a copy after the first settled: %d jobs, want 1", len(jobs))
	}
}
