package gossip

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// HandshakeStats describes the inbound handshakes: those in progress now
// (at most Config.MaxHandshakes) and, since New, the connection attempts
// refused because that many were in progress (counted per Initial packet:
// an attempt whose ClientHello takes two packets may count twice).
type HandshakeStats struct {
	InProgress int
	Refused    uint64
}

// Handshakes returns the inbound handshake counts. Safe from any goroutine.
func (t *Transport) Handshakes() HandshakeStats {
	return HandshakeStats{InProgress: int(t.hs.n.Load()), Refused: t.hs.refused.Load()}
}

// handshakes counts the inbound connections in progress: from the moment
// quic-go creates one (ConnContext) until its Hello exchange ends or it
// closes, whichever comes first.
type handshakes struct {
	max     int64
	n       atomic.Int64
	refused atomic.Uint64
}

// slot is one inbound connection's place among the handshakes in progress.
type slot struct {
	once sync.Once
	hs   *handshakes
}

// release frees the slot; calls after the first do nothing.
func (s *slot) release() { s.once.Do(func() { s.hs.n.Add(-1) }) }

type slotKey struct{}

// alwaysRetry is quic.Transport.VerifySourceAddress: every connection
// attempt first proves its source address with a Retry token (RFC 9000,
// 8.1.2). Until then quic-go keeps no state for it, so datagrams from
// spoofed or silent addresses, however many, create no connection, and
// what a peer pays is one round trip per connect (see docs/GOSSIP.md).
func alwaysRetry(net.Addr) bool { return true }

// connContext is quic.Transport.ConnContext, called when quic-go is about
// to create an inbound connection (after the address validation): it
// takes a slot, or refuses the attempt with ErrHandshakeLimit (quic-go
// then answers CONNECTION_REFUSED). The slot is released when the
// connection's context ends (the handshake failed or the connection
// closed) or by endHandshake.
func (t *Transport) connContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	if t.hs.n.Add(1) > t.hs.max {
		t.hs.n.Add(-1)
		t.hs.refused.Add(1)
		err := fmt.Errorf("%w: %d", ErrHandshakeLimit, t.hs.max)
		t.refusals.Warn().Err(err).Str("addr", info.RemoteAddr.String()).Msg("gossip: refused a connection attempt")
		return nil, err
	}
	s := &slot{hs: &t.hs}
	context.AfterFunc(ctx, s.release)
	return context.WithValue(ctx, slotKey{}, s), nil
}

// endHandshake releases the slot of an inbound connection once its Hello
// exchange has ended, either way.
func endHandshake(conn *quic.Conn) {
	if s, ok := conn.Context().Value(slotKey{}).(*slot); ok {
		s.release()
	}
}
