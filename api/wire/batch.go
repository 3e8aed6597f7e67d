package wire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/weftnet/weft/dag"
)

// Limits of the batch endpoint (POST /api/v1/messages/batch).
const (
	// MaxBatchMessages is the most messages one batch may carry.
	MaxBatchMessages = 4096
	// MaxBatchBytes is the most bytes a batch body may have, length
	// prefixes included.
	MaxBatchBytes = 8 << 20
)

// ErrBatchTooLarge: a batch exceeds MaxBatchMessages or MaxBatchBytes.
var ErrBatchTooLarge = errors.New("wire: batch too large")

// SplitBatch splits a batch body (each message preceded by its length,
// 4 bytes big-endian) into the messages' encodings, which alias b. A body
// that cannot be split wraps dag.ErrMalformed; one with a message longer
// than maxMessage or more than MaxBatchMessages messages wraps
// dag.ErrTooLarge.
func SplitBatch(b []byte, maxMessage int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: batch: %d stray bytes", dag.ErrMalformed, len(b))
		}
		n := binary.BigEndian.Uint32(b)
		if int64(n) > int64(maxMessage) {
			return nil, fmt.Errorf("%w: batch: a message of %d bytes", dag.ErrTooLarge, n)
		}
		if uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%w: batch: a message runs past the end", dag.ErrMalformed)
		}
		out = append(out, b[4:4+n:4+n])
		b = b[4+n:]
		if len(out) > MaxBatchMessages {
			return nil, fmt.Errorf("%w: batch of more than %d messages", dag.ErrTooLarge, MaxBatchMessages)
		}
	}
	return out, nil
}

// EncodeBatch returns the body of a batch request. It refuses more than
// MaxBatchMessages messages or a body over MaxBatchBytes with
// ErrBatchTooLarge.
func EncodeBatch(raws [][]byte) ([]byte, error) {
	if len(raws) > MaxBatchMessages {
		return nil, fmt.Errorf("%w: %d messages, at most %d", ErrBatchTooLarge, len(raws), MaxBatchMessages)
	}
	n := 0
	for _, r := range raws {
		n += 4 + len(r)
	}
	if n > MaxBatchBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBatchTooLarge, n, MaxBatchBytes)
	}
	body := make([]byte, 0, n)
	for _, r := range raws {
		body = binary.BigEndian.AppendUint32(body, uint32(len(r)))
		body = append(body, r...)
	}
	return body, nil
}
