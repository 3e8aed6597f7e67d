package bench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
	"github.com/weftnet/weft/internal/loopback"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/storage"
)

// target is what a run loads: the API URLs of one node or of a network
// (the senders are spread over them), and how to observe it.
type target struct {
	// urls are the nodes' API base URLs; senders are spread over them.
	urls []string
	// local: the nodes run in this process. Their CPU and memory are then
	// this process's, and their clock is the load generator's.
	local bool
	// dataDirs are the nodes' data directories, when the run started them:
	// their stores are measured on disk every second, and after they stop.
	dataDirs []string
	// pids are the nodes' process ids, when they are processes of their
	// own that the launcher named: their memory is read from
	// /proc/PID/status every second.
	pids []int
	// network, difficulty and maxPayload are what the nodes state.
	network    dag.NetworkID
	difficulty int // for the run's payload size
	maxPayload int
	stop       func() error
}

// Launcher starts the network of the Network scenario and returns once
// every node's API answers; stop stops every node and waits for them.
type Launcher func(ctx context.Context, spec NetSpec) (nodes []LaunchedNode, stop func() error, err error)

// NetSpec is the network a Launcher starts: Nodes nodes, all validators of
// weight 1, peered in a full mesh on loopback.
type NetSpec struct {
	Dir     string // a fresh directory for the nodes' data directories
	Nodes   int
	Network string // the network name
	PoWBase int
	Seed    uint64 // may derive the nodes' identities
	Version string // what the nodes' APIs report
	Log     zerolog.Logger
	// Retention is the nodes' store retention; zero fields are the nodes'
	// defaults.
	Retention Retention
}

// LaunchedNode is one node a Launcher started.
type LaunchedNode struct {
	URL     string // the API base URL, "http://host:port"
	DataDir string
	// PID is the node's process id, if it runs in a process of its own
	// on this machine; 0 if not, or not known.
	PID int
}

// start starts the run's nodes, with cfg.Launch or in this process, and
// connects to them.
func start(ctx context.Context, cfg Config, dir string) (*target, error) {
	spec := NetSpec{Dir: dir, Nodes: cfg.Nodes, Network: cfg.Network, PoWBase: cfg.PoWBase, Seed: cfg.Seed,
		Version: cfg.Version, Log: cfg.Log, Retention: cfg.Retention}
	launch, local := cfg.Launch, cfg.Launch == nil
	if local {
		launch = launchInProcess
	}
	nodes, stop, err := launch(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("bench: starting the nodes: %w", err)
	}
	urls := make([]string, len(nodes))
	dirs := make([]string, len(nodes))
	var pids []int
	for i, n := range nodes {
		urls[i], dirs[i] = n.URL, n.DataDir
		if n.PID > 0 && !local {
			pids = append(pids, n.PID)
		}
	}
	if len(pids) != len(nodes) {
		pids = nil // all or none: the figures are of every node
	}
	t, err := connect(ctx, urls, cfg.Payload)
	if err != nil {
		stop()
		return nil, err
	}
	t.local, t.dataDirs, t.pids, t.stop = local, dirs, pids, stop
	return t, nil
}

// launchInProcess is the default Launcher: the nodes run in this process,
// each with its own data directory and an API on a loopback port; with
// more than one, each a validator, gossiping over QUIC on loopback.
func launchInProcess(_ context.Context, spec NetSpec) ([]LaunchedNode, func() error, error) {
	keys := make([]ed25519.PrivateKey, spec.Nodes)
	var vals []dag.Validator
	var peers []gossip.Peer
	var addrs []string
	if spec.Nodes > 1 {
		var err error
		if addrs, err = loopback.FreeAddrs("udp", spec.Nodes); err != nil {
			return nil, nil, err
		}
	}
	for i := range keys {
		keys[i] = ed25519.NewKeyFromSeed(deriveSeed("node", spec.Seed, i))
		var pk dag.PublicKey
		copy(pk[:], keys[i][32:])
		if spec.Nodes > 1 {
			vals = append(vals, dag.Validator{Key: pk, Weight: 1})
			peers = append(peers, gossip.Peer{Key: pk, Addr: addrs[i]})
		}
	}
	var stops []func() error
	stopAll := func() error {
		var errs []error
		for _, s := range stops {
			errs = append(errs, s())
		}
		return errors.Join(errs...)
	}
	var out []LaunchedNode
	for i := range keys {
		cfg := node.Config{DataDir: filepath.Join(spec.Dir, fmt.Sprintf("node%d", i)), Identity: keys[i],
			Network: spec.Network, PoWBase: spec.PoWBase, Validators: vals, Log: spec.Log, Store: spec.Retention.storeConfig()}
		if spec.Nodes > 1 {
			cfg.GossipListen = addrs[i]
			cfg.Peers = slices.Delete(slices.Clone(peers), i, i+1)
		}
		url, stop, err := serveNode(cfg, spec.Version, "127.0.0.1:0")
		if err != nil {
			stopAll()
			return nil, nil, err
		}
		stops = append(stops, stop)
		out = append(out, LaunchedNode{URL: url, DataDir: cfg.DataDir})
	}
	return out, stopAll, nil
}

