package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/proof"
	"github.com/weftnet/weft/storage"
)

// Checkpoints and proofs (docs/PROTOCOL.md 8). A validator node issues a
// checkpoint as one of its own messages every CheckpointInterval, or once
// CheckpointEvery messages were confirmed since the last. Every node, for
// every validator's checkpoint that becomes durable here, rebuilds the
// leaves from the DAG core (the core reports their log positions with the
// Update) and keeps them in the store's state, so that it can serve proofs
// for any validator. A leaf is kept as its position, a byte or two; its ID
// is read from the store's ID files (storage.IDsAt), which outlive the
// messages with proof-retain. The leaves are checked against the payload's
// root when a proof is built from them, where their tree is built anyway:
// a node hashes a validator's leaves only when someone asks for a proof.

// checkpointMargin is how far below its previous checkpoint's timestamp
// a checkpoint's from lies (PROTOCOL.md 8.2).
const checkpointMargin = int64(5 * time.Second)

// stateCheckpoints is the state bucket of the kept checkpoints. A key is
// the validator's key, the checkpoint's timestamp (8 bytes, big-endian)
// and its ID; the value keptFormat (1 byte), the checkpoint message's
// length (2 bytes) and encoding, then its leaves' positions, ascending,
// as unsigned varints: the first, then each one's distance from the one
// before (docs/STORAGE.md, "Proof material").
const stateCheckpoints = "checkpoints"

// keptFormat is the first byte of a kept checkpoint's value. Format 1 (no
// such byte) listed the leaves' IDs; restoreCheckpoints drops it.
const keptFormat = 2

const checkpointKeySize = dag.PublicKeySize + 8 + dag.IDSize

// maxCheckpointScan bounds the checkpoints of one validator a proof looks
// through for the one covering a message: from its timestamp on, until
// their froms pass it (about 6 for an honest validator).
const maxCheckpointScan = 64

// restoreKept is how many of each validator's newest checkpoints a
// restarted node marks as covering again, so that the next ones are exact:
// more than the margin spans.
const restoreKept = 16

// ErrNoProof: not enough validators' checkpoints cover the message here yet
// (or ever: see PROTOCOL.md 8.2). RetryAfter says when to ask again.
var ErrNoProof = errors.New("node: no proof yet")

// NoProofError is ErrNoProof with what the node has: the weight of the
// validators whose checkpoints cover the message, of the weight needed.
type NoProofError struct {
	Weight, Need uint64
	RetryAfter   time.Duration
}

func (e *NoProofError) Error() string {
	return fmt.Sprintf("%v: checkpoints of weight %d cover the message, %d needed", ErrNoProof, e.Weight, e.Need)
}

func (e *NoProofError) Unwrap() error { return ErrNoProof }

// checkpointFrom is the core's Config.Checkpoint.
func checkpointFrom(m *dag.Message) (int64, bool) {
	if !proof.IsCheckpoint(m.Payload) {
		return 0, false
	}
	c, err := proof.DecodeCheckpoint(m.Payload)
	return c.From, err == nil
}

// checkpointState is the core loop's view of the node's own checkpoints.
type checkpointState struct {
	last      proof.Checkpoint // the newest own checkpoint; Index 0 if none
	lastID    dag.ID
	lastTS    int64
	at        time.Time // when the newest was issued
	confirmed uint64    // n.confirmedN then
	// lastOwn is the node's newest own message solid here, the second
	// parent of its next (hasOwn once there is one).
	lastOwn dag.ID
	hasOwn  bool
	// approving counts the own messages other than checkpoints solid
	// since the newest checkpoint was planned: while it is 0, the
	// validator approved nothing a checkpoint would cover.
	approving int
}

// ownMsg is a message of the node's own for the issuer; cp and leaves are
// set for a checkpoint, whose root the issuer computes before signing.
type ownMsg struct {
	m      *dag.Message
	cp     proof.Checkpoint
	leaves []dag.ID
}

