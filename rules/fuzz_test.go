package rules

import (
	"bytes"
	"testing"
)

// seedMatch is an outbox record as the engine writes it.
func seedMatch(payload string) []byte {
	res, err := Test(logRule("hot", "true"), []Message{testMessage(7, 1, payload)}, nil)
	if err != nil || len(res.Matches) != 1 {
		panic("no seed match")
	}
	return encodeJSON(&res.Matches[0])
}

// FuzzDecodeMatch: whatever an outbox record holds, the decoder refuses it
// or returns a match that encodes to a record it decodes the same.
func FuzzDecodeMatch(f *testing.F) {
	f.Add(seedMatch(`{"temp_c": 9.5}`))
	f.Add(seedMatch("\x00binary"))
	f.Add([]byte(`{"rule":"a","delivery":"a:0","message":{"payload":1,"payload_encoding":"json"}}`))
	f.Add([]byte(`{"rule":"a","delivery":"a:0","message":{"payload":1,"payload_encoding":"base64"}}`))
	f.Add([]byte(`{"rule":"a"}{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMatch(b)
		if err != nil {
			return
		}
		again, err := DecodeMatch(encodeJSON(m))
		if err != nil {
			t.Fatalf("a decoded match does not decode again: %v", err)
		}
		if !bytes.Equal(encodeJSON(again), encodeJSON(m)) {
			t.Fatalf("not stable:\n%s\n%s", encodeJSON(m), encodeJSON(again))
		}
	})
}

// FuzzDecodeDeadLetter: the same for dead letters.
func FuzzDecodeDeadLetter(f *testing.F) {
	m, _ := DecodeMatch(seedMatch(`{"temp_c": 9.5}`))
	f.Add(encodeJSON(&DeadLetter{Match: *m, Attempts: 10, LastError: "webhook: 503", FailedAt: testEpoch}))
	f.Add([]byte(`{"match":{},"attempts":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeDeadLetter(b)
		if err != nil {
			return
		}
		again, err := decodeDeadLetter(encodeJSON(d))
		if err != nil {
			t.Fatalf("a decoded dead letter does not decode again: %v", err)
		}
		if again.Attempts != d.Attempts || again.LastError != d.LastError || !again.FailedAt.Equal(d.FailedAt) || again.Match.Delivery != d.Match.Delivery {
			t.Fatalf("not stable: %+v, %+v", d, again)
		}
	})
}

// FuzzDecodeCursor: a cursor is exactly 8 bytes and encodes back to them.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(0))
	f.Add(encodeCursor(1 << 40))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCursor(b)
		if (err == nil) != (len(b) == 8) {
			t.Fatalf("%x: %v", b, err)
		}
		if err == nil && !bytes.Equal(encodeCursor(c), b) {
			t.Fatalf("%x decodes to %d, which encodes to %x", b, c, encodeCursor(c))
		}
	})
}
