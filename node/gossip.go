package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
	"github.com/weftnet/weft/storage"
)

// The node's side of gossip, the gossiper: the transport moves bytes; the
// gossiper decides what to do with them, and the node's pipeline decides
// validity.
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
//   - Pruned history: a peer that dropped the messages asked for answers
//     from the first it holds, and names with each page the parents of its
//     messages that it no longer holds, as entry points. The catch-up
//     records them in the store, durably, and hands them to the core before
//     the page's messages go to the pipeline, so that those become solid;
//     the messages themselves are checked as any others. Answering, the
//     node names its own entry points (dropped here, or learned so).

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

// gossiper is the node's side of gossip: it is the transport's Handler,
// keeps the per-peer state (sync cursors, penalties, catch-up), the seen
// set and the in-flight map, runs the catch-up sync workers, and relays
// and requests for the core loop. What it needs of the node it holds as
// the fields below; it hands peers' messages to the node's pipeline
// through enqueue. Its methods are safe for concurrent use; those the
// node calls whatever its configuration (relay, requestMissing,
// requestAgain, forget, peerInfo, addr) do nothing on a nil gossiper, a
// node alone.
type gossiper struct {
	t         *gossip.Transport
	log       zerolog.Logger
	m         *metrics
	store     *storage.Store // read to answer peers' requests and syncs
	params    dag.Params     // to decode peers' messages
	genesis   dag.ID
	dir       string        // the data directory, for the cursors file
	syncEvery time.Duration // Config.SyncInterval
	rng       *rand.Rand    // the node's, serialized
	// enqueue hands jobs to the node's verifiers, blocking while their
	// queue is full or the store fails; it reports false, having sent
	// nothing, once the node has stopped taking work.
	enqueue func([]*job) bool
	// toCore hands entry points to the core on the node's loop
	// (dag.Core.AddEntryPoint), and waits until it has them or ctx ends.
	toCore func(ctx context.Context, eps []storage.EntryPoint) error

	ctx     context.Context // run's, for the sync workers; set before the transport starts
	workers sync.WaitGroup  // the sync workers, waited for by run

	seen     seenSet
	inFlight inFlight

	mu    sync.Mutex
	peers map[dag.PublicKey]*peerState
	dirty bool
}

// newGossiper builds the node's gossiper and its transport, and loads the
// sync cursors a previous run saved.
func newGossiper(n *Node) (*gossiper, error) {
	g := &gossiper{
		log: n.log, m: n.m, store: n.store, params: n.params, genesis: n.genesis,
		dir: n.cfg.DataDir, syncEvery: n.cfg.SyncInterval, rng: n.rng,
		ctx:      context.Background(),
		peers:    make(map[dag.PublicKey]*peerState),
		inFlight: inFlight{m: make(map[dag.ID]*job)},
	}
	// While the store fails, peers wait: their messages are not dropped.
	g.enqueue = func(jobs []*job) bool { return n.waitStorage(n.quit) && n.enqueue(jobs) }
	g.toCore = func(ctx context.Context, eps []storage.EntryPoint) error {
		return n.query(ctx, func(c *dag.Core) {
			now := n.now()
			for _, ep := range eps {
				c.AddEntryPoint(now, ep.ID, ep.Pos, ep.Timestamp)
			}
		})
	}
	g.seen.g.init(seenIDs)
	cfg := n.cfg.Gossip
	cfg.Identity = n.cfg.Identity
	cfg.Listen = n.cfg.GossipListen
	cfg.Network = n.params.Network
	cfg.Peers = n.cfg.Peers
	cfg.Open = n.cfg.OpenGossip
	cfg.Handler = g
	cfg.Log = n.log.With().Str("part", "gossip").Logger()
	t, err := gossip.New(cfg)
	if err != nil {
		return nil, err
	}
	g.t = t
	g.loadCursors()
	return g, nil
}

// run runs the transport until ctx ends. When the transport has returned
// (no handler call is running, so no sync worker can start), it waits for
// the sync workers and saves the cursors. It returns the transport's error.
func (g *gossiper) run(ctx context.Context) error {
	g.ctx = ctx
	err := g.t.Run(ctx)
	g.workers.Wait()
	g.saveCursors()
	return err
}

// loadCursors reads the cursors a previous run saved, so that a restarted
// node asks only for what it missed.
func (g *gossiper) loadCursors() {
	b, err := os.ReadFile(filepath.Join(g.dir, cursorsFile))
	if err != nil {
		return
	}
	var saved map[string]uint64
	if json.Unmarshal(b, &saved) != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, pos := range saved {
		kb, err := hex.DecodeString(k)
		if err != nil || len(kb) != 32 {
			continue
		}
		g.peer(dag.PublicKey(kb)).cursor = pos
	}
}

