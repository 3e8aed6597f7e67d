package netfault

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The load and the nodes: modest, so that the whole package runs in a few
// minutes with -race on two cores. Proof of work stays on (base 4) and so
// does fsync: "acknowledged" means durable.
const (
	loadDevices = 16
	loadRate    = 200 // messages a second, offered
	powBase     = "4"
)

// The impairment of the delay-and-loss tests, each way of every link.
var impairment = Impairment{Delay: 50 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.01}

// testCtx bounds a test: d, or less if the test binary's deadline
// (go test -timeout) is nearer, so that the test fails with its own
// diagnostics rather than the binary's panic.
func testCtx(t *testing.T, d time.Duration) context.Context {
	dl := time.Now().Add(d)
	if tdl, ok := t.Deadline(); ok && tdl.Add(-15*time.Second).Before(dl) {
		dl = tdl.Add(-15 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	t.Cleanup(cancel)
	return ctx
}

// pause waits for d, or fails the test if ctx ends first.
func pause(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	select {
	case <-time.After(d):
	case <-ctx.Done():
		t.Fatalf("out of time: %v", ctx.Err())
	}
}

// startLoad starts a load on nodes and stops it at cleanup if the test
// ends first.
func startLoad(t *testing.T, c *cluster, rng *rand.Rand, nodes []int, rate float64) *loadGen {
	l := newLoad(c, rng, loadDevices, rate)
	l.start(nodes)
	t.Cleanup(l.stopLoad)
	return l
}

// finish stops the load (if it still runs), waits for convergence, stops
// the nodes, checks their logs and stores, and returns the convergence,
// measured from the load's stop, and the acknowledged messages.
func finish(t *testing.T, ctx context.Context, c *cluster, l *loadGen, within time.Duration) (convergence, []acked) {
	t.Helper()
	l.stopLoad()
	acks := l.ackedIDs()
	t.Logf("load: %s", l.summary())
	for _, b := range l.bugs() {
		t.Errorf("load: %s", b)
	}
	if len(acks) < 100 {
		t.Fatalf("only %d messages acknowledged: the test did not test much", len(acks))
	}
	conv := c.converge(ctx, all(len(c.specs)), acks, l.issuers(), within)
	t.Logf("converged %v after the check began (every acknowledged message on every node after %v): every node holds %d messages (%d from devices), %d confirmed; all %d acknowledged messages on every node, confirmed",
		conv.took.Round(time.Millisecond), conv.held.Round(time.Millisecond), conv.messages, conv.device, conv.confirmed, len(acks))
	c.stopAll()
	c.checkLogs()
	c.checkStores(acks)
	return conv, acks
}

// waitCaughtUp waits until node i holds every message in acks and returns
// how long that took (to within the 100 ms between checks, and the time a
// check takes).
func (c *cluster) waitCaughtUp(ctx context.Context, i int, acks []acked, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	h := newHeldTracker(c, acks)
	for {
		c.checkAlive()
		if h.held(ctx, i) {
			return time.Since(start)
		}
		select {
		case <-ctx.Done():
			c.logPeers(all(len(c.specs)))
			c.t.Fatalf("node%d did not catch up with %d acknowledged messages within %v", i, len(acks), within)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// logCatchUp logs what node i took from its peers since m0 against what it
// stored: every copy beyond the first is work (decoding, proof of work,
// and a signature check unless the first copy was already stored).
func (c *cluster) logCatchUp(ctx context.Context, i int, m0 metricCounts) {
	m, err := c.metrics(ctx, i)
	if err != nil {
		c.t.Fatal(err)
	}
	in, st := m.gossipIn-m0.gossipIn, m.stored-m0.stored
	c.t.Logf("node%d while catching up: %.0f messages from peers into its pipeline, %.0f stored (%.1f copies per message stored)",
		i, in, st, in/max(st, 1))
}

// maxMessages returns the most messages any of nodes holds, and their
// confirmed counts.
func (c *cluster) maxMessages(ctx context.Context, nodes []int) (uint64, []counts) {
	c.t.Helper()
	cs, err := c.counts(ctx, nodes)
	if err != nil {
		c.t.Fatal(err)
	}
	var m uint64
	for _, x := range cs {
		m = max(m, x.messages)
	}
	return m, cs
}

// TestPartition cuts one of four nodes off (its veth down) while the load
// goes on to the other three, heals the link, and checks that all four
// converge and that nothing acknowledged is lost. Three of four validators
// hold 2/3 of the weight, so the majority keeps confirming; the cut node
// catches up through catch-up sync once healed.
func TestPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four node processes for about a minute")
	}
	const (
		n         = 4
		warmup    = 3 * time.Second
		partition = 20 * time.Second // beyond the QUIC idle timeout (15 s): the connections die
		after     = 2 * time.Second
	)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))
	tp := newNetnsTopo(t, n, false)
	specs := newSpecs(t, rng, n)
	tp.place(specs)
	c := newCluster(t, specs, "--pow-base", powBase)
	ctx := testCtx(t, 3*time.Minute)
	c.startAll(ctx, 30*time.Second)
	l := startLoad(t, c, rng, all(n), loadRate)
	pause(t, ctx, warmup)

	cut := rng.IntN(n)
	majority := without(all(n), cut)
	l.setTargets(majority)
	tp.cut(t, cut)
	t.Logf("node%d cut off; load goes on to %s", cut, nodeNames(majority))
	_, before := c.maxMessages(ctx, majority)
	pause(t, ctx, partition)
	have, during := c.maxMessages(ctx, majority)
	for k, i := range majority {
		if during[k].confirmed <= before[k].confirmed {
			t.Errorf("node%d confirmed nothing during the partition (%d then %d): 3 of 4 validators should confirm",
				i, before[k].confirmed, during[k].confirmed)
		}
	}
	t.Logf("during the partition the majority went from %s to %s", fmtCounts(majority, before), fmtCounts(majority, during))

	tp.heal(t, cut)
	healed := time.Now()
	l.setTargets(all(n))
	missed := l.ackedIDs()
	m0, err := c.metrics(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	caught := c.waitCaughtUp(ctx, cut, missed, time.Minute)
	t.Logf("node%d healed; it held the %d messages acknowledged before the heal %v later (the majority held %d messages in all)",
		cut, len(missed), caught.Round(time.Millisecond), have)
	c.logCatchUp(ctx, cut, m0)
	pause(t, ctx, after)
	stopped := time.Now()
	conv, acks := finish(t, ctx, c, l, 90*time.Second)
	t.Logf("RESULT partition: seed %d, node%d cut for %v, %d acknowledged, caught up %v after the heal, converged %v after the heal (%v after the load stopped), nothing lost",
		seed, cut, partition, len(acks), caught.Round(time.Millisecond),
		(stopped.Sub(healed) + conv.took).Round(time.Millisecond), conv.took.Round(time.Millisecond))
}

// TestPartitionBothSides cuts one of four nodes off for 8 s, less than
// the QUIC idle timeout (15 s) so that the connections survive the cut,
// while devices go on submitting to all four: the APIs are on a separate
// management network that stays up. The cut node acknowledges messages it
// must not confirm (it holds 1/4 of the weight), the other three confirm
// theirs, and after the heal the four must converge with everything
// acknowledged on either side confirmed on every node.
func TestPartitionBothSides(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four node processes for about half a minute")
	}
	const (
		n         = 4
		warmup    = 3 * time.Second
		partition = 8 * time.Second
		after     = 2 * time.Second
	)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 6))
	tp := newNetnsTopo(t, n, true)
	specs := newSpecs(t, rng, n)
	tp.place(specs)
	c := newCluster(t, specs, "--pow-base", powBase)
	ctx := testCtx(t, 3*time.Minute)
	c.startAll(ctx, 30*time.Second)
	l := startLoad(t, c, rng, all(n), loadRate)
	pause(t, ctx, warmup)

	cut := rng.IntN(n)
	majority := without(all(n), cut)
	tp.cut(t, cut)
	cutAt := time.Now()
	t.Logf("node%d's gossip link cut; the load goes on to all four", cut)
	_, before := c.maxMessages(ctx, all(n))
	pause(t, ctx, partition)
	// Every message the cut node took after the cut exists on its side
	// only: approved by its validator alone, it must not be confirmed.
	var alone []acked
	for _, a := range l.ackedIDs() {
		if a.node == cut && a.sent.After(cutAt) {
			alone = append(alone, a)
		}
	}
	for _, a := range alone {
		mi, err := c.client(cut).Get(ctx, a.id)
		if err != nil {
			t.Fatalf("node%d: GET %s: %v", cut, a.id, err)
		}
		if mi.Confirmed {
			t.Errorf("node%d confirmed %s, which it took while cut off with 1/4 of the weight", cut, a.id)
		}
	}
	_, during := c.maxMessages(ctx, all(n))
	for _, i := range majority {
		if during[i].confirmed <= before[i].confirmed {
			t.Errorf("node%d confirmed nothing during the partition: 3 of 4 validators should confirm", i)
		}
	}
	if len(alone) == 0 {
		t.Fatalf("node%d acknowledged nothing while cut off: the test did not test much", cut)
	}
	t.Logf("during the partition: %s, then %s; node%d acknowledged %d messages on its side, none confirmed there",
		fmtCounts(all(n), before), fmtCounts(all(n), during), cut, len(alone))

	tp.heal(t, cut)
	healed := time.Now()
	pause(t, ctx, after)
	stopped := time.Now()
	conv, acks := finish(t, ctx, c, l, 90*time.Second)
	t.Logf("RESULT partition-both-sides: seed %d, node%d cut for %v, %d acknowledged (%d by node%d while cut off), converged %v after the heal (%v after the load stopped), nothing lost",
		seed, cut, partition, len(acks), len(alone), cut,
		(stopped.Sub(healed) + conv.took).Round(time.Millisecond), conv.took.Round(time.Millisecond))
}

