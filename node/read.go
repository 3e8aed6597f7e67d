package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// Tips is what a device needs to build a message.
type Tips struct {
	Parents      [2]dag.ID
	MinTimestamp int64 // the newer parent's timestamp
	Difficulty   int   // for the payload size asked about
}

// Tips returns two parents drawn uniformly from a recent sample of the tip
// pool, and the proof of work a message with a payload of payloadSize bytes
// needs.
func (n *Node) Tips(payloadSize int) Tips {
	s := n.snap.Load()
	t := Tips{Difficulty: n.params.Difficulty(dag.MinSize + max(0, payloadSize))}
	switch len(s.tips) {
	case 0:
		g := dag.Genesis(n.params.Network).ID()
		t.Parents = [2]dag.ID{g, g}
	case 1:
		t.Parents = [2]dag.ID{s.tips[0].id, s.tips[0].id}
		t.MinTimestamp = s.tips[0].ts
	default:
		i := n.rng.IntN(len(s.tips))
		j := n.rng.IntN(len(s.tips) - 1)
		if j >= i {
			j++
		}
		a, b := s.tips[i], s.tips[j]
		t.Parents = [2]dag.ID{a.id, b.id}
		t.MinTimestamp = max(a.ts, b.ts)
	}
	return t
}

// Info is the node's state for /api/v1/info.
type Info struct {
	NodeID        dag.PublicKey
	Network       string
	NetworkID     dag.NetworkID
	Messages      uint64 // solid messages, genesis included
	Confirmed     uint64
	Unconfirmed   int
	Pending       int
	Tips          int
	Validators    []dag.Validator
	MessagesRate  float64 // solid messages per second, recent average
	ConfirmedRate float64
	// Durable is how many messages the store holds, genesis included:
	// Messages less those still on their way to the disk.
	Durable uint64
	// StorageError says why the store cannot commit, "" while it can.
	StorageError string
	// CaughtUp: the node caught up with a peer since it started.
	CaughtUp bool
}

// Usage is what the node has used and refused: dearer to read than Info
// (it lists the store's files and reads /proc), for GET /api/v1/info
// alone.
type Usage struct {
	// Rejected counts the messages refused since the start, by Code.
	Rejected map[string]uint64
	// MemoryBytes is the process's resident memory (0 where unknown);
	// DiskBytes what the store's files take.
	MemoryBytes, DiskBytes int64
}

// Usage returns the node's Usage now.
func (n *Node) Usage() Usage {
	return Usage{Rejected: n.m.rejectedCounts(), MemoryBytes: residentBytes(), DiskBytes: n.store.DiskUsage()}
}

// IsValidator reports whether k is one of the network's validators. Safe
// from any goroutine.
func (n *Node) IsValidator(k dag.PublicKey) bool { return n.vals[k] }

// Info returns the node's counters as of the last step of the core loop.
func (n *Node) Info() Info {
	s := n.snap.Load()
	in := Info{
		NodeID: n.self, Network: n.cfg.Network, NetworkID: n.params.Network,
		Messages: s.stats.Next, Confirmed: s.stats.Confirmed, Unconfirmed: s.stats.Unconfirmed,
		Pending: s.stats.Pending, Tips: s.stats.Tips, Validators: n.cfg.Validators,
		MessagesRate: s.msgRate, ConfirmedRate: s.confRate, Durable: n.store.NextPos(),
	}
	if err := n.storageErr(); err != nil {
		in.StorageError = err.Error()
	}
	in.CaughtUp = n.gossip != nil && n.gossip.caughtUp()
	return in
}

// residentBytes returns the process's resident memory, read from
// /proc/self/statm (Linux); 0 elsewhere.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// MessageInfo is a stored message with its state.
type MessageInfo struct {
	Msg *dag.Message
	// ID is Msg's ID, as the store keeps it (zero for a Pending message:
	// use Msg.ID(), which hashes the message).
	ID          dag.ID
	Pos         uint64
	Confirmed   bool
	ConfirmedAt int64
	Orphaned    bool   // given up as never to be confirmed
	Weight      uint64 // approval weight, when HasWeight
	HasWeight   bool   // the message is in the core's window
	// Approvers are the validators whose approval the core counted (until
	// the message was confirmed), when HasWeight.
	Approvers []dag.PublicKey
	Children  []dag.ID
	// Pending: the message is not stored; the node holds it, in memory,
	// waiting for its parents (Pos, Confirmed and Children are zero).
	Pending bool
}

