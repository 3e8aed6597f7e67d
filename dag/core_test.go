package dag

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestSolidifyOutOfOrder(t *testing.T) {
	clk := newClock()
	c := newCoreT(t, Config{Validators: validators(1)})
	g := c.Genesis()
	dev := pub(1)
	a := msg(dev, 1, 10, g)
	b := msg(dev, 2, 20, a.ID(), g)
	d := msg(dev, 3, 30, b.ID(), a.ID())

	mustAdd(t, c, clk.now(), d, Pending)
	u := c.Ready()
	if !slices.Equal(u.Missing, []ID{b.ID(), a.ID()}) {
		t.Fatalf("missing after d: %v", u.Missing)
	}
	mustAdd(t, c, clk.now(), b, Pending)
	u = c.Ready()
	// b waits for a, which d asked for already: nothing new to request.
	if len(u.Missing) != 0 || len(u.Solid) != 0 {
		t.Fatalf("after b: missing %v solid %v", u.Missing, ids(u.Solid))
	}
	mustAdd(t, c, clk.now(), d, Duplicate)
	mustAdd(t, c, clk.now(), a, Solid)
	u = c.Ready()
	if got, want := ids(u.Solid), []ID{a.ID(), b.ID(), d.ID()}; !slices.Equal(got, want) {
		t.Fatalf("solid order %v, want a b d", got)
	}
	for i, s := range u.Solid {
		if s.Pos != uint64(i+1) {
			t.Fatalf("solid %d at position %d", i, s.Pos)
		}
	}
	if u.Solid[2].ParentPos != [2]uint64{2, 1} {
		t.Fatalf("d's parent positions %v, want [2 1]", u.Solid[2].ParentPos)
	}
	if st := c.Stats(); st.Pending != 0 || st.Next != 4 || st.Unconfirmed != 3 {
		t.Fatalf("stats %+v", st)
	}
	mustAdd(t, c, clk.now(), a, Duplicate)
}

func TestTimestampRule(t *testing.T) {
	clk := newClock()
	c := newCoreT(t, Config{Validators: validators(1)})
	dev := pub(1)
	a := msg(dev, 1, 100, c.Genesis())
	bad := msg(dev, 2, 99, a.ID()) // older than its parent
	child := msg(dev, 3, 200, bad.ID())
	grandchild := msg(dev, 4, 300, child.ID())
	equal := msg(dev, 5, 100, a.ID()) // same time as its parent: fine

	mustAdd(t, c, clk.now(), grandchild, Pending)
	mustAdd(t, c, clk.now(), child, Pending)
	mustAdd(t, c, clk.now(), a, Solid)
	st, err := c.Add(clk.now(), bad)
	if st != Invalid || !errors.Is(err, ErrTimestamp) {
		t.Fatalf("bad: %v %v", st, err)
	}
	u := c.Ready()
	if len(u.Rejected) != 2 || u.Rejected[0].ID != child.ID() || u.Rejected[1].ID != grandchild.ID() {
		t.Fatalf("rejected %+v", u.Rejected)
	}
	for _, r := range u.Rejected {
		if !errors.Is(r.Err, ErrInvalidParent) {
			t.Fatalf("rejection %v", r.Err)
		}
	}
	// A later child of the invalid message is rejected at once.
	st, err = c.Add(clk.now(), msg(dev, 6, 500, bad.ID(), a.ID()))
	if st != Invalid || !errors.Is(err, ErrInvalidParent) {
		t.Fatalf("late child: %v %v", st, err)
	}
	// The invalid message again gets the same verdict, not duplicate.
	if st, err := c.Add(clk.now(), bad); st != Invalid || !errors.Is(err, ErrTimestamp) {
		t.Fatalf("the invalid message again: %v %v", st, err)
	}
	mustAdd(t, c, clk.now(), equal, Solid)

	// A message whose parent is invalid rejects the children waiting on it.
	waiter := msg(dev, 7, 600, ID{9})
	mid := msg(dev, 8, 550, bad.ID())
	waiter.Parents = [2]ID{mid.ID(), mid.ID()}
	c.Ready()
	mustAdd(t, c, clk.now(), waiter, Pending)
	if st, err := c.Add(clk.now(), mid); st != Invalid || !errors.Is(err, ErrInvalidParent) {
		t.Fatalf("mid: %v %v", st, err)
	}
	if u := c.Ready(); len(u.Rejected) != 1 || u.Rejected[0].ID != waiter.ID() {
		t.Fatalf("waiter not rejected: %+v", u.Rejected)
	}
}

