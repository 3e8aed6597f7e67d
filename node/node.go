package node

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
	"github.com/weftnet/weft/tipselect"
)

// restoreMargin is how many confirmed messages below the first unconfirmed
// one a restart brings back into the DAG core, so that late children find
// their parents in memory.
const restoreMargin = 10_000

// Node is a Weft full node: it checks, orders, stores and confirms the
// messages handed to it, following the pipeline of DESIGN.md (verifiers,
// the core loop, the store's writer, answers and events after the commit;
// the package documentation is its manual).
//
// New opens the store and restores the core; Run runs the pipeline until its
// context ends, then drains it and closes the store. The methods other than
// Run are safe for concurrent use.
type Node struct {
	cfg     Config
	params  dag.Params
	log     zerolog.Logger
	store   *storage.Store
	self    dag.PublicKey
	genesis dag.ID
	isVal   bool
	vals    map[dag.PublicKey]bool
	keys    *dag.KeyCache
	m       *metrics
	hub     *hub
	edge    *edge
	reg     *registry
	rules   *ruleSet
	equivs  equivocations

	verifyQ   chan *job
	coreQ     chan *job
	queries   chan func(*dag.Core)
	own       chan ownMsg
	keepQ     chan []dag.Checkpoint // durable checkpoints, for the keeper
	keeping   atomic.Int64          // bytes of leaves in keepQ and the keeper
	keepLimit int64                 // the most keeping may reach: maxKeeping
	keptMu    sync.Mutex            // guards kept
	kept      chan struct{}         // closed and replaced each time the keeper keeps one

	mu       sync.RWMutex // guards stopping and sends on verifyQ
	stopping bool

	gossip *gossiper // nil when the node is alone

	inflight atomic.Int64
	issuing  atomic.Bool
	running  atomic.Bool // between Run's start and its drain
	snap     atomic.Pointer[snapshot]
	now      func() time.Time // Config.Time
	rng      *rand.Rand       // Config.Rand, serialized: shared by the loop and the readers

	// Owned by the core loop.
	core       *dag.Core
	waiters    map[dag.ID]*item
	copies     map[dag.ID][]*item // resubmissions of a waiter's message, answered with it
	devUnconf  map[dag.ID]int64   // others' unconfirmed messages -> when solid
	ownSeq     uint64
	ckpt       checkpointState
	lastOwn    time.Time // when the node last issued its own message
	sinceOwn   int       // others' messages solid since then
	sel        *tipselect.Uniform
	stored     uint64
	confirmedN uint64
	rates      rateMeter
	stepPeers  map[dag.PublicKey]bool // peers whose messages wait for parents, this step
	ticks      int
	// committed carries the store's results back to the loop; atStore
	// are the commits in the store, in submission order (the order the
	// store reports them in), never more than cap(committed) (see
	// submitWrite).
	committed chan *commit
	atStore   []*commit
	// backlog holds the Writes not handed to the store while it fails,
	// oldest first (disk.go); storeWatch is what the log said of it.
	backlog    []*commit
	storeWatch storeWatch
	// quit is closed when Run begins to stop: gossip waiting for the store
	// gives up.
	quit chan struct{}
	// lastDurable is the newest message known durable: the parent Tips
	// offers when no tip is.
	lastDurable tipRef
}

// snapshot is what the loop publishes for readers after each step.
type snapshot struct {
	stats      dag.Stats
	tips       []tipRef
	stored     uint64
	msgRate    float64
	confRate   float64
	storedNext uint64
}

type tipRef struct {
	id  dag.ID
	ts  int64
	pos uint64
}