// planCheckpoint, on the core loop, makes the own message m a checkpoint
// when one is due and it would cover something: its second parent becomes
// the previous checkpoint (when still in the core's window), and o carries
// what it covers.
func (n *Node) planCheckpoint(now time.Time, o *ownMsg) {
	if !n.checkpointDue(now) {
		return
	}
	s := &n.ckpt
	m := o.m
	parents := m.Parents
	if s.last.Index > 0 && (!s.hasOwn || parents[1] != s.lastOwn) {
		// No chain of own messages back to the previous checkpoint: name it.
		if _, ok := n.core.State(s.lastID); ok {
			parents[1] = s.lastID
		}
	}
	ts := max(m.Timestamp, s.lastTS)
	from := ts - checkpointMargin
	if s.last.Index > 0 {
		from = max(s.lastTS-checkpointMargin, s.last.From)
	}
	from = max(from, 0)
	leaves, err := n.core.Cover(n.self, parents, from)
	s.approving = 0 // what they approved is covered now, or never will be
	if err != nil || len(leaves) == 0 || uint64(len(leaves)) > math.MaxUint32 {
		return
	}
	m.Parents, m.Timestamp = parents, ts
	o.cp = proof.Checkpoint{Index: s.last.Index + 1, Prev: s.lastID, From: from, Count: uint32(len(leaves))}
	o.leaves = leaves
	s.at, s.confirmed = now, n.confirmedN
}

// checkpointDue reports whether the node, a validator, should checkpoint
// now: it issued messages since the last one (they approved what the
// checkpoint covers), and it is CheckpointInterval old or CheckpointEvery
// confirmations behind.
func (n *Node) checkpointDue(now time.Time) bool {
	s := &n.ckpt
	if n.cfg.CheckpointInterval < 0 || n.params.MaxPayload < proof.CheckpointSize || s.approving == 0 {
		return false
	}
	return now.Sub(s.at) >= n.cfg.CheckpointInterval || n.confirmedN-s.confirmed >= uint64(n.cfg.CheckpointEvery)
}

// sealCheckpoint, on the issuer, computes a planned checkpoint's root and
// sets the payload.
func sealCheckpoint(o *ownMsg) error {
	if o.leaves == nil {
		return nil
	}
	proof.SortIDs(o.leaves)
	t, err := proof.NewTree(o.leaves)
	if err != nil {
		return err
	}
	o.cp.Root = t.Root()
	o.m.Payload = o.cp.Encode()
	return nil
}

// noteOwnCheckpoint, on the core loop, records the node's own checkpoint
// once it is durable: the next one chains to it.
func (n *Node) noteOwnCheckpoint(m *dag.Message) {
	c, err := proof.DecodeCheckpoint(m.Payload)
	if err != nil || c.Index <= n.ckpt.last.Index {
		return
	}
	n.ckpt.last, n.ckpt.lastID, n.ckpt.lastTS = c, m.ID(), m.Timestamp
}

// keeper checks the checkpoints that became durable against their roots
// and keeps those that match, off the core loop. It owns nothing the loop
// touches; the loop hands it work on n.keepQ and drops work when the queue
// is full (counted: the proofs that checkpoint would serve come from other
// nodes, or not at all).
func (n *Node) keeper(ctx context.Context) {
	prune := time.NewTicker(proofPruneEvery)
	defer prune.Stop()
	for {
		select {
		case cps := <-n.keepQ:
			n.keepAll(cps)
		case <-prune.C:
			if err := n.pruneCheckpoints(); err != nil {
				n.log.Warn().Err(err).Msg("pruning checkpoints")
			}
		case <-ctx.Done():
			for { // what the loop handed over before it stopped
				select {
				case cps := <-n.keepQ:
					n.keepAll(cps)
				default:
					return
				}
			}
		}
	}
}