func TestWalkStopsAtConfirmed(t *testing.T) {
	// Validators 0 and 1 confirm a long history; validator 2, silent until
	// now, then issues: its walk must not go down the confirmed history.
	clk := newClock()
	vs := validators(3)
	c := newCoreT(t, Config{Validators: vs})
	tip := c.Genesis()
	for i := 0; i < 1000; i++ {
		m := msg(pub(1), uint64(i), int64(i), tip)
		mustAdd(t, c, clk.now(), m, Solid)
		tip = m.ID()
		if i%10 == 9 {
			for v := 0; v < 2; v++ {
				vm := msg(vs[v].Key, uint64(i), int64(i), tip)
				mustAdd(t, c, clk.now(), vm, Solid)
				tip = vm.ID()
			}
		}
	}
	before := c.Stats()
	if before.Unconfirmed > 2 {
		t.Fatalf("history not confirmed: %d unconfirmed", before.Unconfirmed)
	}
	mustAdd(t, c, clk.now(), msg(vs[2].Key, 1, 2000, tip), Solid)
	if steps := c.Stats().WalkSteps - before.WalkSteps; steps > 10 {
		t.Fatalf("the returning validator's walk visited %d messages", steps)
	}
}

// chain adds n device messages, each on the previous one, and returns them.
func chain(t *testing.T, c *Core, clk *clock, from ID, n int) []*Message {
	t.Helper()
	var out []*Message
	prev := from
	for i := 0; i < n; i++ {
		m := msg(pub(1), uint64(1000+len(out)), clk.now().UnixNano(), prev)
		mustAdd(t, c, clk.now(), m, Solid)
		out = append(out, m)
		prev = m.ID()
	}
	return out
}

func TestConfirmation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		weights []uint64
		// active validators, in the order they issue; the others stay silent.
		active []int
		// after how many of the active validators' messages the device
		// messages are confirmed (0: never).
		confirmAfter int
	}{
		{"one validator", []uint64{1}, []int{0}, 1},
		{"three validators", []uint64{1, 1, 1}, []int{0, 1, 2}, 2},
		{"three, one silent", []uint64{1, 1, 1}, []int{2, 0}, 2},
		{"three, two silent", []uint64{1, 1, 1}, []int{1}, 0},
		{"four validators", []uint64{1, 1, 1, 1}, []int{0, 1, 2, 3}, 3},
		{"four, one silent", []uint64{1, 1, 1, 1}, []int{3, 1, 0}, 3},
		{"four, two silent", []uint64{1, 1, 1, 1}, []int{0, 1}, 0},
		{"weighted: heavy alone", []uint64{7, 1, 1, 1}, []int{0}, 1},
		{"weighted: light ones", []uint64{7, 1, 1, 1}, []int{1, 2, 3}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			vs := validators(len(tc.weights), tc.weights...)
			c := newCoreT(t, Config{Validators: vs})
			msgs := chain(t, c, clk, c.Genesis(), 5)
			c.Ready()
			tip := msgs[len(msgs)-1].ID()
			confirmed := map[ID]bool{}
			for i, v := range tc.active {
				clk.advance(time.Millisecond)
				vm := msg(vs[v].Key, uint64(i), clk.now().UnixNano(), tip)
				mustAdd(t, c, clk.now(), vm, Solid)
				tip = vm.ID()
				u := c.Ready()
				for id := range confirmedIDs(u.Confirmed) {
					confirmed[id] = true
				}
				// Positions are reported in order.
				if !slices.IsSortedFunc(u.Confirmed, func(a, b Confirmation) int { return int(a.Pos) - int(b.Pos) }) {
					t.Fatalf("confirmations out of order: %+v", u.Confirmed)
				}
				want := tc.confirmAfter != 0 && i+1 >= tc.confirmAfter
				for _, m := range msgs {
					if confirmed[m.ID()] != want {
						t.Fatalf("after %d validator messages: confirmed=%v, want %v", i+1, confirmed[m.ID()], want)
					}
				}
			}
			if tc.confirmAfter == 0 {
				if st := c.Stats(); st.Unconfirmed != 5+len(tc.active) {
					t.Fatalf("unconfirmed %d", st.Unconfirmed)
				}
			}
		})
	}
}

