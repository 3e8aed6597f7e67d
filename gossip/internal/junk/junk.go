// Package junk floods a QUIC listener on loopback with junk datagrams, to
// check that junk costs a gossip node no memory: random bytes, and packets
// that look like QUIC version 1 Initials (long header, version 1, a random
// destination connection ID, padded to 1200 bytes) but carry no valid
// handshake. It is a test tool: Flood refuses any target but 127.0.0.1.
package junk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// InitialSize is the size of a junk Initial: the smallest datagram a QUIC
// server must take as a connection attempt (RFC 9000, 14.1).
const InitialSize = 1200

// ErrTarget: Flood was given a target other than 127.0.0.1.
var ErrTarget = errors.New("junk: target must be 127.0.0.1")

// Initial returns a datagram of InitialSize bytes that parses as a QUIC
// version 1 Initial packet: first byte 0b1100xxxx, version 1, a random
// destination connection ID of 8 to 20 bytes, a random source connection ID
// of 0 to 20 bytes, no token, a Length field that matches the rest, and a
// random (so undecryptable) packet number and payload.
func Initial(r *rand.Rand) []byte {
	b := make([]byte, 0, InitialSize)
	b = append(b, 0xc0|byte(r.IntN(4))) // long header, fixed bit, type Initial, packet number length
	b = binary.BigEndian.AppendUint32(b, 1)
	b = appendConnID(b, r, 8+r.IntN(13))
	b = appendConnID(b, r, r.IntN(21))
	b = append(b, 0) // token length: no token
	// Length, a 2-byte varint, covers the packet number and the payload:
	// everything after it.
	rest := InitialSize - len(b) - 2
	b = binary.BigEndian.AppendUint16(b, 0x4000|uint16(rest))
	return appendRandom(b, r, rest)
}

// Random returns 1 to InitialSize random bytes: short-header packets for
// unknown connections, long headers of unknown versions, unparseable
// headers and undersized Initials, in proportions chance decides.
func Random(r *rand.Rand) []byte {
	return appendRandom(nil, r, 1+r.IntN(InitialSize))
}

func appendConnID(b []byte, r *rand.Rand, n int) []byte {
	b = append(b, byte(n))
	return appendRandom(b, r, n)
}

func appendRandom(b []byte, r *rand.Rand, n int) []byte {
	for range n / 8 {
		b = binary.LittleEndian.AppendUint64(b, r.Uint64())
	}
	for range n % 8 {
		b = append(b, byte(r.Uint32()))
	}
	return b
}

// Config says what to flood, how fast and for how long.
type Config struct {
	// Target is the UDP address to flood; its host must be 127.0.0.1.
	Target string
	// Rate is the datagrams per second to aim for, over all sockets.
	Rate int
	// Duration is how long to flood (or until the context ends).
	Duration time.Duration
	// Sockets is how many UDP sockets (source ports) send, default 64.
	Sockets int
	// Seed seeds the junk; each socket draws from its own stream.
	Seed uint64
}

// Stats counts what a Flood sent.
type Stats struct {
	Initials, Random uint64 // datagrams sent of each kind
	Errors           uint64 // sends that failed (a full socket buffer, ICMP unreachable)
	Elapsed          time.Duration
}

// Sent is the number of datagrams sent.
func (s Stats) Sent() uint64 { return s.Initials + s.Random }

// Flood sends junk to cfg.Target for cfg.Duration at about cfg.Rate
// datagrams a second, half Initials and half random bytes, each from one
// of cfg.Sockets sockets bound to 127.0.0.1. It returns what it sent, or
// ErrTarget (nothing sent) for a target that is not 127.0.0.1. Each socket
// sends from its own goroutine; Flood waits for all of them.
func Flood(ctx context.Context, cfg Config) (Stats, error) {
	target, err := loopback(cfg.Target)
	if err != nil {
		return Stats{}, err
	}
	if cfg.Rate <= 0 || cfg.Duration <= 0 {
		return Stats{}, fmt.Errorf("junk: rate %d and duration %v must be positive", cfg.Rate, cfg.Duration)
	}
	if cfg.Sockets <= 0 {
		cfg.Sockets = 64
	}
	conns := make([]*net.UDPConn, 0, cfg.Sockets)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cfg.Sockets {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return Stats{}, fmt.Errorf("junk: socket: %w", err)
		}
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var initials, randoms, errs atomic.Uint64
	begin := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		perSocket := float64(cfg.Rate) / float64(len(conns))
		wg.Go(func() {
			send := func(b []byte, n *atomic.Uint64) {
				if _, err := c.WriteToUDP(b, target); err != nil {
					errs.Add(1)
					return
				}
				n.Add(1)
			}
			for sent := 0; ctx.Err() == nil; {
				// Catch up with the rate, then wait a millisecond.
				due := int(perSocket * time.Since(begin).Seconds())
				for ; sent < due && ctx.Err() == nil; sent++ {
					if sent%2 == 0 {
						send(Initial(r), &initials)
					} else {
						send(Random(r), &randoms)
					}
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	return Stats{Initials: initials.Load(), Random: randoms.Load(), Errors: errs.Load(), Elapsed: time.Since(begin)}, nil
}

// loopback resolves addr and checks that it is 127.0.0.1.
func loopback(addr string) (*net.UDPAddr, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrTarget, addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		return nil, fmt.Errorf("%w: got %q", ErrTarget, addr)
	}
	ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrTarget, addr, err)
	}
	return ua, nil
}
