package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/msggen"
	"github.com/weftnet/weft/node"
)

// benchPoWBase keeps building the messages cheap; the node checks the
// proof of work the same way at any difficulty (one hash).
const benchPoWBase = 4

func benchNode(b *testing.B, network string) (*httptest.Server, *node.Node) {
	cfg := node.Config{DataDir: b.TempDir(), Identity: key(1), Network: network, PoWBase: benchPoWBase}
	// The messages are stamped when they are built, before the node starts:
	// without this, the later ones would be lazy by the time they arrive.
	cfg.Core.LazyAge = time.Hour
	n, err := node.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	srv := httptest.NewServer(New(n, "bench", zerolog.Nop()))
	b.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
	})
	return srv, n
}

// waitAllConfirmed waits until the node has confirmed everything.
func waitAllConfirmed(b *testing.B, n *node.Node, want uint64) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		in := n.Info()
		if in.Confirmed >= want && in.Unconfirmed == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not all confirmed: %+v", in)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkIngest measures messages per second through the HTTP API, from
// the first request until every message is durable (fsync on) and
// confirmed, with signature and proof-of-work checks. Batches come from 8
// concurrent gateways; single messages from 256 concurrent devices, each
// waiting for its answer (durable) before sending the next.
func BenchmarkIngest(b *testing.B) {
	for _, mode := range []struct {
		name    string
		batch   int
		clients int
	}{{"batch=1024", 1024, 8}, {"single", 1, 256}} {
		b.Run(mode.name, func(b *testing.B) {
			network := "bench-" + mode.name
			msgs, err := msggen.DAG(dag.Params{Network: dag.NetworkIDFromName(network), MaxPayload: dag.DefaultMaxPayload, PoWBase: benchPoWBase}, b.N, 100, 1)
			if err != nil {
				b.Fatal(err)
			}
			srv, n := benchNode(b, network)
			base := n.Info().Confirmed
			var bodies [][]byte
			for i := 0; i < len(msgs); i += mode.batch {
				var body []byte
				for _, m := range msgs[i:min(i+mode.batch, len(msgs))] {
					if mode.batch > 1 {
						body = binary.BigEndian.AppendUint32(body, uint32(m.Size()))
					}
					body = append(body, m.Bytes()...)
				}
				bodies = append(bodies, body)
			}
			path, ctype := "/api/v1/messages/batch", "application/x-weft-batch"
			if mode.batch == 1 {
				path, ctype = "/api/v1/messages", "application/octet-stream"
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			work := make(chan []byte, len(bodies))
			for _, body := range bodies {
				work <- body
			}
			close(work)
			var rss runtime.MemStats
			b.ResetTimer()
			var wg sync.WaitGroup
			for c := 0; c < mode.clients; c++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for body := range work {
						resp, err := hc.Post(srv.URL+path, ctype, bytes.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						out, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if resp.StatusCode != 200 && resp.StatusCode != 201 {
							b.Errorf("status %d: %s", resp.StatusCode, out)
							return
						}
						if mode.batch > 1 && bytes.Contains(out, []byte(`"error"`)) {
							b.Errorf("a message was refused: %.300s", out)
							return
						}
					}
				}()
			}
			wg.Wait()
			durable := b.Elapsed()
			waitAllConfirmed(b, n, base+uint64(b.N))
			b.StopTimer()
			runtime.ReadMemStats(&rss)
			b.ReportMetric(float64(b.N)/durable.Seconds(), "durable/s")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "confirmed/s")
			b.ReportMetric(float64(rss.HeapInuse)/(1<<20), "heap-MiB")
		})
	}
}
