package dag

import (
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"time"
)

// ErrExpired: a message waited for its parents longer than the Config allows,
// or was pushed out of the full pending buffer. It is not invalid: it may be
// added again once its parents are known.
var ErrExpired = errors.New("dag: parents never arrived")

// Status says what Add did with a message.
type Status uint8

const (
	// Solid: the message and its whole past cone are known; it is in
	// Update.Solid (with any waiting descendants it made solid).
	Solid Status = iota + 1
	// Pending: the message waits for parents. The ones not asked for yet are
	// in Update.Missing. It ends in Update.Solid or in Update.Rejected.
	Pending
	// Duplicate: the message is already known, solid or pending.
	Duplicate
	// Invalid: the message breaks a rule that depends on its parents; Add's
	// error says which. It is remembered, so its descendants are rejected too.
	Invalid
)

func (s Status) String() string {
	switch s {
	case Solid:
		return "solid"
	case Pending:
		return "pending"
	case Duplicate:
		return "duplicate"
	case Invalid:
		return "invalid"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// SolidMessage is a message that became solid, with its log position and its
// parents' positions: what the store needs to append it.
type SolidMessage struct {
	Msg       *Message
	Pos       uint64
	ParentPos [2]uint64
}

// Confirmation says that the message at Pos reached the threshold at At
// (unix nanoseconds, the time passed to the call that confirmed it), with
// the fields of the message a consumer of confirmations filters on.
type Confirmation struct {
	ID        ID
	Pos       uint64
	At        int64
	Issuer    PublicKey
	Seq       uint64
	Timestamp int64
}

// Rejection is a message that was pending and will never be solid here:
// invalid (ErrTimestamp, ErrInvalidParent) or expired (ErrExpired).
type Rejection struct {
	ID  ID
	Err error
}

// Orphan is a message given up as never to be confirmed.
type Orphan struct {
	ID  ID
	Pos uint64
}

// Equivocation is one issuer signing two messages with one sequence number.
// Both messages stay in the ledger; the equivocation is reported so that it
// can be recorded and exposed.
type Equivocation struct {
	Issuer        PublicKey
	Seq           uint64
	First, Second ID
}

// Update is what the Core hands back: the work its caller must do. Its
// slices belong to the caller.
type Update struct {
	// Solid messages in position order (a topological order): persist them,
	// then gossip them.
	Solid []SolidMessage
	// Confirmed messages in position order: persist the state, report it.
	Confirmed []Confirmation
	// Missing parents to request from peers (each reported once; see
	// Core.Missing for retries).
	Missing []ID
	// Rejected pending messages.
	Rejected []Rejection
	// Orphaned messages: unconfirmed after OrphanAge, dropped from memory.
	// They stay in the store, never confirmed; the store records them as
	// settled so that a restore need not begin below them.
	Orphaned []Orphan
	// Equivocations seen.
	Equivocations []Equivocation
	// Checkpoints that became solid, with what each covers: check each
	// against its payload's root and keep it for proofs.
	Checkpoints []Checkpoint
}

// Empty reports whether u holds no work.
func (u *Update) Empty() bool {
	return len(u.Solid) == 0 && len(u.Confirmed) == 0 && len(u.Missing) == 0 &&
		len(u.Rejected) == 0 && len(u.Orphaned) == 0 && len(u.Equivocations) == 0 &&
		len(u.Checkpoints) == 0
}

// node is a solid message in the window.
type node struct {
	id      ID
	issuer  PublicKey
	seq     uint64
	ts      int64  // the message's timestamp
	solidAt int64  // local time it became solid
	doneAt  int64  // local time it was confirmed, when confirmed
	weight  uint64 // summed weight of the approving validators
	parents [2]uint64
	// Children form intrusive lists: firstChild is the position+1 of the
	// newest child (0: none); nextSib[i] continues the list of this node's
	// parent i.
	firstChild uint64
	nextSib    [2]uint64
	children   uint32
	tip        int32 // index in Core.tips, or -1
	confirmed  bool
	orphan     bool // settled without confirmation (restored as such)
}

type entryPoint struct {
	pos uint64
	ts  int64
}

type pendingMsg struct {
	msg     *Message
	missing int
	arrived int64
}

type timed struct {
	id ID
	at int64
}

type issuerSeq struct {
	issuer PublicKey
	seq    uint64
}

// Core is the DAG state machine. See the package documentation for the
// loop its caller runs. A Core is not safe for concurrent use: one goroutine
// owns it.
type Core struct {
	cfg     Config
	genesis ID

	// The window: the solid messages still in memory, by position.
	// nodes[i] is at position base+i; bits holds 2*words words per node, in
	// the same order: first the validators that approve it, then those
	// whose checkpoints cover it. Positions below base are treated as solid
	// and confirmed.
	base  uint64
	nodes []node
	bits  []uint64
	words int
	seed  maphash.Seed
	index posTable // ID -> position, for the window's nodes

	entries     map[ID]entryPoint // below-window messages brought back
	entryOrder  fifo[ID]
	invalid     map[ID]error
	invalidFIFO fifo[ID]

	seqs posTable // (issuer, seq) -> position of the first message in the window

	validators map[PublicKey]int
	notTips    map[PublicKey]bool
	weights    []uint64
	need       uint64 // weight that confirms: ceil(total * num / den)

	pending      map[ID]*pendingMsg
	waiting      map[ID][]ID // missing parent -> pending children
	pendingOrder fifo[timed]

	tips     []uint64 // positions of the tips offered
	tipOrder fifo[timed]

	confirmedTotal uint64
	walkSteps      uint64
	unconfirmed    int

	stack     []uint64
	confirmed []Confirmation
	out       Update
}

// New returns a Core for an empty ledger. Its first Update holds the genesis
// message (position 0), solid and confirmed, for the caller to persist.
func New(cfg Config) (*Core, error) {
	c, err := newCore(cfg)
	if err != nil {
		return nil, err
	}
	g := Genesis(cfg.Params.Network)
	c.nodes = append(c.nodes, node{id: g.ID(), tip: -1, confirmed: true})
	c.bits = append(c.bits, make([]uint64, 2*c.words)...)
	c.indexPut(g.ID(), 0)
	c.confirmedTotal = 1
	c.addTip(0, 0)
	c.out.Solid = append(c.out.Solid, SolidMessage{Msg: g})
	c.out.Confirmed = append(c.out.Confirmed, Confirmation{ID: g.ID(), Pos: 0, Issuer: g.Issuer, Seq: g.Seq, Timestamp: g.Timestamp})
	return c, nil
}

func newCore(cfg Config) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Core{
		cfg:        cfg,
		genesis:    Genesis(cfg.Params.Network).ID(),
		words:      (len(cfg.Validators) + 63) / 64,
		seed:       maphash.MakeSeed(),
		entries:    make(map[ID]entryPoint),
		invalid:    make(map[ID]error),
		validators: make(map[PublicKey]int, len(cfg.Validators)),
		pending:    make(map[ID]*pendingMsg),
		waiting:    make(map[ID][]ID),
	}
	c.index = newPosTable(func(p uint64) uint64 { return hashID(c.seed, c.at(p).id) })
	c.seqs = newPosTable(func(p uint64) uint64 { n := c.at(p); return hashSeq(c.seed, issuerSeq{n.issuer, n.seq}) })
	c.notTips = make(map[PublicKey]bool, len(cfg.NotTips))
	for _, k := range cfg.NotTips {
		c.notTips[k] = true
	}
	var total uint64
	for i, v := range cfg.Validators {
		c.validators[v.Key] = i
		c.weights = append(c.weights, v.Weight)
		total += v.Weight
	}
	// total <= 1024 * 2^32 and num <= den <= 2^20: no overflow.
	c.need = (total*cfg.ThresholdNum + cfg.ThresholdDen - 1) / cfg.ThresholdDen
	return c, nil
}

// Genesis returns the ID of the network's genesis message.
func (c *Core) Genesis() ID { return c.genesis }

// Ready returns the work accumulated since the last call and starts a new
// Update. Call it after each batch of Add, AddEntryPoint and Tick calls.
func (c *Core) Ready() Update {
	u := c.out
	c.out = Update{}
	return u
}

func (c *Core) at(pos uint64) *node { return &c.nodes[pos-c.base] }

// indexed returns the position of the window's message id.
func (c *Core) indexed(id ID) (uint64, bool) {
	return c.index.find(hashID(c.seed, id), func(p uint64) bool { return c.at(p).id == id })
}

func (c *Core) indexPut(id ID, pos uint64) {
	c.index.put(hashID(c.seed, id), pos, func(p uint64) bool { return c.at(p).id == id })
}

// firstOfSeq returns the position of the window's first message of k.
func (c *Core) firstOfSeq(k issuerSeq) (uint64, bool) {
	return c.seqs.find(hashSeq(c.seed, k), c.isSeq(k))
}

func (c *Core) isSeq(k issuerSeq) func(uint64) bool {
	return func(p uint64) bool { n := c.at(p); return n.seq == k.seq && n.issuer == k.issuer }
}

func (c *Core) inWindow(pos uint64) bool { return pos >= c.base && pos-c.base < uint64(len(c.nodes)) }

// next is the position the next solid message gets.
func (c *Core) next() uint64 { return c.base + uint64(len(c.nodes)) }

// lookup finds a solid message: its position and timestamp.
func (c *Core) lookup(id ID) (pos uint64, ts int64, ok bool) {
	if p, ok := c.indexed(id); ok {
		return p, c.at(p).ts, true
	}
	if e, ok := c.entries[id]; ok {
		return e.pos, e.ts, true
	}
	if id == c.genesis {
		return 0, 0, true
	}
	return 0, 0, false
}

// Known reports whether id is solid in memory, pending, or remembered as
// invalid. Messages that left the window are not known here: the caller
// checks its store for those.
func (c *Core) Known(id ID) bool {
	if _, _, ok := c.lookup(id); ok {
		return true
	}
	if _, ok := c.pending[id]; ok {
		return true
	}
	_, ok := c.invalid[id]
	return ok
}

// Add hands the Core a message that passed Params.Check (decoding, network,
// proof of work, signature: the stateless checks, which the Core does not
// repeat). now is the local time. Add returns what it did; an Invalid status
// comes with the error (a message the Core refused before, while it still
// remembers it, gets the same error again), and the outputs are in the next
// Ready.
func (c *Core) Add(now time.Time, m *Message) (Status, error) {
	t := now.UnixNano()
	id := m.ID()
	if err, bad := c.invalid[id]; bad {
		return Invalid, err // the same verdict again
	}
	if c.Known(id) {
		return Duplicate, nil
	}
	missing := 0
	for i, p := range m.Parents {
		if i == 1 && p == m.Parents[0] {
			break
		}
		if err, bad := c.invalid[p]; bad {
			err = fmt.Errorf("%w: %s: %v", ErrInvalidParent, p, err)
			c.markInvalid(id, err)
			c.cascade(t, id) // reject what waited on it
			return Invalid, err
		}
		if _, _, ok := c.lookup(p); !ok {
			missing++
		}
	}
	if missing == 0 {
		if err := c.attach(t, m); err != nil {
			c.cascade(t, id)
			return Invalid, err
		}
		c.cascade(t, id)
		c.finishWalks()
		return Solid, nil
	}

	if len(c.pending) >= c.cfg.MaxPending {
		c.expireOldestPending()
	}
	c.pending[id] = &pendingMsg{msg: m, missing: missing, arrived: t}
	c.pendingOrder.push(timed{id, t})
	if c.pendingOrder.len() > 2*len(c.pending)+1024 {
		// Drop the queue's entries for messages no longer pending (most
		// become solid within milliseconds), which would otherwise stay
		// for PendingTTL: at 10,000 msgs/s, 600,000 of them.
		c.pendingOrder.filter(c.stillPending)
	}
	for i, p := range m.Parents {
		if i == 1 && p == m.Parents[0] {
			break
		}
		if _, _, ok := c.lookup(p); ok {
			continue
		}
		w, asked := c.waiting[p]
		c.waiting[p] = append(w, id)
		if _, have := c.pending[p]; !asked && !have {
			c.out.Missing = append(c.out.Missing, p)
		}
	}
	return Pending, nil
}

// attach checks the parent-dependent rule and makes m solid.
func (c *Core) attach(now int64, m *Message) error {
	id := m.ID()
	var parentPos [2]uint64
	for i, p := range m.Parents {
		pos, ts, _ := c.lookup(p)
		if m.Timestamp < ts {
			err := fmt.Errorf("%w: %d < %d of %s", ErrTimestamp, m.Timestamp, ts, p)
			c.markInvalid(id, err)
			return err
		}
		parentPos[i] = pos
	}

	pos := c.next()
	c.nodes = append(c.nodes, node{
		id: id, issuer: m.Issuer, seq: m.Seq, ts: m.Timestamp, solidAt: now,
		parents: parentPos, tip: -1,
	})
	c.bits = append(c.bits, make([]uint64, 2*c.words)...)
	c.indexPut(id, pos)
	c.unconfirmed++
	c.link(pos)

	key := issuerSeq{m.Issuer, m.Seq}
	if first, dup := c.firstOfSeq(key); dup {
		c.out.Equivocations = append(c.out.Equivocations, Equivocation{
			Issuer: m.Issuer, Seq: m.Seq, First: c.at(first).id, Second: id,
		})
	} else {
		c.seqs.put(hashSeq(c.seed, key), pos, c.isSeq(key))
	}

	if !c.lazy(pos) && !c.notTips[m.Issuer] {
		c.addTip(pos, now)
	}
	c.out.Solid = append(c.out.Solid, SolidMessage{Msg: m, Pos: pos, ParentPos: parentPos})
	if v, ok := c.validators[m.Issuer]; ok {
		c.approve(pos, v, now)
		if c.cfg.Checkpoint != nil {
			if from, ok := c.cfg.Checkpoint(m); ok {
				c.checkpoint(m, pos, v, from)
			}
		}
	}
	return nil
}

// link adds the node at pos to its parents' child lists and counts.
func (c *Core) link(pos uint64) {
	n := c.at(pos)
	for i, p := range n.parents {
		if i == 1 && p == n.parents[0] {
			break
		}
		if !c.inWindow(p) {
			continue
		}
		pn := c.at(p)
		n.nextSib[i] = pn.firstChild
		pn.firstChild = pos + 1
		pn.children++
		if pn.tip >= 0 && int(pn.children) >= c.cfg.TipMaxChildren {
			c.removeTip(p)
		}
	}
}

// cascade makes solid, in turn, the pending messages that waited on id.
func (c *Core) cascade(now int64, id ID) {
	work := []ID{id}
	for len(work) > 0 {
		p := work[len(work)-1]
		work = work[:len(work)-1]
		children := c.waiting[p]
		delete(c.waiting, p)
		for _, cid := range children {
			pm, ok := c.pending[cid]
			if !ok {
				continue // expired or rejected meanwhile
			}
			if _, bad := c.invalid[p]; bad {
				delete(c.pending, cid)
				err := fmt.Errorf("%w: %s", ErrInvalidParent, p)
				c.markInvalid(cid, err)
				c.out.Rejected = append(c.out.Rejected, Rejection{cid, err})
				work = append(work, cid)
				continue
			}
			pm.missing--
			if pm.missing > 0 {
				continue
			}
			delete(c.pending, cid)
			if err := c.attach(now, pm.msg); err != nil {
				c.out.Rejected = append(c.out.Rejected, Rejection{cid, err})
			}
			work = append(work, cid)
		}
	}
}

// Reject tells the Core that the message id failed a stateless check
// (Params.Check: encoding, network, proof of work, signature), so that a
// message naming it as a parent is refused at once with ErrInvalidParent
// instead of waiting for it; those already waiting are rejected in the next
// Ready. err must be such a deterministic fault, the same on every node,
// never a local policy's refusal. An id the Core holds is left alone.
func (c *Core) Reject(now time.Time, id ID, err error) {
	if c.Known(id) {
		return
	}
	c.markInvalid(id, err)
	c.cascade(now.UnixNano(), id)
}

// PendingMessage returns the message id if it waits for parents.
func (c *Core) PendingMessage(id ID) (*Message, bool) {
	pm, ok := c.pending[id]
	if !ok {
		return nil, false
	}
	return pm.msg, true
}

func (c *Core) markInvalid(id ID, err error) {
	if len(c.invalid) >= c.cfg.MaxInvalid {
		delete(c.invalid, c.invalidFIFO.pop())
	}
	c.invalid[id] = err
	c.invalidFIFO.push(id)
}

// approve records that validator v approves the message at pos and its
// past cone: the amortized walk. It sets v's bit on each message it reaches
// and stops wherever the bit is already set (so each message-validator pair
// is visited once) or the message is confirmed (whose past cone is
// confirmed already). Below the window everything counts as confirmed, and
// so does an entry point a peer named, which has no position here (NoPos).
func (c *Core) approve(pos uint64, v int, now int64) {
	word, mask := v/64, uint64(1)<<(v%64)
	stack := append(c.stack[:0], pos)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if !c.inWindow(p) {
			continue // below the window, or an entry point without a position
		}
		i := p - c.base
		n := &c.nodes[i]
		b := &c.bits[int(i)*2*c.words+word]
		c.walkSteps++
		if n.confirmed || n.orphan || *b&mask != 0 {
			continue
		}
		*b |= mask
		n.weight += c.weights[v]
		if n.weight >= c.need {
			n.confirmed = true
			n.doneAt = now
			c.unconfirmed--
			c.confirmedTotal++
			c.confirmed = append(c.confirmed, Confirmation{ID: n.id, Pos: p, At: now, Issuer: n.issuer, Seq: n.seq, Timestamp: n.ts})
		}
		stack = append(stack, n.parents[0])
		if n.parents[1] != n.parents[0] {
			stack = append(stack, n.parents[1])
		}
	}
	c.stack = stack
}

