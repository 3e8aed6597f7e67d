package dag

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode checks that Decode accepts exactly the canonical encodings: any
// input it accepts re-encodes to the same bytes, and any it rejects gets one
// of the package's errors. The seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Add(Genesis(1).Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		m, err := Decode(b, 0)
		if err != nil {
			if m != nil {
				t.Fatal("message returned with an error")
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !bytes.Equal(m.AppendEncoding(nil), in) {
			t.Fatalf("accepted a non-canonical encoding")
		}
		if m.Size() != len(in) || len(m.Payload) > DefaultMaxPayload {
			t.Fatalf("size %d for %d bytes", m.Size(), len(in))
		}
		// Checking must not panic, whatever the bytes.
		_ = DefaultParams(m.Network).Check(m)
	})
}
