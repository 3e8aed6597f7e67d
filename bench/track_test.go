package bench

import (
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// TestTrackerNetwork follows messages over three nodes through events that
// arrive in any order, and checks what the tracker counts and measures.
func TestTrackerNetwork(t *testing.T) {
	tr := newTracker(3, false)
	ms := int64(time.Millisecond)
	a, b, c := dag.ID{1}, dag.ID{2}, dag.ID{3}
	tr.add(a, 0, 1) // submitted to node 1
	tr.add(b, 0, 0)
	tr.add(c, 0, 2)
	tr.drop(c) // refused

	// a: durable on its entry node at 10 ms, on node 2 at 25, node 0 at 40.
	tr.durable(2, a, 25*ms)
	tr.durable(1, a, 10*ms)
	tr.durable(0, a, 40*ms)
	tr.confirm(0, a, 0, 100*ms) // another node first: not yet counted
	if tr.confirmed.Load() != 0 || tr.outstanding.Load() != 2 {
		t.Fatalf("confirmed %d, outstanding %d after a confirmation on a node it was not submitted to", tr.confirmed.Load(), tr.outstanding.Load())
	}
	tr.confirm(1, a, 0, 120*ms) // the entry node: counted
	tr.confirm(1, a, 0, 130*ms) // a repeat: ignored
	if tr.confirmed.Load() != 1 || tr.outstanding.Load() != 1 || tr.everywhere.Load() != 0 {
		t.Fatalf("confirmed %d, outstanding %d, everywhere %d", tr.confirmed.Load(), tr.outstanding.Load(), tr.everywhere.Load())
	}
	tr.confirm(2, a, 0, 150*ms) // the last node
	if tr.everywhere.Load() != 1 || tr.notEverywhere.Load() != 1 {
		t.Fatalf("everywhere %d, not everywhere %d", tr.everywhere.Load(), tr.notEverywhere.Load())
	}
	entry, all, prop := tr.snapshot()
	if entry.Count() != 1 || all.Count() != 1 || prop.Count() != 2 {
		t.Fatalf("samples: entry %d, everywhere %d, propagation %d", entry.Count(), all.Count(), prop.Count())
	}
	// The histograms are bucketed: allow their resolution.
	near := func(got time.Duration, want int64) bool {
		return got >= time.Duration(want*ms)*95/100 && got <= time.Duration(want*ms)*105/100
	}
	if !near(entry.Max(), 120) || !near(all.Max(), 150) || !near(prop.Max(), 30) || !near(prop.Quantile(0), 15) {
		t.Errorf("entry %v, everywhere %v, propagation %v..%v; want 120 ms, 150 ms, 15..30 ms",
			entry.Max(), all.Max(), prop.Quantile(0), prop.Max())
	}

	// b is confirmed on every node without its message events (a cut
	// stream): counted, but no propagation sample.
	for n := range 3 {
		tr.confirm(n, b, 0, 50*ms)
	}
	if tr.everywhere.Load() != 2 || tr.notEverywhere.Load() != 0 || tr.outstanding.Load() != 0 {
		t.Fatalf("everywhere %d, not everywhere %d, outstanding %d", tr.everywhere.Load(), tr.notEverywhere.Load(), tr.outstanding.Load())
	}
	if _, _, prop := tr.snapshot(); prop.Count() != 2 {
		t.Errorf("propagation samples %d, want 2", prop.Count())
	}
	for n := range 3 {
		tr.confirm(n, c, 0, 60*ms) // refused earlier: not tracked
	}
	if tr.confirmed.Load() != 2 {
		t.Errorf("a refused message was counted confirmed")
	}

	// With the nodes' own clocks (in-process), the last event to arrive
	// may carry an earlier time than one before it: confirmation on every
	// node runs to the latest time, never before the entry node's.
	tc := newTracker(2, true)
	tc.add(a, 0, 0)
	tc.confirm(0, a, 90*ms, 100*ms) // entry node, confirmed at 90 ms
	tc.confirm(1, a, 80*ms, 110*ms) // arrives later, confirmed earlier
	entry, all, _ = tc.snapshot()
	if all.Max() < entry.Max() || !near(all.Max(), 90) {
		t.Errorf("on every node %v, entry %v: want 90 ms for both", all.Max(), entry.Max())
	}
}
