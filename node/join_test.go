package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// Retention of the join tests: epochs of at most a second, dropped three
// seconds after they were cut, so that a network drops history within a
// few seconds of traffic.
const joinRetain = 3 * time.Second

func joinStore() storage.Config {
	return storage.Config{NoSync: true, EpochRecords: 2000, EpochAge: time.Second, Retain: joinRetain}
}

// joinSeed is the seed of a join test's randomness ($WEFT_SEED, else the
// clock), logged with how to replay it.
func joinSeed(t *testing.T) uint64 {
	t.Helper()
	seed, from := uint64(time.Now().UnixNano()), "clock"
	if s := os.Getenv("WEFT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WEFT_SEED: %v", err)
		}
		seed, from = v, "$WEFT_SEED"
	}
	t.Logf("seed %d (from %s); replay: WEFT_SEED=%d go test ./node -run '^%s$'", seed, from, seed, t.Name())
	return seed
}

// TestJoinPruned: three nodes with retention take traffic until each has
// dropped history; then a node with an empty store joins (a new node, or
// one of the three wiped and restarted) while the traffic goes on. It
// catches up from peers that no longer hold the network's beginning, with
// the entry points they name, and ends with the same messages and the same
// confirmations as they have for everything they hold; what is submitted
// to it is confirmed everywhere.
func TestJoinPruned(t *testing.T) {
	t.Run("new", func(t *testing.T) { testJoinPruned(t, false) })
	t.Run("wiped", func(t *testing.T) { testJoinPruned(t, true) })
}

