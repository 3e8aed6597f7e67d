package node

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
	"github.com/weftnet/weft/storage"
)

// The node's side of gossip: the transport moves bytes; the node decides.
//
//   - Messages from peers take the same path as submissions (verifiers, core
//     loop, store) without the edge policy, after a bounded seen-set drops
//     the copies other peers relayed too.
//   - A peer that sends a message failing a deterministic check (encoding,
//     network, proof of work, signature, a parent rule) is disconnected and
//     backed off. Unknown parents are never held against a peer.
//   - After the commit, a message is relayed to every peer but the one it
//     came from.
//   - Missing parents are requested from the peers whose messages need them.
//   - Catch-up: on every connect and every SyncInterval, a worker pages
//     through the peer's log from where it left off (a cursor per peer, kept
//     in the data directory), so a node that was away gets what it missed
//     without one request per message.

const (
	seenIDs        = 1 << 20 // per generation
	penaltyBackoff = 30 * time.Second
	syncPage       = 4096
	requestMax     = 1024
	cursorsFile    = "peers.json"
)

// seenSet remembers recently relayed IDs, bounded.
type seenSet struct {
	mu sync.Mutex
	g  generations[dag.ID, struct{}]
}

// add reports whether id is new, and remembers it.
func (s *seenSet) add(id dag.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.g.cur[id]; ok {
		return false
	}
	if _, ok := s.g.prev[id]; ok {
		return false
	}
	s.g.put(id, struct{}{})
	return true
}

func (s *seenSet) forget(id dag.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.g.cur, id)
	delete(s.g.prev, id)
}

// inFlight maps the IDs of peers' messages in the pipeline to the job that
// carries them, so that a copy arriving meanwhile (the same message in
// another peer's catch-up page) is not checked again: its page waits for
// the first copy instead. Bounded by the pipeline's capacity.
type inFlight struct {
	mu sync.Mutex
	m  map[dag.ID]*job
}

// peerState is what the node keeps per peer.
type peerState struct {
	invalid  uint64
	cursor   uint64 // next position to sync from, in the peer's log
	kick     chan struct{}
	running  bool
	lastSync time.Time
	caughtUp bool // a catch-up reached the end of the peer's log once
}

// gossiper holds the node's gossip state.
type gossiper struct {
	t        *gossip.Transport
	seen     seenSet
	inFlight inFlight

	mu    sync.Mutex
	peers map[dag.PublicKey]*peerState
	dirty bool
}

func (n *Node) newGossip() error {
	cfg := n.cfg.Gossip
	cfg.Identity = n.cfg.Identity
	cfg.Listen = n.cfg.GossipListen
	cfg.Network = n.params.Network
	cfg.Peers = n.cfg.Peers
	cfg.Open = n.cfg.OpenGossip
	cfg.Handler = (*gossipHandler)(n)
	cfg.Log = n.log.With().Str("part", "gossip").Logger()
	t, err := gossip.New(cfg)
	if err != nil {
		return err
	}
	g := &gossiper{t: t, peers: make(map[dag.PublicKey]*peerState), inFlight: inFlight{m: make(map[dag.ID]*job)}}
	g.seen.g.init(seenIDs)
	// Cursors survive restarts, so a restarted node asks only for what it missed.
	if b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, cursorsFile)); err == nil {
		var saved map[string]uint64
		if json.Unmarshal(b, &saved) == nil {
			for k, pos := range saved {
				kb, err := hex.DecodeString(k)
				if err != nil || len(kb) != 32 {
					continue
				}
				g.peer(dag.PublicKey(kb)).cursor = pos
			}
		}
	}
	n.gossip = g
	return nil
}

// forget drops id from the seen set, so that the message is taken again
// when it comes again. Nothing when gossip is off.
func (g *gossiper) forget(id dag.ID) {
	if g != nil {
		g.seen.forget(id)
	}
}