// finishWalks moves the confirmations of the last walks to the Update in
// position order, so that a message is never reported before its parents.
func (c *Core) finishWalks() {
	if len(c.confirmed) == 0 {
		return
	}
	slices.SortFunc(c.confirmed, func(a, b Confirmation) int {
		if a.Pos < b.Pos {
			return -1
		}
		return 1
	})
	c.out.Confirmed = append(c.out.Confirmed, c.confirmed...)
	c.confirmed = c.confirmed[:0]
}

// lazy reports whether the message at pos builds on an unconfirmed parent
// that became solid here more than LazyAge before it did: approving it
// would pull weight into an old part of the DAG. Laziness is judged by
// arrival here, not by the timestamps issuers claim, so a device whose
// messages queued in a gateway (old timestamps, fresh parents) is not lazy,
// and a parent confirmed already costs its approvers nothing.
func (c *Core) lazy(pos uint64) bool {
	n := c.at(pos)
	for _, p := range n.parents {
		if !c.inWindow(p) {
			continue
		}
		if pn := c.at(p); !pn.confirmed && n.solidAt-pn.solidAt > int64(c.cfg.LazyAge) {
			return true
		}
	}
	return false
}

func (c *Core) addTip(pos uint64, now int64) {
	for len(c.tips) >= c.cfg.MaxTips {
		old := c.tipOrder.pop()
		if p, ok := c.indexed(old.id); ok && c.at(p).tip >= 0 {
			c.removeTip(p)
		}
	}
	n := c.at(pos)
	n.tip = int32(len(c.tips))
	c.tips = append(c.tips, pos)
	c.tipOrder.push(timed{n.id, now})
	if c.tipOrder.len() > 2*len(c.tips)+1024 {
		// Drop the queue's entries for messages that left the pool early.
		c.tipOrder.filter(func(t timed) bool {
			p, ok := c.indexed(t.id)
			return ok && c.at(p).tip >= 0
		})
	}
}

