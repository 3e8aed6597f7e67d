package gossip

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/weftnet/weft/gossip/internal/junk"
)

// heldDial starts a QUIC dial to addr with the key of identity id whose
// TLS stalls when the server asks for its certificate, until release is
// closed: a handshake the server holds in progress for as long as the test
// wants. It returns the dial's result channel.
func heldDial(t *testing.T, addr string, id byte, release <-chan struct{}) <-chan error {
	t.Helper()
	priv, _ := identity(id)
	cert, err := NewCertificate(priv)
	if err != nil {
		t.Fatal(err)
	}
	abort := make(chan struct{}) // the test is over
	tlsConf := &tls.Config{
		MinVersion: tls.VersionTLS13, NextProtos: []string{ALPN}, InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			select {
			case <-release:
				return &cert, nil
			case <-abort:
				return nil, errors.New("test over")
			}
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	errc := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		defer cancel()
		conn, err := quic.DialAddr(ctx, addr, tlsConf, &quic.Config{HandshakeIdleTimeout: 10 * time.Second})
		if err == nil {
			conn.CloseWithError(0, "")
		}
		errc <- err
	}()
	t.Cleanup(func() {
		close(abort)
		cancel()
		<-finished
	})
	return errc
}

// dialOnce makes one QUIC dial with the key of identity id and returns the
// connection, or the error it failed with.
func dialOnce(t *testing.T, addr string, id byte) (*quic.Conn, error) {
	t.Helper()
	priv, _ := identity(id)
	cert, err := NewCertificate(priv)
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, NextProtos: []string{ALPN}, InsecureSkipVerify: true}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, tlsConf, nil)
	if err == nil {
		t.Cleanup(func() { conn.CloseWithError(0, "") })
	}
	return conn, err
}

func TestHandshakeLimitRefusesBeyondIt(t *testing.T) {
	idA, _ := identity(1)
	a := start(t, Config{Identity: idA, Open: true, MaxHandshakes: 1, HandshakeTimeout: 10 * time.Second})
	release := make(chan struct{})
	held := heldDial(t, a.Addr().String(), 5, release)
	waitFor(t, 10*time.Second, "one handshake in progress", func() bool { return a.Handshakes().InProgress == 1 })

	_, err := dialOnce(t, a.Addr().String(), 6)
	var te *quic.TransportError
	if !errors.As(err, &te) || !te.Remote || te.ErrorCode != quic.ConnectionRefused {
		t.Fatalf("second dial: %v, want CONNECTION_REFUSED from the listener", err)
	}
	if !errors.Is(classify(err), ErrRefused) {
		t.Fatalf("classify(%v) does not wrap ErrRefused", err)
	}
	// The refused dial may count more than once: each Initial packet of it
	// is refused (its ClientHello can take two).
	if st := a.Handshakes(); st.InProgress != 1 || st.Refused < 1 {
		t.Fatalf("handshakes %+v, want 1 in progress and some refused", st)
	}

	// The held handshake completes; the dialler closes at once, which
	// frees the slot, and the next dial is let in.
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("held dial: %v", err)
	}
	waitFor(t, 10*time.Second, "the slot freed", func() bool { return a.Handshakes().InProgress == 0 })
	idC, _ := identity(3)
	c := start(t, Config{Identity: idC, Listen: "", Peers: []Peer{{Key: a.key, Addr: a.Addr().String()}}})
	waitFor(t, 10*time.Second, "c connected", func() bool { return c.connectedTo(a.key) && a.h.connects(c.key) > 0 })
	waitFor(t, 10*time.Second, "c's slot freed after its Hello", func() bool { return a.Handshakes().InProgress == 0 })
}

