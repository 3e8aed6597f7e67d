package gossip

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/weftnet/weft/dag"
)

// countingHandler counts what arrives and keeps nothing.
type countingHandler struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (h *countingHandler) Connected(dag.PublicKey) {}
func (h *countingHandler) Messages(_ dag.PublicKey, raws [][]byte) {
	if h.n.Add(int64(len(raws))) == h.want {
		close(h.done)
	}
}
func (h *countingHandler) Request(dag.PublicKey, []dag.ID) [][]byte { return nil }
func (h *countingHandler) Sync(_ dag.PublicKey, pos uint64, _, _ int) SyncPage {
	return SyncPage{Next: pos, Done: true}
}

// BenchmarkBroadcast measures messages per second of 300-byte messages from
// one transport to another over QUIC on loopback, in batches of 1000 (what
// a node's group commit hands to gossip). The sender backs off when the
// peer's queue is full, so every message counted was delivered to the
// receiving Handler.
func BenchmarkBroadcast(b *testing.B) {
	const size, batch = 300, 1000
	recv := &countingHandler{done: make(chan struct{})}
	ns := mesh(b, 2, func(i int, c *Config) {
		if i == 1 {
			c.Handler = recv
		}
	})
	a, r := ns[0], ns[1]
	waitFor(b, 10*time.Second, "connected", func() bool { return a.connectedTo(r.key) })

	payload := msgs('p', 0, batch, size)
	recv.want = int64(b.N)
	if b.N == 0 {
		close(recv.done)
	}
	b.SetBytes(size)
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; {
		n := min(batch, b.N-sent)
		err := a.Send(r.key, payload[:n])
		if errors.Is(err, ErrQueueFull) {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		sent += n
	}
	select {
	case <-recv.done:
	case <-time.After(60 * time.Second):
		b.Fatalf("received %d of %d", recv.n.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkDial measures a QUIC connect to a listening transport on
// loopback, from the first packet to the completed TLS handshake, with
// the listener's address validation (a Retry, one more round trip: what
// the transport does) and without it (quic-go's default), to show what the
// Retry costs a peer.
func BenchmarkDial(b *testing.B) {
	for _, retry := range []bool{true, false} {
		b.Run(map[bool]string{true: "retry", false: "no-retry"}[retry], func(b *testing.B) {
			idA, _ := identity(1)
			tr, err := New(Config{Identity: idA, Listen: "127.0.0.1:0", Open: true, Handler: newFakeHandler(), MaxHandshakes: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			if !retry {
				tr.verifyAddr = nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- tr.Run(ctx) }()
			defer func() {
				cancel()
				if err := <-errc; err != nil {
					b.Error(err)
				}
			}()
			priv, _ := identity(5)
			cert, err := NewCertificate(priv)
			if err != nil {
				b.Fatal(err)
			}
			tlsConf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, NextProtos: []string{ALPN}, InsecureSkipVerify: true}
			for b.Loop() {
				conn, err := quic.DialAddr(ctx, tr.Addr().String(), tlsConf, nil)
				if err != nil {
					b.Fatal(err)
				}
				conn.CloseWithError(0, "")
			}
		})
	}
}