func TestConfirmedConeIsClosed(t *testing.T) {
	// Three validators: a side branch that only validator 0 approves stays
	// unconfirmed, while the main branch confirms.
	clk := newClock()
	vs := validators(3)
	c := newCoreT(t, Config{Validators: vs})
	g := c.Genesis()
	main := msg(pub(1), 1, 10, g)
	side := msg(pub(2), 1, 10, g)
	mustAdd(t, c, clk.now(), main, Solid)
	mustAdd(t, c, clk.now(), side, Solid)
	v0 := msg(vs[0].Key, 1, 20, main.ID(), side.ID())
	v1 := msg(vs[1].Key, 1, 20, main.ID())
	mustAdd(t, c, clk.now(), v0, Solid)
	mustAdd(t, c, clk.now(), v1, Solid)
	u := c.Ready()
	got := confirmedIDs(u.Confirmed)
	if !got[main.ID()] || got[side.ID()] || got[v0.ID()] {
		t.Fatalf("confirmed main=%v side=%v v0=%v", got[main.ID()], got[side.ID()], got[v0.ID()])
	}
	if s, _ := c.State(side.ID()); s.Weight != 1 || s.Confirmed {
		t.Fatalf("side state %+v", s)
	}
	// v2 approves v0: now v0 and its whole past cone, side included, are confirmed.
	mustAdd(t, c, clk.now(), msg(vs[2].Key, 1, 30, v0.ID()), Solid)
	got = confirmedIDs(c.Ready().Confirmed)
	if !got[side.ID()] || !got[v0.ID()] {
		t.Fatalf("after v2: side=%v v0=%v", got[side.ID()], got[v0.ID()])
	}
}

func TestEquivocation(t *testing.T) {
	clk := newClock()
	c := newCoreT(t, Config{Validators: validators(1)})
	dev := pub(7)
	a := msg(dev, 5, 10, c.Genesis())
	b := msg(dev, 5, 11, c.Genesis()) // same issuer and sequence, other content
	mustAdd(t, c, clk.now(), a, Solid)
	mustAdd(t, c, clk.now(), b, Solid) // both stay in the ledger
	u := c.Ready()
	if len(u.Solid) != 2 {
		t.Fatalf("solid %d", len(u.Solid))
	}
	want := []Equivocation{{Issuer: dev, Seq: 5, First: a.ID(), Second: b.ID()}}
	if !slices.Equal(u.Equivocations, want) {
		t.Fatalf("equivocations %+v", u.Equivocations)
	}
	mustAdd(t, c, clk.now(), msg(dev, 6, 12, a.ID(), b.ID()), Solid)
	if u := c.Ready(); len(u.Equivocations) != 0 {
		t.Fatalf("a new sequence reported as equivocation")
	}
}

