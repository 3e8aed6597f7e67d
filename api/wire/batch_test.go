package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/weftnet/weft/dag"
)

func TestSplitBatch(t *testing.T) {
	for _, tc := range []struct {
		body []byte
		want error
	}{
		{nil, nil},
		{[]byte{0, 0, 0}, dag.ErrMalformed},
		{[]byte{0, 0, 0, 5, 1, 2}, dag.ErrMalformed},
		{[]byte{0, 0, 0, 2, 1, 2}, nil},
		{[]byte{0xff, 0xff, 0xff, 0xff}, dag.ErrTooLarge},
		{bytes.Repeat([]byte{0, 0, 0, 0}, MaxBatchMessages+1), dag.ErrTooLarge},
	} {
		if _, err := SplitBatch(tc.body, 1000); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("SplitBatch(% x...): %v, want %v", tc.body[:min(len(tc.body), 8)], err, tc.want)
		}
	}
}

func TestEncodeBatchLimits(t *testing.T) {
	if _, err := EncodeBatch(make([][]byte, MaxBatchMessages+1)); !errors.Is(err, ErrBatchTooLarge) {
		t.Errorf("too many messages: %v", err)
	}
	if _, err := EncodeBatch([][]byte{make([]byte, MaxBatchBytes)}); !errors.Is(err, ErrBatchTooLarge) {
		t.Errorf("too many bytes: %v", err)
	}
	b, err := EncodeBatch([][]byte{{1, 2}, {}})
	if err != nil || !bytes.Equal(b, []byte{0, 0, 0, 2, 1, 2, 0, 0, 0, 0}) {
		t.Fatalf("% x, %v", b, err)
	}
}

// FuzzSplitBatch: a batch body never panics the splitter, and what it
// accepts re-encodes to the same bytes.
func FuzzSplitBatch(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 1, 2})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := SplitBatch(b, 1000)
		if err != nil {
			return
		}
		joined, err := EncodeBatch(parts)
		if err != nil || !bytes.Equal(joined, b) {
			t.Fatalf("split does not re-join: %v", err)
		}
	})
}