// forget drops id from the seen set, so that the message is taken again
// when it comes again.
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

// saveCursors writes the sync cursors, atomically, if they moved.
func (g *gossiper) saveCursors() {
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
	path := filepath.Join(g.dir, cursorsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err == nil {
		os.Rename(tmp, path)
	}
}

// penalize disconnects a peer that sent an invalid message.
func (g *gossiper) penalize(from dag.PublicKey, err error) {
	g.mu.Lock()
	g.peer(from).invalid++
	g.mu.Unlock()
	g.log.Warn().Str("peer", from.String()).Err(err).Msg("peer sent an invalid message: disconnecting")
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
func (g *gossiper) fromPeer(from dag.PublicKey, raws [][]byte, relayed bool) (jobs, others []*job) {
	msgs, ok := g.decode(from, raws, relayed)
	if !ok || len(msgs) == 0 {
		return nil, nil
	}
	jobs, others = g.track(from, msgs, relayed)
	if len(jobs) == 0 {
		return nil, others
	}
	n := 0
	for _, j := range jobs {
		n += len(j.items)
	}
	g.m.in.WithLabelValues("gossip").Add(float64(n))
	if !g.enqueue(jobs) {
		for _, j := range jobs {
			for i := range j.items {
				j.items[i].finish(ErrShuttingDown)
			}
		}
		return nil, others
	}
	return jobs, others
}

// decode decodes a peer's messages, leaving out the genesis, the entry
// points of the store (settled here, whose bodies were dropped or never
// held: storing one again would give it a second position) and, for
// relayed ones, those seen before. A message that does not decode
// penalizes the peer and drops the lot (ok false).
func (g *gossiper) decode(from dag.PublicKey, raws [][]byte, relayed bool) (msgs []*dag.Message, ok bool) {
	msgs = make([]*dag.Message, 0, len(raws))
	for _, raw := range raws {
		m, err := g.params.Decode(raw)
		if err != nil {
			g.m.reject(Code(err))
			g.penalize(from, err)
			return nil, false
		}
		if m.ID() == g.genesis {
			continue // derived, never validated (it has no proof of work)
		}
		if _, ep := g.store.EntryPointOf(m.ID()); ep {
			continue
		}
		if relayed && !g.seen.add(m.ID()) {
			continue
		}
		msgs = append(msgs, m)
	}
	return msgs, true
}

// track puts the messages not already in the pipeline into jobs of at most
// peerJob, registered in the in-flight map until they settle; for a
// catch-up page, it also returns the other jobs that carry the rest.
func (g *gossiper) track(from dag.PublicKey, msgs []*dag.Message, relayed bool) (jobs, others []*job) {
	f := &g.inFlight
	f.mu.Lock()
	defer f.mu.Unlock()
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
	for len(fresh) > 0 {
		k := min(len(fresh), peerJob)
		j := newJob(fresh[:k:k])
		j.peer, j.from = true, from
		for i := range j.items {
			f.m[j.items[i].msg.ID()] = j
		}
		j.release = func() { f.drop(j) }
		jobs = append(jobs, j)
		fresh = fresh[k:]
	}
	return jobs, others
}

// drop removes a settled job's messages from the in-flight map.
func (f *inFlight) drop(j *job) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range j.items {
		if id := j.items[i].msg.ID(); f.m[id] == j {
			delete(f.m, id)
		}
	}
}

// Connected starts or kicks the peer's catch-up (gossip.Handler).
func (g *gossiper) Connected(peer dag.PublicKey) { g.kickSync(peer) }

// Messages takes messages a peer relayed (gossip.Handler).
func (g *gossiper) Messages(from dag.PublicKey, raws [][]byte) { g.fromPeer(from, raws, true) }

// Request answers a peer's request for messages by id, from the store
// (gossip.Handler).
func (g *gossiper) Request(from dag.PublicKey, ids []dag.ID) [][]byte {
	var out [][]byte
	for _, id := range ids[:min(len(ids), requestMax)] {
		if e, err := g.store.Get(id); err == nil {
			out = append(out, e.Raw)
		}
	}
	return out
}

var errPageFull = errors.New("page full")

// Sync answers a peer's catch-up request with a page of the store's log
// from pos, or from the first position the store holds if it dropped pos,
// and the entry points the page's messages name (gossip.Handler).
func (g *gossiper) Sync(from dag.PublicKey, pos uint64, limit, maxBytes int) gossip.SyncPage {
	pos = max(pos, 1) // every node derives the genesis; it is never sent
	var (
		page  = gossip.SyncPage{Next: pos}
		bytes int
		first = g.store.FirstPos()
		named map[dag.ID]bool // the page's entry points so far
	)
	err := g.store.Range(pos, func(e storage.Entry) error {
		if len(page.Raws) >= limit {
			return errPageFull
		}
		if e.Pos != page.Next {
			first = g.store.FirstPos() // positions were dropped, maybe meanwhile
		}
		k := len(page.EntryPoints)
		page.EntryPoints = g.appendEntryPoints(page.EntryPoints, e, first, named)
		cost := len(e.Raw) + 8 + (len(page.EntryPoints)-k)*gossip.EntryPointSize
		if bytes+cost > maxBytes {
			page.EntryPoints = page.EntryPoints[:k]
			return errPageFull
		}
		for _, ep := range page.EntryPoints[k:] {
			if named == nil {
				named = make(map[dag.ID]bool)
			}
			named[ep.ID] = true
		}
		page.Raws = append(page.Raws, e.Raw)
		bytes += cost
		page.Next = e.Pos + 1
		return nil
	})
	page.Done = err == nil // the log ended before the page filled
	return page
}

// appendEntryPoints appends the parents of e that the store does not hold
// and knows as entry points, but the genesis and those already named. A
// parent at a position from first on is held.
func (g *gossiper) appendEntryPoints(eps []gossip.EntryPoint, e storage.Entry, first uint64, named map[dag.ID]bool) []gossip.EntryPoint {
	for i, p := range e.Parents {
		if i == 1 && p == e.Parents[0] {
			break
		}
		if pp := e.ParentPos[i]; pp != storage.NoPos && pp >= first {
			continue
		}
		if id := dag.ID(p); id == g.genesis || named[id] {
			continue
		}
		if ep, ok := g.store.EntryPointOf(p); ok {
			eps = append(eps, gossip.EntryPoint{ID: p, Timestamp: ep.Timestamp})
		}
	}
	return eps
}

// takeEntryPoints makes the entry points of a peer's page known before
// the page's messages go to the pipeline. Those the store neither holds
// as messages nor knows already are recorded in it, durably first (so
// that a restart, and later messages that name them, find them), then
// handed to the core, which makes the messages waiting for them solid. The
// peer is trusted for them as it is for its page: its messages are still
// checked in full (see docs/PROTOCOL.md 6.1).
func (g *gossiper) takeEntryPoints(eps []gossip.EntryPoint) error {
	var add []storage.EntryPoint
	for _, ep := range eps {
		if ep.ID == g.genesis {
			continue
		}
		if _, ok := g.store.EntryPointOf(ep.ID); ok {
			continue // the store's own, or named before: the core asks the store for it
		}
		has, err := g.store.Has(ep.ID)
		if err != nil {
			return err
		}
		if !has {
			add = append(add, storage.EntryPoint{ID: ep.ID, Pos: storage.NoPos, Timestamp: ep.Timestamp})
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := g.store.AddEntryPoints(add); err != nil {
		return err
	}
	return g.toCore(g.ctx, add)
}

// kickSync makes the peer's sync worker run now, starting it if needed.
func (g *gossiper) kickSync(peer dag.PublicKey) {
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
		g.workers.Add(1)
		go func() {
			defer g.workers.Done()
			g.syncWorker(peer, ps)
		}()
	}
}

// syncPipeline is how many pages of catch-up may be in flight at once:
// the next is fetched while the one before is checked and stored.
const syncPipeline = 3

// page is a page of catch-up in the pipeline.
type page struct {
	jobs   []*job
	others []*job // other peers' jobs with copies of this page's messages
	next   uint64 // the peer's log position after the page
}

// syncWorker catches up with one peer: page by page from the cursor until
// the peer's log ends, then again at every kick or SyncInterval (with a
// random jitter of up to a quarter of it). It runs until run's context
// ends.
func (g *gossiper) syncWorker(peer dag.PublicKey, ps *peerState) {
	timer := time.NewTimer(g.syncEvery)
	defer timer.Stop()
	for {
		if g.catchUp(peer, ps) {
			g.mu.Lock()
			ps.caughtUp = true
			g.mu.Unlock()
		}
		g.saveCursors()
		timer.Reset(g.syncEvery + time.Duration(g.rng.Int64N(int64(g.syncEvery/4+1))))
		select {
		case <-g.ctx.Done():
			return
		case <-ps.kick:
		case <-timer.C:
		}
	}
}

// catchUp pages through the peer's log from its cursor until the log ends
// (it reports true) or the peer fails or the node stops (false). Up to
// syncPipeline pages are in flight; the cursor moves past a page only once
// all of it is durable (or refused), so a restart never skips one.
func (g *gossiper) catchUp(peer dag.PublicKey, ps *peerState) bool {
	g.mu.Lock()
	fetch := ps.cursor
	g.mu.Unlock()
	var (
		flight   []page
		caughtUp bool
	)
	for {
		sp, err := g.t.Sync(g.ctx, peer, fetch, syncPage)
		if err != nil {
			break // disconnected, timed out or stopping: wait for the next kick
		}
		if start := sp.Next - uint64(len(sp.Raws)); len(sp.Raws) > 0 && start > max(fetch, 1) {
			g.log.Info().Str("peer", peer.String()).Uint64("from", fetch).Uint64("first_held", start).
				Int("entry_points", len(sp.EntryPoints)).Msg("catch-up: the peer dropped the messages asked for; going on from the first it holds")
		}
		if err := g.takeEntryPoints(sp.EntryPoints); err != nil {
			if g.ctx.Err() == nil {
				g.log.Error().Err(err).Str("peer", peer.String()).Msg("catch-up: cannot record the peer's entry points; trying again later")
			}
			break
		}
		raws, next, done := sp.Raws, sp.Next, sp.Done
		jobs, others := g.fromPeer(peer, raws, false)
		flight = append(flight, page{jobs, others, next})
		fetch = next
		if len(flight) >= syncPipeline {
			g.settlePage(ps, flight[0])
			flight = flight[1:]
			g.saveCursors()
		}
		if done || len(raws) == 0 {
			caughtUp = true
			break
		}
		if g.ctx.Err() != nil {
			break
		}
	}
	for _, p := range flight {
		g.settlePage(ps, p)
	}
	return caughtUp
}

// settlePage waits until a page's messages are settled, then moves the
// peer's cursor past it.
func (g *gossiper) settlePage(ps *peerState, p page) {
	for _, j := range p.jobs {
		j.wait(g.ctx, 5*time.Minute, errNotStoredInTime)
	}
	for _, j := range p.others {
		select { // their owners settle them
		case <-j.done:
		case <-g.ctx.Done():
		}
	}
	g.mu.Lock()
	if p.next > ps.cursor {
		ps.cursor, g.dirty = p.next, true
	}
	g.mu.Unlock()
}

// relay sends what a write made durable to the peers: each message to all
// but the peer it came from.
func (g *gossiper) relay(u *relayBatch) {
	if g == nil {
		return
	}
	if len(u.all) > 0 {
		g.t.Broadcast(u.all, dag.PublicKey{})
	}
	for p, raws := range u.except {
		g.t.Broadcast(raws, p)
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
func (g *gossiper) requestMissing(ids []dag.ID, from map[dag.PublicKey]bool) {
	if g == nil || len(ids) == 0 {
		return
	}
	ids = ids[:min(len(ids), requestMax)]
	if len(from) == 0 {
		for _, p := range g.t.Peers() {
			if p.Connected {
				g.t.RequestIDs(p.Key, ids)
			}
		}
		return
	}
	for p := range from {
		g.t.RequestIDs(p, ids)
	}
}

// requestAgain asks a random connected peer again for what is still
// missing.
func (g *gossiper) requestAgain(ids []dag.ID) {
	if g == nil || len(ids) == 0 {
		return
	}
	var up []dag.PublicKey
	for _, p := range g.t.Peers() {
		if p.Connected {
			up = append(up, p.Key)
		}
	}
	if len(up) > 0 {
		g.t.RequestIDs(up[g.rng.IntN(len(up))], ids)
	}
}

// PeerInfo is one peer as /api/v1/info shows it.
type PeerInfo struct {
	gossip.PeerStats
	Invalid uint64
}

// peerInfo returns the peers' state, none when gossip is off.
func (g *gossiper) peerInfo() []PeerInfo {
	if g == nil {
		return nil
	}
	stats := g.t.Peers()
	out := make([]PeerInfo, len(stats))
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, s := range stats {
		out[i].PeerStats = s
		if ps, ok := g.peers[s.Key]; ok {
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

// addr returns the address gossip listens on, or "".
func (g *gossiper) addr() string {
	if g == nil || g.t.Addr() == nil {
		return ""
	}
	return g.t.Addr().String()
}

var _ gossip.Handler = (*gossiper)(nil)
