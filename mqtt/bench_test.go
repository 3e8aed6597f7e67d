package mqtt

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

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