func TestPendingBounds(t *testing.T) {
	clk := newClock()
	c := newCoreT(t, Config{Validators: validators(1), MaxPending: 3, PendingTTL: time.Second})
	var orphans []*Message
	for i := 0; i < 4; i++ {
		var unknown ID
		unknown[0] = byte(i + 1)
		m := msg(pub(1), uint64(i), 10, unknown)
		orphans = append(orphans, m)
		mustAdd(t, c, clk.advance(time.Millisecond), m, Pending)
	}
	u := c.Ready()
	if len(u.Rejected) != 1 || u.Rejected[0].ID != orphans[0].ID() || !errors.Is(u.Rejected[0].Err, ErrExpired) {
		t.Fatalf("full buffer: rejected %+v", u.Rejected)
	}
	if st := c.Stats(); st.Pending != 3 {
		t.Fatalf("pending %d, want the bound 3", st.Pending)
	}
	if got := len(c.Missing(10)); got != 3 {
		t.Fatalf("Missing lists %d ids, want 3", got)
	}
	c.Tick(clk.advance(2 * time.Second))
	u = c.Ready()
	if len(u.Rejected) != 3 || c.Stats().Pending != 0 || len(c.waiting) != 0 {
		t.Fatalf("after ttl: rejected %d pending %d waiting %d", len(u.Rejected), c.Stats().Pending, len(c.waiting))
	}
	// An expired message may come back.
	mustAdd(t, c, clk.now(), orphans[0], Pending)
}

// TestPendingOrderBounded: the queue of pending messages' arrivals does
// not keep the entries of messages that became solid for PendingTTL: with
// a child arriving just before its parent, again and again, it stays
// within twice the pending set (plus the 1,024 entries it may keep, and
// the pair just added).
func TestPendingOrderBounded(t *testing.T) {
	clk := newClock()
	c := newCoreT(t, Config{Validators: validators(1)})
	parent := c.Genesis()
	const rounds = 20_000
	for i := 0; i < rounds; i++ {
		a := msg(pub(1), uint64(2*i), 10, parent)
		b := msg(pub(1), uint64(2*i+1), 10, a.ID())
		mustAdd(t, c, clk.advance(time.Microsecond), b, Pending)
		mustAdd(t, c, clk.now(), a, Solid)
		if st := c.Stats(); st.Pending != 0 {
			t.Fatalf("round %d: %d pending, want none", i, st.Pending)
		}
		if n := c.pendingOrder.len(); n > 2*len(c.pending)+1026 {
			t.Fatalf("round %d: %d entries queued for %d pending messages", i, n, len(c.pending))
		}
		parent = b.ID()
		c.Ready()
	}
	// An old pending message at the front does not let the rest grow.
	var unknown ID
	unknown[0] = 1
	mustAdd(t, c, clk.now(), msg(pub(2), 1, 10, unknown), Pending)
	for i := rounds; i < 2*rounds; i++ {
		a := msg(pub(1), uint64(2*i), 10, parent)
		b := msg(pub(1), uint64(2*i+1), 10, a.ID())
		mustAdd(t, c, clk.advance(time.Microsecond), b, Pending)
		mustAdd(t, c, clk.now(), a, Solid)
		parent = b.ID()
		c.Ready()
	}
	if n := c.pendingOrder.len(); n > 2*len(c.pending)+1026 || len(c.pending) != 1 {
		t.Fatalf("%d entries queued for %d pending messages", n, len(c.pending))
	}
	// The one left still expires.
	c.Tick(clk.advance(2 * time.Minute))
	if u := c.Ready(); len(u.Rejected) != 1 || !errors.Is(u.Rejected[0].Err, ErrExpired) {
		t.Fatalf("rejected %+v, want the old pending message expired", u.Rejected)
	}
}

func tipSet(c *Core) map[ID]bool {
	out := map[ID]bool{}
	for i := 0; i < len(c.tips); i++ {
		out[c.Tip(i)] = true
	}
	return out
}