func (c *Core) removeTip(pos uint64) {
	n := c.at(pos)
	i := n.tip
	last := c.tips[len(c.tips)-1]
	c.tips[i] = last
	c.at(last).tip = i
	c.tips = c.tips[:len(c.tips)-1]
	n.tip = -1
}

// TipCount returns the number of tips offered: at least 1, because when the
// pool is empty (no traffic for longer than TipMaxAge) the Core offers the
// newest solid message instead.
func (c *Core) TipCount() int { return max(len(c.tips), 1) }

// Tip returns the i-th tip offered, 0 <= i < TipCount().
func (c *Core) Tip(i int) ID {
	if len(c.tips) == 0 {
		if len(c.nodes) == 0 {
			return c.genesis
		}
		return c.nodes[len(c.nodes)-1].id
	}
	return c.at(c.tips[i]).id
}

// Tick advances the Core's clock: it expires pending messages and old tips,
// and lets confirmed messages older than KeepConfirmed (and
// unconfirmed ones older than OrphanAge) leave memory. Call it a few times a
// second.
func (c *Core) Tick(now time.Time) {
	t := now.UnixNano()
	for c.pendingOrder.len() > 0 && c.pendingOrder.front().at < t-int64(c.cfg.PendingTTL) {
		c.expire(c.pendingOrder.pop())
	}
	for c.tipOrder.len() > 0 && c.tipOrder.front().at < t-int64(c.cfg.TipMaxAge) {
		old := c.tipOrder.pop()
		if p, ok := c.indexed(old.id); ok && c.at(p).tip >= 0 {
			c.removeTip(p)
		}
	}
	c.prune(t)
}