// TestKill kills one of four nodes with SIGKILL while it takes load,
// restarts it on its data directory, kills it again while it catches up,
// restarts it again, and checks that all four converge and that nothing
// acknowledged is lost, also what the killed node acknowledged just before
// it died. It runs in namespaces when it can, on loopback otherwise.
func TestKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four node processes for about half a minute")
	}
	const (
		n      = 4
		warmup = 3 * time.Second
		down   = 6 * time.Second
		after  = 2 * time.Second
	)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))
	specs := newSpecs(t, rng, n)
	if why := netnsUnavailable(); why == "" {
		newNetnsTopo(t, n, false).place(specs)
	} else {
		t.Logf("the nodes run on loopback: %s", why)
		loopbackAddrs(t, specs)
	}
	c := newCluster(t, specs, "--pow-base", powBase)
	ctx := testCtx(t, 3*time.Minute)
	c.startAll(ctx, 30*time.Second)
	l := startLoad(t, c, rng, all(n), loadRate)
	pause(t, ctx, warmup+time.Duration(rng.Int64N(int64(time.Second))))

	victim := rng.IntN(n)
	c.kill(victim)
	killed := time.Now()
	others := without(all(n), victim)
	l.setTargets(others)
	byVictim, last := 0, time.Time{}
	for _, a := range l.ackedIDs() {
		if a.node == victim {
			byVictim++
			last = a.at
		}
	}
	t.Logf("node%d killed (SIGKILL) under load; it had acknowledged %d messages, the last %v before it died",
		victim, byVictim, killed.Sub(last).Round(time.Millisecond))
	pause(t, ctx, down)

	have, _ := c.maxMessages(ctx, others)
	c.start(victim)
	l.setTargets(all(n))
	// Again, while it catches up: its sync cursors must not move past
	// what it had not made durable.
	pause(t, ctx, 200*time.Millisecond+time.Duration(rng.Int64N(int64(600*time.Millisecond))))
	held, _ := c.maxMessages(ctx, []int{victim})
	c.kill(victim)
	l.setTargets(others)
	t.Logf("node%d restarted, and killed again while it caught up (it held %d of the %d messages the others held at its restart)",
		victim, held, have)
	pause(t, ctx, 2*time.Second)

	c.start(victim)
	restarted := time.Now()
	l.setTargets(all(n))
	missed := l.ackedIDs()
	m0, err := c.metrics(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	caught := c.waitCaughtUp(ctx, victim, missed, time.Minute)
	t.Logf("node%d restarted; it held the %d messages acknowledged before its restart %v later", victim, len(missed), caught.Round(time.Millisecond))
	c.logCatchUp(ctx, victim, m0)
	pause(t, ctx, after)
	stopped := time.Now()
	conv, acks := finish(t, ctx, c, l, 90*time.Second)
	t.Logf("RESULT kill: seed %d, node%d down for %v from its first kill to its last restart, %d acknowledged (%d by node%d before it died), caught up %v after the restart, converged %v after the restart (%v after the load stopped), nothing lost",
		seed, victim, restarted.Sub(killed).Round(time.Millisecond), len(acks), byVictim, victim, caught.Round(time.Millisecond),
		(stopped.Sub(restarted) + conv.took).Round(time.Millisecond), conv.took.Round(time.Millisecond))
}