func TestTipPool(t *testing.T) {
	clk := newClock()
	c := newCoreT(t, Config{Validators: validators(3), MaxTips: 4, TipMaxChildren: 2, TipMaxAge: 10 * time.Second})
	g := c.Genesis()
	var ms []*Message
	for i := 0; i < 6; i++ {
		m := msg(pub(1), uint64(i), 10, g)
		ms = append(ms, m)
		mustAdd(t, c, clk.advance(time.Millisecond), m, Solid)
	}
	// Genesis left after two children; the pool holds the newest four.
	tips := tipSet(c)
	if len(tips) != 4 || tips[g] || tips[ms[0].ID()] || tips[ms[1].ID()] || !tips[ms[5].ID()] {
		t.Fatalf("pool after 6: %d tips", len(tips))
	}
	// One child keeps a tip; a second removes it.
	mustAdd(t, c, clk.now(), msg(pub(1), 10, 20, ms[5].ID()), Solid)
	if !tipSet(c)[ms[5].ID()] {
		t.Fatal("tip with one child left the pool")
	}
	mustAdd(t, c, clk.now(), msg(pub(1), 11, 20, ms[5].ID()), Solid)
	if tipSet(c)[ms[5].ID()] {
		t.Fatal("tip with two children stayed")
	}
	if c.TipCount() > 4 {
		t.Fatalf("pool over its bound: %d", c.TipCount())
	}
	// Age: everything goes after TipMaxAge, and the newest message is
	// offered as the tip of last resort.
	c.Tick(clk.advance(11 * time.Second))
	if len(c.tips) != 0 || c.TipCount() != 1 || c.Tip(0) != c.nodes[len(c.nodes)-1].id {
		t.Fatalf("after age: %d tips, offered %d", len(c.tips), c.TipCount())
	}
}

func TestLazyTips(t *testing.T) {
	clk := newClock()
	vs := validators(1)
	c := newCoreT(t, Config{Validators: vs, LazyAge: time.Second, TipMaxAge: time.Hour})
	g := c.Genesis()
	sec := int64(time.Second)
	old := msg(pub(1), 1, 1*sec, g)
	mustAdd(t, c, clk.now(), old, Solid)
	kept := msg(pub(1), 2, 1*sec, g)
	mustAdd(t, c, clk.now(), kept, Solid)
	mustAdd(t, c, clk.now(), msg(vs[0].Key, 1, 100*sec, kept.ID()), Solid) // confirms kept
	clk.advance(2 * time.Second)

	// A child of an unconfirmed parent that arrived more than LazyAge
	// earlier is valid, but never joins the pool.
	late := msg(pub(2), 1, 200*sec, old.ID())
	mustAdd(t, c, clk.now(), late, Solid)
	if tipSet(c)[late.ID()] {
		t.Fatal("a child of an old unconfirmed parent joined the pool")
	}
	// An old parent that is confirmed costs nothing to approve.
	onKept := msg(pub(2), 2, 200*sec, kept.ID())
	mustAdd(t, c, clk.now(), onKept, Solid)
	if !tipSet(c)[onKept.ID()] {
		t.Fatal("a child of an old confirmed parent was treated as lazy")
	}
	// Laziness is judged by arrival, not by the timestamps issuers claim:
	// a message queued for a long time before it was sent (98 s older than
	// the newest confirmed message) is offered.
	queued := msg(pub(3), 1, 2*sec, g)
	mustAdd(t, c, clk.now(), queued, Solid)
	if !tipSet(c)[queued.ID()] {
		t.Fatal("a message with an old timestamp on fresh parents was treated as lazy")
	}
	// Tick does not change its mind.
	c.Tick(clk.advance(10 * time.Millisecond))
	if ts := tipSet(c); !ts[queued.ID()] || ts[late.ID()] {
		t.Fatal("Tick changed the pool's laziness")
	}
}

