package proof

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/weftnet/weft/dag"
)

// Checkpoint is the payload of a validator's checkpoint message. It commits
// to the messages the checkpoint covers (docs/PROTOCOL.md 8.2): those in the
// checkpoint's past cone with a timestamp of at least From that none of the
// validator's earlier checkpoints covered, nor is one of them.
type Checkpoint struct {
	// Index numbers the validator's checkpoints from 1.
	Index uint64
	// Prev is the ID of the validator's checkpoint Index-1, zero for the
	// first: a hash chain per validator.
	Prev dag.ID
	// From is the lowest timestamp a covered message may have (unix
	// nanoseconds, never negative). The covered range of timestamps runs
	// from it to the checkpoint's own timestamp.
	From int64
	// Count is the number of covered messages: the tree's leaves, at least 1.
	Count uint32
	// Root is the root of the Merkle tree over the covered messages' ids.
	Root Hash
}

// CheckpointSize is the size of an encoded Checkpoint.
const CheckpointSize = 4 + 8 + dag.IDSize + 8 + 4 + 32

// checkpointMagic starts every checkpoint payload: "WCP" and the format
// version 1.
var checkpointMagic = [4]byte{'W', 'C', 'P', 1}

// ErrCheckpoint: a payload is not a canonical checkpoint.
var ErrCheckpoint = errors.New("proof: not a checkpoint")

// AppendBinary appends the checkpoint's encoding to b.
func (c Checkpoint) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, checkpointMagic[:]...)
	b = binary.BigEndian.AppendUint64(b, c.Index)
	b = append(b, c.Prev[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.From))
	b = binary.BigEndian.AppendUint32(b, c.Count)
	return append(b, c.Root[:]...), nil
}

// Encode returns the checkpoint's encoding: a checkpoint message's payload.
func (c Checkpoint) Encode() []byte {
	b, _ := c.AppendBinary(make([]byte, 0, CheckpointSize))
	return b
}

// IsCheckpoint reports whether a validator's payload claims to be a
// checkpoint (its size and magic); DecodeCheckpoint checks the rest.
func IsCheckpoint(payload []byte) bool {
	return len(payload) == CheckpointSize && [4]byte(payload[:4]) == checkpointMagic
}

// DecodeCheckpoint parses a checkpoint payload. It accepts exactly the
// encodings Encode produces for a checkpoint with Index >= 1, a zero Prev if
// and only if Index is 1, a non-negative From and a Count >= 1; anything
// else wraps ErrCheckpoint.
func DecodeCheckpoint(p []byte) (Checkpoint, error) {
	var c Checkpoint
	if len(p) != CheckpointSize {
		return c, fmt.Errorf("%w: %d bytes, a checkpoint has %d", ErrCheckpoint, len(p), CheckpointSize)
	}
	if [4]byte(p[:4]) != checkpointMagic {
		return c, fmt.Errorf("%w: magic %x", ErrCheckpoint, p[:4])
	}
	c.Index = binary.BigEndian.Uint64(p[4:])
	copy(c.Prev[:], p[12:])
	from := binary.BigEndian.Uint64(p[44:])
	c.Count = binary.BigEndian.Uint32(p[52:])
	copy(c.Root[:], p[56:])
	switch {
	case c.Index == 0:
		return c, fmt.Errorf("%w: index 0", ErrCheckpoint)
	case (c.Index == 1) != (c.Prev == dag.ID{}):
		return c, fmt.Errorf("%w: index %d with previous %s", ErrCheckpoint, c.Index, c.Prev)
	case from > math.MaxInt64:
		return c, fmt.Errorf("%w: negative from", ErrCheckpoint)
	case c.Count == 0:
		return c, fmt.Errorf("%w: no messages covered", ErrCheckpoint)
	}
	c.From = int64(from)
	return c, nil
}