// stillPending reports whether t is the pendingOrder entry of a message
// that is pending now.
func (c *Core) stillPending(t timed) bool {
	pm, ok := c.pending[t.id]
	return ok && pm.arrived == t.at
}

func (c *Core) expireOldestPending() {
	for c.pendingOrder.len() > 0 {
		if c.expire(c.pendingOrder.pop()) {
			return
		}
	}
}

// expire drops a pending message, if it is still pending since t.at.
func (c *Core) expire(t timed) bool {
	if !c.stillPending(t) {
		return false
	}
	pm := c.pending[t.id]
	delete(c.pending, t.id)
	for _, p := range pm.msg.Parents {
		w := c.waiting[p]
		if i := slices.Index(w, t.id); i >= 0 {
			w = slices.Delete(w, i, i+1)
		}
		if len(w) == 0 {
			delete(c.waiting, p)
		} else {
			c.waiting[p] = w
		}
	}
	c.out.Rejected = append(c.out.Rejected, Rejection{t.id, ErrExpired})
	return true
}

// OrphanAge is how long an unconfirmed message stays in memory. Past it, no
// honest tip selection approves it any more (it is long lazy), and it is
// reported in Update.Orphaned and dropped.
const OrphanAge = 10 * time.Minute

// prune drops the oldest messages from the window while they are confirmed
// and older than KeepConfirmed, or unconfirmed and older than OrphanAge.
func (c *Core) prune(now int64) {
	k := 0
	for k < len(c.nodes)-1 { // always keep the newest, the tip of last resort
		n := &c.nodes[k]
		if n.confirmed || n.orphan {
			if n.solidAt >= now-int64(c.cfg.KeepConfirmed) {
				break
			}
		} else {
			if n.solidAt >= now-int64(OrphanAge) {
				break
			}
			c.out.Orphaned = append(c.out.Orphaned, Orphan{ID: n.id, Pos: c.base + uint64(k)})
			c.unconfirmed--
		}
		pos := c.base + uint64(k)
		if n.tip >= 0 {
			c.removeTip(pos)
		}
		c.index.remove(hashID(c.seed, n.id), pos)
		c.seqs.remove(hashSeq(c.seed, issuerSeq{n.issuer, n.seq}), pos)
		k++
	}
	if k == 0 {
		return
	}
	c.nodes = c.nodes[k:]
	c.bits = c.bits[k*2*c.words:]
	c.base += uint64(k)
}

