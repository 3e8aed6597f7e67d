package dag

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/zeebo/blake3"

	"github.com/weftnet/weft/pow"
)

// Sizes of the encoding, in bytes. See docs/PROTOCOL.md.
const (
	// Version is the only message version this code speaks.
	Version = 1

	PublicKeySize = 32
	SignatureSize = 64

	// HeaderSize is the fixed part before the payload: version (1), network
	// (8), two parents (64), issuer (32), sequence (8), timestamp (8),
	// payload length (2).
	HeaderSize = 1 + 8 + 2*IDSize + PublicKeySize + 8 + 8 + 2
	// TrailerSize is the fixed part after the payload: signature and nonce.
	TrailerSize = SignatureSize + pow.NonceSize
	// MinSize is the size of a message with an empty payload.
	MinSize = HeaderSize + TrailerSize
	// MaxPayload is the most the encoding can carry (a 16-bit length). A
	// network sets its own, lower, limit in Params.
	MaxPayload = math.MaxUint16
	// DefaultMaxPayload is the default network payload limit: plenty for telemetry.
	DefaultMaxPayload = 1024
)

// offsets into the encoding.
const (
	offVersion = 0
	offNetwork = 1
	offParents = offNetwork + 8
	offIssuer  = offParents + 2*IDSize
	offSeq     = offIssuer + PublicKeySize
	offTime    = offSeq + 8
	offLen     = offTime + 8
)

// Offsets of fixed fields in the encoding, for code that reads them from an
// encoding without decoding the message (package storage keeps these fields
// nowhere else). The two parents take 2*IDSize bytes, the issuer
// PublicKeySize, the sequence and the timestamp 8 each, big-endian.
const (
	OffsetParents   = offParents
	OffsetIssuer    = offIssuer
	OffsetSeq       = offSeq
	OffsetTimestamp = offTime
)

// NetworkID names a network. Every message carries it, so a message of one
// network is never valid on another.
type NetworkID uint64

// NetworkIDFromName derives the NetworkID for a network name: the first 8
// bytes, big-endian, of BLAKE3-256("weft network " + name).
func NetworkIDFromName(name string) NetworkID {
	h := blake3.Sum256([]byte("weft network " + name))
	return NetworkID(binary.BigEndian.Uint64(h[:8]))
}

// PublicKey is an issuer's ed25519 public key.
type PublicKey [PublicKeySize]byte

// String returns the key in lower-case hex.
func (k PublicKey) String() string { return ID(k).String() }

// Message is one entry of the tangle. Its fields are those of the encoding,
// in order; docs/PROTOCOL.md specifies them byte by byte.
//
// A Message caches its encoding and ID once Bytes or ID has been called (and
// Decode fills both), so its fields must not be assigned after that: use
// Sign and SetNonce, which keep the cache right. A Message whose cache is
// filled is safe to read from several goroutines.
type Message struct {
	Version   uint8
	Network   NetworkID
	Parents   [2]ID
	Issuer    PublicKey
	Seq       uint64
	Timestamp int64 // unix nanoseconds; never negative
	Payload   []byte
	Signature [SignatureSize]byte
	Nonce     uint64

	enc []byte // canonical encoding, nil until Bytes
	id  ID
	// hasID reports whether id is valid for enc.
	hasID bool
}

// Size returns the length of the message's encoding.
func (m *Message) Size() int { return MinSize + len(m.Payload) }

// Bytes returns the canonical encoding. The caller must not modify it.
func (m *Message) Bytes() []byte {
	if m.enc == nil {
		m.enc = m.AppendEncoding(make([]byte, 0, m.Size()))
	}
	return m.enc
}

