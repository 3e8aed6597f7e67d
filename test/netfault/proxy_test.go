package netfault

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// echoServer answers every datagram with itself, on loopback.
func echoServer(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return c.LocalAddr().String()
}

func newTestProxy(t *testing.T, target string, imp Impairment, seed uint64) *Proxy {
	t.Helper()
	p, err := NewProxy("127.0.0.1:0", target, imp, seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestProxyDelay: every datagram is delayed each way, answers go back to the
// client that asked, and each client gets its own flow.
func TestProxyDelay(t *testing.T) {
	const delay = 50 * time.Millisecond
	p := newTestProxy(t, echoServer(t), Impairment{Delay: delay, Jitter: 5 * time.Millisecond}, 1)
	var clients []*net.UDPConn
	for i := 0; i < 2; i++ {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(mustAddrPort(t, p.Addr())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		clients = append(clients, c)
	}
	for round := 0; round < 3; round++ {
		for i, c := range clients {
			msg := []byte{byte(i), byte(round), 'x'}
			start := time.Now()
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("client %d round %d: %v", i, round, err)
			}
			rtt := time.Since(start)
			if !bytes.Equal(buf[:n], msg) {
				t.Fatalf("client %d got %q, sent %q", i, buf[:n], msg)
			}
			if rtt < 2*delay {
				t.Fatalf("round trip %v, want at least %v", rtt, 2*delay)
			}
		}
	}
	// The last answer may be read before the proxy counted it.
	deadline := time.Now().Add(time.Second)
	for p.Stats().Forwarded < 12 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := p.Stats(); st.Flows != 2 || st.Forwarded != 12 || st.Dropped != 0 {
		t.Fatalf("stats %+v, want 2 flows and 12 datagrams forwarded", st)
	}
}

// TestProxyLoss: about Loss of the datagrams are dropped, in order of
// arrival without jitter.
func TestProxyLoss(t *testing.T) {
	const n, loss = 4000, 0.05
	seed := testSeed(t)
	p := newTestProxy(t, echoServer(t), Impairment{Loss: loss, Delay: time.Millisecond}, seed)
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(mustAddrPort(t, p.Addr())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	setBuffers(c)
	got := make(chan []uint32, 1)
	go func() {
		var seqs []uint32
		buf := make([]byte, 64)
		for {
			c.SetReadDeadline(time.Now().Add(time.Second))
			k, err := c.Read(buf)
			if err != nil {
				got <- seqs
				return
			}
			seqs = append(seqs, binary.BigEndian.Uint32(buf[:k]))
		}
	}()
	for i := 0; i < n; i++ {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		if _, err := c.Write(b[:]); err != nil {
			t.Fatal(err)
		}
		if i%10 == 9 {
			time.Sleep(time.Millisecond) // stay well below the sockets' buffers
		}
	}
	seqs := <-got
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("reordered without jitter: %d after %d", seqs[i], seqs[i-1])
		}
	}
	st := p.Stats()
	// Each datagram crosses the proxy twice: out and back.
	want := 1 - (1-loss)*(1-loss)
	lost := 1 - float64(len(seqs))/n
	t.Logf("sent %d, echoed %d (lost %.2f%%, expected %.2f%%); proxy %+v", n, len(seqs), 100*lost, 100*want, st)
	if st.Overflow != 0 {
		t.Fatalf("overflow: %+v", st)
	}
	if lost < want/2 || lost > want*2 {
		t.Fatalf("lost %.3f of the datagrams, want about %.3f", lost, want)
	}
	if len(seqs)+int(st.Dropped) > n {
		t.Fatalf("echoed %d and dropped %d of %d datagrams", len(seqs), st.Dropped, n)
	}
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
