package gossip

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
)

// Defaults for the zero fields of Config, and fixed limits.
const (
	DefaultSendQueue      = 4096
	DefaultSendQueueBytes = 64 << 20
	DefaultPingInterval   = 5 * time.Second
	DefaultWriteTimeout   = 30 * time.Second
	DefaultRequestTimeout = 30 * time.Second
	// DefaultMaxHandshakes and DefaultHandshakeTimeout: see
	// Config.MaxHandshakes and Config.HandshakeTimeout.
	DefaultMaxHandshakes    = 64
	DefaultHandshakeTimeout = 3 * time.Second

	// MinBackoff and MaxBackoff bound the reconnect backoff: it starts at
	// MinBackoff, doubles after each failed attempt up to MaxBackoff, with
	// jitter (each wait is drawn from [d/2, d)).
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 10 * time.Second

	// dialYield is how long the node with the larger key of a pair waits
	// before dialling, so that the pair usually shares one connection.
	dialYield = 500 * time.Millisecond

	// helloTimeout bounds the QUIC handshake plus the Hello exchange.
	helloTimeout = 10 * time.Second

	ctrlQueueFrames = 1024
	ctrlQueueBytes  = 4 << 20
)

// Peer is a node this node dials and keeps connected, pinned by its key.
type Peer struct {
	// Key is the peer's node key: the ed25519 public key its certificate
	// must carry.
	Key dag.PublicKey
	// Addr is its UDP address, "host:port"; resolved at each dial.
	Addr string
}

// Config configures a Transport. The zero value of each field means the
// documented default; New fills the defaults and validates the rest.
type Config struct {
	// Identity is this node's ed25519 private key. Required. Its public key
	// is the node key peers pin, and the key of its TLS certificate.
	Identity ed25519.PrivateKey
	// Listen is the UDP address to accept connections on ("127.0.0.1:0"
	// picks a port; see Transport.Addr). "" means do not accept: the
	// transport binds an ephemeral port only to dial from.
	Listen string
	// Network is the network id both sides must share (checked in Hello).
	Network dag.NetworkID
	// Peers are dialled at Run and kept connected. Their keys are also the
	// keys allowed to connect in, unless Open is set. Keys must be distinct
	// and not this node's own.
	Peers []Peer
	// Open lets any node that proves an ed25519 key connect in. Dialled
	// peers are still only those of Peers.
	Open bool
	// SendQueue bounds each peer's send queue, in frames. Default
	// DefaultSendQueue. When it is full, new frames for that peer are
	// dropped and counted (PeerStats.DroppedFrames).
	SendQueue int
	// SendQueueBytes bounds each peer's send queue in bytes, default
	// DefaultSendQueueBytes; at least MaxFrameSize+5.
	SendQueueBytes int
	// PingInterval is how often a Ping goes to each peer to measure the
	// round-trip time and keep the connection alive. Default
	// DefaultPingInterval. The QUIC idle timeout is three intervals, at
	// least 5 s.
	PingInterval time.Duration
	// WriteTimeout closes a connection whose peer has accepted no data for
	// this long (CodeStalled). Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// RequestTimeout bounds a Sync whose context has no earlier deadline.
	// Default DefaultRequestTimeout.
	RequestTimeout time.Duration
	// MaxHandshakes bounds the inbound connections in progress: from the
	// connection attempt (once its source address is validated, see
	// "Junk at the port" in doc.go) to the end of its Hello exchange, the
	// only inbound state that exists before a peer is authenticated.
	// Attempts beyond it are refused with QUIC's CONNECTION_REFUSED (the
	// dialler sees ErrRefused and retries with its backoff) and counted in
	// HandshakeStats.Refused. Default DefaultMaxHandshakes.
	MaxHandshakes int
	// HandshakeTimeout bounds each inbound handshake: the QUIC handshake is
	// abandoned when no packet has come for this long or when it has not
	// completed within twice this, and the dialler's Hello must arrive
	// within this after it. Default DefaultHandshakeTimeout. (Dialling
	// waits longer: 10 s for the handshake and the Hello.)
	HandshakeTimeout time.Duration
	// Log receives the transport's logs. The zero Logger discards them.
	Log zerolog.Logger
	// Handler receives what peers send and answers their requests.
	// Required.
	Handler Handler
}

// withDefaults fills the zero fields and validates the config.
func (c Config) withDefaults() (Config, error) {
	if len(c.Identity) != ed25519.PrivateKeySize {
		return c, fmt.Errorf("%w: Identity must be an ed25519 private key of %d bytes, got %d", ErrConfig, ed25519.PrivateKeySize, len(c.Identity))
	}
	if c.Handler == nil {
		return c, fmt.Errorf("%w: Handler is required", ErrConfig)
	}
	if c.Listen != "" {
		if _, err := net.ResolveUDPAddr("udp", c.Listen); err != nil {
			return c, fmt.Errorf("%w: Listen %q: %v", ErrConfig, c.Listen, err)
		}
	}
	var self dag.PublicKey
	copy(self[:], c.Identity.Public().(ed25519.PublicKey))
	seen := make(map[dag.PublicKey]bool, len(c.Peers))
	for i, p := range c.Peers {
		switch {
		case p.Key == self:
			return c, fmt.Errorf("%w: Peers[%d] is this node's own key", ErrConfig, i)
		case seen[p.Key]:
			return c, fmt.Errorf("%w: Peers[%d]: key %s listed twice", ErrConfig, i, p.Key)
		case p.Addr == "":
			return c, fmt.Errorf("%w: Peers[%d]: no address", ErrConfig, i)
		}
		if _, _, err := net.SplitHostPort(p.Addr); err != nil {
			return c, fmt.Errorf("%w: Peers[%d]: address %q: %v", ErrConfig, i, p.Addr, err)
		}
		seen[p.Key] = true
	}
	if c.SendQueue < 0 || c.SendQueueBytes < 0 || c.PingInterval < 0 || c.WriteTimeout < 0 || c.RequestTimeout < 0 ||
		c.MaxHandshakes < 0 || c.HandshakeTimeout < 0 {
		return c, fmt.Errorf("%w: negative queue size or duration", ErrConfig)
	}
	if c.SendQueue == 0 {
		c.SendQueue = DefaultSendQueue
	}
	if c.SendQueueBytes == 0 {
		c.SendQueueBytes = DefaultSendQueueBytes
	}
	if c.SendQueueBytes < MaxFrameSize+headerSize {
		return c, fmt.Errorf("%w: SendQueueBytes %d is below one frame (%d)", ErrConfig, c.SendQueueBytes, MaxFrameSize+headerSize)
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	c.Peers = append([]Peer(nil), c.Peers...)
	return c, nil
}
