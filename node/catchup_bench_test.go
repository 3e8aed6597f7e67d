package node

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
)

// BenchmarkCatchUp measures how fast a node with an empty store catches up
// with a peer that holds b.N messages (100-byte payloads, 1000 devices,
// signatures checked, fsync on), through catch-up sync over QUIC on
// loopback. Run: go test -run XXX -bench CatchUp -benchtime 1000000x ./node
func BenchmarkCatchUp(b *testing.B) {
	addrs := freeAddrs(&testing.T{}, 2)
	ka, kb := testKey(200), testKey(201)
	var pa, pb dag.PublicKey
	copy(pa[:], ka.Public().(ed25519.PublicKey))
	copy(pb[:], kb.Public().(ed25519.PublicKey))
	vals := []dag.Validator{{Key: pa, Weight: 1}}
	mk := func(dir string, key ed25519.PrivateKey, listen string, peers []gossip.Peer) (*Node, context.CancelFunc, chan error) {
		n, err := New(Config{DataDir: dir, Identity: key, Network: "catchup", NoPoW: true, Validators: vals,
			GossipListen: listen, Peers: peers})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		return n, cancel, done
	}
	// Fill node A, alone, in batches built on its tips.
	a, stopA, doneA := mk(b.TempDir(), ka, addrs[0], []gossip.Peer{{Key: pb, Addr: addrs[1]}})
	defer func() { stopA(); <-doneA }()
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

	b.ResetTimer()
	start := time.Now()
	nb, stopB, doneB := mk(b.TempDir(), kb, addrs[1], []gossip.Peer{{Key: pa, Addr: addrs[0]}})
	defer func() { stopB(); <-doneB }()
	for nb.store.NextPos() < want {
		time.Sleep(10 * time.Millisecond)
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("caught up %d of %d in 10 minutes", nb.store.NextPos(), want)
		}
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(want)/el.Seconds(), "msgs/s")
	b.ReportMetric(el.Seconds(), "s")
}
