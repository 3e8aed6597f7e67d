package bench

import (
	"math"
	"math/bits"
	"time"
)

// histSubBits is the precision of a histogram: each power of two is cut into
// 2^histSubBits buckets, so a recorded value is known to within 1/128
// (0.8 %) of itself. Values below 2^histSubBits are exact.
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	// histMaxShift bounds the range: values up to 2^(histMaxShift+8) µs
	// (about 3 years); larger ones are clamped.
	histMaxShift = 40
	histBuckets  = (histMaxShift+1)*histSub + histSub
)

// histogram is a log-linear histogram of durations at microsecond
// resolution, in the manner of HdrHistogram: constant memory (42 KiB),
// constant time per value, and quantiles within 0.8 % of the exact ones,
// never below the true value and never above the largest value recorded.
// The zero value is not usable; use newHistogram. A histogram is not safe
// for concurrent use.
type histogram struct {
	counts   []uint64
	n        uint64
	sum      float64 // µs
	min, max int64   // µs
}

// newHistogram returns an empty histogram.
func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, histBuckets), min: math.MaxInt64}
}

// histIndex returns the bucket of v (µs, non-negative).
func histIndex(v int64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - histSubBits - 1
	if shift > histMaxShift {
		return histBuckets - 1
	}
	return shift*histSub + int(v>>uint(shift))
}

// histUpper returns the largest value that falls in bucket i.
func histUpper(i int) int64 {
	if i < 2*histSub {
		return int64(i)
	}
	shift := i/histSub - 1
	mant := int64(i%histSub + histSub)
	return (mant+1)<<uint(shift) - 1
}

// Record adds one duration. Negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := max(int64(d/time.Microsecond), 0)
	h.counts[histIndex(v)]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Count returns the number of values recorded.
func (h *histogram) Count() uint64 { return h.n }

// Max returns the largest value recorded (0 when empty).
func (h *histogram) Max() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.max) * time.Microsecond
}

// Mean returns the mean of the values recorded (0 when empty).
func (h *histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/float64(h.n)) * time.Microsecond
}

// Quantile returns the q-quantile (0 < q <= 1) by the nearest-rank method:
// the smallest recorded value v such that at least q of the values are at
// or below v, rounded up to its bucket's upper bound and capped at Max. It
// is 0 when the histogram is empty.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := nearestRank(q, h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := max(min(histUpper(i), h.max), h.min)
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// nearestRank returns the 1-based rank of the q-quantile of n values:
// ceil(q*n), at least 1 and at most n.
func nearestRank(q float64, n uint64) uint64 {
	r := uint64(math.Ceil(q * float64(n)))
	return min(max(r, 1), n)
}

// Reset empties the histogram.
func (h *histogram) Reset() {
	clear(h.counts)
	h.n, h.sum, h.min, h.max = 0, 0, math.MaxInt64, 0
}

// Merge adds the values of o to h.
func (h *histogram) Merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}
