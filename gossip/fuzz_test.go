package gossip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/weftnet/weft/dag"
)

// The decoders face bytes from any peer that passed the TLS handshake. Each
// fuzz target checks that its decoder never panics, fails only with
// ErrMalformed (or, for framing, ErrFrameTooLarge and a truncation), and
// accepts only canonical encodings: what it accepts re-encodes to the same
// bytes. The seed corpora are in testdata/fuzz/<target>.

func malformed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("untyped error: %v", err)
	}
}

func FuzzDecodeHello(f *testing.F) {
	f.Add(encodeHello(hello{Version: ProtocolVersion, Network: 1, Key: dag.PublicKey{9}})[headerSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHello(b)
		if err != nil {
			malformed(t, err)
			return
		}
		if h.Version != ProtocolVersion {
			if binary.BigEndian.Uint16(b) != h.Version || h.Network != 0 || h.Key != (dag.PublicKey{}) {
				t.Fatalf("another version decoded to %+v", h)
			}
			return
		}
		if !bytes.Equal(encodeHello(h)[headerSize:], b) {
			t.Fatal("accepted a non-canonical hello")
		}
	})
}

func FuzzDecodeMessages(f *testing.F) {
	f.Add(encodeMessages(msgs('f', 0, 3, 20))[0].b[headerSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		raws, err := decodeMessages(b)
		if err != nil {
			malformed(t, err)
			return
		}
		if len(raws) == 0 || checkRaws(raws) != nil {
			t.Fatalf("accepted %d raws, or a raw of impossible size", len(raws))
		}
		if !bytes.Equal(appendBatch(nil, raws), b) {
			t.Fatal("accepted a non-canonical batch")
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(encodeRequests([]dag.ID{{1}, {2}})[0].b[headerSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decodeRequest(b)
		if err != nil {
			malformed(t, err)
			return
		}
		if len(ids) == 0 || len(ids) > MaxRequestIDs {
			t.Fatalf("accepted %d ids", len(ids))
		}
		if !bytes.Equal(encodeRequests(ids)[0].b[headerSize:], b) {
			t.Fatal("accepted a non-canonical request")
		}
	})
}

func FuzzDecodeSyncRequest(f *testing.F) {
	f.Add(encodeSyncRequest(syncRequest{Req: 1, From: 2, Limit: 3})[headerSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeSyncRequest(b)
		if err != nil {
			malformed(t, err)
			return
		}
		if r.Limit == 0 || r.Limit > MaxSyncLimit {
			t.Fatalf("accepted limit %d", r.Limit)
		}
		if !bytes.Equal(encodeSyncRequest(r)[headerSize:], b) {
			t.Fatal("accepted a non-canonical sync request")
		}
	})
}

func FuzzDecodeSyncResponse(f *testing.F) {
	f.Add(encodeSyncResponse(syncResponse{Req: 1, Next: 5, Done: true, Raws: msgs('s', 0, 2, 10)}).b[headerSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeSyncResponse(b)
		if err != nil {
			malformed(t, err)
			return
		}
		if checkRaws(r.Raws) != nil {
			t.Fatal("accepted a raw of impossible size")
		}
		if !bytes.Equal(encodeSyncResponse(r).b[headerSize:], b) {
			t.Fatal("accepted a non-canonical sync response")
		}
	})
}

func FuzzDecodeEntryPoints(f *testing.F) {
	f.Add(encodeEntryPoints(entryPoints{Req: 3, EPs: []EntryPoint{{ID: dag.ID{1}, Timestamp: 7}, {ID: dag.ID{2}, Timestamp: 0}}}).b[headerSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEntryPoints(b)
		if err != nil {
			malformed(t, err)
			return
		}
		if fit, ok := fitEntryPoints(e.EPs); !ok || !slices.Equal(fit, e.EPs) {
			t.Fatalf("accepted entry points a responder could not have sent: %d, fit %d", len(e.EPs), len(fit))
		}
		if !bytes.Equal(encodeEntryPoints(e).b[headerSize:], b) {
			t.Fatal("accepted non-canonical entry points")
		}
	})
}

func FuzzDecodePing(f *testing.F) {
	f.Add(encodePing(framePing, 12345)[headerSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodePing(b)
		if err != nil {
			malformed(t, err)
			return
		}
		if !bytes.Equal(encodePing(framePing, n)[headerSize:], b) {
			t.Fatal("accepted a non-canonical ping")
		}
	})
}

// FuzzReadFrame reads a stream of frames the way a connection's reader
// does, decoding each body by its type.
func FuzzReadFrame(f *testing.F) {
	var stream []byte
	stream = append(stream, encodeHello(hello{Version: ProtocolVersion})...)
	stream = append(stream, encodeMessages(msgs('r', 0, 2, 8))[0].b...)
	stream = append(stream, encodeEntryPoints(entryPoints{Req: 1, EPs: []EntryPoint{{ID: dag.ID{4}, Timestamp: 2}}}).b...)
	stream = append(stream, encodeSyncResponse(syncResponse{Req: 1, Next: 3, Raws: msgs('s', 0, 1, 8)}).b...)
	stream = append(stream, encodePing(framePong, 1)...)
	f.Add(stream)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		var hdr [headerSize]byte
		for {
			typ, body, err := readFrame(r, &hdr, 1<<16) // a smaller limit, so the fuzzer reaches it
			if err != nil {
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrFrameTooLarge) {
					t.Fatalf("untyped error: %v", err)
				}
				return
			}
			if len(body) > 1<<16 {
				t.Fatalf("body of %d bytes over the limit", len(body))
			}
			if err := decodeBody(typ, body); err != nil {
				malformed(t, err)
			}
		}
	})
}

// decodeBody decodes a frame body by type, as session.handle does.
func decodeBody(typ byte, body []byte) error {
	var err error
	switch typ {
	case frameHello:
		_, err = decodeHello(body)
	case frameMessages:
		_, err = decodeMessages(body)
	case frameRequest:
		_, err = decodeRequest(body)
	case frameSyncRequest:
		_, err = decodeSyncRequest(body)
	case frameSyncResponse:
		_, err = decodeSyncResponse(body)
	case frameEntryPoints:
		_, err = decodeEntryPoints(body)
	case framePing, framePong:
		_, err = decodePing(body)
	}
	return err
}
