package dag

import (
	"encoding/hex"
	"fmt"
)

// IDSize is the size of a message ID: a BLAKE3-256 digest.
const IDSize = 32

// ID identifies a message: the BLAKE3-256 hash of its canonical encoding.
type ID [IDSize]byte

// String returns the ID in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses a 64-character hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("%w: id must be %d hex characters, got %d", ErrMalformed, 2*IDSize, len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("%w: id: %v", ErrMalformed, err)
	}
	return id, nil
}