func TestPruneAndEntryPoints(t *testing.T) {
	clk := newClock()
	vs := validators(1)
	c := newCoreT(t, Config{Validators: vs, KeepConfirmed: time.Second})
	ms := chain(t, c, clk, c.Genesis(), 3)
	mustAdd(t, c, clk.now(), msg(vs[0].Key, 1, clk.now().UnixNano(), ms[2].ID()), Solid)
	c.Ready()
	c.Tick(clk.advance(2 * time.Second))
	if st := c.Stats(); st.Window != 1 || st.Next != 5 {
		t.Fatalf("after prune: %+v", st)
	}
	if c.Known(ms[0].ID()) {
		t.Fatal("pruned message still known")
	}
	// A late child of a pruned message asks for it; the caller finds it in
	// its store and hands it back as an entry point.
	late := msg(pub(2), 1, clk.now().UnixNano(), ms[0].ID())
	mustAdd(t, c, clk.now(), late, Pending)
	if u := c.Ready(); !slices.Equal(u.Missing, []ID{ms[0].ID()}) {
		t.Fatalf("missing %v", u.Missing)
	}
	c.AddEntryPoint(clk.now(), ms[0].ID(), 1, ms[0].Timestamp)
	u := c.Ready()
	if len(u.Solid) != 1 || u.Solid[0].Msg != late || u.Solid[0].ParentPos != [2]uint64{1, 1} {
		t.Fatalf("after entry point: %+v", u.Solid)
	}
}

func TestOrphansLeaveMemory(t *testing.T) {
	clk := newClock()
	vs := validators(3)
	c := newCoreT(t, Config{Validators: vs, KeepConfirmed: time.Second})
	chain(t, c, clk, c.Genesis(), 3) // never approved by 2/3
	c.Tick(clk.advance(OrphanAge + time.Second))
	u := c.Ready()
	// Genesis (confirmed) and the two older chain messages leave; the
	// newest stays as the tip of last resort.
	if st := c.Stats(); st.Window != 1 || st.Unconfirmed != 1 || len(u.Orphaned) != 2 {
		t.Fatalf("stats %+v orphaned %d", st, len(u.Orphaned))
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no validators", Config{Params: testNet}},
		{"zero weight", Config{Params: testNet, Validators: []Validator{{Key: pub(1)}}}},
		{"twice", Config{Params: testNet, Validators: []Validator{{pub(1), 1}, {pub(1), 1}}}},
		{"threshold over 1", Config{Params: testNet, Validators: validators(1), ThresholdNum: 4, ThresholdDen: 3}},
		{"no payload", Config{Params: Params{Network: 1}, Validators: validators(1)}},
		{"pow too hard", Config{Params: Params{Network: 1, MaxPayload: 10, PoWBase: 70}, Validators: validators(1)}},
	} {
		if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", tc.name, err)
		}
	}
}

// TestNotTips: messages of an issuer in NotTips are valid and count as
// approvals, but never join the pool.
func TestNotTips(t *testing.T) {
	clk := newClock()
	vs := validators(2)
	c := newCoreT(t, Config{Validators: vs, NotTips: []PublicKey{vs[0].Key}})
	g := c.Genesis()
	dev := msg(pub(1), 1, 1, g)
	mustAdd(t, c, clk.now(), dev, Solid)
	own := msg(vs[0].Key, 1, 2, dev.ID())
	mustAdd(t, c, clk.now(), own, Solid)
	other := msg(vs[1].Key, 1, 2, dev.ID())
	mustAdd(t, c, clk.now(), other, Solid)
	ts := tipSet(c)
	if ts[own.ID()] || !ts[other.ID()] {
		t.Fatalf("pool %v: want the other validator's message and not the listed issuer's", ts)
	}
	if st, _ := c.State(dev.ID()); !st.Confirmed {
		t.Fatal("both validators approved the device's message, and it is not confirmed")
	}
}

