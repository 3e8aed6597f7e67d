package gossip

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip/internal/junk"
)

// The junk flood of TestJunkFloodCostsNoMemory, and the bounds it holds the
// process to. The bounds are over the process's own figures just before the
// flood (two connected transports and the test), and include the flood's
// own goroutines (one a socket).
const (
	floodFor     = 4 * time.Second
	floodRate    = 40_000 // datagrams/s, half junk Initials, half random bytes
	floodSockets = 64     // source ports
	// floodAfter is how long the bounds keep holding once the flood ends.
	floodAfter = 2 * time.Second
	// floodMinInitials is what the flood must at least have sent for the
	// test to mean anything (the machine may be busy).
	floodMinInitials = 20_000
	// floodMaxGoroutines bounds the goroutines added during and after the
	// flood: the flood's own, and what the transport may run for
	// DefaultMaxHandshakes handshakes in progress, with room to spare.
	floodMaxGoroutines = floodSockets + 4*DefaultMaxHandshakes + 64
	// floodMaxHeap bounds the growth of the heap in use (HeapInuse).
	floodMaxHeap = 32 << 20
)

// TestJunkFloodCostsNoMemory floods a listening transport's port from
// loopback with junk, random bytes and well-formed-looking QUIC Initials
// from many source ports, while it and a peer keep gossiping, and checks
// that the process's goroutines and heap stay bounded during and shortly
// after the flood, and that every message the two broadcast is delivered.
// A third transport dials in during the flood: it must get in too (when,
// it only logs: that depends on the machine's load).
func TestJunkFloodCostsNoMemory(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	ns := mesh(t, 2, func(i int, c *Config) { c.Open = i == 0 })
	a, b := ns[0], ns[1]
	connected(t, a, b)

	runtime.GC()
	baseG, baseHeap := runtime.NumGoroutine(), heapInuse()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Sample goroutines and the heap until told to stop.
	var maxG int
	var maxHeap uint64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			maxG = max(maxG, runtime.NumGoroutine())
			maxHeap = max(maxHeap, heapInuse())
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	})

	idC, keyC := identity(3) // the third transport, left out of the broadcasts
	// Both sides broadcast a tagged batch every 20 ms while the flood runs.
	var sentA, sentB [][]byte
	stopGossip := make(chan struct{})
	var gossiping sync.WaitGroup
	gossiping.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for round := 0; ; round++ {
			select {
			case <-stopGossip:
				return
			case <-tick.C:
			}
			ba, bb := msgs('a', round*10, 10, 200), msgs('b', round*10, 10, 200)
			if n := a.Broadcast(ba, keyC); n != 1 {
				t.Errorf("round %d: a's broadcast reached %d peers, want 1", round, n)
			}
			if n := b.Broadcast(bb, dag.PublicKey{}); n != 1 {
				t.Errorf("round %d: b's broadcast reached %d peers, want 1", round, n)
			}
			sentA, sentB = append(sentA, ba...), append(sentB, bb...)
		}
	})

	type result struct {
		st  junk.Stats
		err error
	}
	flooded := make(chan result, 1)
	go func() {
		st, err := junk.Flood(ctx, junk.Config{Target: a.Addr().String(), Rate: floodRate, Duration: floodFor, Sockets: floodSockets, Seed: seed})
		flooded <- result{st, err}
	}()
	time.Sleep(floodFor / 4) // the flood is under way
	c := start(t, Config{Identity: idC, Listen: "", Peers: []Peer{{Key: a.key, Addr: a.Addr().String()}}})
	r := <-flooded
	st, err := r.st, r.err
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the third transport, dialling from %v into the flood, was connected when it ended: %v (last error: %v)", floodFor/4, c.connectedTo(a.key), c.stats(a.key).LastError)
	t.Logf("flood: %d junk Initials and %d random datagrams in %v (%.0f/s), %d send errors",
		st.Initials, st.Random, st.Elapsed.Round(time.Millisecond), float64(st.Sent())/st.Elapsed.Seconds(), st.Errors)
	time.Sleep(floodAfter)
	close(stopGossip)
	gossiping.Wait()
	close(stopSampling)
	sampling.Wait()

	t.Logf("goroutines: %d before, at most %d during and after the flood (bound %d more); heap in use: %.1f MiB before, at most %.1f MiB (bound %d MiB more)",
		baseG, maxG, floodMaxGoroutines, mib(baseHeap), mib(maxHeap), floodMaxHeap>>20)
	if st.Initials < floodMinInitials {
		t.Fatalf("the flood sent only %d Initials (want at least %d): the machine is too busy for this test to mean anything", st.Initials, floodMinInitials)
	}
	if maxG > baseG+floodMaxGoroutines {
		t.Errorf("goroutines reached %d, over %d before the flood plus %d", maxG, baseG, floodMaxGoroutines)
	}
	if maxHeap > baseHeap+floodMaxHeap {
		t.Errorf("heap in use reached %.1f MiB, over %.1f MiB before the flood plus %d MiB", mib(maxHeap), mib(baseHeap), floodMaxHeap>>20)
	}

	waitFor(t, 15*time.Second, "every message delivered", func() bool {
		return b.h.count(a.key) == len(sentA) && a.h.count(b.key) == len(sentB)
	})
	checkSame(t, "a to b", b.h.received(a.key), sentA)
	checkSame(t, "b to a", a.h.received(b.key), sentB)

	waitFor(t, 15*time.Second, "the third transport connected", func() bool { return c.connectedTo(a.key) })
	batch := msgs('c', 0, 10, 200)
	if err := c.Send(a.key, batch); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the third transport's messages", func() bool { return a.h.count(c.key) == len(batch) })
	checkSame(t, "c to a", a.h.received(c.key), batch)
}

func checkSame(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: message %d differs", what, i)
		}
	}
}

func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
