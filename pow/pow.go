// Package pow is Weft's proof of work: a message's ID (the BLAKE3-256 hash of
// its canonical encoding) must start with at least D zero bits, where D grows
// with the encoding's size so that small telemetry is cheap.
//
// The package works on encoded bytes and knows nothing else of messages: the
// nonce is the last NonceSize bytes of the encoding, big-endian. It is pure
// except for Solve, which uses goroutines it waits for before returning.
package pow

import (
	"context"
	"encoding/binary"
	"errors"
	"math/bits"
	"runtime"
	"sync"

	"github.com/zeebo/blake3"
)

// NonceSize is the size of the nonce that ends every encoding.
const NonceSize = 8

// BlockSize is the unit of size that work is scored in: each doubling of the
// number of blocks adds one bit of difficulty.
const BlockSize = 256

// MaxDifficulty bounds the difficulty a network may ask for; 256 bits is the
// whole hash, and anything near it could never be solved.
const MaxDifficulty = 64

// DefaultBase is the default base difficulty: a message of up to BlockSize
// bytes needs DefaultBase leading zero bits.
const DefaultBase = 10

var (
	// ErrTooShort: the input is shorter than a nonce.
	ErrTooShort = errors.New("pow: input shorter than the nonce")
	// ErrDifficulty: the difficulty is out of range.
	ErrDifficulty = errors.New("pow: difficulty out of range")
)

// Difficulty returns the number of leading zero bits an encoding of size bytes
// needs on a network whose base difficulty is base:
//
//	D(size) = base + ceil(log2(ceil(size / 256)))
//
// So 1..256 bytes need base bits, 257..512 base+1, 513..1024 base+2, and so
// on: the expected work (2^D hashes of size bytes) grows in proportion to the
// size. A size below 1 counts as 1.
func Difficulty(size, base int) int {
	blocks := (size + BlockSize - 1) / BlockSize
	if blocks < 1 {
		blocks = 1
	}
	return base + bits.Len(uint(blocks-1))
}

// LeadingZeros returns the number of leading zero bits of h, counting from
// the first byte's most significant bit.
func LeadingZeros(h [32]byte) int {
	for i := 0; i < 32; i += 8 {
		if w := binary.BigEndian.Uint64(h[i:]); w != 0 {
			return i*8 + bits.LeadingZeros64(w)
		}
	}
	return 256
}

// Meets reports whether id has at least difficulty leading zero bits.
func Meets(id [32]byte, difficulty int) bool {
	return LeadingZeros(id) >= difficulty
}

// Hash is the ID function: BLAKE3-256 of the whole encoding.
func Hash(enc []byte) [32]byte { return blake3.Sum256(enc) }

// Solve searches for a nonce that gives enc at least difficulty leading zero
// bits, writes it into the last NonceSize bytes of enc, and returns it. It
// uses workers goroutines (0 means runtime.GOMAXPROCS), each on its own
// stripe of the nonce space starting from enc's current nonce, and returns
// ctx.Err() if ctx ends first, leaving enc's nonce unspecified.
// Solve may be called concurrently with distinct enc slices.
func Solve(ctx context.Context, enc []byte, difficulty, workers int) (uint64, error) {
	if len(enc) < NonceSize {
		return 0, ErrTooShort
	}
	if difficulty < 0 || difficulty > MaxDifficulty {
		return 0, ErrDifficulty
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	off := len(enc) - NonceSize
	start := binary.BigEndian.Uint64(enc[off:])
	if workers == 1 || difficulty <= 8 {
		// Cheap enough that starting goroutines costs more than it saves.
		n, ok := search(ctx, enc, off, difficulty, start, 1, nil)
		if !ok {
			return 0, ctx.Err()
		}
		binary.BigEndian.PutUint64(enc[off:], n)
		return n, nil
	}

	var (
		found = make(chan uint64, workers)
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		buf := append([]byte(nil), enc...)
		wg.Add(1)
		go func(first uint64) {
			defer wg.Done()
			if n, ok := search(ctx, buf, off, difficulty, first, uint64(workers), stop); ok {
				found <- n
			}
		}(start + uint64(w))
	}
	var (
		n   uint64
		err error
	)
	select {
	case n = <-found:
	case <-ctx.Done():
		err = ctx.Err()
	}
	close(stop)
	wg.Wait()
	if err != nil {
		return 0, err
	}
	binary.BigEndian.PutUint64(enc[off:], n)
	return n, nil
}

// search tries nonces first, first+step, ... in buf until one meets
// difficulty, ctx ends or stop closes. It checks for cancellation every
// 1024 tries, which costs well under a millisecond.
func search(ctx context.Context, buf []byte, off, difficulty int, first, step uint64, stop <-chan struct{}) (uint64, bool) {
	for n := first; ; {
		for i := 0; i < 1024; i++ {
			binary.BigEndian.PutUint64(buf[off:], n)
			if Meets(blake3.Sum256(buf), difficulty) {
				return n, true
			}
			n += step
		}
		select {
		case <-ctx.Done():
			return 0, false
		case <-stop:
			return 0, false
		default:
		}
	}
}