func testJoinPruned(t *testing.T, wipe bool) {
	seed := joinSeed(t)
	addrs := freeAddrs(t, 4)
	vals, peersOf := mesh(addrs, 100) // four validators of weight 1: three confirm
	cfgs := make([]Config, 4)
	for i := range cfgs {
		cfgs[i] = Config{DataDir: t.TempDir(), Identity: testKey(byte(100 + i)), Network: "net-test-pow", PoWBase: 4,
			Validators: vals, GossipListen: addrs[i], Peers: peersOf[i], IssueInterval: 10 * time.Millisecond,
			SyncInterval: time.Second, Store: joinStore(), Rand: rand.NewPCG(seed, uint64(i))}
	}
	nodes := make([]*Node, 4)
	stops := make([]func(), 4)
	for i := range 3 {
		nodes[i], stops[i] = runNode(t, cfgs[i])
	}
	tr := startTraffic(t, seed)
	for i := range 3 {
		tr.target(i, nodes[i])
	}

	// Until every node has dropped its oldest epoch.
	waitUntil(t, 30*time.Second, "every node drops history", func() (bool, string) {
		for i := range 3 {
			if nodes[i].store.FirstPos() == 0 {
				return false, fmt.Sprintf("node %d holds all of its log (%d messages)", i, nodes[i].store.NextPos())
			}
		}
		return true, ""
	})

	j := 3
	if wipe {
		j = 2
		tr.target(j, nil)
		stops[j]()
		cfgs[j].DataDir = t.TempDir()
	}
	peers := []*Node{}
	for i := range 3 {
		if i != j {
			peers = append(peers, nodes[i])
		}
	}
	for i, p := range peers {
		t.Logf("peer %d: holds positions %d to %d", i, p.store.FirstPos(), p.store.NextPos())
	}
	nodes[j], stops[j] = runNode(t, cfgs[j])
	joiner := nodes[j]
	waitUntil(t, 30*time.Second, "the joiner catches up", func() (bool, string) {
		if err := joiner.Ready(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	// It caught up from pruned peers: it took entry points from them.
	_, eps := joiner.store.Frontier()
	named := 0
	for _, ep := range eps {
		if ep.Pos == storage.NoPos {
			named++
		}
	}
	if named == 0 {
		t.Fatalf("caught up with %d messages and no entry point named by a peer", joiner.store.NextPos())
	}
	t.Logf("joiner caught up: %d messages, %d entry points named by its peers", joiner.store.NextPos(), named)

	// The traffic goes on, to the joiner too. Its messages must be
	// confirmed everywhere: seen in the nodes' events, since the nodes may
	// drop them soon after.
	all := append(append([]*Node(nil), peers...), joiner)
	conf := watchConfirmations(t, all)
	defer conf.stop()
	mark := tr.count(j)
	tr.target(j, joiner)
	waitUntil(t, 30*time.Second, "messages to the joiner", func() (bool, string) {
		return tr.count(j) >= mark+60, fmt.Sprintf("%d messages to the joiner", tr.count(j)-mark)
	})
	submitted := tr.stop()
	toJoiner := submitted[j][mark:]

	joinConverge(t, all, conf, toJoiner, 20*time.Second)

	running := map[dag.PublicKey]bool{}
	for _, p := range peers {
		running[p.cfg.PublicKey()] = true
	}
	in := uint64(0)
	for _, p := range joiner.Peers() {
		in += p.EntryPointsIn
		if running[p.Key] && (!p.Connected || p.Invalid != 0) {
			t.Errorf("joiner: peer %s connected=%v invalid=%d", p.Key, p.Connected, p.Invalid)
		}
	}
	if in == 0 {
		t.Errorf("the joiner counted no entry points from its peers")
	}
}

// heldEntry is what a convergence check compares of a stored message.
type heldEntry struct {
	ts        int64
	confirmed bool
}

// held reads every message a node's store holds.
func held(t *testing.T, n *Node) map[dag.ID]heldEntry {
	out := make(map[dag.ID]heldEntry)
	err := n.store.Range(n.store.FirstPos(), func(e storage.Entry) error {
		out[e.ID] = heldEntry{ts: e.Timestamp, confirmed: e.Confirmed}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// joinConverge waits until the nodes agree, and have confirmed want. They
// agree when every message one holds from the last joinRetain-1s (by
// timestamp: what no node can have dropped yet, since a message's epoch is
// dropped joinRetain after it was cut at the earliest, and cut after the
// message came; the second is for the look itself) is held by all, with
// the same confirmation everywhere, and every older
// message all the others hold is held by the last (the joiner) with the
// same confirmation, unless it dropped it itself. It looks again at
// every event of the nodes and every 100 ms (drops are no events), and
// fails after within.
func joinConverge(t *testing.T, nodes []*Node, conf *confirmedSet, want []dag.ID, within time.Duration) {
	t.Helper()
	ch := watchChanges(t, nodes)
	defer ch.stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	start := time.Now()
	for {
		ok, why, compared := joinAgreed(t, nodes, conf, want)
		if ok {
			t.Logf("after %v, %d nodes agree on the %d messages of the last %v, and %d older ones",
				time.Since(start).Round(time.Millisecond), len(nodes), compared[0], joinRetain-time.Second, compared[1])
			return
		}
		select {
		case <-ch.C:
		case <-tick.C:
		case <-conf.changed:
		case <-deadline.C:
			t.Fatalf("no agreement after %v: %s", within, why)
		}
	}
}

func joinAgreed(t *testing.T, nodes []*Node, conf *confirmedSet, want []dag.ID) (bool, string, [2]int) {
	cutoff := time.Now().Add(-joinRetain + time.Second).UnixNano()
	var compared [2]int
	for _, id := range want {
		for i := range nodes {
			ok, err := conf.has(i, id)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return false, fmt.Sprintf("node %d has not confirmed %s, submitted to the joiner", i, id), compared
			}
		}
	}
	sets := make([]map[dag.ID]heldEntry, len(nodes))
	for i, n := range nodes {
		sets[i] = held(t, n)
	}
	joiner := len(nodes) - 1
	for i, set := range sets {
		for id, e := range set {
			if e.ts < cutoff {
				continue
			}
			for k, other := range sets {
				o, ok := other[id]
				if !ok {
					return false, fmt.Sprintf("node %d holds %s (%v old), node %d does not", i, id, time.Duration(time.Now().UnixNano()-e.ts), k), compared
				}
				if o.confirmed != e.confirmed {
					return false, fmt.Sprintf("%s: confirmed %v on node %d, %v on node %d", id, e.confirmed, i, o.confirmed, k), compared
				}
			}
			if i == 0 {
				compared[0]++
			}
		}
	}
	// Older messages: those all the peers hold, where the joiner holds them.
	for id, e := range sets[0] {
		if e.ts >= cutoff {
			continue
		}
		inAll := true
		for _, set := range sets[1:joiner] {
			o, ok := set[id]
			if !ok {
				inAll = false
				break
			}
			if o.confirmed != e.confirmed {
				return false, fmt.Sprintf("%s (older): confirmed %v on node 0, %v on another peer", id, e.confirmed, o.confirmed), compared
			}
		}
		if !inAll {
			continue
		}
		o, ok := sets[joiner][id]
		if !ok {
			if joiner := nodes[joiner]; joiner.store.FirstPos() == 0 {
				return false, fmt.Sprintf("the peers hold %s (older), the joiner, which dropped nothing, does not", id), compared
			}
			continue
		}
		if o.confirmed != e.confirmed {
			return false, fmt.Sprintf("%s (older): confirmed %v on the peers, %v on the joiner", id, e.confirmed, o.confirmed), compared
		}
		compared[1]++
	}
	if compared[0] < 50 {
		return false, fmt.Sprintf("only %d recent messages to compare", compared[0]), compared
	}
	return true, "", compared
}

// confirmedSet records the confirmations the nodes announce in their
// events, from when it is made; changed gets a token after each.
type confirmedSet struct {
	changed chan struct{}
	quit    chan struct{}
	feeds   []*feed
	wg      sync.WaitGroup
	mu      sync.Mutex
	ids     []map[dag.ID]bool
	cut     error // a node's events ended: some may be lost
}

func watchConfirmations(t *testing.T, nodes []*Node) *confirmedSet {
	c := &confirmedSet{changed: make(chan struct{}, 1), quit: make(chan struct{}), ids: make([]map[dag.ID]bool, len(nodes))}
	for i, n := range nodes {
		c.ids[i] = make(map[dag.ID]bool)
		c.feeds = append(c.feeds, follow(t, n))
	}
	for i, f := range c.feeds {
		c.wg.Go(func() { c.record(i, f) })
	}
	return c
}

func (c *confirmedSet) record(i int, f *feed) {
	for {
		select {
		case e, ok := <-f.C:
			if !ok {
				c.mu.Lock()
				c.cut = fmt.Errorf("node %d's events ended: %v", i, f.err)
				c.mu.Unlock()
				return
			}
			if e.Kind != EventConfirmed {
				continue
			}
			c.mu.Lock()
			c.ids[i][e.ID] = true
			c.mu.Unlock()
			select {
			case c.changed <- struct{}{}:
			default:
			}
		case <-c.quit:
			return
		}
	}
}

// has reports whether node i announced id confirmed, or why it cannot
// tell.
func (c *confirmedSet) has(i int, id dag.ID) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[i][id], c.cut
}

func (c *confirmedSet) stop() {
	close(c.quit)
	c.wg.Wait()
	for _, f := range c.feeds {
		f.close()
	}
}

// waitUntil looks at cond every 20 ms until it holds, and fails after
// within with the reason cond gave last. For states without events (a
// store's drops, a node's readiness).
func waitUntil(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, within, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// traffic submits device messages to its target nodes, one device per
// node, round robin, every 5 ms a message to each, until stopped: what
// each node acknowledged is in order in its list.
type traffic struct {
	t    *testing.T
	rng  *rand.Rand
	quit chan struct{}
	done chan struct{}

	devs [4]ed25519.PrivateKey

	mu      sync.Mutex
	targets map[int]*Node
	seqs    map[int]uint64
	ids     map[int][]dag.ID
	err     error
}

func startTraffic(t *testing.T, seed uint64) *traffic {
	tr := &traffic{t: t, rng: rand.New(rand.NewPCG(seed, 99)), quit: make(chan struct{}), done: make(chan struct{}),
		targets: map[int]*Node{}, seqs: map[int]uint64{}, ids: map[int][]dag.ID{}}
	for i := range tr.devs {
		tr.devs[i] = testKey(byte(50 + i))
	}
	go tr.run()
	t.Cleanup(func() { tr.stop() })
	return tr
}

// target makes n the target of device i (nil: none), after the round in
// flight.
func (tr *traffic) target(i int, n *Node) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if n == nil {
		delete(tr.targets, i)
		return
	}
	tr.targets[i] = n
}

func (tr *traffic) count(i int) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.ids[i])
}

// stop ends the traffic and returns what each node acknowledged. It fails
// the test if a submission failed.
func (tr *traffic) stop() map[int][]dag.ID {
	select {
	case <-tr.quit:
	default:
		close(tr.quit)
	}
	<-tr.done
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.err != nil {
		tr.t.Errorf("traffic: %v", tr.err)
		tr.err = nil
	}
	return tr.ids
}

func (tr *traffic) run() {
	defer close(tr.done)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tr.quit:
			return
		case <-tick.C:
		}
		// The round holds the lock: a node leaves the targets only between
		// rounds, before it stops.
		tr.mu.Lock()
		for i := range 4 {
			n := tr.targets[i]
			if n == nil {
				continue
			}
			m, err := tr.message(n, i)
			if err == nil {
				err = n.Submit(context.Background(), []*dag.Message{m})[0]
			}
			switch {
			case err == nil:
				tr.ids[i] = append(tr.ids[i], m.ID())
			case errors.Is(err, ErrOverloaded):
				// a busy node: the device tries again later
			case tr.err == nil:
				tr.err = fmt.Errorf("message %d to node %d: %w", tr.seqs[i], i, err)
			}
		}
		tr.mu.Unlock()
	}
}

// message builds device i's next message on n's tips.
func (tr *traffic) message(n *Node, i int) (*dag.Message, error) {
	tr.seqs[i]++
	payload := make([]byte, 16+tr.rng.IntN(64))
	for k := range payload {
		payload[k] = byte(tr.rng.Uint32())
	}
	tips := n.Tips(len(payload))
	m := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: tips.Parents, Seq: tr.seqs[i],
		Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: payload}
	m.Sign(tr.devs[i])
	if err := m.Solve(context.Background(), n.Params(), 1); err != nil {
		return nil, err
	}
	return m, nil
}