// New opens the node's store in cfg.DataDir and restores its DAG core. It
// fails with an error wrapping storage.ErrLocked if another node holds the
// directory.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: data directory: %w", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "weft.db")); err == nil {
		return nil, fmt.Errorf("%w: %s holds a store of format 3 or older (weft.db); this release keeps the store in %s: move the data directory away and let the node catch up from its peers (docs/OPERATING.md)",
			storage.ErrFormat, cfg.DataDir, filepath.Join(cfg.DataDir, "store"))
	}
	cfg.Store.KeepIDs = cfg.ProofRetain > 0 // the leaves' IDs outlive the messages
	store, err := storage.Open(filepath.Join(cfg.DataDir, "store"), cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("node: store: %w", err)
	}
	n := &Node{
		cfg:       cfg,
		params:    cfg.Params(),
		log:       cfg.Log,
		store:     store,
		self:      cfg.PublicKey(),
		genesis:   dag.Genesis(cfg.Params().Network).ID(),
		vals:      make(map[dag.PublicKey]bool),
		keys:      dag.NewKeyCache(1 << 16),
		m:         newMetrics(),
		quit:      make(chan struct{}),
		hub:       newHub(cfg.EventBuffer, cfg.MaxSubscribers),
		edge:      newEdge(cfg),
		verifyQ:   make(chan *job, 1024),
		coreQ:     make(chan *job, 1024),
		queries:   make(chan func(*dag.Core)),
		own:       make(chan ownMsg, 1),
		keepQ:     make(chan []dag.Checkpoint, 16),
		kept:      make(chan struct{}),
		keepLimit: maxKeeping,
		waiters:   make(map[dag.ID]*item),
		copies:    make(map[dag.ID][]*item),
		devUnconf: make(map[dag.ID]int64),
		committed: make(chan *commit, commitsInFlight(cfg.Store)),
		ownSeq:    uint64(cfg.Time().UnixNano()),
		now:       cfg.Time,
		rng:       rand.New(&lockedSource{src: cfg.Rand}),
	}
	for _, v := range cfg.Validators {
		n.vals[v.Key] = true
	}
	n.m.registerStore(store)
	n.m.registerHub(n.hub)
	n.isVal = n.vals[n.self]
	if err := n.openRegistry(); err != nil {
		store.Close()
		return nil, err
	}
	if err := n.openCore(); err != nil {
		store.Close()
		return nil, err
	}
	if err := n.restoreCheckpoints(); err != nil {
		store.Close()
		return nil, fmt.Errorf("node: restoring checkpoints: %w", err)
	}
	if err := n.openRules(); err != nil {
		store.Close()
		return nil, err
	}
	if cfg.GossipListen != "" || len(cfg.Peers) > 0 {
		if n.gossip, err = newGossiper(n); err != nil {
			store.Close()
			return nil, fmt.Errorf("node: gossip: %w", err)
		}
		n.m.reg.MustRegister(newPeerCollector(n))
	}
	n.sel = tipselect.NewUniform(n.core.TipPool())
	n.publishSnapshot(0)
	return n, nil
}

// openCore starts a new ledger or restores the core from the store.
func (n *Node) openCore() error {
	genesis := dag.Genesis(n.params.Network)
	if n.store.NextPos() == 0 {
		core, err := dag.New(n.cfg.Core)
		if err != nil {
			return err
		}
		n.core = core
		errc := make(chan error, 1)
		w := n.write(core.Ready())
		n.store.Submit(w, func(err error) { errc <- err })
		if err := <-errc; err != nil {
			return fmt.Errorf("node: storing genesis: %w", err)
		}
		if err := n.saveGenesis(genesis.ID()); err != nil {
			return err
		}
		n.log.Info().Str("network", n.cfg.Network).Msg("new ledger")
		return nil
	}
	if err := n.checkGenesis(genesis.ID()); err != nil {
		return err
	}
	from := n.store.ConfirmedPrefix()
	from -= min(from, restoreMargin)
	from = max(from, n.store.FirstPos())
	var recs []dag.Restored
	err := n.store.Range(from, func(e storage.Entry) error {
		m, err := dag.Decode(e.Raw, n.params.MaxPayload)
		if err != nil {
			return fmt.Errorf("%w: position %d: %v", storage.ErrCorrupt, e.Pos, err)
		}
		at := e.ConfirmedAt
		if e.Confirmed && at == 0 {
			at = 1
		}
		recs = append(recs, dag.Restored{Msg: m, Pos: e.Pos, ParentPos: e.ParentPos, ConfirmedAt: at, Orphaned: e.Orphaned})
		return nil
	})
	if err != nil {
		return fmt.Errorf("node: restoring: %w", err)
	}
	start := n.now()
	core, err := dag.Restore(n.cfg.Core, start, recs)
	if err != nil {
		return fmt.Errorf("node: restoring: %w", err)
	}
	n.core = core
	n.stored = n.store.NextPos()
	if k := len(recs); k > 0 {
		last := recs[k-1]
		n.lastDurable = tipRef{id: last.Msg.ID(), ts: last.Msg.Timestamp, pos: last.Pos}
	}
	// Others' messages still waiting for confirmation keep the validator
	// issuing, as they did before the restart.
	// The edge's sequence check picks up the devices' last messages.
	now := start.UnixNano()
	for _, r := range recs {
		if n.vals[r.Msg.Issuer] {
			continue
		}
		n.edge.committed(r.Msg)
		if r.ConfirmedAt == 0 && !r.Orphaned {
			n.devUnconf[r.Msg.ID()] = now
		}
	}
	n.log.Info().Uint64("messages", n.stored).Int("restored", len(recs)).
		Dur("took", n.now().Sub(start)).Msg("ledger restored")
	return nil
}

