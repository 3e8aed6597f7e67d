package mqtt

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/internal/mqtttest"
	"github.com/weftnet/weft/node"
)

// BenchmarkEmbeddedSubmit measures submissions through the embedded broker:
// devices on their own connections, each publishing with QoS 1 and waiting
// for the PUBACK (after the commit, fsync on) before its next message.
func BenchmarkEmbeddedSubmit(b *testing.B) {
	for _, devices := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			br, err := New(Config{Network: network, Listen: "127.0.0.1:0"})
			if err != nil {
				b.Fatal(err)
			}
			n := startNode(b, br, func(cfg *node.Config) { cfg.Store.NoSync = false }) // fsync on
			if err := br.Start(n); err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			clients := make([]paho.Client, devices)
			keys := make([]ed25519.PrivateKey, devices)
			for i := range clients {
				clients[i] = paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + br.Addr()).SetClientID(fmt.Sprintf("bench-%d", i)))
				if tok := clients[i].Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					b.Fatal(tok.Error())
				}
				defer clients[i].Disconnect(0)
				keys[i] = key(byte(10 + i))
			}
			var wg sync.WaitGroup
			per := b.N/devices + 1
			b.ResetTimer()
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for s := 1; s <= per; s++ {
						m := message(n, keys[i], uint64(s), `{"t":21.5}`)
						if tok := clients[i].Publish(TopicsOf(network).Submit, 1, false, m.Bytes()); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
							b.Error(tok.Error())
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(per*devices)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkIngest measures what gateways that publish without waiting
// (QoS 1, many in flight; each gateway's messages built ahead on the tips
// of the start, so the tip pool grows wide: it measures intake, not
// confirmation) get through a real Mosquitto (with room for
// 1,000 messages in flight to the node) and through the embedded broker:
// msgs/s from the first publish until the node has stored them all.
func BenchmarkIngest(b *testing.B) {
	const gateways = 8
	for _, via := range []string{"mosquitto", "embedded"} {
		b.Run(via, func(b *testing.B) {
			n, addr := benchBridge(b, via, func(cfg *node.Config) { cfg.Store.NoSync = false })
			per := b.N/gateways + 1
			msgs := make([][][]byte, gateways)
			for g := range msgs {
				k := key(byte(100 + g))
				for s := 1; s <= per; s++ {
					msgs[g] = append(msgs[g], message(n, k, uint64(s), `{"t":21.5}`).Bytes())
				}
			}
			start := n.Info().Messages // for the report of a failure
			codes := map[string]int{}  // the answers, for the report of a failure
			var codesMu sync.Mutex
			watch := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("watch"))
			if tok := watch.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				b.Fatal(tok.Error())
			}
			defer watch.Disconnect(0)
			watch.Subscribe(TopicsOf(network).Result+"#", 0, func(_ paho.Client, m paho.Message) {
				var r wire.BatchResult
				json.Unmarshal(m.Payload(), &r)
				code := fmt.Sprint(r.Status)
				if r.Error != nil {
					code += " " + r.Error.Code
				}
				codesMu.Lock()
				codes[code]++
				codesMu.Unlock()
			}).Wait()
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range gateways {
				c := gateway(b, addr, g)
				wg.Add(1)
				go func() {
					defer wg.Done()
					var last paho.Token
					for _, raw := range msgs[g] {
						last = c.Publish(TopicsOf(network).Submit, 1, false, raw)
					}
					last.WaitTimeout(time.Minute)
				}()
			}
			wg.Wait()
			// Each gateway's messages are taken in order: its last stored is all stored.
			for g := range gateways {
				last, err := n.Params().Decode(msgs[g][per-1])
				if err != nil {
					b.Fatal(err)
				}
				for deadline := time.Now().Add(30 * time.Second); ; {
					if mi, err := n.Message(context.Background(), last.ID()); err == nil && !mi.Pending {
						break
					}
					if time.Now().After(deadline) {
						codesMu.Lock()
						b.Fatalf("gateway %d: its last message not stored after 30 s (%d messages stored in all; answers %v)", g, n.Info().Messages-start, codes)
					}
					time.Sleep(time.Millisecond)
				}
			}
			b.ReportMetric(float64(per*gateways)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkLatency5k measures publish-to-confirmed latency through a real
// Mosquitto and through the embedded broker at 5,000 msgs/s offered for
// 10 s (run it with -benchtime 1x): 32 gateways build each message on the
// node's current tips at its due time and publish it with QoS 1 without
// waiting; the latency runs from the due time to the node's confirmed
// event. fsync on, the node's default pace.
func BenchmarkLatency5k(b *testing.B) {
	const (
		gateways = 32
		rate     = 5000
		seconds  = 10
	)
	for _, via := range []string{"mosquitto", "embedded"} {
		b.Run(via, func(b *testing.B) {
			n, addr := benchBridge(b, via, func(cfg *node.Config) { cfg.Store.NoSync, cfg.IssueInterval = false, 0 })
			per := rate * seconds / gateways
			total := per * gateways
			var due sync.Map // dag.ID: time.Time
			sub, err := n.Subscribe()
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			start := time.Now().Add(200 * time.Millisecond)
			var lat []time.Duration
			done := make(chan struct{})
			go func() { // the confirmed events of the measured messages
				defer close(done)
				evs := make([]node.Event, 0, 1024)
				deadline := start.Add(seconds*time.Second + 30*time.Second)
				for len(lat) < total && time.Now().Before(deadline) {
					evs, wait, err := sub.Next(evs[:0], cap(evs))
					if err != nil {
						b.Error(err)
						return
					}
					now := time.Now()
					for _, e := range evs {
						if t, ok := due.Load(e.ID); ok && e.Kind == node.EventConfirmed {
							lat = append(lat, now.Sub(t.(time.Time)))
						}
					}
					if len(evs) == 0 {
						select {
						case <-wait:
						case <-time.After(100 * time.Millisecond):
						}
					}
				}
			}()
			b.ResetTimer()
			interval := time.Second * gateways / rate
			var wg sync.WaitGroup
			for g := range gateways {
				c := gateway(b, addr, g)
				k := key(byte(100 + g))
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						at := start.Add(time.Duration(i)*interval + time.Duration(g)*interval/gateways)
						time.Sleep(time.Until(at))
						m := message(n, k, uint64(i+1), `{"t":21.5}`)
						due.Store(m.ID(), at)
						c.Publish(TopicsOf(network).Submit, 1, false, m.Bytes())
					}
				}()
			}
			wg.Wait()
			<-done
			if len(lat) < total {
				b.Fatalf("%d of %d confirmed; the node: %+v", len(lat), total, n.Info())
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Milliseconds()), "p99-ms")
			b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max-ms")
		})
	}
}

// benchBridge starts a node (mod changes its config) and a bridge through
// via, "mosquitto" (a real one, with room for 1,000 messages in flight to
// the node) or "embedded", until the benchmark ends, and returns the node
// and the address devices connect to, once the node takes submissions.
func benchBridge(b *testing.B, via string, mod func(*node.Config)) (*node.Node, string) {
	b.Helper()
	var cfg Config
	var addr string
	if via == "mosquitto" {
		m := mqtttest.Mosquitto(b, "max_inflight_messages 1000", "max_queued_messages 1000000")
		cfg.Broker, addr = "tcp://"+m.Addr, m.Addr
	} else {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.Network = network
	br, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	n := startNode(b, br, mod)
	if err := br.Start(n); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	if addr == "" {
		addr = br.Addr()
	}
	for br.ext != nil && !br.ext.listening.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	return n, addr
}

// gateway connects gateway g to the broker at addr until the benchmark
// ends.
func gateway(b *testing.B, addr string, g int) paho.Client {
	b.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("gw-%d", g)))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	b.Cleanup(func() { c.Disconnect(0) })
	return c
}
