package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/msggen"
)

// benchNetwork runs size nodes, all validators, full mesh, fsync on.
func benchNetwork(b *testing.B, size int, network string) []*Node {
	addrs := freeAddrs(b, size)
	vals, peersOf := mesh(addrs, 150)
	var nodes []*Node
	for i := 0; i < size; i++ {
		n, _ := runNode(b, Config{DataDir: b.TempDir(), Identity: testKey(byte(150 + i)), Network: network, NoPoW: true,
			Validators: vals, GossipListen: addrs[i], Peers: peersOf[i]})
		nodes = append(nodes, n)
	}
	// Wait for the mesh.
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			up := 0
			for _, p := range n.Peers() {
				if p.Connected {
					up++
				}
			}
			if up == size-1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("mesh did not form")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nodes
}

// confirmWatch follows a node's events and records when each of want is
// confirmed there.
type confirmWatch struct {
	mu   sync.Mutex
	at   map[dag.ID]time.Time
	want map[dag.ID]bool
	done chan struct{}
}

func watchConfirmed(b testing.TB, n *Node, want map[dag.ID]bool) *confirmWatch {
	w := &confirmWatch{at: make(map[dag.ID]time.Time, len(want)), want: want, done: make(chan struct{})}
	f := follow(b, n)
	go func() {
		defer f.close()
		for e := range f.C {
			if e.Kind != EventConfirmed || !w.want[e.ID] {
				continue
			}
			w.mu.Lock()
			if _, ok := w.at[e.ID]; !ok {
				w.at[e.ID] = time.Now()
			}
			full := len(w.at) == len(w.want)
			w.mu.Unlock()
			if full {
				close(w.done)
				return
			}
		}
	}()
	return w
}

// BenchmarkNetwork measures a network of 3 nodes on this machine: messages
// submitted round-robin to the nodes in batches, confirmed on every node.
// "max" offers as fast as the nodes take; "rate=N" offers N msgs/s and
// reports the confirmation latency (submission to confirmed on the node
// the message was submitted to). Every node checks every signature, and
// fsyncs. Run: go test -run XXX -bench Network -benchtime 100000x ./node
func BenchmarkNetwork(b *testing.B) {
	for _, rate := range []int{0, 5000} {
		name := "max"
		if rate > 0 {
			name = fmt.Sprintf("rate=%d", rate)
		}
		b.Run(name, func(b *testing.B) {
			network := "bench-net-" + name
			msgs, err := msggen.DAG(dag.Params{Network: dag.NetworkIDFromName(network), MaxPayload: dag.DefaultMaxPayload}, b.N, 100, 3)
			if err != nil {
				b.Fatal(err)
			}
			nodes := benchNetwork(b, 3, network)
			want := make(map[dag.ID]bool, len(msgs))
			for _, m := range msgs {
				want[m.ID()] = true
			}
			var watches []*confirmWatch
			for _, n := range nodes {
				watches = append(watches, watchConfirmed(b, n, want))
			}
			const batch = 256
			sent := make([]time.Time, len(msgs))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			work := make(chan int)
			for w := 0; w < 6; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						chunk := msgs[i:min(i+batch, len(msgs))]
						for k := range chunk {
							sent[i+k] = time.Now()
						}
						n := nodes[(i/batch)%len(nodes)]
						for _, err := range n.Submit(context.Background(), chunk) {
							if err != nil {
								b.Error(err)
								return
							}
						}
					}
				}()
			}
			for i := 0; i < len(msgs); i += batch {
				if rate > 0 {
					if d := time.Until(start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))); d > 0 {
						time.Sleep(d)
					}
				}
				work <- i
			}
			close(work)
			wg.Wait()
			for i, w := range watches {
				select {
				case <-w.done:
				case <-time.After(5 * time.Minute):
					b.Fatalf("node %d confirmed %d of %d", i, len(w.at), len(want))
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(len(msgs))/el.Seconds(), "confirmed/s")
			// Latency on the node each message was submitted to.
			lat := make([]time.Duration, 0, len(msgs))
			for i, m := range msgs {
				w := watches[(i/batch)%len(nodes)]
				lat = append(lat, w.at[m.ID()].Sub(sent[i]))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
		})
	}
}