// peer returns the state of p, creating it. Call with g.mu held.
func (g *gossiper) peer(p dag.PublicKey) *peerState {
	ps, ok := g.peers[p]
	if !ok {
		ps = &peerState{kick: make(chan struct{}, 1)}
		g.peers[p] = ps
	}
	return ps
}

// saveCursors writes the sync cursors, atomically.
func (n *Node) saveCursors() {
	g := n.gossip
	g.mu.Lock()
	if !g.dirty {
		g.mu.Unlock()
		return
	}
	out := make(map[string]uint64, len(g.peers))
	for k, ps := range g.peers {
		out[hex.EncodeToString(k[:])] = ps.cursor
	}
	g.dirty = false
	g.mu.Unlock()
	b, _ := json.Marshal(out)
	path := filepath.Join(n.cfg.DataDir, cursorsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		os.Rename(tmp, path)
	}
}

// penalize disconnects a peer that sent an invalid message.
func (n *Node) penalize(from dag.PublicKey, err error) {
	g := n.gossip
	g.mu.Lock()
	g.peer(from).invalid++
	g.mu.Unlock()
	n.log.Warn().Str("peer", from.String()).Err(err).Msg("peer sent an invalid message: disconnecting")
	g.t.Disconnect(from, penaltyBackoff)
}

