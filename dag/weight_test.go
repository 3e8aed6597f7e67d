package dag

import (
	"flag"
	"math/rand/v2"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomized tests (0: from the clock)")

// seed returns the seed of a randomized test and prints it, so that a
// failure can be replayed with -seed.
func seed(t *testing.T) uint64 {
	s := *seedFlag
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -seed %d)", s, s)
	return s
}

// naiveWeights is the reference: for each message, the summed weight of the
// validators that issued a message in its future cone (itself included),
// recomputed from scratch by walking the whole past cone of every validator
// message.
func naiveWeights(msgs []*Message, vals map[PublicKey]int, weights []uint64) map[ID]uint64 {
	byID := map[ID]*Message{}
	for _, m := range msgs {
		byID[m.ID()] = m
	}
	approvers := map[ID]map[int]bool{}
	for _, m := range msgs {
		v, ok := vals[m.Issuer]
		if !ok {
			continue
		}
		seen := map[ID]bool{}
		stack := []ID{m.ID()}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[id] {
				continue
			}
			seen[id] = true
			if approvers[id] == nil {
				approvers[id] = map[int]bool{}
			}
			approvers[id][v] = true
			if p, ok := byID[id]; ok {
				stack = append(stack, p.Parents[0], p.Parents[1])
			}
		}
	}
	out := map[ID]uint64{}
	for id, vs := range approvers {
		for v := range vs {
			out[id] += weights[v]
		}
	}
	return out
}

// dagGen builds random DAGs: each message picks two parents among the last
// window messages; about one in every validatorEvery is a validator's.
type dagGen struct {
	all  []ID
	ts   map[ID]int64
	seqs map[PublicKey]uint64
}

func newDAGGen(genesis ID) *dagGen {
	return &dagGen{all: []ID{genesis}, ts: map[ID]int64{genesis: 0}, seqs: map[PublicKey]uint64{}}
}

func (g *dagGen) gen(r *rand.Rand, vs []Validator, n, window, validatorEvery int) []*Message {
	var msgs []*Message
	for i := 0; i < n; i++ {
		pick := func() ID {
			lo := max(0, len(g.all)-window)
			return g.all[lo+r.IntN(len(g.all)-lo)]
		}
		p0, p1 := pick(), pick()
		issuer := pub(1 + r.IntN(20))
		if r.IntN(validatorEvery) == 0 {
			issuer = vs[r.IntN(len(vs))].Key
		}
		g.seqs[issuer]++
		m := msg(issuer, g.seqs[issuer], max(g.ts[p0], g.ts[p1])+int64(r.IntN(3)), p0, p1)
		g.ts[m.ID()] = m.Timestamp
		g.all = append(g.all, m.ID())
		msgs = append(msgs, m)
	}
	return msgs
}

func randomDAG(r *rand.Rand, genesis ID, vs []Validator, n, window, validatorEvery int) []*Message {
	return newDAGGen(genesis).gen(r, vs, n, window, validatorEvery)
}

// TestWeightsMatchNaive checks the amortized bitset walk against the naive
// reference on random DAGs that arrive in random order: the same confirmed
// set, and the same weight for every unconfirmed message.
func TestWeightsMatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(seed(t), 1))
	for round := 0; round < 30; round++ {
		nv := 1 + r.IntN(7)
		vs := validators(nv)
		for i := range vs {
			vs[i].Weight = 1 + uint64(r.IntN(10))
		}
		num := uint64(1 + r.IntN(3))
		den := num + uint64(r.IntN(3))
		c := newCoreT(t, Config{Validators: vs, ThresholdNum: num, ThresholdDen: den, MaxPending: 1 << 20})
		msgs := randomDAG(r, c.Genesis(), vs, 200+r.IntN(600), 2+r.IntN(30), 2+r.IntN(20))

		// Deliver in a random order that is only locally shuffled, as
		// gossip would: messages arrive before their parents now and then.
		order := make([]*Message, len(msgs))
		copy(order, msgs)
		for i := range order {
			j := min(len(order)-1, i+r.IntN(8))
			order[i], order[j] = order[j], order[i]
		}
		now := time.Unix(1, 0)
		confirmed := map[ID]bool{}
		for _, m := range order {
			if st, err := c.Add(now, m); st == Invalid {
				t.Fatalf("round %d: %v", round, err)
			}
			for _, cf := range c.Ready().Confirmed {
				if confirmed[cf.ID] {
					t.Fatalf("round %d: %s confirmed twice", round, cf.ID)
				}
				confirmed[cf.ID] = true
			}
		}
		if st := c.Stats(); st.Pending != 0 || int(st.Next) != len(msgs)+1 {
			t.Fatalf("round %d: not all solid: %+v", round, st)
		}

		vals := map[PublicKey]int{}
		var weights []uint64
		var total uint64
		for i, v := range vs {
			vals[v.Key] = i
			weights = append(weights, v.Weight)
			total += v.Weight
		}
		ref := naiveWeights(msgs, vals, weights)
		for _, m := range msgs {
			w := ref[m.ID()]
			want := w*den >= total*num
			if confirmed[m.ID()] != want {
				t.Fatalf("round %d: message %s: confirmed %v, reference weight %d/%d (threshold %d/%d)",
					round, m.ID(), confirmed[m.ID()], w, total, num, den)
			}
			st, _ := c.State(m.ID())
			if !want && st.Weight != w {
				t.Fatalf("round %d: unconfirmed %s: weight %d, reference %d", round, m.ID(), st.Weight, w)
			}
		}
	}
}