// TestReject: a message refused by the stateless checks makes its children
// invalid, those that come after it at once and those already waiting in
// the next Ready; a message the core holds is not touched.
func TestReject(t *testing.T) {
	clk := newClock()
	c := newCoreT(t, Config{Validators: validators(1)})
	g := c.Genesis()
	ts := clk.t.UnixNano()
	bad := msg(pub(1), 1, ts, g)
	waiting := msg(pub(2), 1, ts, bad.ID(), g)
	mustAdd(t, c, clk.t, waiting, Pending)
	if m, ok := c.PendingMessage(waiting.ID()); !ok || m != waiting {
		t.Fatal("the waiting child is not pending")
	}
	c.Ready()

	c.Reject(clk.t, bad.ID(), ErrSignature)
	u := c.Ready()
	if len(u.Rejected) != 1 || u.Rejected[0].ID != waiting.ID() || !errors.Is(u.Rejected[0].Err, ErrInvalidParent) {
		t.Fatalf("rejected: %+v, want the waiting child with ErrInvalidParent", u.Rejected)
	}
	if _, ok := c.PendingMessage(waiting.ID()); ok {
		t.Fatal("the rejected child is still pending")
	}
	late := msg(pub(3), 1, ts, g, bad.ID())
	if st, err := c.Add(clk.t, late); st != Invalid || !errors.Is(err, ErrInvalidParent) {
		t.Fatalf("a child after the rejection: %v %v, want Invalid, ErrInvalidParent", st, err)
	}
	if st, err := c.Add(clk.t, late); st != Invalid || !errors.Is(err, ErrInvalidParent) {
		t.Fatalf("the same child again: %v %v, want the same verdict, not a duplicate", st, err)
	}

	good := msg(pub(4), 1, ts, g)
	mustAdd(t, c, clk.t, good, Solid)
	c.Reject(clk.t, good.ID(), ErrSignature) // held: left alone
	mustAdd(t, c, clk.t, msg(pub(5), 1, ts, good.ID()), Solid)
}

// TestEntryPointWithoutPosition: an entry point a peer named has no
// position here (NoPos); its children become solid, and a validator's walk
// over them stops there, confirming them, before and after a restore.
func TestEntryPointWithoutPosition(t *testing.T) {
	clk := newClock()
	vs := validators(1)
	c := newCoreT(t, Config{Validators: vs})
	named := msg(pub(3), 1, clk.now().UnixNano(), c.Genesis())
	child := msg(pub(2), 1, clk.now().UnixNano(), named.ID())
	mustAdd(t, c, clk.now(), child, Pending)
	c.Ready()
	c.AddEntryPoint(clk.now(), named.ID(), noPos, named.Timestamp)
	u := c.Ready()
	if len(u.Solid) != 1 || u.Solid[0].ParentPos != [2]uint64{noPos, noPos} {
		t.Fatalf("child of a NoPos entry point: %+v", u.Solid)
	}
	mustAdd(t, c, clk.now(), msg(vs[0].Key, 1, clk.now().UnixNano(), child.ID()), Solid)
	u = c.Ready()
	if len(u.Confirmed) != 2 || u.Confirmed[0].ID != child.ID() {
		t.Fatalf("confirmed %+v, want the child and the validator's message", u.Confirmed)
	}
	// Restored with the child unconfirmed, a validator's walk reaches the
	// NoPos parent again.
	recs := []Restored{
		{Msg: child, Pos: 1, ParentPos: [2]uint64{noPos, noPos}},
		{Msg: msg(vs[0].Key, 2, clk.now().UnixNano(), child.ID()), Pos: 2, ParentPos: [2]uint64{1, 1}},
	}
	r, err := Restore(Config{Validators: vs, Params: testNet}, clk.now(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := r.State(child.ID()); !ok || !st.Confirmed {
		t.Fatalf("restored child: %+v %v", st, ok)
	}
}