// query runs fn on the core loop and waits for it.
func (n *Node) query(ctx context.Context, fn func(*dag.Core)) error {
	done := make(chan struct{})
	select {
	case n.queries <- func(c *dag.Core) { fn(c); close(done) }:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Message returns a stored message, or one the node holds waiting for its
// parents (Pending), or ErrNotFound.
func (n *Node) Message(ctx context.Context, id dag.ID) (*MessageInfo, error) {
	e, err := n.store.Get(id)
	if errors.Is(err, storage.ErrNotFound) {
		var pm *dag.Message
		if err := n.query(ctx, func(c *dag.Core) { pm, _ = c.PendingMessage(id) }); err != nil {
			return nil, err
		}
		if pm != nil {
			return &MessageInfo{Msg: pm, Pending: true}, nil
		}
	}
	if err != nil {
		return nil, storeErr(err)
	}
	mi, err := n.entryInfo(e)
	if err != nil {
		return nil, err
	}
	children, err := n.store.Children(id)
	if err != nil {
		return nil, storeErr(err)
	}
	for _, c := range children {
		mi.Children = append(mi.Children, c)
	}
	var st dag.MessageState
	var ok bool
	if err := n.query(ctx, func(c *dag.Core) { st, ok = c.State(id) }); err != nil {
		return nil, err
	}
	if ok {
		mi.Weight, mi.HasWeight = st.Weight, true
		for _, v := range st.Approvers {
			mi.Approvers = append(mi.Approvers, n.cfg.Validators[v].Key)
		}
		if st.Confirmed && !mi.Confirmed { // confirmed, the commit is on its way
			mi.Confirmed, mi.ConfirmedAt = true, st.ConfirmedAt
		}
	}
	return mi, nil
}

func (n *Node) entryInfo(e storage.Entry) (*MessageInfo, error) {
	m, err := dag.Decode(e.Raw, n.params.MaxPayload)
	if err != nil {
		return nil, fmt.Errorf("%w: position %d: %v", storage.ErrCorrupt, e.Pos, err)
	}
	return &MessageInfo{Msg: m, ID: e.ID, Pos: e.Pos, Confirmed: e.Confirmed, ConfirmedAt: e.ConfirmedAt, Orphaned: e.Orphaned}, nil
}

// Raw returns a stored message's encoding.
func (n *Node) Raw(id dag.ID) ([]byte, error) {
	e, err := n.store.Get(id)
	if err != nil {
		return nil, storeErr(err)
	}
	return e.Raw, nil
}

// IssuerMessages returns up to limit messages of issuer with a sequence
// number above afterSeq (all, when after is false), in sequence order.
func (n *Node) IssuerMessages(issuer dag.PublicKey, afterSeq uint64, after bool, limit int) ([]*MessageInfo, error) {
	from := storage.SeqPos{}
	if after {
		if afterSeq == ^uint64(0) {
			return nil, nil
		}
		from = storage.SeqPos{Seq: afterSeq + 1}
	}
	es, err := n.store.ByIssuer(issuer, from, limit)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]*MessageInfo, 0, len(es))
	for _, e := range es {
		mi, err := n.entryInfo(e)
		if err != nil {
			return nil, err
		}
		out = append(out, mi)
	}
	return out, nil
}

// Subscribe returns a subscription to the node's events from now on, or
// ErrTooManySubscribers when Config.MaxSubscribers are open. Close it when
// done.
func (n *Node) Subscribe() (*Subscription, error) { return n.hub.subscribe() }

// Subscribers returns the number of open event subscriptions.
func (n *Node) Subscribers() int { return n.hub.subscribers() }

func storeErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, storage.ErrPruned):
		return fmt.Errorf("%w: %v", ErrPruned, err)
	}
	return err
}

// History says how much history the node holds: HasDropped is false
// until retention dropped an epoch; then every message timestamped after
// CompleteAfter that the node ever stored, it still holds, and FirstPos is
// the first position it holds.
type History struct {
	HasDropped    bool
	CompleteAfter int64
	FirstPos      uint64
}

// History returns how much history the node holds.
func (n *Node) History() History {
	d := n.store.DroppedUntil()
	return History{HasDropped: d != storage.NoTime, CompleteAfter: d, FirstPos: n.store.FirstPos()}
}

// FirstSeq returns the sequence number of the oldest message of issuer
// the node holds, and false if it holds none.
func (n *Node) FirstSeq(issuer dag.PublicKey) (uint64, bool, error) {
	es, err := n.store.ByIssuer(issuer, storage.SeqPos{}, 1)
	if err != nil || len(es) == 0 {
		return 0, false, storeErr(err)
	}
	return es[0].Seq, true, nil
}

// SetAllowlist replaces the devices allowed to submit (Config.Allowlist);
// empty lets every device in. It takes effect for the next submission and
// is safe for concurrent use. The keys not in the device registry are
// added to it as allowed; if that fails (the store cannot commit, the
// registry is full), the allowlist is replaced all the same and the error
// is returned.
func (n *Node) SetAllowlist(keys []dag.PublicKey) error {
	n.edge.setAllow(keys)
	return n.reg.seed(keys)
}

// Peers returns the gossip peers' state (none when gossip is off). Safe for
// concurrent use.
func (n *Node) Peers() []PeerInfo { return n.gossip.peerInfo() }

// GossipAddr returns the address gossip listens on, or "" when gossip is
// off.
func (n *Node) GossipAddr() string { return n.gossip.addr() }

// ErrNotReady: the node is not ready to serve devices; the error says why.
var ErrNotReady = errors.New("node: not ready")

// Ready returns nil when the node is ready to take and serve messages: its
// pipeline runs, its store commits (see storageErr), and, when it has peers, it has
// caught up with at least one of them since it started. Otherwise it
// returns an error wrapping ErrNotReady that says why. It is safe for
// concurrent use.
func (n *Node) Ready() error {
	if !n.running.Load() {
		return fmt.Errorf("%w: the pipeline is not running", ErrNotReady)
	}
	if err := n.storageErr(); err != nil {
		return fmt.Errorf("%w: %v", ErrNotReady, err)
	}
	if n.gossip != nil && len(n.cfg.Peers) > 0 && !n.gossip.caughtUp() {
		return fmt.Errorf("%w: not yet caught up with any peer", ErrNotReady)
	}
	return nil
}
