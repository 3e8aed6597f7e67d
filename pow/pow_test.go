package pow

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDifficulty(t *testing.T) {
	for _, tc := range []struct{ size, base, want int }{
		{0, 10, 10}, {1, 10, 10}, {256, 10, 10}, {257, 10, 11}, {295, 10, 11},
		{512, 10, 11}, {513, 10, 12}, {1024, 10, 12}, {1025, 10, 13},
		{65536 + 195, 10, 19}, {100, 0, 0}, {300, 3, 4},
	} {
		if got := Difficulty(tc.size, tc.base); got != tc.want {
			t.Errorf("Difficulty(%d, %d) = %d, want %d", tc.size, tc.base, got, tc.want)
		}
	}
}

func TestLeadingZeros(t *testing.T) {
	var h [32]byte
	if got := LeadingZeros(h); got != 256 {
		t.Fatalf("zero hash: %d", got)
	}
	for bit := 0; bit < 256; bit++ {
		var h [32]byte
		h[bit/8] = 0x80 >> (bit % 8)
		h[31] |= 1 // a set bit after the first must not matter
		if got := LeadingZeros(h); got != bit {
			t.Fatalf("first set bit %d: LeadingZeros = %d", bit, got)
		}
		if !Meets(h, bit) || Meets(h, bit+1) {
			t.Fatalf("Meets wrong at bit %d", bit)
		}
	}
}

func TestSolve(t *testing.T) {
	for _, workers := range []int{1, 2, 4} {
		for _, d := range []int{0, 4, 12} {
			t.Run(fmt.Sprintf("w%d_d%d", workers, d), func(t *testing.T) {
				enc := make([]byte, 300)
				for i := range enc {
					enc[i] = byte(i * 7)
				}
				n, err := Solve(context.Background(), enc, d, workers)
				if err != nil {
					t.Fatal(err)
				}
				if got := binary.BigEndian.Uint64(enc[len(enc)-NonceSize:]); got != n {
					t.Fatalf("nonce written %d, returned %d", got, n)
				}
				if lz := LeadingZeros(Hash(enc)); lz < d {
					t.Fatalf("solution has %d leading zeros, want >= %d", lz, d)
				}
			})
		}
	}
}

func TestSolveCancel(t *testing.T) {
	enc := make([]byte, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	// 60 bits cannot be found in the lifetime of the test.
	if _, err := Solve(ctx, enc, 60, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestSolveBadInput(t *testing.T) {
	if _, err := Solve(context.Background(), make([]byte, 3), 1, 1); !errors.Is(err, ErrTooShort) {
		t.Fatalf("short input: %v", err)
	}
	if _, err := Solve(context.Background(), make([]byte, 30), MaxDifficulty+1, 1); !errors.Is(err, ErrDifficulty) {
		t.Fatalf("difficulty: %v", err)
	}
}

// message100 is a 295-byte encoding: a 100-byte payload plus the fixed 195
// bytes of a Weft message.
func message100() []byte {
	enc := make([]byte, 295)
	for i := range enc {
		enc[i] = byte(i)
	}
	return enc
}

func BenchmarkVerify(b *testing.B) {
	enc := message100()
	d := Difficulty(len(enc), DefaultBase)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		Meets(Hash(enc), d)
	}
}

// BenchmarkSolve reports the time to solve a 295-byte message (100-byte
// payload) at each difficulty around the default, on all cores and on one.
func BenchmarkSolve(b *testing.B) {
	for _, workers := range []int{0, 1} {
		for _, d := range []int{8, 10, DefaultBase + 1, 12, 14} {
			b.Run(fmt.Sprintf("workers=%d/D=%d", workers, d), func(b *testing.B) {
				enc := message100()
				for i := 0; b.Loop(); i++ {
					binary.BigEndian.PutUint64(enc[len(enc)-NonceSize:], uint64(i)<<40)
					_, err := Solve(context.Background(), enc, d, workers)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "solutions/s")
			})
		}
	}
}