// AddEntryPoint tells the Core of a solid, confirmed message that has left
// the window (the caller found it in its store after the Core asked for it
// as missing). Messages waiting on it go on.
func (c *Core) AddEntryPoint(now time.Time, id ID, pos uint64, ts int64) {
	if _, _, ok := c.lookup(id); ok {
		return
	}
	if len(c.entries) >= c.cfg.MaxEntryPoints {
		delete(c.entries, c.entryOrder.pop())
	}
	c.entries[id] = entryPoint{pos: pos, ts: ts}
	c.entryOrder.push(id)
	c.cascade(now.UnixNano(), id)
	c.finishWalks()
}

// Missing returns up to max IDs that pending messages wait for and that are
// not pending themselves: what to ask peers for again.
func (c *Core) Missing(max int) []ID {
	var ids []ID
	for id := range c.waiting {
		if len(ids) >= max {
			break
		}
		if _, have := c.pending[id]; !have {
			ids = append(ids, id)
		}
	}
	return ids
}

// Stats are the Core's counters.
type Stats struct {
	Next        uint64 // position the next solid message gets: the solid count
	Confirmed   uint64 // confirmed messages, genesis included
	Unconfirmed int    // solid messages not yet confirmed (all in memory)
	Pending     int    // messages waiting for parents
	Tips        int    // tips in the pool
	Window      int    // solid messages in memory
	WalkSteps   uint64 // messages visited by approval walks: the cost of confirmation
}

