package junk

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// TestInitialLayout checks the junk Initial field by field against RFC
// 9000, 17.2.2, so that a QUIC server takes it for a connection attempt.
func TestInitialLayout(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 0))
	for i := range 1000 {
		p := Initial(r)
		if len(p) != InitialSize {
			t.Fatalf("%d: %d bytes", i, len(p))
		}
		if p[0]&0xf0 != 0xc0 || binary.BigEndian.Uint32(p[1:]) != 1 {
			t.Fatalf("%d: first byte %#x, version %#x: not a version 1 Initial", i, p[0], p[1:5])
		}
		off := 5
		dcid := int(p[off])
		if dcid < 8 || dcid > 20 {
			t.Fatalf("%d: destination connection ID of %d bytes", i, dcid)
		}
		off += 1 + dcid
		scid := int(p[off])
		if scid > 20 {
			t.Fatalf("%d: source connection ID of %d bytes", i, scid)
		}
		off += 1 + scid
		if p[off] != 0 {
			t.Fatalf("%d: token length %d", i, p[off])
		}
		off++
		if p[off]>>6 != 1 {
			t.Fatalf("%d: Length is not a 2-byte varint", i)
		}
		if n := int(binary.BigEndian.Uint16(p[off:]) & 0x3fff); off+2+n != len(p) {
			t.Fatalf("%d: Length %d, but %d bytes follow", i, n, len(p)-off-2)
		}
	}
	for range 1000 {
		if n := len(Random(r)); n < 1 || n > InitialSize {
			t.Fatalf("random datagram of %d bytes", n)
		}
	}
}

func TestFloodTargetsOnlyLoopback(t *testing.T) {
	for _, target := range []string{"10.0.0.1:7070", "0.0.0.0:7070", "[::1]:7070", "localhost:7070", "127.0.0.2:7070", "127.0.0.1"} {
		if _, err := Flood(context.Background(), Config{Target: target, Rate: 1, Duration: time.Millisecond}); !errors.Is(err, ErrTarget) {
			t.Errorf("%s: %v, want ErrTarget", target, err)
		}
	}
	st, err := Flood(context.Background(), Config{Target: "127.0.0.1:9", Rate: 1000, Duration: 50 * time.Millisecond, Sockets: 2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent()+st.Errors == 0 {
		t.Fatal("nothing sent")
	}
}
