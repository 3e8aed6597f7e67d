package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/proof"
	"github.com/weftnet/weft/storage"
)

// Checkpoints and proofs (docs/PROTOCOL.md 8). A validator node issues a
// checkpoint as one of its own messages every CheckpointInterval, or once
// CheckpointEvery messages were confirmed since the last. Every node, for
// every validator's checkpoint that becomes durable here, rebuilds the
// leaves from the DAG core (the core reports them with the Update) and
// keeps them in the store's state, so that it can serve proofs for any
// validator. The leaves are checked against the payload's root when a
// proof is built from them, where their tree is built anyway: a node
// hashes a validator's leaves only when someone asks for a proof.

// checkpointMargin is how far below its previous checkpoint's timestamp
// a checkpoint's from lies (PROTOCOL.md 8.2).
const checkpointMargin = int64(5 * time.Second)

// stateCheckpoints is the state bucket of the kept checkpoints. A key is
// the validator's key, the checkpoint's timestamp (8 bytes, big-endian)
// and its ID; the value the checkpoint message's length (2 bytes) and
// encoding, then its leaves, 32 bytes each, in the order the core found
// them.
const stateCheckpoints = "checkpoints"

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
		size += int64(len(c.Leaves)) * dag.IDSize
		cp, err := proof.DecodeCheckpoint(c.Msg.Payload)
		if err != nil || len(c.Leaves) == 0 {
			continue // the core reports only checkpoints that decode; an empty one proves nothing
		}
		if uint64(len(c.Leaves)) != uint64(cp.Count) {
			n.unmatched(c.Msg, cp, len(c.Leaves))
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

// keptValue is the state's value for a checkpoint (stateCheckpoints).
func keptValue(c dag.Checkpoint) []byte {
	raw := c.Msg.Bytes()
	v := make([]byte, 0, 2+len(raw)+len(c.Leaves)*dag.IDSize)
	v = binary.BigEndian.AppendUint16(v, uint16(len(raw)))
	v = append(v, raw...)
	for _, id := range c.Leaves {
		v = append(v, id[:]...)
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
// kept: 64 MiB, two million leaves (the queue's 16 updates bound their
// number, this their size).
const maxKeeping = 64 << 20

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
		size += int64(len(c.Leaves)) * dag.IDSize
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

// keptCheckpoint is a stored checkpoint, parsed; leaves alias the value.
type keptCheckpoint struct {
	msg    *dag.Message
	cp     proof.Checkpoint
	leaves []byte
}

func parseKept(v []byte, maxPayload int) (keptCheckpoint, error) {
	if len(v) < 2 || len(v) < 2+int(binary.BigEndian.Uint16(v)) {
		return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint of %d bytes", storage.ErrCorrupt, len(v))
	}
	k := int(binary.BigEndian.Uint16(v))
	m, err := dag.Decode(v[2:2+k], maxPayload)
	if err != nil {
		return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint: %v", storage.ErrCorrupt, err)
	}
	cp, err := proof.DecodeCheckpoint(m.Payload)
	leaves := v[2+k:]
	if err != nil || len(leaves) != int(cp.Count)*dag.IDSize {
		return keptCheckpoint{}, fmt.Errorf("%w: kept checkpoint %s", storage.ErrCorrupt, m.ID())
	}
	return keptCheckpoint{msg: m, cp: cp, leaves: leaves}, nil
}

// leaf returns the i-th leaf.
func (k keptCheckpoint) leaf(i int) []byte { return k.leaves[i*dag.IDSize : (i+1)*dag.IDSize] }

// has reports whether id is one of the leaves: a scan, comparing first
// the leaves' first 8 bytes.
func (k keptCheckpoint) has(id dag.ID) bool {
	head := binary.LittleEndian.Uint64(id[:8])
	for off := 0; off+dag.IDSize <= len(k.leaves); off += dag.IDSize {
		if binary.LittleEndian.Uint64(k.leaves[off:]) == head && bytes.Equal(k.leaves[off:off+dag.IDSize], id[:]) {
			return true
		}
	}
	return false
}

// ids returns a copy of the leaves as IDs.
func (k keptCheckpoint) ids() []dag.ID {
	ids := make([]dag.ID, len(k.leaves)/dag.IDSize)
	for i := range ids {
		copy(ids[i][:], k.leaf(i))
	}
	return ids
}

// Proof returns the proof for a stored message: ErrNotFound or ErrPruned
// if the node does not hold it (ProofFor takes a message from its owner),
// a *NoProofError until checkpoints of enough validators cover it.
func (n *Node) Proof(id dag.ID) (*proof.Document, error) {
	raw, err := n.Raw(id)
	if err != nil {
		return nil, err
	}
	m, err := dag.Decode(raw, n.params.MaxPayload)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", storage.ErrCorrupt, id, err)
	}
	return n.proofFor(m)
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
	return n.proofFor(m)
}

func (n *Node) proofFor(m *dag.Message) (*proof.Document, error) {
	id := m.ID()
	doc := &proof.Document{Version: proof.DocumentVersion, ID: id, Message: m.Bytes()}
	var (
		weight, total uint64
		bad           []keptCheckpoint
	)
	err := n.store.StateView(func(tx *storage.StateTx) error {
		for _, v := range n.cfg.Validators {
			total += v.Weight
			kc, ok, err := n.covering(tx, v.Key, m)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			a, ok, err := kc.attest(id)
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

// covering finds validator v's kept checkpoint covering m, if there is
// one.
func (n *Node) covering(tx *storage.StateTx, v dag.PublicKey, m *dag.Message) (keptCheckpoint, bool, error) {
	var (
		found   keptCheckpoint
		ok      bool
		scanned int
	)
	from := checkpointKey(v, m.Timestamp, dag.ID{})
	err := tx.ForEach(stateCheckpoints, from[:], false, func(k, val []byte) (bool, error) {
		if !bytes.HasPrefix(k, v[:]) || scanned >= maxCheckpointScan {
			return false, nil
		}
		scanned++
		kc, err := parseKept(val, dag.MaxPayload)
		if err != nil {
			return false, err
		}
		if kc.cp.From > m.Timestamp {
			return false, nil // froms never decrease: none further covers m
		}
		if kc.has(m.ID()) {
			kc.leaves = bytes.Clone(kc.leaves) // the value lives as long as the transaction
			found, ok = kc, true
			return false, nil
		}
		return true, nil
	})
	return found, ok && err == nil, err
}

// attest builds the validator's part of the proof for id, a leaf of k:
// the tree over k's leaves, which must have the payload's root. ok is
// false if it has not: the node did not rebuild what the validator
// covered.
func (k keptCheckpoint) attest(id dag.ID) (a proof.Attestation, ok bool, err error) {
	ids := k.ids()
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
// cutoff, at most a thousand a transaction.
func (n *Node) pruneCheckpoints() error {
	cut, ok := n.proofCutoff()
	if !ok {
		return nil
	}
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
// newest kept checkpoints cover, and picks up the node's own chain.
func (n *Node) restoreCheckpoints() error {
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
				n.core.MarkCovered(v.Key, append(kc.ids(), kc.msg.ID()))
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}
