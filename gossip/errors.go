package gossip

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quic-go/quic-go"
)

// Errors of the gossip package. Each is wrapped with detail; test for them
// with errors.Is. None of them says anything about the validity of a
// message: gossip moves bytes, the node judges them.
var (
	// ErrConfig: the Config is unusable (see Config for the rules).
	ErrConfig = errors.New("gossip: invalid config")
	// ErrClosed: the Transport was closed, or Run was called a second time.
	ErrClosed = errors.New("gossip: transport closed")

	// ErrMalformed: a frame's bytes are not a canonical encoding of its type.
	ErrMalformed = errors.New("gossip: malformed frame")
	// ErrFrameTooLarge: a frame's length field exceeds MaxFrameSize.
	ErrFrameTooLarge = errors.New("gossip: frame too large")

	// ErrVersionMismatch: the peer speaks another protocol version.
	ErrVersionMismatch = errors.New("gossip: protocol version mismatch")
	// ErrNetworkMismatch: the peer belongs to another network.
	ErrNetworkMismatch = errors.New("gossip: network mismatch")
	// ErrKeyMismatch: the key in the peer's Hello is not its certificate's.
	ErrKeyMismatch = errors.New("gossip: hello key does not match the certificate")
	// ErrHelloTimeout: the peer did not complete the Hello exchange in time.
	ErrHelloTimeout = errors.New("gossip: no hello in time")
	// ErrDuplicate: a connection was closed because newer ones to the same
	// peer are kept (see "Connections per pair" in doc.go).
	ErrDuplicate = errors.New("gossip: duplicate connection")
	// ErrDisconnected: the connection was closed by Disconnect (ours or the
	// peer's), or refused because a Disconnect backoff is in force.
	ErrDisconnected = errors.New("gossip: disconnected by policy")
	// ErrStalled: the peer accepted no data for Config.WriteTimeout.
	ErrStalled = errors.New("gossip: peer stalled")
	// ErrShutdown: the connection was closed because a transport shut down.
	ErrShutdown = errors.New("gossip: shut down")

	// ErrBadCertificate: the peer's certificate is not a self-signed
	// ed25519 certificate.
	ErrBadCertificate = errors.New("gossip: bad peer certificate")
	// ErrUnknownPeer: the peer's key is not in the peer list and the
	// transport is not open (returned to the TLS handshake, which refuses
	// the connection).
	ErrUnknownPeer = errors.New("gossip: peer not in the peer list")
	// ErrHandshakeLimit: an inbound connection attempt was refused because
	// Config.MaxHandshakes handshakes were already in progress.
	ErrHandshakeLimit = errors.New("gossip: too many handshakes in progress")
	// ErrWrongKey: a dialled peer presented a key other than the configured one.
	ErrWrongKey = errors.New("gossip: peer presented an unexpected key")
	// ErrRefused: the peer refused the connection during the handshake:
	// in TLS (we are not in its peer list, or it is backing off from us),
	// or with CONNECTION_REFUSED (it is not accepting connections now:
	// it has Config.MaxHandshakes in progress, or it is shutting down).
	ErrRefused = errors.New("gossip: refused by peer")

	// ErrNotConnected: there is no connection to the peer.
	ErrNotConnected = errors.New("gossip: peer not connected")
	// ErrQueueFull: the peer's send queue had no room; nothing was queued.
	ErrQueueFull = errors.New("gossip: send queue full")
	// ErrTooLarge: a message exceeds MaxMessageSize, or a request exceeds
	// what one frame carries.
	ErrTooLarge = errors.New("gossip: too large")
	// ErrTimeout: a Sync got no response within Config.RequestTimeout.
	ErrTimeout = errors.New("gossip: request timed out")
)

// CloseCode is the QUIC application error code a connection is closed with.
// It travels to the peer, so that both sides log the same reason. The values
// are part of the wire protocol (docs/GOSSIP.md).
type CloseCode uint64

// Close codes.
const (
	CodeShutdown        CloseCode = 0x0 // the transport is shutting down
	CodeProtocol        CloseCode = 0x1 // malformed or unexpected frame
	CodeFrameTooLarge   CloseCode = 0x2 // a frame over MaxFrameSize
	CodeVersionMismatch CloseCode = 0x3 // Hello: other protocol version
	CodeNetworkMismatch CloseCode = 0x4 // Hello: other network
	CodeKeyMismatch     CloseCode = 0x5 // Hello: key is not the certificate's
	CodeHelloTimeout    CloseCode = 0x6 // no Hello in time
	CodeDuplicate       CloseCode = 0x7 // superseded by newer connections to the pair
	CodeDisconnected    CloseCode = 0x8 // Disconnect: the peer sent invalid messages
	CodeStalled         CloseCode = 0x9 // the peer accepted no data for too long
)

var codeErrors = map[CloseCode]error{
	CodeShutdown:        ErrShutdown,
	CodeProtocol:        ErrMalformed,
	CodeFrameTooLarge:   ErrFrameTooLarge,
	CodeVersionMismatch: ErrVersionMismatch,
	CodeNetworkMismatch: ErrNetworkMismatch,
	CodeKeyMismatch:     ErrKeyMismatch,
	CodeHelloTimeout:    ErrHelloTimeout,
	CodeDuplicate:       ErrDuplicate,
	CodeDisconnected:    ErrDisconnected,
	CodeStalled:         ErrStalled,
}

// String names the code.
func (c CloseCode) String() string {
	if err, ok := codeErrors[c]; ok {
		return err.Error()[len("gossip: "):]
	}
	return fmt.Sprintf("unknown close code %#x", uint64(c))
}

// CloseError is why a connection ended when one side closed it on purpose:
// the close code and the reason text that travelled with it. Remote says
// whether the peer closed it (and told us why) or we did. It unwraps to the
// code's sentinel (ErrNetworkMismatch for CodeNetworkMismatch, and so on)
// and, for a local close, to the cause, so errors.Is works on either side.
type CloseError struct {
	Code   CloseCode
	Remote bool
	Reason string
	cause  error
}

// Error describes the close: who closed, the code, and the reason.
func (e *CloseError) Error() string {
	who := "closed locally"
	if e.Remote {
		who = "closed by peer"
	}
	reason := strings.TrimPrefix(e.Reason, "gossip: ")
	if reason == "" {
		reason = e.Code.String()
	}
	return fmt.Sprintf("gossip: %s (code %#x): %s", who, uint64(e.Code), reason)
}

// Unwrap returns the code's sentinel and the local cause, if any.
func (e *CloseError) Unwrap() []error {
	var errs []error
	if s, ok := codeErrors[e.Code]; ok {
		errs = append(errs, s)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// closeErr builds a local CloseError from a cause.
func closeErr(code CloseCode, cause error) *CloseError {
	return &CloseError{Code: code, Reason: cause.Error(), cause: cause}
}

// classify turns what quic-go returned into this package's errors: a QUIC
// application close becomes a *CloseError, a TLS alert or a
// CONNECTION_REFUSED from the peer wraps ErrRefused. Anything else (timeouts, resets) is returned as is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *CloseError
	if errors.As(err, &ce) {
		return ce
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) {
		return &CloseError{Code: CloseCode(ae.ErrorCode), Remote: ae.Remote, Reason: ae.ErrorMessage}
	}
	var te *quic.TransportError
	if errors.As(err, &te) && te.Remote && (te.ErrorCode == quic.ConnectionRefused || te.ErrorCode >= 0x100 && te.ErrorCode < 0x200) {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return err
}