// runImpaired runs load on an impaired network of started nodes for dur,
// then checks convergence.
func runImpaired(t *testing.T, ctx context.Context, c *cluster, rng *rand.Rand, dur time.Duration, rate float64) (convergence, []acked) {
	t.Helper()
	n := len(c.specs)
	c.waitMesh(ctx, all(n), 60*time.Second)
	l := startLoad(t, c, rng, all(n), rate)
	pause(t, ctx, dur)
	rtts := c.rtts(ctx)
	t.Logf("gossip round trips measured by the nodes: %s", rtts)
	return finish(t, ctx, c, l, 90*time.Second)
}

// rtts describes the nodes' measured round-trip times to their peers.
func (c *cluster) rtts(ctx context.Context) string {
	var s []string
	for i := range c.specs {
		info, err := c.client(i).Info(ctx)
		if err != nil {
			continue
		}
		peers, _ := peersOf(info)
		for _, p := range peers {
			s = append(s, fmt.Sprintf("%.0f ms", p.RTTms))
		}
	}
	return strings.Join(s, ", ")
}

// TestNetemDelayLoss runs four nodes in namespaces whose links delay every
// packet by 50 ms and drop 1% (tc netem on each node's interface), under
// load, and checks convergence. It skips where the kernel has no netem
// qdisc; TestProxyDelayLoss does the same in userspace.
func TestNetemDelayLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four node processes for about half a minute")
	}
	const n = 4
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("needs the tc command (iproute2) for the netem qdisc")
	}
	tp := newNetnsTopo(t, n, false)
	netem := []string{"qdisc", "add", "dev", "eth0", "root", "netem",
		"delay", fmt.Sprintf("%dms", impairment.Delay.Milliseconds()), fmt.Sprintf("%dms", impairment.Jitter.Milliseconds()),
		"loss", fmt.Sprintf("%g%%", 100*impairment.Loss)}
	for i, ns := range tp.ns {
		if _, err := run("ip", append([]string{"netns", "exec", ns, "tc"}, netem...)...); err != nil {
			switch {
			case i > 0:
				t.Fatal(err)
			case strings.Contains(err.Error(), "qdisc kind is unknown"):
				t.Skipf("the kernel has no netem qdisc (sch_netem is neither built in nor loaded): %v; TestProxyDelayLoss impairs the links in userspace instead", err)
			default:
				t.Skipf("tc cannot add a netem qdisc here: %v; TestProxyDelayLoss impairs the links in userspace instead", err)
			}
		}
	}
	t.Logf("netem on every node's interface: %s (the API answers to this host are delayed too)", strings.Join(netem[6:], " "))
	specs := newSpecs(t, rng, n)
	tp.place(specs)
	c := newCluster(t, specs, "--pow-base", powBase)
	ctx := testCtx(t, 3*time.Minute)
	for i := range specs {
		c.start(i)
	}
	start := time.Now()
	conv, acks := runImpaired(t, ctx, c, rng, 15*time.Second, loadRate)
	t.Logf("RESULT netem: seed %d, %d nodes, %v with netem %s, %d acknowledged, converged %v after the load stopped, nothing lost",
		seed, n, time.Since(start).Round(time.Second), strings.Join(netem[6:], " "), len(acks), conv.took.Round(time.Millisecond))
}