// The node's state bucket "ledger" keeps the genesis ID under "genesis":
// position 0 is dropped with the first epoch, and the check that the store
// is this network's ledger must outlive it.
const ledgerBucket = "ledger"

var genesisKey = []byte("genesis")

func (n *Node) saveGenesis(id dag.ID) error {
	err := n.store.StateUpdate(func(tx *storage.StateTx) error { return tx.Put(ledgerBucket, genesisKey, id[:]) })
	if err != nil {
		return fmt.Errorf("node: storing genesis: %w", err)
	}
	return nil
}

// checkGenesis checks that the store is the ledger of this node's network:
// by the genesis ID the state keeps, or, for a store that predates it, by
// position 0, which it then records.
func (n *Node) checkGenesis(want dag.ID) error {
	var kept []byte
	err := n.store.StateView(func(tx *storage.StateTx) error {
		v, err := tx.Get(ledgerBucket, genesisKey)
		kept = bytes.Clone(v)
		return err
	})
	if err != nil {
		return fmt.Errorf("node: reading genesis: %w", err)
	}
	other := fmt.Errorf("%w: the data directory holds another network's ledger (this node is on %q)", ErrConfig, n.cfg.Network)
	if kept != nil {
		if !bytes.Equal(kept, want[:]) {
			return other
		}
		return nil
	}
	first, err := n.store.GetByPos(0)
	if err != nil {
		return fmt.Errorf("node: reading genesis: %w", err)
	}
	if dag.ID(first.ID) != want {
		return other
	}
	return n.saveGenesis(want)
}

// Run runs the node until ctx ends, then stops taking submissions, drains
// the pipeline, and closes the store. It returns the store's close error, if
// any. Run must be called once. doc.go describes the goroutines it starts
// and the order in which it stops them.
func (n *Node) Run(ctx context.Context) error {
	var stages sync.WaitGroup // the verifiers and the issuer
	for i := 0; i < n.cfg.Verifiers; i++ {
		stages.Add(1)
		go func() { defer stages.Done(); n.verifier() }()
	}
	issuerCtx, stopIssuer := context.WithCancel(context.Background())
	stages.Add(1)
	go func() { defer stages.Done(); n.issuer(issuerCtx) }()

	loopDone := make(chan struct{})
	go func() { defer close(loopDone); n.loop() }()
	keeperCtx, stopKeeper := context.WithCancel(context.Background())
	keeperDone := make(chan struct{})
	go func() { defer close(keeperDone); n.keeper(keeperCtx) }()
	rulesCtx, stopRules := context.WithCancel(context.Background())
	rulesDone := make(chan struct{})
	go func() { defer close(rulesDone); n.runRules(rulesCtx) }()
	n.running.Store(true)

	gossipCtx, stopGossip := context.WithCancel(context.Background())
	gossipDone := make(chan error, 1)
	if n.gossip != nil {
		go func() { gossipDone <- n.gossip.run(gossipCtx) }()
		n.log.Info().Str("gossip", n.GossipAddr()).Int("peers", len(n.cfg.Peers)).Msg("gossip listening")
	} else {
		gossipDone <- nil
	}

	<-ctx.Done()
	n.log.Info().Msg("stopping: draining the pipeline")
	n.running.Store(false)
	// Peers first: once the gossiper returns, no handler call and no sync
	// worker is running, and its cursors are saved.
	close(n.quit)
	stopGossip()
	if err := <-gossipDone; err != nil {
		n.log.Warn().Err(err).Msg("gossip stopped")
	}
	n.stopTaking()
	stopIssuer()
	stages.Wait()
	close(n.coreQ)
	<-loopDone
	stopKeeper()
	<-keeperDone
	// The rules after the loop: their cursors are saved, with the store
	// still open.
	stopRules()
	<-rulesDone
	n.hub.close()
	err := n.store.Close()
	n.log.Info().Err(err).Msg("stopped")
	return err
}

