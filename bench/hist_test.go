package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// exactQuantile is the reference: the nearest-rank q-quantile of vs.
func exactQuantile(vs []int64, q float64) int64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[nearestRank(q, uint64(len(s)))-1]
}

func TestHistogramBuckets(t *testing.T) {
	prevIdx, prevUpper := -1, int64(-1)
	for v := int64(0); v < 1<<20; v += 1 + v/97 {
		i := histIndex(v)
		if i < prevIdx {
			t.Fatalf("index of %d is %d, below the index %d of a smaller value", v, i, prevIdx)
		}
		up := histUpper(i)
		if up < v {
			t.Fatalf("value %d in bucket %d whose upper bound is %d", v, i, up)
		}
		if i > 0 && histUpper(i-1) >= v {
			t.Fatalf("value %d in bucket %d, but bucket %d reaches %d", v, i, i-1, histUpper(i-1))
		}
		if v >= histSub && float64(up-v) > float64(v)/histSub {
			t.Fatalf("bucket of %d is too wide: up to %d", v, up)
		}
		if i != prevIdx && up <= prevUpper {
			t.Fatalf("upper bounds not increasing at %d", v)
		}
		prevIdx, prevUpper = i, up
	}
	if got := histIndex(math.MaxInt64); got != histBuckets-1 {
		t.Fatalf("the largest value falls in bucket %d, want the last, %d", got, histBuckets-1)
	}
}

func TestHistogramQuantilesAgainstExact(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for _, dist := range []struct {
		name string
		gen  func() int64
	}{
		{"uniform", func() int64 { return r.Int64N(2_000_000) }},
		{"lognormal", func() int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 9)) }},
		{"small", func() int64 { return r.Int64N(100) }},
		{"constant", func() int64 { return 4242 }},
	} {
		for _, n := range []int{1, 2, 3, 10, 99, 100, 101, 5000} {
			h := newHistogram()
			vs := make([]int64, n)
			for i := range vs {
				vs[i] = dist.gen()
				h.Record(time.Duration(vs[i]) * time.Microsecond)
			}
			for _, q := range []float64{0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
				want := exactQuantile(vs, q)
				got := int64(h.Quantile(q) / time.Microsecond)
				if got < want || float64(got-want) > float64(want)/histSub {
					t.Errorf("%s n=%d q=%g: got %d µs, exact %d µs", dist.name, n, q, got, want)
				}
			}
			if got, want := int64(h.Max()/time.Microsecond), slices.Max(vs); got != want {
				t.Errorf("%s n=%d: max %d, want %d", dist.name, n, got, want)
			}
			if h.Quantile(0.5) > h.Quantile(0.99) || h.Quantile(0.99) > h.Max() {
				t.Errorf("%s n=%d: quantiles out of order", dist.name, n)
			}
		}
	}
}

func TestHistogramEdges(t *testing.T) {
	h := newHistogram()
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 || h.Count() != 0 {
		t.Fatal("an empty histogram should report zeros")
	}
	h.Record(-time.Second) // counts as zero
	h.Record(3 * time.Millisecond)
	if h.Count() != 2 || h.Quantile(0.5) != 0 || h.Max() != 3*time.Millisecond {
		t.Fatalf("got count %d, p50 %v, max %v", h.Count(), h.Quantile(0.5), h.Max())
	}
	if got := h.Mean(); got != 1500*time.Microsecond {
		t.Fatalf("mean %v", got)
	}
	o := newHistogram()
	o.Record(time.Hour)
	h.Merge(o)
	if h.Count() != 3 || h.Max() != time.Hour {
		t.Fatalf("after merge: count %d, max %v", h.Count(), h.Max())
	}
	h.Reset()
	if h.Count() != 0 || h.Max() != 0 || h.Quantile(1) != 0 {
		t.Fatal("reset left values behind")
	}
}

func TestNearestRank(t *testing.T) {
	for _, c := range []struct {
		q    float64
		n    uint64
		want uint64
	}{{0.5, 1, 1}, {0.5, 2, 1}, {0.5, 3, 2}, {0.99, 100, 99}, {0.99, 101, 100}, {1, 10, 10}, {0, 10, 1}, {0.001, 10, 1}} {
		if got := nearestRank(c.q, c.n); got != c.want {
			t.Errorf("nearestRank(%g, %d) = %d, want %d", c.q, c.n, got, c.want)
		}
	}
}