// deterministic reports whether err is a fault of the message itself, the
// same on every node, as opposed to local state (duplicate, overload, ...).
func deterministic(err error) bool {
	for _, e := range []error{dag.ErrMalformed, dag.ErrVersion, dag.ErrTooLarge, dag.ErrNetwork,
		dag.ErrSignature, dag.ErrPoW, dag.ErrTimestamp, dag.ErrInvalidParent} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// peerJob is the most messages from a peer in one job: a page of catch-up
// sync is split so that every verifier takes a share.
const peerJob = 512

// fromPeer hands messages from a peer to the pipeline and returns the jobs
// carrying them, and the jobs of other peers' that carry copies of some of
// them already (none if nothing was new). Relayed messages seen before are
// dropped; a catch-up page's messages are never dropped as seen (a page
// must be durable before the cursor passes it), but one already in the
// pipeline is not checked twice. It blocks while the pipeline is full:
// that is the backpressure a peer feels.
func (n *Node) fromPeer(from dag.PublicKey, raws [][]byte, relayed bool) (jobs, others []*job) {
	msgs := make([]*dag.Message, 0, len(raws))
	for _, raw := range raws {
		m, err := n.params.Decode(raw)
		if err != nil {
			n.m.rejected.WithLabelValues(Code(err)).Inc()
			n.penalize(from, err)
			return nil, nil
		}
		if m.ID() == n.genesis {
			continue // derived, never validated (it has no proof of work)
		}
		if relayed && !n.gossip.seen.add(m.ID()) {
			continue
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	f := &n.gossip.inFlight
	f.mu.Lock()
	fresh := msgs[:0]
	for _, m := range msgs {
		if j, ok := f.m[m.ID()]; ok {
			if !relayed && (len(others) == 0 || others[len(others)-1] != j) {
				others = append(others, j)
			}
			continue
		}
		fresh = append(fresh, m)
	}
	nfresh := len(fresh)
	for len(fresh) > 0 {
		k := min(len(fresh), peerJob)
		j := newJob(fresh[:k:k])
		j.peer, j.from = true, from
		for i := range j.items {
			f.m[j.items[i].msg.ID()] = j
		}
		j.release = func() {
			f.mu.Lock()
			for i := range j.items {
				if id := j.items[i].msg.ID(); f.m[id] == j {
					delete(f.m, id)
				}
			}
			f.mu.Unlock()
		}
		jobs = append(jobs, j)
		fresh = fresh[k:]
	}
	f.mu.Unlock()
	if len(jobs) == 0 {
		return nil, others
	}
	n.m.in.WithLabelValues("gossip").Add(float64(nfresh))
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.stopping {
		for _, j := range jobs {
			for i := range j.items {
				j.items[i].finish(ErrShuttingDown)
			}
		}
		return nil, others
	}
	for _, j := range jobs {
		n.verifyQ <- j
	}
	return jobs, others
}

// gossipHandler is the node as the transport's Handler.
type gossipHandler Node

func (h *gossipHandler) Connected(peer dag.PublicKey) {
	n := (*Node)(h)
	n.kickSync(peer)
}

func (h *gossipHandler) Messages(from dag.PublicKey, raws [][]byte) {
	(*Node)(h).fromPeer(from, raws, true)
}

func (h *gossipHandler) Request(from dag.PublicKey, ids []dag.ID) [][]byte {
	n := (*Node)(h)
	var out [][]byte
	for _, id := range ids[:min(len(ids), requestMax)] {
		if e, err := n.store.Get(id); err == nil {
			out = append(out, e.Raw)
		}
	}
	return out
}

var errPageFull = errors.New("page full")

func (h *gossipHandler) Sync(from dag.PublicKey, pos uint64, limit, maxBytes int) ([][]byte, uint64, bool) {
	n := (*Node)(h)
	pos = max(pos, 1) // every node derives the genesis; it is never sent
	var (
		out   [][]byte
		bytes int
		next  = pos
	)
	err := n.store.Range(pos, func(e storage.Entry) error {
		if len(out) >= limit || bytes+len(e.Raw)+8 > maxBytes {
			return errPageFull
		}
		out = append(out, e.Raw)
		bytes += len(e.Raw) + 8
		next = e.Pos + 1
		return nil
	})
	done := err == nil // the log ended before the page filled
	return out, next, done
}

// kickSync makes the peer's sync worker run now, starting it if needed.
func (n *Node) kickSync(peer dag.PublicKey) {
	g := n.gossip
	g.mu.Lock()
	ps := g.peer(peer)
	start := !ps.running
	ps.running = true
	g.mu.Unlock()
	select {
	case ps.kick <- struct{}{}:
	default:
	}
	if start {
		n.workers.Add(1)
		go func() {
			defer n.workers.Done()
			n.syncWorker(peer, ps)
		}()
	}
}

// syncPipeline is how many pages of catch-up may be in flight at once:
// the next is fetched while the one before is checked and stored.
const syncPipeline = 3

// syncWorker catches up with one peer: page by page from the cursor until
// the peer's log ends, then again at every kick or SyncInterval. Up to
// syncPipeline pages are in flight; the cursor moves past a page only once
// all of it is durable (or refused), so a restart never skips one.
func (n *Node) syncWorker(peer dag.PublicKey, ps *peerState) {
	ctx := n.gossipCtx
	timer := time.NewTimer(n.cfg.SyncInterval)
	defer timer.Stop()
	type page struct {
		jobs   []*job
		others []*job // other peers' jobs with copies of this page's messages
		next   uint64
	}
	settle := func(p page) {
		for _, j := range p.jobs {
			j.wait(ctx, 5*time.Minute)
		}
		for _, j := range p.others {
			select { // their owners settle them
			case <-j.done:
			case <-ctx.Done():
			}
		}
		n.gossip.mu.Lock()
		if p.next > ps.cursor {
			ps.cursor, n.gossip.dirty = p.next, true
		}
		n.gossip.mu.Unlock()
	}
	for {
		n.gossip.mu.Lock()
		fetch := ps.cursor
		n.gossip.mu.Unlock()
		var (
			flight   []page
			caughtUp bool
		)
		for {
			raws, next, done, err := n.gossip.t.Sync(ctx, peer, fetch, syncPage)
			if err != nil {
				break // disconnected, timed out or stopping: wait for the next kick
			}
			jobs, others := n.fromPeer(peer, raws, false)
			flight = append(flight, page{jobs, others, next})
			fetch = next
			if len(flight) >= syncPipeline {
				settle(flight[0])
				flight = flight[1:]
				n.saveCursors()
			}
			if done || len(raws) == 0 {
				caughtUp = true
				break
			}
			if ctx.Err() != nil {
				break
			}
		}
		for _, p := range flight {
			settle(p)
		}
		if caughtUp {
			n.gossip.mu.Lock()
			ps.caughtUp = true
			n.gossip.mu.Unlock()
		}
		n.saveCursors()
		timer.Reset(n.cfg.SyncInterval + time.Duration(n.rng.Int64N(int64(n.cfg.SyncInterval/4+1))))
		select {
		case <-ctx.Done():
			return
		case <-ps.kick:
		case <-timer.C:
		}
	}
}

// relay sends what a write made durable to the peers: each message to all
// but the peer it came from.
func (n *Node) relay(u *relayBatch) {
	if n.gossip == nil {
		return
	}
	if len(u.all) > 0 {
		n.gossip.t.Broadcast(u.all, dag.PublicKey{})
	}
	for p, raws := range u.except {
		n.gossip.t.Broadcast(raws, p)
	}
}

// relayBatch groups a write's messages by the peer not to send them to.
type relayBatch struct {
	all    [][]byte
	except map[dag.PublicKey][][]byte
}

func (r *relayBatch) add(raw []byte, it *item) {
	if it == nil || !it.job.peer {
		r.all = append(r.all, raw)
		return
	}
	if r.except == nil {
		r.except = make(map[dag.PublicKey][][]byte)
	}
	r.except[it.job.from] = append(r.except[it.job.from], raw)
}

// requestMissing asks peers for parents the core misses: the peers whose
// messages wait on them, or every peer when none of them came by gossip.
func (n *Node) requestMissing(ids []dag.ID, from map[dag.PublicKey]bool) {
	if n.gossip == nil || len(ids) == 0 {
		return
	}
	ids = ids[:min(len(ids), requestMax)]
	if len(from) == 0 {
		for _, p := range n.gossip.t.Peers() {
			if p.Connected {
				n.gossip.t.RequestIDs(p.Key, ids)
			}
		}
		return
	}
	for p := range from {
		n.gossip.t.RequestIDs(p, ids)
	}
}

// retryMissing, on the core loop's tick, asks a random connected peer again
// for what is still missing.
func (n *Node) retryMissing() {
	if n.gossip == nil {
		return
	}
	ids := n.core.Missing(requestMax)
	if len(ids) == 0 {
		return
	}
	var up []dag.PublicKey
	for _, p := range n.gossip.t.Peers() {
		if p.Connected {
			up = append(up, p.Key)
		}
	}
	if len(up) > 0 {
		n.gossip.t.RequestIDs(up[n.rng.IntN(len(up))], ids)
	}
}

// PeerInfo is one peer as /api/v1/info shows it.
type PeerInfo struct {
	gossip.PeerStats
	Invalid uint64
}

// Peers returns the gossip peers' state (none when gossip is off).
func (n *Node) Peers() []PeerInfo {
	if n.gossip == nil {
		return nil
	}
	stats := n.gossip.t.Peers()
	out := make([]PeerInfo, len(stats))
	n.gossip.mu.Lock()
	defer n.gossip.mu.Unlock()
	for i, s := range stats {
		out[i].PeerStats = s
		if ps, ok := n.gossip.peers[s.Key]; ok {
			out[i].Invalid = ps.invalid
		}
	}
	return out
}

// caughtUp reports whether the node has caught up with at least one peer
// since it started.
func (g *gossiper) caughtUp() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ps := range g.peers {
		if ps.caughtUp {
			return true
		}
	}
	return false
}

// GossipAddr returns the address gossip listens on, or nil.
func (n *Node) GossipAddr() string {
	if n.gossip == nil || n.gossip.t.Addr() == nil {
		return ""
	}
	return n.gossip.t.Addr().String()
}

var _ gossip.Handler = (*gossipHandler)(nil)
