package dag

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// memStore keeps what a store would: every solid message with its
// positions, and confirmation times.
type memStore struct {
	recs []Restored
}

func (s *memStore) apply(t *testing.T, u Update) {
	for _, sm := range u.Solid {
		if sm.Pos != uint64(len(s.recs)) {
			t.Fatalf("solid at position %d, store at %d", sm.Pos, len(s.recs))
		}
		s.recs = append(s.recs, Restored{Msg: sm.Msg, Pos: sm.Pos, ParentPos: sm.ParentPos})
	}
	for _, c := range u.Confirmed {
		s.recs[c.Pos].ConfirmedAt = max(c.At, 1)
	}
	for _, o := range u.Orphaned {
		s.recs[o.Pos].Orphaned = true
	}
}

// firstUnconfirmed is the store's confirmed-prefix watermark.
func (s *memStore) firstUnconfirmed() uint64 {
	for i, r := range s.recs {
		if r.ConfirmedAt == 0 && !r.Orphaned {
			return uint64(i)
		}
	}
	return uint64(len(s.recs))
}

func TestRestore(t *testing.T) {
	r := rand.New(rand.NewPCG(seed(t), 2))
	vs := validators(4)
	cfg := Config{Params: testNet, Validators: vs, MaxPending: 1 << 20}
	orig, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st := &memStore{}
	st.apply(t, orig.Ready())
	// Validators 0, 1 and 2 are active at first; later only 0 and 1, so an
	// unconfirmed backlog builds up.
	g := newDAGGen(orig.Genesis())
	msgs := append(g.gen(r, vs[:3], 2000, 10, 5), g.gen(r, vs[:2], 1000, 10, 5)...)
	now := time.Unix(100, 0)
	for i, m := range msgs {
		if st, err := orig.Add(now, m); st != Solid {
			t.Fatalf("message %d: %v %v", i, st, err)
		}
		st.apply(t, orig.Ready())
	}
	if orig.Stats().Unconfirmed < 100 {
		t.Fatalf("no backlog to restore: %+v", orig.Stats())
	}

	from := st.firstUnconfirmed() - min(st.firstUnconfirmed(), 50)
	restored, err := Restore(cfg, now, st.recs[from:])
	if err != nil {
		t.Fatal(err)
	}
	if u := restored.Ready(); len(u.Confirmed) != 0 {
		t.Fatalf("restore confirmed %d messages the store had as unconfirmed", len(u.Confirmed))
	}
	os, rs := orig.Stats(), restored.Stats()
	if os.Next != rs.Next || os.Unconfirmed != rs.Unconfirmed {
		t.Fatalf("stats: original %+v, restored %+v", os, rs)
	}
	for _, rec := range st.recs[from:] {
		a, _ := orig.State(rec.Msg.ID())
		b, ok := restored.State(rec.Msg.ID())
		if !ok || a.Confirmed != b.Confirmed || (!a.Confirmed && a.Weight != b.Weight) || a.Children != b.Children {
			t.Fatalf("message at %d: original %+v, restored %+v", rec.Pos, a, b)
		}
	}

	// Validator 3 now joins on the newest message: both cores must confirm
	// the same messages at the same positions.
	newest := st.recs[len(st.recs)-1].Msg
	late := []*Message{msg(vs[3].Key, 1, newest.Timestamp, newest.ID())}
	for _, c := range []*Core{orig, restored} {
		if st, err := c.Add(now, late[0]); st != Solid {
			t.Fatalf("late: %v %v", st, err)
		}
	}
	a, b := orig.Ready(), restored.Ready()
	if len(a.Confirmed) == 0 || !slices.Equal(a.Confirmed, b.Confirmed) {
		t.Fatalf("confirmations differ: original %d, restored %d", len(a.Confirmed), len(b.Confirmed))
	}
	if !slices.Equal(ids(a.Solid), ids(b.Solid)) || a.Solid[0].Pos != b.Solid[0].Pos {
		t.Fatal("solid output differs")
	}
}

func TestRestoreRejects(t *testing.T) {
	cfg := Config{Params: testNet, Validators: validators(1)}
	c, _ := New(cfg)
	st := &memStore{}
	st.apply(t, c.Ready())
	a := msg(pub(1), 1, 1, c.Genesis())
	c.Add(time.Unix(1, 0), a)
	st.apply(t, c.Ready())
	now := time.Unix(2, 0)

	gap := []Restored{st.recs[0], st.recs[1]}
	gap[1].Pos = 5
	wrongParent := []Restored{st.recs[0], st.recs[1]}
	wrongParent[1].ParentPos = [2]uint64{1, 0}
	otherGenesis := []Restored{{Msg: Genesis(99)}}
	for name, recs := range map[string][]Restored{
		"empty": nil, "gap": gap, "parent position": wrongParent, "other network": otherGenesis,
	} {
		if _, err := Restore(cfg, now, recs); !errors.Is(err, ErrRestore) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Restore(cfg, now, st.recs); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreOrphans: orphans are settled in the store, so a restore that
// begins at the watermark leaves them out of the unconfirmed count, the tips,
// and the walks.
func TestRestoreOrphans(t *testing.T) {
	vs := validators(3)
	cfg := Config{Params: testNet, Validators: vs}
	c, _ := New(cfg)
	st := &memStore{}
	st.apply(t, c.Ready())
	clk := newClock()
	chain(t, c, clk, c.Genesis(), 3) // nobody approves them
	st.apply(t, c.Ready())
	c.Tick(clk.advance(OrphanAge + time.Second))
	u := c.Ready()
	if len(u.Orphaned) != 2 || u.Orphaned[0].Pos != 1 || u.Orphaned[1].Pos != 2 {
		t.Fatalf("orphaned %+v", u.Orphaned)
	}
	st.apply(t, u)
	if got := st.firstUnconfirmed(); got != 3 {
		t.Fatalf("watermark %d, want 3: orphans settle", got)
	}
	r, err := Restore(cfg, clk.now(), st.recs)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Unconfirmed != 1 {
		t.Fatalf("restored stats %+v: want the one live message unconfirmed", s)
	}
	if tipSet(r)[st.recs[1].Msg.ID()] || tipSet(r)[st.recs[2].Msg.ID()] {
		t.Fatal("an orphan is offered as a tip")
	}
	// Two validators approve the newest message: it confirms; the orphans
	// below it stay unconfirmed.
	newest := st.recs[3].Msg
	for i := 0; i < 2; i++ {
		mustAdd(t, r, clk.now(), msg(vs[i].Key, 1, newest.Timestamp, newest.ID()), Solid)
	}
	got := confirmedIDs(r.Ready().Confirmed)
	if !got[newest.ID()] || got[st.recs[1].Msg.ID()] || got[st.recs[2].Msg.ID()] {
		t.Fatalf("confirmed newest=%v orphans=%v %v", got[newest.ID()], got[st.recs[1].Msg.ID()], got[st.recs[2].Msg.ID()])
	}
}
