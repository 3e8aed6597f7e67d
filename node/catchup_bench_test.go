package node

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weftnet/weft/dag"
)

// BenchmarkCatchUp measures how fast a node with an empty store catches up
// with a network that holds b.N messages (100-byte payloads, 1000 devices,
// signatures checked, fsync on), through catch-up sync over QUIC on
// loopback: from one peer, and from two peers that hold the same messages
// (each in its own log order), as a node joining a network does. Run:
// go test -run XXX -bench CatchUp -benchtime 1000000x ./node
func BenchmarkCatchUp(b *testing.B) {
	for _, peers := range []int{1, 2} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) { benchCatchUp(b, peers) })
	}
}

func benchCatchUp(b *testing.B, peers int) {
	size := peers + 1 // the last node is the one catching up
	addrs := freeAddrs(b, size)
	_, peersOf := mesh(addrs, 200)
	var va dag.PublicKey
	copy(va[:], testKey(200).Public().(ed25519.PublicKey))
	vals := []dag.Validator{{Key: va, Weight: 1}} // the first node alone
	mk := func(i int) (*Node, func()) {
		return runNode(b, Config{DataDir: b.TempDir(), Identity: testKey(byte(200 + i)), Network: "catchup", NoPoW: true,
			Validators: vals, GossipListen: addrs[i], Peers: peersOf[i]})
	}
	waitFor := func(n *Node, want uint64, what string) time.Duration {
		start := time.Now()
		for n.store.NextPos() < want {
			time.Sleep(10 * time.Millisecond)
			if time.Since(start) > 15*time.Minute {
				b.Fatalf("%s: %d of %d in 15 minutes", what, n.store.NextPos(), want)
			}
		}
		return time.Since(start)
	}
	// Fill the first node, alone, in batches built on its tips.
	a, stopA := mk(0)
	defer stopA()
	devs := make([]ed25519.PrivateKey, 1000)
	for i := range devs {
		seed := make([]byte, 32)
		binary.BigEndian.PutUint32(seed, uint32(5000+i))
		devs[i] = ed25519.NewKeyFromSeed(seed)
	}
	payload := make([]byte, 100)
	for done := 0; done < b.N; {
		k := min(2048, b.N-done)
		tips := a.Tips(len(payload))
		batch := make([]*dag.Message, k)
		for i := range batch {
			m := &dag.Message{Version: dag.Version, Network: a.Params().Network, Parents: tips.Parents,
				Seq: uint64(done + i + 1), Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: payload}
			m.Sign(devs[(done+i)%len(devs)])
			batch[i] = m
		}
		for i, err := range a.Submit(context.Background(), batch) {
			if err != nil {
				b.Fatalf("fill %d: %v", done+i, err)
			}
		}
		done += k
	}
	time.Sleep(200 * time.Millisecond) // let the last own messages land
	want := a.store.NextPos()
	// The other peers catch up first, untimed.
	for i := 1; i < peers; i++ {
		n, stop := mk(i)
		defer stop()
		waitFor(n, want, fmt.Sprintf("peer %d", i))
	}

	b.ResetTimer()
	start := time.Now()
	nb, stopB := mk(size - 1)
	defer stopB()
	waitFor(nb, want, "the new node")
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(want)/el.Seconds(), "msgs/s")
	b.ReportMetric(el.Seconds(), "s")
	// Messages handed to the pipeline per message: above 1 when copies from
	// several peers both go in (a copy of a stored message costs a lookup;
	// two in flight at once cost two signature checks).
	b.ReportMetric(testutil.ToFloat64(nb.m.in.WithLabelValues("gossip"))/float64(want), "in/msg")
}
