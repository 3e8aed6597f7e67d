package netfault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// defaultQuiet is how long the nodes' counters must stay equal and
// unchanged before the network counts as quiet: many times the validators'
// default issue interval (50 ms) and the core's tick (100 ms).
const defaultQuiet = 2 * time.Second

// ledger is what a node holds: message ID -> confirmed.
type ledger map[dag.ID]bool

// counts are a node's /api/v1/info counters.
type counts struct {
	messages, confirmed, pending uint64
}

// convergence is what converge measured.
type convergence struct {
	// took is from the call until the nodes first held what they held
	// once quiet: the same messages, confirmed alike, validators idle.
	took time.Duration
	// held is from the call until every acknowledged message was on every
	// node (confirmed or not); an upper bound, checked every 200 ms.
	held                time.Duration
	messages, confirmed uint64 // on every node, genesis included
	device              int    // device messages on every node
}

// converge waits, at most within, until the nodes are quiet and agree,
// then checks that they hold exactly the same messages with the same
// confirmation state, that every acknowledged message is on every node and
// confirmed, and that every device message is confirmed. issuers are the
// devices; the validators are the nodes.
func (c *cluster) converge(ctx context.Context, nodes []int, acks []acked, devices []dag.PublicKey, within time.Duration) convergence {
	t := c.t
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var (
		prev        []counts
		agreeSince  time.Time
		why         string
		lastReport  = start
		lastCounts  string
		heldAt      time.Time
		heldChecked time.Time
		tracker     = newHeldTracker(c, acks)
	)
	for {
		c.checkAlive()
		if heldAt.IsZero() && time.Since(heldChecked) >= 200*time.Millisecond {
			heldChecked = time.Now()
			if tracker.allHeld(ctx, nodes) {
				heldAt = time.Now()
			}
		}
		cur, err := c.counts(ctx, nodes)
		switch {
		case err != nil:
			why, agreeSince = err.Error(), time.Time{}
		case !sameCounts(cur) || cur[0].pending != 0:
			why, agreeSince = "the nodes disagree, or wait for parents: "+fmtCounts(nodes, cur), time.Time{}
		case prev == nil || cur[0] != prev[0] || agreeSince.IsZero():
			why, agreeSince = "the counters still move: "+fmtCounts(nodes, cur), time.Now()
		default:
			if time.Since(agreeSince) >= c.quiet {
				// Once quiet and equal, everything was held since
				// agreeSince at the latest (the checks only poll).
				if heldAt.IsZero() || heldAt.After(agreeSince) {
					heldAt = agreeSince
				}
				res := convergence{took: agreeSince.Sub(start), held: heldAt.Sub(start),
					messages: cur[0].messages, confirmed: cur[0].confirmed}
				// The counters agree: check the sets themselves.
				if dev, err := c.checkLedgers(ctx, nodes, acks, devices, cur); err == nil {
					res.device = dev
					return res
				} else if errors.Is(err, errMoved) {
					why, agreeSince = err.Error(), time.Time{}
				} else {
					t.Fatalf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
				}
			}
		}
		prev = cur
		if s := fmtCounts(nodes, cur); time.Since(lastReport) > 10*time.Second && s != lastCounts {
			t.Logf("converging (%v): %s", time.Since(start).Round(time.Second), why)
			lastReport, lastCounts = time.Now(), s
		}
		select {
		case <-ctx.Done():
			c.logPeers(nodes)
			t.Fatalf("no convergence within %v: %s", within, why)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// heldTracker follows which acknowledged messages each node holds,
// reading only what it has not seen yet: per device, the issuer listing
// from the sequence number of the last message found in order.
type heldTracker struct {
	c    *cluster
	want map[dag.PublicKey][]acked // by device, in sequence order
	// found[node][device] is how many of want[device] node was seen to
	// hold, in order.
	found map[int]map[dag.PublicKey]int
}

func newHeldTracker(c *cluster, acks []acked) *heldTracker {
	h := &heldTracker{c: c, want: map[dag.PublicKey][]acked{}, found: map[int]map[dag.PublicKey]int{}}
	for _, a := range acks {
		h.want[a.dev] = append(h.want[a.dev], a)
	}
	for _, w := range h.want {
		sort.Slice(w, func(i, j int) bool { return w[i].seq < w[j].seq })
	}
	return h
}

// held reports whether node i holds every acknowledged message.
func (h *heldTracker) held(ctx context.Context, i int) bool {
	if h.found[i] == nil {
		h.found[i] = map[dag.PublicKey]int{}
	}
	cl := h.c.client(i)
	for dev, want := range h.want {
		k := h.found[i][dev]
		for k < len(want) {
			var after *uint64
			if k > 0 {
				after = &want[k-1].seq
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			page, err := cl.IssuerMessages(pctx, dev, after, 1000)
			cancel()
			if err != nil {
				return false
			}
			have := map[dag.ID]bool{}
			for _, m := range page.Messages {
				have[m.ID] = true
			}
			last := uint64(0)
			if n := len(page.Messages); n > 0 {
				last = page.Messages[n-1].Seq
			}
			for k < len(want) && have[want[k].id] {
				k++
			}
			h.found[i][dev] = k
			// Go on to the next page only if this one ended before the
			// message still missing.
			if page.NextAfterSeq == nil || k == len(want) || want[k].seq <= last {
				break
			}
		}
		if k < len(want) {
			return false
		}
	}
	return true
}

// allHeld reports whether every node of nodes holds every message of h.
func (h *heldTracker) allHeld(ctx context.Context, nodes []int) bool {
	for _, i := range nodes {
		if !h.held(ctx, i) {
			return false
		}
	}
	return true
}

// errMoved: the counters moved while the ledgers were read.
var errMoved = errors.New("the counters moved while the ledgers were read")

func (c *cluster) counts(ctx context.Context, nodes []int) ([]counts, error) {
	out := make([]counts, len(nodes))
	for k, i := range nodes {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := c.client(i).Info(ictx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("node%d: info: %v", i, err)
		}
		out[k] = counts{info.Messages, info.Confirmed, info.Pending}
	}
	return out, nil
}

func sameCounts(cs []counts) bool {
	for _, x := range cs[1:] {
		if x.messages != cs[0].messages || x.confirmed != cs[0].confirmed {
			return false
		}
	}
	return true
}

func fmtCounts(nodes []int, cs []counts) string {
	var s []string
	for k, x := range cs {
		s = append(s, fmt.Sprintf("node%d %d/%d/%d", nodes[k], x.messages, x.confirmed, x.pending))
	}
	return strings.Join(s, ", ") + " (messages/confirmed/pending)"
}

// checkLedgers reads every node's ledger through the API, issuer by
// issuer (the devices and the validators), and compares them. It returns
// the number of device messages.
func (c *cluster) checkLedgers(ctx context.Context, nodes []int, acks []acked, devices []dag.PublicKey, want []counts) (int, error) {
	issuers := append([]dag.PublicKey(nil), devices...)
	isDevice := map[dag.PublicKey]bool{}
	for _, d := range devices {
		isDevice[d] = true
	}
	for _, s := range c.specs {
		issuers = append(issuers, s.pub)
	}
	ledgers := make([]ledger, len(nodes))
	devCount := make([]int, len(nodes))
	for k, i := range nodes {
		l := ledger{}
		unconfDev := 0
		for _, iss := range issuers {
			page, err := readIssuer(ctx, c.client(i), iss, l)
			if err != nil {
				return 0, fmt.Errorf("node%d: listing %s: %v", i, iss, err)
			}
			if isDevice[iss] {
				devCount[k] += page.n
				unconfDev += page.unconfirmed
			}
		}
		if unconfDev > 0 {
			return 0, fmt.Errorf("node%d: %d device messages are not confirmed, and nothing has changed on any node for %v", i, unconfDev, c.quiet)
		}
		ledgers[k] = l
	}
	after, err := c.counts(ctx, nodes)
	if err != nil {
		return 0, err
	}
	for k := range after {
		if after[k] != want[k] {
			return 0, errMoved
		}
	}
	for k, i := range nodes {
		conf := uint64(1) // the genesis: stored and confirmed, issued by no one
		for _, ok := range ledgers[k] {
			if ok {
				conf++
			}
		}
		if got := uint64(len(ledgers[k])) + 1; got != want[k].messages || conf != want[k].confirmed {
			return 0, fmt.Errorf("node%d: /info counts %d messages, %d confirmed; its issuers' listings and the genesis %d, %d",
				i, want[k].messages, want[k].confirmed, got, conf)
		}
	}
	for k := 1; k < len(nodes); k++ {
		if d := diffLedgers(ledgers[0], ledgers[k]); d != "" {
			return 0, fmt.Errorf("node%d and node%d differ: %s", nodes[0], nodes[k], d)
		}
	}
	for _, a := range acks {
		for k, i := range nodes {
			confirmed, ok := ledgers[k][a.id]
			switch {
			case !ok:
				return 0, fmt.Errorf("message %s, acknowledged by node%d at %s, is missing on node%d",
					a.id, a.node, a.at.Format(time.TimeOnly), i)
			case !confirmed:
				return 0, fmt.Errorf("message %s, acknowledged by node%d, is not confirmed on node%d", a.id, a.node, i)
			}
		}
	}
	// The listings read the issuer index; check a sample of the
	// acknowledged messages by ID too, as a device would.
	rng := rand.New(rand.NewPCG(uint64(len(acks)), 1))
	for _, i := range nodes {
		for k := 0; k < min(200, len(acks)); k++ {
			a := acks[rng.IntN(len(acks))]
			gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			mi, err := c.client(i).Get(gctx, a.id)
			cancel()
			if err != nil {
				return 0, fmt.Errorf("node%d: GET %s (acknowledged by node%d): %v", i, a.id, a.node, err)
			}
			if !mi.Confirmed {
				return 0, fmt.Errorf("node%d: GET %s: not confirmed", i, a.id)
			}
		}
	}
	return devCount[0], nil
}

type issuerCount struct{ n, unconfirmed int }

// readIssuer adds the messages of one issuer on a node to l.
func readIssuer(ctx context.Context, c *client.Client, iss dag.PublicKey, l ledger) (issuerCount, error) {
	var (
		after *uint64
		res   issuerCount
	)
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		page, err := c.IssuerMessages(pctx, iss, after, 1000)
		cancel()
		if err != nil {
			return res, err
		}
		for _, m := range page.Messages {
			if _, dup := l[m.ID]; dup {
				return res, fmt.Errorf("message %s listed twice", m.ID)
			}
			l[m.ID] = m.Confirmed
			res.n++
			if !m.Confirmed {
				res.unconfirmed++
			}
		}
		if page.NextAfterSeq == nil {
			return res, nil
		}
		after = page.NextAfterSeq
	}
}

// diffLedgers describes how b differs from a, or returns "".
func diffLedgers(a, b ledger) string {
	var diffs []string
	for id, ca := range a {
		cb, ok := b[id]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s only on the first", id))
		case ca != cb:
			diffs = append(diffs, fmt.Sprintf("%s confirmed=%v on the first, %v on the second", id, ca, cb))
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s only on the second", id))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	sort.Strings(diffs)
	n := len(diffs)
	if n > 5 {
		diffs = append(diffs[:5], "...")
	}
	return fmt.Sprintf("%d differences: %s", n, strings.Join(diffs, "; "))
}

// logPeers logs each node's view of its peers, to diagnose a failure.
func (c *cluster) logPeers(nodes []int) {
	for _, i := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		info, err := c.client(i).Info(ctx)
		cancel()
		if err != nil {
			c.t.Logf("node%d: %v", i, err)
			continue
		}
		peers, _ := peersOf(info)
		c.t.Logf("node%d: %d messages, %d confirmed, %d unconfirmed, %d pending, %d tips; peers %+v",
			i, info.Messages, info.Confirmed, info.Unconfirmed, info.Pending, info.Tips, peers)
	}
}

// readStore opens a stopped node's store and reads its whole log: every
// message, confirmed or not, and how many of those issued by devices are
// not confirmed.
func readStore(t *testing.T, dir string, devices []dag.PublicKey) (l ledger, unconfirmedDevice int) {
	t.Helper()
	isDevice := map[dag.PublicKey]bool{}
	for _, d := range devices {
		isDevice[d] = true
	}
	st, err := storage.Open(filepath.Join(dir, "store"), storage.Config{})
	if err != nil {
		t.Fatalf("opening the store in %s: %v", dir, err)
	}
	l = ledger{}
	err = st.Range(0, func(e storage.Entry) error {
		if _, dup := l[e.ID]; dup {
			return fmt.Errorf("message %x stored twice", e.ID)
		}
		l[e.ID] = e.Confirmed
		if !e.Confirmed && isDevice[e.Issuer] {
			unconfirmedDevice++
		}
		return nil
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("reading the store in %s: %v", dir, err)
	}
	return l, unconfirmedDevice
}

// checkStores opens each stopped node's store and compares the whole logs:
// the same IDs with the same confirmation state on every node, every
// acknowledged message there and confirmed. The nodes must be stopped.
func (c *cluster) checkStores(acks []acked) {
	t := c.t
	t.Helper()
	var ledgers []ledger
	for _, s := range c.specs {
		l, _ := readStore(t, s.dir, nil)
		ledgers = append(ledgers, l)
	}
	for i := 1; i < len(ledgers); i++ {
		if d := diffLedgers(ledgers[0], ledgers[i]); d != "" {
			t.Fatalf("stores of node0 and node%d differ: %s", i, d)
		}
	}
	for _, a := range acks {
		if confirmed, ok := ledgers[0][a.id]; !ok || !confirmed {
			t.Fatalf("store: acknowledged message %s: stored=%v confirmed=%v", a.id, ok, confirmed)
		}
	}
	t.Logf("stores after stop: %d nodes hold the same %d messages, %d acknowledged among them", len(ledgers), len(ledgers[0]), len(acks))
}