// TestProxyDelayLoss runs three nodes on loopback whose gossip goes through
// a Proxy in front of each node that delays every datagram by 50 ms (and
// up to 2 ms of jitter) and drops 1% of them, each way, under load, and
// checks that they converge and that nothing acknowledged is lost. It needs
// no privileges: it is the delay-and-loss test of CI.
func TestProxyDelayLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three node processes for about half a minute")
	}
	const n = 3
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 4))
	specs := newSpecs(t, rng, n)
	loopbackAddrs(t, specs)
	var proxies []*Proxy
	for i, s := range specs {
		p, err := NewProxy("127.0.0.1:0", s.gossipAddr, impairment, seed+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		s.dialAddr = p.Addr()
		proxies = append(proxies, p)
	}
	c := newCluster(t, specs, "--pow-base", powBase)
	ctx := testCtx(t, 3*time.Minute)
	for i := range specs {
		c.start(i)
	}
	start := time.Now()
	conv, acks := runImpaired(t, ctx, c, rng, 15*time.Second, 150)
	var fwd, drop, over uint64
	for i, p := range proxies {
		st := p.Stats()
		t.Logf("proxy of node%d: %+v", i, st)
		fwd, drop, over = fwd+st.Forwarded, drop+st.Dropped, over+st.Overflow
	}
	t.Logf("RESULT proxy: seed %d, %d nodes, %v through proxies (50 ms + <2 ms jitter, 1%% loss each way), %d datagrams forwarded, %d dropped at random (%.2f%%), %d overflowed; %d acknowledged, converged %v after the load stopped, nothing lost",
		seed, n, time.Since(start).Round(time.Second), fwd, drop, 100*float64(drop)/float64(fwd+drop), over, len(acks), conv.took.Round(time.Millisecond))
}