// stopTaking makes submissions answer ErrShuttingDown and closes the
// verifiers' queue, once no send on it is running.
func (n *Node) stopTaking() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopping = true
	close(n.verifyQ)
}

// enqueue hands peers' jobs to the verifiers, blocking while their queue
// is full: that is the backpressure a peer feels. It reports false, having
// sent nothing, once the node has stopped taking work.
func (n *Node) enqueue(jobs []*job) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.stopping {
		return false
	}
	for _, j := range jobs {
		n.verifyQ <- j
	}
	return true
}

// loop is the core loop: the only goroutine that touches n.core.
func (n *Node) loop() {
	tick := time.NewTicker(n.cfg.TickInterval)
	defer tick.Stop()
	issue := time.NewTicker(min(n.cfg.IssueInterval, n.cfg.IssueMinInterval))
	defer issue.Stop()
	for {
		select {
		case j, ok := <-n.coreQ:
			if !ok || !n.take(j) {
				n.flush()
				n.shutdown()
				return
			}
		case <-tick.C:
			n.watchStore()
			n.core.Tick(n.now())
			n.publishSnapshot(0) // rates decay while idle
			if n.ticks++; n.ticks%10 == 0 {
				n.gossip.requestAgain(n.missing())
			}
		case <-issue.C:
			n.maybeIssue()
		case q := <-n.queries:
			q(n.core)
		case c := <-n.committed:
			n.settle(c)
			n.settleReady()
			n.publishSnapshot(0) // what became durable can be offered as tips
			continue             // the core has not changed: nothing to flush
		}
		n.flush()
	}
}

// missing returns the parents the core still misses, to ask a peer for
// again; none when the node is alone.
func (n *Node) missing() []dag.ID {
	if n.gossip == nil {
		return nil
	}
	return n.core.Missing(requestMax)
}

// take handles j and what else is queued, up to a bound, in the same step.
// Commits the store reports meanwhile are settled between jobs, so that a
// long step does not hold their answers back. It reports false once the
// queue is closed.
func (n *Node) take(j *job) bool {
	n.handle(j)
	for range 256 {
		n.settleReady()
		select {
		case j, ok := <-n.coreQ:
			if !ok {
				return false
			}
			n.handle(j)
		default:
			return true
		}
	}
	return true
}