// keepAll keeps the checkpoints of one Update whose leaves the node
// rebuilt, in one state transaction. What it checks is the count; the
// root is checked by attestation.
func (n *Node) keepAll(cps []dag.Checkpoint) {
	type entry struct {
		key [checkpointKeySize]byte
		val []byte
	}
	var (
		size int64
		keep []entry
	)
	for _, c := range cps {
		size += int64(len(c.Covered)) * posBytes
		cp, err := proof.DecodeCheckpoint(c.Msg.Payload)
		if err != nil || len(c.Covered) == 0 {
			continue // the core reports only checkpoints that decode; an empty one proves nothing
		}
		if uint64(len(c.Covered)) != uint64(cp.Count) {
			n.unmatched(c.Msg, cp, len(c.Covered))
			continue
		}
		keep = append(keep, entry{checkpointKey(c.Msg.Issuer, c.Msg.Timestamp, c.Msg.ID()), keptValue(c)})
	}
	defer n.keeping.Add(-size)
	if len(keep) == 0 {
		return
	}
	err := n.store.StateUpdate(func(tx *storage.StateTx) error {
		for _, e := range keep {
			if err := tx.Put(stateCheckpoints, e.key[:], e.val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		n.m.checkpoints.WithLabelValues("unstored").Add(float64(len(keep)))
		n.log.Warn().Err(err).Int("checkpoints", len(keep)).Msg("keeping checkpoints")
		return
	}
	n.m.checkpoints.WithLabelValues("kept").Add(float64(len(keep)))
	n.keptMu.Lock()
	close(n.kept)
	n.kept = make(chan struct{})
	n.keptMu.Unlock()
}

// keptValue is the state's value for a checkpoint (stateCheckpoints). It
// sorts c.Covered.
func keptValue(c dag.Checkpoint) []byte {
	raw := c.Msg.Bytes()
	slices.Sort(c.Covered)
	v := make([]byte, 0, 3+len(raw)+2*len(c.Covered))
	v = append(v, keptFormat)
	v = binary.BigEndian.AppendUint16(v, uint16(len(raw)))
	v = append(v, raw...)
	prev := uint64(0)
	for _, p := range c.Covered {
		v = binary.AppendUvarint(v, p-prev)
		prev = p
	}
	return v
}

// unmatched counts and logs a checkpoint whose leaves this node did not
// rebuild (leaves of them, where the payload says cp.Count).
func (n *Node) unmatched(m *dag.Message, cp proof.Checkpoint, leaves int) {
	n.m.checkpoints.WithLabelValues("unmatched").Inc()
	// Expected once a validator after a restart here; more is worth a look.
	n.log.Warn().Str("checkpoint", m.ID().String()).Str("validator", m.Issuer.String()).
		Uint64("index", cp.Index).Int("leaves", leaves).Uint32("count", cp.Count).
		Msg("checkpoint's leaves not rebuilt here: no proofs from it")
}

// maxKeeping bounds the bytes of leaves handed to the keeper and not yet
// kept: 64 MiB, eight million positions (the queue's 16 updates bound
// their number, this their size).
const maxKeeping = 64 << 20

// posBytes is what a leaf handed to the keeper takes: its position.
const posBytes = 8

// handCheckpoints, on the core loop, hands the durable checkpoints of an
// Update to the keeper.
func (n *Node) handCheckpoints(cps []dag.Checkpoint) {
	if len(cps) == 0 {
		return
	}
	size := int64(0)
	for _, c := range cps {
		if c.Msg.Issuer == n.self {
			n.noteOwnCheckpoint(c.Msg)
		}
		size += int64(len(c.Covered)) * posBytes
	}
	if n.keeping.Add(size) > n.keepLimit {
		n.keeping.Add(-size)
		n.m.checkpoints.WithLabelValues("dropped").Add(float64(len(cps)))
		return
	}
	select {
	case n.keepQ <- cps:
	default:
		n.keeping.Add(-size)
		n.m.checkpoints.WithLabelValues("dropped").Add(float64(len(cps)))
	}
}

// keptSignal returns a channel closed when the keeper next keeps a
// checkpoint: a proof may then be ready.
func (n *Node) keptSignal() <-chan struct{} {
	n.keptMu.Lock()
	defer n.keptMu.Unlock()
	return n.kept
}

func checkpointKey(v dag.PublicKey, ts int64, id dag.ID) [checkpointKeySize]byte {
	var k [checkpointKeySize]byte
	copy(k[:], v[:])
	binary.BigEndian.PutUint64(k[dag.PublicKeySize:], uint64(ts))
	copy(k[dag.PublicKeySize+8:], id[:])
	return k
}

// keptCheckpoint is a stored checkpoint, parsed: the positions of its
// leaves, ascending.
type keptCheckpoint struct {
	msg *dag.Message
	cp  proof.Checkpoint
	pos []uint64
}

func parseKept(v []byte, maxPayload int) (keptCheckpoint, error) {
	if len(v) < 3 || v[0] != keptFormat || len(v) < 3+int(binary.BigEndian.Uint16(v[1:])) {
		return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint of %d bytes", storage.ErrCorrupt, len(v))
	}
	k := int(binary.BigEndian.Uint16(v[1:]))
	m, err := dag.Decode(v[3:3+k], maxPayload)
	if err != nil {
		return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint: %v", storage.ErrCorrupt, err)
	}
	cp, err := proof.DecodeCheckpoint(m.Payload)
	if err != nil {
		return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint %s: %v", storage.ErrCorrupt, m.ID(), err)
	}
	rest := v[3+k:]
	if uint64(len(rest)) < uint64(cp.Count) || uint64(len(rest)) > uint64(cp.Count)*binary.MaxVarintLen64 {
		return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint %s: %d bytes for %d leaves", storage.ErrCorrupt, m.ID(), len(rest), cp.Count)
	}
	pos := make([]uint64, cp.Count)
	p := uint64(0)
	for i := range pos {
		d, n := binary.Uvarint(rest)
		if n <= 0 || (i > 0 && d == 0) || p+d < p {
			return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint %s: leaf %d", storage.ErrCorrupt, m.ID(), i)
		}
		p += d
		pos[i], rest = p, rest[n:]
	}
	if len(rest) != 0 {
		return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint %s: %d bytes after the leaves", storage.ErrCorrupt, m.ID(), len(rest))
	}
	return keptCheckpoint{msg: m, cp: cp, pos: pos}, nil
}

// ids reads the leaves' IDs, in position order. A leaf whose ID the store
// no longer holds fails with storage.ErrPruned.
func (n *Node) ids(k keptCheckpoint) ([]dag.ID, error) {
	buf := make([]byte, len(k.pos)*dag.IDSize)
	if err := n.store.IDsAt(k.pos, buf); err != nil {
		return nil, err
	}
	ids := make([]dag.ID, len(k.pos))
	for i := range ids {
		ids[i] = dag.ID(buf[i*dag.IDSize:])
	}
	return ids, nil
}

// Proof returns the proof for a stored message: ErrNotFound or ErrPruned
// if the node does not hold it (ProofFor takes a message from its owner),
// a *NoProofError until checkpoints of enough validators cover it.
func (n *Node) Proof(id dag.ID) (*proof.Document, error) {
	e, err := n.store.Get(id)
	if err != nil {
		return nil, storeErr(err)
	}
	m, err := dag.Decode(e.Raw, n.params.MaxPayload)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", storage.ErrCorrupt, id, err)
	}
	return n.proofFor(m, e.Pos)
}

// ProofFor returns the proof for a message given whole, which the node
// need not hold any more: its checkpoints outlive the messages' bodies.
// The message must decode with the network's parameters and be of its
// network.
func (n *Node) ProofFor(raw []byte) (*proof.Document, error) {
	m, err := n.params.Decode(raw)
	if err != nil {
		return nil, err
	}
	if m.Network != n.params.Network {
		return nil, fmt.Errorf("%w: %016x", dag.ErrNetwork, uint64(m.Network))
	}
	pos := storage.NoPos // not held: its leaf is found by ID
	if e, err := n.store.Get(m.ID()); err == nil {
		pos = e.Pos
	}
	return n.proofFor(m, pos)
}

// proofFor builds the proof for m, at position pos of the log (NoPos if
// the store no longer holds it).
func (n *Node) proofFor(m *dag.Message, pos uint64) (*proof.Document, error) {
	id := m.ID()
	doc := &proof.Document{Version: proof.DocumentVersion, ID: id, Message: m.Bytes()}
	var (
		weight, total uint64
		bad           []keptCheckpoint
	)
	err := n.store.StateView(func(tx *storage.StateTx) error {
		for _, v := range n.cfg.Validators {
			total += v.Weight
			kc, ids, ok, err := n.covering(tx, v.Key, m, pos)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			a, ok, err := kc.attest(id, ids)
			if err != nil {
				return err
			}
			if !ok {
				bad = append(bad, kc)
				continue
			}
			doc.Checkpoints = append(doc.Checkpoints, a)
			weight += v.Weight
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		n.dropUnmatched(bad)
	}
	num, den := n.cfg.Core.ThresholdNum, n.cfg.Core.ThresholdDen
	if num == 0 && den == 0 {
		num, den = 2, 3
	}
	if need := (total*num + den - 1) / den; weight < need {
		return nil, &NoProofError{Weight: weight, Need: need, RetryAfter: n.proofRetry()}
	}
	return doc, nil
}

// proofRetry estimates when more checkpoints may cover a message: a
// checkpoint interval, and the time they take to arrive.
func (n *Node) proofRetry() time.Duration {
	if n.cfg.CheckpointInterval < 0 {
		return time.Second
	}
	return n.cfg.CheckpointInterval + time.Second
}

// covering finds validator v's kept checkpoint covering m, at pos (NoPos
// if unknown), if there is one, and its leaves' IDs, in position order. A
// checkpoint whose leaves' IDs the store no longer holds covers nothing.
func (n *Node) covering(tx *storage.StateTx, v dag.PublicKey, m *dag.Message, pos uint64) (kc keptCheckpoint, ids []dag.ID, ok bool, err error) {
	scanned := 0
	from := checkpointKey(v, m.Timestamp, dag.ID{})
	err = tx.ForEach(stateCheckpoints, from[:], false, func(k, val []byte) (bool, error) {
		if !bytes.HasPrefix(k, v[:]) || scanned >= maxCheckpointScan {
			return false, nil
		}
		scanned++
		c, err := parseKept(val, dag.MaxPayload)
		if err != nil {
			return false, err
		}
		if c.cp.From > m.Timestamp {
			return false, nil // froms never decrease: none further covers m
		}
		if pos != storage.NoPos {
			if _, found := slices.BinarySearch(c.pos, pos); !found {
				return true, nil
			}
			kc, ok = c, true
			return false, nil
		}
		leaves, err := n.ids(c)
		if errors.Is(err, storage.ErrPruned) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if slices.Contains(leaves, m.ID()) {
			kc, ids, ok = c, leaves, true
			return false, nil
		}
		return true, nil
	})
	if err != nil || !ok || ids != nil {
		return kc, ids, ok && err == nil, err
	}
	ids, err = n.ids(kc)
	if errors.Is(err, storage.ErrPruned) {
		return kc, nil, false, nil
	}
	return kc, ids, err == nil, err
}

// attest builds the validator's part of the proof for id, a leaf of k
// whose leaves' IDs are ids: the tree over them, which must have the
// payload's root. ok is false if it has not: the node did not rebuild
// what the validator covered.
func (k keptCheckpoint) attest(id dag.ID, ids []dag.ID) (a proof.Attestation, ok bool, err error) {
	proof.SortIDs(ids)
	t, err := proof.NewTree(ids)
	if err != nil {
		return a, false, fmt.Errorf("%w: kept checkpoint %s: %v", storage.ErrCorrupt, k.msg.ID(), err)
	}
	if t.Root() != k.cp.Root {
		return a, false, nil
	}
	a, err = proof.Attest(k.msg, ids, t, id)
	return a, err == nil, err
}

// dropUnmatched deletes kept checkpoints whose leaves do not have their
// payload's root, counting each once.
func (n *Node) dropUnmatched(bad []keptCheckpoint) {
	err := n.store.StateUpdate(func(tx *storage.StateTx) error {
		for _, k := range bad {
			key := checkpointKey(k.msg.Issuer, k.msg.Timestamp, k.msg.ID())
			v, err := tx.Get(stateCheckpoints, key[:])
			if err != nil {
				return err
			}
			if v == nil {
				continue // gone already: another proof found it first
			}
			if err := tx.Delete(stateCheckpoints, key[:]); err != nil {
				return err
			}
			n.unmatched(k.msg, k.cp, int(k.cp.Count))
		}
		return nil
	})
	if err != nil {
		n.log.Warn().Err(err).Msg("dropping unmatched checkpoints")
	}
}

// proofPruneEvery is how often the keeper drops the checkpoints past
// their retention.
const proofPruneEvery = time.Minute

// proofCutoff returns the timestamp below which kept checkpoints go: with
// Config.ProofRetain, that long before now; without, the newest timestamp
// the store's retention dropped, so that proof material lives as long as
// the messages. ok is false while nothing is to go.
func (n *Node) proofCutoff() (int64, bool) {
	if n.cfg.ProofRetain > 0 {
		return n.now().Add(-n.cfg.ProofRetain).UnixNano(), true
	}
	d := n.store.DroppedUntil()
	return d, d != storage.NoTime
}

// pruneCheckpoints deletes the kept checkpoints timestamped below the
// cutoff, at most a thousand a transaction; with ProofRetain, then the ID
// files (kept after their epochs) that no checkpoint left names.
func (n *Node) pruneCheckpoints() error {
	cut, ok := n.proofCutoff()
	if !ok {
		return nil
	}
	if err := n.pruneKept(cut); err != nil {
		return err
	}
	if n.cfg.ProofRetain <= 0 {
		return nil // the ID files went with their epochs
	}
	before, err := n.oldestLeaf(cut)
	if err != nil {
		return err
	}
	_, err = n.store.ForgetIDs(before)
	return err
}

// oldestLeaf returns a timestamp that no leaf of a kept checkpoint is
// below: the least from of each validator's oldest kept checkpoint (froms
// never decrease along a validator's checkpoints), and at most cut.
func (n *Node) oldestLeaf(cut int64) (int64, error) {
	before := cut
	err := n.store.StateView(func(tx *storage.StateTx) error {
		for _, v := range n.cfg.Validators {
			err := tx.ForEach(stateCheckpoints, v.Key[:], false, func(k, val []byte) (bool, error) {
				if !bytes.HasPrefix(k, v.Key[:]) {
					return false, nil
				}
				kc, err := parseKept(val, dag.MaxPayload)
				if err != nil {
					return false, err
				}
				before = min(before, kc.cp.From)
				return false, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return before, err
}

// pruneKept deletes the kept checkpoints timestamped below cut.
func (n *Node) pruneKept(cut int64) error {
	for _, v := range n.cfg.Validators {
		for {
			var keys [][]byte
			err := n.store.StateView(func(tx *storage.StateTx) error {
				return tx.ForEach(stateCheckpoints, v.Key[:], false, func(k, _ []byte) (bool, error) {
					if !bytes.HasPrefix(k, v.Key[:]) || len(keys) == 1000 ||
						int64(binary.BigEndian.Uint64(k[dag.PublicKeySize:])) >= cut {
						return false, nil
					}
					keys = append(keys, bytes.Clone(k))
					return true, nil
				})
			})
			if err != nil || len(keys) == 0 {
				break
			}
			err = n.store.StateUpdate(func(tx *storage.StateTx) error {
				for _, k := range keys {
					if err := tx.Delete(stateCheckpoints, k); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			n.m.checkpoints.WithLabelValues("pruned").Add(float64(len(keys)))
			if len(keys) < 1000 {
				break
			}
		}
	}
	return nil
}

// restoreCheckpoints, at start, marks in the core what each validator's
// newest kept checkpoints cover, and picks up the node's own chain. Kept
// checkpoints of format 1 are dropped first.
func (n *Node) restoreCheckpoints() error {
	if err := n.dropOldCheckpoints(); err != nil {
		return err
	}
	return n.store.StateView(func(tx *storage.StateTx) error {
		for _, v := range n.cfg.Validators {
			last := checkpointKey(v.Key, math.MaxInt64, dag.ID{0xff})
			seen := 0
			err := tx.ForEach(stateCheckpoints, last[:], true, func(k, val []byte) (bool, error) {
				if !bytes.HasPrefix(k, v.Key[:]) || seen >= restoreKept {
					return false, nil
				}
				kc, err := parseKept(val, dag.MaxPayload)
				if err != nil {
					return false, err
				}
				if seen == 0 && v.Key == n.self {
					n.ckpt.last, n.ckpt.lastID, n.ckpt.lastTS = kc.cp, kc.msg.ID(), kc.msg.Timestamp
				}
				seen++
				ids, err := n.ids(kc)
				if err != nil && !errors.Is(err, storage.ErrPruned) {
					return false, err
				}
				n.core.MarkCovered(v.Key, append(ids, kc.msg.ID()))
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// dropOldCheckpoints deletes the kept checkpoints if they are of format 1,
// whose values begin with the message's length (2 bytes, at least 195)
// rather than keptFormat: proofs from before the upgrade are no longer
// served.
func (n *Node) dropOldCheckpoints() error {
	old := false
	err := n.store.StateView(func(tx *storage.StateTx) error {
		return tx.ForEach(stateCheckpoints, nil, false, func(_, v []byte) (bool, error) {
			old = len(v) > 0 && v[0] != keptFormat
			return false, nil
		})
	})
	if err != nil || !old {
		return err
	}
	n.log.Warn().Msg("dropping the checkpoints kept in an older format: proofs of the messages they covered are no longer served")
	return n.store.StateUpdate(func(tx *storage.StateTx) error { return tx.DeleteBucket(stateCheckpoints) })
}