// AppendEncoding appends the canonical encoding of m to b. It encodes what
// the fields say; it does not check them (Decode does, on the receiving side).
func (m *Message) AppendEncoding(b []byte) []byte {
	b = append(b, m.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Network))
	b = append(b, m.Parents[0][:]...)
	b = append(b, m.Parents[1][:]...)
	b = append(b, m.Issuer[:]...)
	b = binary.BigEndian.AppendUint64(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Timestamp))
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Payload)))
	b = append(b, m.Payload...)
	b = append(b, m.Signature[:]...)
	return binary.BigEndian.AppendUint64(b, m.Nonce)
}

// ID returns the message's ID, the BLAKE3-256 hash of its encoding.
func (m *Message) ID() ID {
	if !m.hasID {
		m.id = blake3.Sum256(m.Bytes())
		m.hasID = true
	}
	return m.id
}

// SigningBytes returns what the issuer signs: the encoding up to, not
// including, the signature. The nonce is left out so that a node can do the
// proof of work for a device without its key. The caller must not modify it.
func (m *Message) SigningBytes() []byte {
	b := m.Bytes()
	return b[:len(b)-TrailerSize]
}

// SetNonce sets the nonce, updating the cached encoding in place.
func (m *Message) SetNonce(n uint64) {
	m.Nonce = n
	if m.enc != nil {
		binary.BigEndian.PutUint64(m.enc[len(m.enc)-pow.NonceSize:], n)
	}
	m.hasID = false
}

// invalidate drops the cached encoding and ID after a field changed.
func (m *Message) invalidate() {
	m.enc = nil
	m.hasID = false
}

// Decode parses the canonical encoding of a message. It accepts exactly one
// byte string per message: anything truncated, with trailing bytes, of
// another version, with a negative timestamp, or with a payload longer than
// maxPayload is rejected with an error wrapping ErrMalformed, ErrVersion or
// ErrTooLarge. A maxPayload of 0 means DefaultMaxPayload.
//
// The returned message keeps b as its encoding: the caller must not modify b
// afterwards. Decode checks the form only; Params.Check checks the network,
// the signature and the proof of work.
func Decode(b []byte, maxPayload int) (*Message, error) {
	if maxPayload <= 0 {
		maxPayload = DefaultMaxPayload
	}
	if len(b) < MinSize {
		return nil, fmt.Errorf("%w: %d bytes, the minimum is %d", ErrMalformed, len(b), MinSize)
	}
	if b[offVersion] != Version {
		return nil, fmt.Errorf("%w: %d", ErrVersion, b[offVersion])
	}
	n := int(binary.BigEndian.Uint16(b[offLen:]))
	if n > maxPayload {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, n, maxPayload)
	}
	if len(b) != MinSize+n {
		return nil, fmt.Errorf("%w: payload length %d needs %d bytes, got %d", ErrMalformed, n, MinSize+n, len(b))
	}
	ts := binary.BigEndian.Uint64(b[offTime:])
	if ts > math.MaxInt64 {
		return nil, fmt.Errorf("%w: negative timestamp", ErrMalformed)
	}
	m := &Message{
		Version:   b[offVersion],
		Network:   NetworkID(binary.BigEndian.Uint64(b[offNetwork:])),
		Seq:       binary.BigEndian.Uint64(b[offSeq:]),
		Timestamp: int64(ts),
		Payload:   b[HeaderSize : HeaderSize+n : HeaderSize+n],
		Nonce:     binary.BigEndian.Uint64(b[len(b)-pow.NonceSize:]),
		enc:       b[:len(b):len(b)],
	}
	copy(m.Parents[0][:], b[offParents:])
	copy(m.Parents[1][:], b[offParents+IDSize:])
	copy(m.Issuer[:], b[offIssuer:])
	copy(m.Signature[:], b[HeaderSize+n:])
	return m, nil
}

// Genesis returns the network's genesis message: version 1, the network id,
// and zero everywhere else. Every node derives the same one; it is never
// signed, solved or validated, and it is solid and confirmed from the start.
func Genesis(network NetworkID) *Message {
	return &Message{Version: Version, Network: network}
}
