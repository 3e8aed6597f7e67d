package dag

import "fmt"

// Checkpoint is a validator's checkpoint message that became solid, with
// the messages it covers (docs/PROTOCOL.md 8.2) as far as the window shows
// them: those in its past cone with a timestamp of at least its from that
// no earlier checkpoint of the same validator covered, nor is one of them.
//
// The Core tracks coverage in the window only. A checkpoint whose cone
// reaches below the window, or that follows a checkpoint of its validator
// the Core never saw (the first after a restart), may cover more than
// Covered: its root then differs from the payload's, and the caller cannot
// serve proofs from it. The checkpoints after it are exact again.
type Checkpoint struct {
	Msg       *Message
	Pos       uint64
	Validator int // index in Config.Validators
	// Covered are the covered messages' positions, in no particular
	// order: the caller's log holds their IDs at those positions.
	Covered []uint64
}

// checkpoint marks what the checkpoint m at pos covers for validator v, and
// the checkpoint itself, and reports it in the Update.
func (c *Core) checkpoint(m *Message, pos uint64, v int, from int64) {
	n := c.at(pos)
	covered := c.cover(n.parents, v, from)
	c.setCover(pos, v)
	c.out.Checkpoints = append(c.out.Checkpoints, Checkpoint{Msg: m, Pos: pos, Validator: v, Covered: covered})
}

// cover walks back from parents and marks, as covered by validator v, every
// message in the window with a timestamp of at least from that is not
// marked yet; it returns their positions. The walk stops at marked messages
// (whose past cone down to from is marked: froms never decrease), at
// messages older than from (whose parents are older still), at the genesis
// and below the window. Each message-validator pair is marked once.
func (c *Core) cover(parents [2]uint64, v int, from int64) []uint64 {
	var covered []uint64
	stack := append(c.stack[:0], parents[0])
	if parents[1] != parents[0] {
		stack = append(stack, parents[1])
	}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !c.inWindow(p) || p == 0 {
			continue // below the window, an entry point, or the genesis
		}
		n := c.at(p)
		c.walkSteps++
		if n.ts < from || c.covered(p, v) {
			continue
		}
		c.setCover(p, v)
		covered = append(covered, p)
		stack = append(stack, n.parents[0])
		if n.parents[1] != n.parents[0] {
			stack = append(stack, n.parents[1])
		}
	}
	c.stack = stack
	return covered
}

func (c *Core) coverWord(pos uint64, v int) (*uint64, uint64) {
	return &c.bits[int(pos-c.base)*2*c.words+c.words+v/64], uint64(1) << (v % 64)
}

func (c *Core) covered(pos uint64, v int) bool {
	w, mask := c.coverWord(pos, v)
	return *w&mask != 0
}

func (c *Core) setCover(pos uint64, v int) {
	w, mask := c.coverWord(pos, v)
	*w |= mask
}

// Cover returns the IDs of the messages a checkpoint of validator key with
// these parents and from would cover, as the Core would mark them once the
// checkpoint is solid: what a validator commits to before it signs. It
// changes nothing. The parents must be solid in the window.
func (c *Core) Cover(key PublicKey, parents [2]ID, from int64) ([]ID, error) {
	v, ok := c.validators[key]
	if !ok {
		return nil, fmt.Errorf("dag: %s is not a validator", key)
	}
	var pos [2]uint64
	for i, id := range parents {
		p, ok := c.indexed(id)
		if !ok {
			return nil, fmt.Errorf("dag: parent %s is not in the window", id)
		}
		pos[i] = p
	}
	covered := c.cover(pos, v, from)
	ids := make([]ID, len(covered))
	for i, p := range covered {
		ids[i] = c.at(p).id
		w, mask := c.coverWord(p, v)
		*w &^= mask
	}
	return ids, nil
}

// MarkCovered records that validator key's checkpoints cover ids, those of
// them still in the window: what a restarted node read back from its proof
// store, so that the next checkpoints of key are exact.
func (c *Core) MarkCovered(key PublicKey, ids []ID) {
	v, ok := c.validators[key]
	if !ok {
		return
	}
	for _, id := range ids {
		if p, ok := c.indexed(id); ok {
			c.setCover(p, v)
		}
	}
}