// shutdown settles what still waits, then waits for the commits in the
// store and settles them.
func (n *Node) shutdown() {
	for id, it := range n.waiters {
		it.finish(ErrShuttingDown)
		delete(n.waiters, id)
	}
	for id, its := range n.copies {
		for _, it := range its {
			it.finish(ErrShuttingDown)
		}
		delete(n.copies, id)
	}
	n.drainBacklog()
	// Settle what the store reports, unless it is failing: then Close gives
	// up on those Writes, whose submitters have had their answers.
	for len(n.atStore) > 0 && n.store.Failing() == nil {
		select {
		case c := <-n.committed:
			n.settle(c)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// settleEvery is how many of a job's items the loop hands the core between
// two looks at the commits the store has reported.
const settleEvery = 128

// maxCopies bounds the resubmissions of one waiting message that wait
// with it; past it, a resubmission is answered ErrPending at once.
const maxCopies = 16

// handle hands a job's open items to the core. Items a verifier refused
// for a fault of their bytes tell the core, so that their children are
// refused at once.
func (n *Node) handle(j *job) {
	now := n.now()
	for i := range j.items {
		if i > 0 && i%settleEvery == 0 {
			n.settleReady() // a big job does not hold answers back
		}
		it := &j.items[i]
		if err, settled := it.result(); settled {
			if deterministic(err) {
				n.core.Reject(now, it.msg.ID(), err)
			}
			continue // settled by a verifier
		}
		st, err := n.core.Add(now, it.msg)
		switch st {
		case dag.Solid, dag.Pending:
			n.waiters[it.msg.ID()] = it
			if st == dag.Pending {
				it.waiting.Store(true)
			}
			if st == dag.Pending && j.peer {
				if n.stepPeers == nil {
					n.stepPeers = make(map[dag.PublicKey]bool)
				}
				n.stepPeers[j.from] = true
			}
		case dag.Duplicate:
			n.duplicate(it)
		case dag.Invalid:
			n.release(it) // before the answer, as in answerRejected
			it.finish(err)
			if j.peer {
				n.gossip.penalize(j.from, err)
			}
		}
	}
}

// duplicate answers a message the core has already: a copy of one that
// waits in the pipeline (for its parents, or for its commit) gets the same
// answer as the first; otherwise it is a duplicate.
func (n *Node) duplicate(it *item) {
	id := it.msg.ID()
	first, ok := n.waiters[id]
	switch {
	case !ok:
		it.finish(ErrDuplicate)
	case len(n.copies[id]) >= maxCopies:
		it.finish(ErrPending)
	default:
		it.waiting.Store(first.waiting.Load())
		n.copies[id] = append(n.copies[id], it)
	}
}

// release gives back the sequence the edge held for a device's message
// that the node refused for good.
func (n *Node) release(it *item) {
	if it.claimed {
		n.edge.release(it.msg)
	}
}

// takeWaiters removes and returns the items waiting for id: the first
// submission and its copies.
func (n *Node) takeWaiters(id dag.ID) []*item {
	it, ok := n.waiters[id]
	if !ok {
		return nil
	}
	delete(n.waiters, id)
	its := append([]*item{it}, n.copies[id]...)
	delete(n.copies, id)
	return its
}

// publishSnapshot records what readers see between steps.
func (n *Node) publishSnapshot(newSolid int) {
	st := n.core.Stats()
	n.rates.add(n.now(), uint64(newSolid), n.confirmedN)
	mr, cr := n.rates.rates()
	n.snap.Store(&snapshot{stats: st, tips: n.durableTips(), stored: n.stored, msgRate: mr, confRate: cr})
	n.m.tips.Set(float64(st.Tips))
	n.m.unconfirmed.Set(float64(st.Unconfirmed))
	n.m.pending.Set(float64(st.Pending))
}

// snapshotTips is how many tips a snapshot samples for Tips.
const snapshotTips = 64

// durableTips samples up to snapshotTips tips of the pool that are durable
// (below the store's NextPos), so that a parent Tips hands out is never
// one a crash could take away; the newest durable message when none is.
func (n *Node) durableTips() []tipRef {
	pool := n.core.TipPool()
	durable := n.store.NextPos()
	k := min(pool.Len(), snapshotTips)
	tips := make([]tipRef, 0, k)
	for i := 0; i < k; i++ {
		j := i
		if pool.Len() > snapshotTips {
			j = n.rng.IntN(pool.Len())
		}
		id := pool.Tip(j)
		if s, ok := n.core.State(id); ok && s.Pos < durable {
			tips = append(tips, tipRef{id: id, ts: s.Timestamp, pos: s.Pos})
		}
	}
	if len(tips) == 0 && n.lastDurable.id != (dag.ID{}) {
		tips = append(tips, n.lastDurable)
	}
	return tips
}

// Registry returns the node's Prometheus registry, for /metrics.
func (n *Node) Registry() *prometheus.Registry { return n.m.reg }

// Params returns the network's validity parameters.
func (n *Node) Params() dag.Params { return n.params }
