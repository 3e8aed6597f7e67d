package tipselect_test

import (
	"errors"
	"testing"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/tipselect"
)

func TestUniformEmptyPool(t *testing.T) {
	r := testRand(t)
	_, _, err := tipselect.NewUniform(slicePool(nil)).Select(r)
	if !errors.Is(err, tipselect.ErrNoTips) {
		t.Fatalf("Select on an empty pool: err = %v, want ErrNoTips", err)
	}
}

func TestUniformSingleTip(t *testing.T) {
	r := testRand(t)
	u := tipselect.NewUniform(newSlicePool(1))
	for range 100 {
		a, b, err := u.Select(r)
		if err != nil {
			t.Fatal(err)
		}
		if a != idOf(0) || b != idOf(0) {
			t.Fatalf("Select on a one-tip pool = %v, %v; want the tip twice", a, b)
		}
	}
}

// TestUniformDistribution checks, with chi-square statistics, that each tip
// is equally likely in either position and that every ordered pair of
// distinct tips is equally likely. The thresholds sit far in the tail
// (p < 1e-9 for a correct selector), so the test does not flake.
func TestUniformDistribution(t *testing.T) {
	r := testRand(t)
	const n = 12
	const draws = 132_000 // n*(n-1) = 132 ordered pairs, 1000 expected each
	u := tipselect.NewUniform(newSlicePool(n))
	var pairs [n][n]int
	var first, second [n]int
	for range draws {
		a, b, err := u.Select(r)
		if err != nil {
			t.Fatal(err)
		}
		i, j := indexOf(a), indexOf(b)
		if i == j {
			t.Fatalf("Select returned tip %d twice from a %d-tip pool", i, n)
		}
		pairs[i][j]++
		first[i]++
		second[j]++
	}
	chi2 := func(counts []int, expected float64) float64 {
		s := 0.0
		for _, c := range counts {
			d := float64(c) - expected
			s += d * d / expected
		}
		return s
	}
	var flat []int
	for i := range n {
		for j := range n {
			if i != j {
				flat = append(flat, pairs[i][j])
			}
		}
	}
	// Chi-square with k degrees of freedom has mean k and sd sqrt(2k);
	// the bounds below are about k + 9 sd.
	for _, c := range []struct {
		name   string
		counts []int
		limit  float64
	}{
		{"first parent", first[:], 55},     // 11 dof
		{"second parent", second[:], 55},   // 11 dof
		{"ordered pairs", flat, 131 + 150}, // 131 dof
	} {
		got := chi2(c.counts, float64(draws)/float64(len(c.counts)))
		t.Logf("%s: chi2 = %.1f over %d cells (limit %.0f)", c.name, got, len(c.counts), c.limit)
		if got > c.limit {
			t.Errorf("%s: chi2 = %.1f > %.0f: not uniform: %v", c.name, got, c.limit, c.counts)
		}
	}
}

func TestUniformTwoTips(t *testing.T) {
	r := testRand(t)
	u := tipselect.NewUniform(newSlicePool(2))
	seen := map[[2]dag.ID]int{}
	for range 1000 {
		a, b, err := u.Select(r)
		if err != nil {
			t.Fatal(err)
		}
		if a == b {
			t.Fatal("Select returned the same tip twice from a two-tip pool")
		}
		seen[[2]dag.ID{a, b}]++
	}
	if len(seen) != 2 {
		t.Fatalf("two-tip pool: saw %d orderings, want both", len(seen))
	}
}

func TestUniformNoAlloc(t *testing.T) {
	r := testRand(t)
	u := tipselect.NewUniform(newSlicePool(10_000))
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := u.Select(r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Uniform.Select allocates %.1f times per call, want 0", allocs)
	}
}

func TestUniformNilPoolPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewUniform(nil) did not panic")
		}
	}()
	tipselect.NewUniform(nil)
}