// storeConfig is the storage.Config of an in-process node with retention r.
func (r Retention) storeConfig() storage.Config {
	return storage.Config{Retain: r.Retain, MaxDisk: r.MaxDisk, EpochRecords: r.EpochRecords, EpochAge: r.EpochAge}
}

// serveNode runs a node in this process with its API on addr (port 0: a
// free port).
func serveNode(cfg node.Config, version, addr string) (url string, stop func() error, err error) {
	n, err := node.New(cfg)
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- n.Run(ctx) }()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		cancel()
		<-runDone
		return "", nil, err
	}
	srv := api.New(n, version, cfg.Log)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		hs.Serve(ln)
	}()
	stop = func() error {
		srv.EndStreams()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		hs.Shutdown(sctx)
		<-serveDone
		cancel()
		return <-runDone
	}
	return "http://" + ln.Addr().String(), stop, nil
}

// connect checks that the nodes at urls answer and are of one network, and
// reads its parameters.
func connect(ctx context.Context, urls []string, payload int) (*target, error) {
	t := &target{stop: func() error { return nil }}
	for i, u := range urls {
		u = strings.TrimRight(u, "/")
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		tips, err := client.New(u, noRetry).Tips(tctx, payload)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("bench: node %s: %w", u, err)
		}
		if i == 0 {
			t.network, t.difficulty, t.maxPayload = tips.NetworkID, tips.Difficulty, tips.MaxPayload
		} else if tips.NetworkID != t.network {
			return nil, fmt.Errorf("bench: node %s is on another network than %s", u, t.urls[0])
		}
		t.urls = append(t.urls, u)
	}
	return t, nil
}

// noRetry makes the bench's clients answer every refusal at once: the load
// generator counts refusals, and must not hide them behind retries.
var noRetry = client.WithRetry(client.Retry{Attempts: 1})

// nodeMetrics are the metrics the bench reads from a node's /metrics.
type nodeMetrics struct {
	cpuSeconds float64 // process_cpu_seconds_total
	rssBytes   float64 // process_resident_memory_bytes
	confirmed  float64 // weft_messages_confirmed_total
	own        float64 // weft_own_messages_total: the node's own messages, as a validator
}

// confirmedOthers returns the messages confirmed that are not the node's own.
func (m nodeMetrics) confirmedOthers() float64 { return m.confirmed - m.own }

// scrapeMetrics reads a node's metrics from its /metrics, parsed by
// expfmt.
func scrapeMetrics(ctx context.Context, hc *http.Client, base string) (nodeMetrics, error) {
	var m nodeMetrics
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+wire.PathMetrics, nil)
	if err != nil {
		return m, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("bench: %s/metrics: %s", base, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return m, fmt.Errorf("bench: %s/metrics: %w", base, err)
	}
	found := 0
	for name, dst := range map[string]*float64{
		"process_cpu_seconds_total":     &m.cpuSeconds,
		"process_resident_memory_bytes": &m.rssBytes,
		"weft_messages_confirmed_total": &m.confirmed,
		"weft_own_messages_total":       &m.own,
	} {
		if v, ok := unlabelled(fams[name]); ok {
			*dst = v
			found++
		}
	}
	if found < 4 {
		return m, errors.New("bench: the node's /metrics lacks process or weft metrics")
	}
	return m, nil
}

// unlabelled returns the value of the family's metric without labels, a
// counter or a gauge.
func unlabelled(f *dto.MetricFamily) (float64, bool) {
	if f == nil {
		return 0, false
	}
	for _, mt := range f.GetMetric() {
		if len(mt.GetLabel()) != 0 {
			continue
		}
		switch {
		case mt.Counter != nil:
			return mt.Counter.GetValue(), true
		case mt.Gauge != nil:
			return mt.Gauge.GetValue(), true
		case mt.Untyped != nil:
			return mt.Untyped.GetValue(), true
		}
	}
	return 0, false
}