// TestKillAll is a power cut of the whole network just after a burst of
// traffic: the load stops, and as soon as every node holds every
// acknowledged message, while the last of them still wait for their
// validators' approval, every node is killed with SIGKILL at once. All
// restart on their data directories with no load after, and they must
// converge with nothing acknowledged lost and every device message
// confirmed: a message a node acknowledged must not wait for later traffic
// to be confirmed.
//
// The validators issue every 2 s instead of every 50 ms, so that messages
// are still unconfirmed when the nodes are killed; the test reads the
// stores of the dead nodes to show how many. It runs on loopback: it needs
// no namespaces.
func TestKillAll(t *testing.T) {
	if testing.Short() {
		t.Skip("runs four node processes for about half a minute")
	}
	const (
		n     = 4
		load  = 4 * time.Second
		issue = 2 * time.Second
	)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 5))
	specs := newSpecs(t, rng, n)
	loopbackAddrs(t, specs)
	c := newCluster(t, specs, "--pow-base", powBase, "--issue-interval", issue.String())
	c.quiet = 3 * issue
	ctx := testCtx(t, 3*time.Minute)
	c.startAll(ctx, 30*time.Second)
	l := startLoad(t, c, rng, all(n), loadRate)
	pause(t, ctx, load)
	l.stopLoad()
	acks := l.ackedIDs()
	h := newHeldTracker(c, acks)
	for {
		cs, err := c.counts(ctx, all(n))
		if err == nil && sameCounts(cs) && h.allHeld(ctx, all(n)) {
			break
		}
		pause(t, ctx, 20*time.Millisecond)
	}
	var wg sync.WaitGroup
	for i := range specs {
		wg.Add(1)
		go func() { defer wg.Done(); c.kill(i) }()
	}
	wg.Wait()
	unconf := 0
	for _, s := range specs {
		_, u := readStore(t, s.dir, l.issuers())
		unconf = max(unconf, u)
	}
	t.Logf("all %d nodes killed (SIGKILL) once each held the %d acknowledged messages; their stores hold up to %d unconfirmed device messages",
		n, len(acks), unconf)
	if unconf == 0 {
		t.Log("every device message was confirmed before the kill: this run did not test a restart with unconfirmed messages")
	}
	restarted := time.Now()
	c.startAll(ctx, 30*time.Second)
	settled := time.Now()
	conv, acks := finish(t, ctx, c, l, 60*time.Second)
	t.Logf("RESULT kill-all: seed %d, %d acknowledged, %d device messages unconfirmed at the kill, converged %v after the restart, nothing lost",
		seed, len(acks), unconf, (settled.Sub(restarted) + conv.took).Round(time.Millisecond))
}