func TestHandshakeTimeoutFreesTheSlot(t *testing.T) {
	idA, _ := identity(1)
	a := start(t, Config{Identity: idA, Open: true, HandshakeTimeout: 300 * time.Millisecond})
	held := heldDial(t, a.Addr().String(), 5, make(chan struct{})) // never released
	waitFor(t, 10*time.Second, "the handshake in progress", func() bool { return a.Handshakes().InProgress == 1 })
	// quic-go gives up a handshake that has not completed within twice
	// the timeout.
	waitFor(t, 10*time.Second, "the stalled handshake abandoned", func() bool { return a.Handshakes().InProgress == 0 })
	select {
	case err := <-held:
		t.Fatalf("held dial returned early: %v", err)
	default:
	}
}

func TestInboundHelloGetsHandshakeTimeout(t *testing.T) {
	idA, _ := identity(1)
	a := start(t, Config{Identity: idA, Open: true, HandshakeTimeout: 300 * time.Millisecond})
	r := dialSilent(t, a.Transport)
	began := time.Now()
	if code := r.closedWith(t); code != CodeHelloTimeout {
		t.Fatalf("closed with %v, want %v", code, CodeHelloTimeout)
	}
	// helloTimeout (10 s) would be the wait without HandshakeTimeout.
	if d := time.Since(began); d >= helloTimeout {
		t.Fatalf("closed after %v, not by the 300 ms HandshakeTimeout", d)
	}
	waitFor(t, 10*time.Second, "the slot freed", func() bool { return a.Handshakes().InProgress == 0 })
}

func TestUnlistedKeyRefusedInTLS(t *testing.T) {
	idA, _ := identity(1)
	_, keyB := identity(2)
	a := start(t, Config{Identity: idA, Peers: []Peer{{Key: keyB, Addr: "127.0.0.1:9"}}})
	conn, err := dialOnce(t, a.Addr().String(), 7) // not a's peer
	if err == nil {
		// In TLS 1.3 the client is done before the server has checked its
		// certificate: the refusal closes the connection just after.
		select {
		case <-conn.Context().Done():
		case <-time.After(10 * time.Second):
			t.Fatal("an unlisted key's connection was not closed")
		}
		err = context.Cause(conn.Context())
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || !te.Remote || te.ErrorCode != 0x100+42 { // CRYPTO_ERROR, TLS alert bad_certificate
		t.Fatalf("unlisted key: %v, want CRYPTO_ERROR 0x12a from the listener", err)
	}
	if len(a.Peers()) != 1 || a.h.connects(keyB) != 0 {
		t.Fatalf("a let an unlisted key in: %+v", a.Peers())
	}
	waitFor(t, 10*time.Second, "the slot freed", func() bool { return a.Handshakes().InProgress == 0 })
}

// TestJunkInitialGetsRetry sends junk Initials to a listener and reads what
// comes back: a Retry for each that the listener could answer (RFC 9000,
// 17.2.5: a long header of type Retry, version 1, addressed to the source
// connection ID the Initial carried), and no connection state.
func TestJunkInitialGetsRetry(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	idA, _ := identity(1)
	a := start(t, Config{Identity: idA, Open: true})
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2048)
	for i := range 20 {
		p := junk.Initial(r)
		dcidLen := int(p[5])
		scid := p[7+dcidLen : 7+dcidLen+int(p[6+dcidLen])]
		if _, err := c.WriteToUDP(p, a.Addr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("Initial %d: no answer: %v", i, err)
		}
		got := buf[:n]
		if n < 7 || got[0]&0xf0 != 0xf0 || binary.BigEndian.Uint32(got[1:]) != 1 {
			t.Fatalf("Initial %d: answer %x is not a version 1 Retry", i, got[:min(n, 16)])
		}
		if l := int(got[5]); 6+l > n || string(got[6:6+l]) != string(scid) {
			t.Fatalf("Initial %d: Retry not addressed to the Initial's source connection ID", i)
		}
		if st := a.Handshakes(); st.InProgress != 0 {
			t.Fatalf("Initial %d: %d handshakes in progress, want none", i, st.InProgress)
		}
	}
}
