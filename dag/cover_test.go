package dag

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// testCheckpoint marks a test checkpoint: a payload of "CP" and its from.
func testCheckpoint(m *Message) (int64, bool) {
	if len(m.Payload) != 10 || string(m.Payload[:2]) != "CP" {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(m.Payload[2:])), true
}

func checkpointPayload(from int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("CP"), uint64(from))
}

// naiveCover is the definition of docs/PROTOCOL.md 8.2, from scratch: for
// each checkpoint, in the order given (each validator's in index order),
// the messages of its past cone with a timestamp of at least its from that
// are not the genesis, nor an earlier checkpoint of the validator, nor
// covered by one.
func naiveCover(msgs []*Message, cps []*Message, genesis ID) map[ID][]ID {
	byID := map[ID]*Message{}
	for _, m := range msgs {
		byID[m.ID()] = m
	}
	done := map[PublicKey]map[ID]bool{}
	out := map[ID][]ID{}
	for _, cp := range cps {
		from, _ := testCheckpoint(cp)
		if done[cp.Issuer] == nil {
			done[cp.Issuer] = map[ID]bool{}
		}
		seen := map[ID]bool{}
		stack := []ID{cp.Parents[0], cp.Parents[1]}
		var leaves []ID
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			m, ok := byID[id]
			if seen[id] || !ok {
				continue
			}
			seen[id] = true
			stack = append(stack, m.Parents[0], m.Parents[1])
			if id != genesis && m.Timestamp >= from && !done[cp.Issuer][id] {
				leaves = append(leaves, id)
			}
		}
		for _, id := range leaves {
			done[cp.Issuer][id] = true
		}
		done[cp.Issuer][cp.ID()] = true
		out[cp.ID()] = leaves
	}
	return out
}

// idsAt returns the IDs of the window's messages at pos.
func (c *Core) idsAt(pos []uint64) []ID {
	ids := make([]ID, len(pos))
	for i, p := range pos {
		ids[i] = c.at(p).id
	}
	return ids
}

func sortedLeaves(ids []ID) []ID {
	s := slices.Clone(ids)
	slices.SortFunc(s, func(a, b ID) int { return slices.Compare(a[:], b[:]) })
	return s
}

// TestCoverMatchesDefinition builds random DAGs with three validators that
// checkpoint as docs/PROTOCOL.md 8.2 says an honest one does, and checks
// what the Core reports each checkpoint covers against the definition, and
// that Cover, asked just before, predicted it.
func TestCoverMatchesDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(seed(t), 0))
	for round := range 30 {
		vals := validators(3)
		c := newCoreT(t, Config{Validators: vals, Checkpoint: testCheckpoint, KeepConfirmed: time.Hour, TipMaxAge: time.Hour})
		clk := newClock()
		genesis := c.Genesis()
		all := []*Message{Genesis(testNet.Network)}
		type chain struct {
			last     *Message
			lastFrom int64
			seq      uint64
		}
		chains := make([]chain, len(vals))
		var cps []*Message
		predicted := map[ID][]ID{}
		margin := int64(1 + r.IntN(40))
		ts := int64(1000)
		for i := range 400 {
			ts += int64(r.IntN(3))
			pick := func() *Message { return all[max(0, len(all)-1-r.IntN(min(len(all), 25)))] }
			a, b := pick(), pick()
			pts := max(a.Timestamp, b.Timestamp, ts)
			if v := r.IntN(12); v < len(vals) && i > 5 {
				ch := &chains[v]
				ch.seq++
				from := pts - margin
				if ch.last != nil {
					b = ch.last
					from = max(ch.last.Timestamp-margin, ch.lastFrom)
				}
				pred, err := c.Cover(vals[v].Key, [2]ID{a.ID(), b.ID()}, from)
				if err != nil {
					t.Fatal(err)
				}
				m := msg(vals[v].Key, ch.seq, max(pts, b.Timestamp), a.ID(), b.ID())
				m.Payload = checkpointPayload(from)
				predicted[m.ID()] = pred
				ch.last, ch.lastFrom = m, from
				cps = append(cps, m)
				mustAdd(t, c, clk.now(), m, Solid)
				all = append(all, m)
				continue
			}
			m := msg(pub(i), 1, pts, a.ID(), b.ID())
			mustAdd(t, c, clk.now(), m, Solid)
			all = append(all, m)
		}
		u := c.Ready()
		want := naiveCover(all, cps, genesis)
		if len(u.Checkpoints) != len(cps) {
			t.Fatalf("round %d: %d checkpoints reported, %d added", round, len(u.Checkpoints), len(cps))
		}
		for k, got := range u.Checkpoints {
			id := got.Msg.ID()
			if id != cps[k].ID() || vals[got.Validator].Key != got.Msg.Issuer {
				t.Fatalf("round %d: checkpoint %d is %s of validator %d", round, k, id, got.Validator)
			}
			if g, w := sortedLeaves(c.idsAt(got.Covered)), sortedLeaves(want[id]); !slices.Equal(g, w) {
				t.Fatalf("round %d, checkpoint %d: covers %d messages, the definition %d", round, k, len(g), len(w))
			}
			if g, p := sortedLeaves(c.idsAt(got.Covered)), sortedLeaves(predicted[id]); !slices.Equal(g, p) {
				t.Fatalf("round %d, checkpoint %d: covers %d messages, Cover predicted %d", round, k, len(g), len(p))
			}
		}
	}
}

// TestCoverNotACheckpoint: a device's message with a checkpoint's payload,
// and a validator's plain message, are no checkpoints.
func TestCoverNotACheckpoint(t *testing.T) {
	vals := validators(1)
	c := newCoreT(t, Config{Validators: vals, Checkpoint: testCheckpoint})
	clk := newClock()
	g := c.Genesis()
	dev := msg(pub(1), 1, 10, g)
	dev.Payload = checkpointPayload(0)
	mustAdd(t, c, clk.now(), dev, Solid)
	mustAdd(t, c, clk.now(), msg(vals[0].Key, 1, 10, dev.ID()), Solid)
	if u := c.Ready(); len(u.Checkpoints) != 0 {
		t.Fatalf("%d checkpoints", len(u.Checkpoints))
	}
	cp := msg(vals[0].Key, 2, 10, dev.ID())
	cp.Payload = checkpointPayload(0)
	mustAdd(t, c, clk.now(), cp, Solid)
	u := c.Ready()
	if len(u.Checkpoints) != 1 || len(u.Checkpoints[0].Covered) != 1 || c.idsAt(u.Checkpoints[0].Covered)[0] != dev.ID() {
		t.Fatalf("checkpoints %+v, want one covering the device's message alone (not the genesis)", u.Checkpoints)
	}
}