// Stats returns the Core's counters.
func (c *Core) Stats() Stats {
	return Stats{
		Next: c.next(), Confirmed: c.confirmedTotal, Unconfirmed: c.unconfirmed,
		Pending: len(c.pending), Tips: len(c.tips), Window: len(c.nodes), WalkSteps: c.walkSteps,
	}
}

// MessageState is what the Core knows of one message in its window.
type MessageState struct {
	Pos         uint64
	Timestamp   int64 // the message's timestamp
	Confirmed   bool
	ConfirmedAt int64
	Weight      uint64 // approval weight; for a confirmed message, at least the threshold
	Children    int
	Tip         bool
	// Approvers are the indexes (in Config.Validators) of the validators
	// whose approval was counted: until the message was confirmed.
	Approvers []int
}

// State returns what the Core knows of a message in its window.
func (c *Core) State(id ID) (MessageState, bool) {
	p, ok := c.indexed(id)
	if !ok {
		return MessageState{}, false
	}
	n := c.at(p)
	st := MessageState{
		Pos: p, Timestamp: n.ts, Confirmed: n.confirmed, ConfirmedAt: n.doneAt, Weight: n.weight,
		Children: int(n.children), Tip: n.tip >= 0,
	}
	i := int(p - c.base)
	for v := range c.weights {
		if c.bits[i*2*c.words+v/64]&(1<<(v%64)) != 0 {
			st.Approvers = append(st.Approvers, v)
		}
	}
	return st, true
}

// TipPool is a view of the Core's tip pool, as tip selection reads it (it
// satisfies tipselect.Pool). Like the Core, it is for the Core's goroutine.
type TipPool struct{ c *Core }

// TipPool returns a view of the tip pool.
func (c *Core) TipPool() TipPool { return TipPool{c} }

// Len returns TipCount().
func (p TipPool) Len() int { return p.c.TipCount() }

// Tip returns the i-th tip offered.
func (p TipPool) Tip(i int) ID { return p.c.Tip(i) }
