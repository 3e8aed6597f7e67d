package bench

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

// target is what a run loads: the API URLs of one node or, later, of
// several (a scenario over a network spreads its senders over them), and
// how to observe it.
type target struct {
	// urls are the nodes' API base URLs; senders are spread over them.
	urls []string
	// local: the node runs in this process. Its CPU and memory are then
	// this process's, and its clock is the load generator's.
	local   bool
	dataDir string // local only
	// network, difficulty and maxPayload are what the node states.
	network    dag.NetworkID
	difficulty int // for the run's payload size
	maxPayload int
	stop       func() error
}

// startLocal starts a node in this process on a fresh data directory under
// dir, with its API on a loopback port.
func startLocal(cfg Config, dir string) (*target, error) {
	dataDir := filepath.Join(dir, "node")
	key := ed25519.NewKeyFromSeed(deriveSeed("node", cfg.Seed, 0))
	n, err := node.New(node.Config{DataDir: dataDir, Identity: key, Network: cfg.Network,
		PoWBase: cfg.PoWBase, Log: cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("bench: starting the node: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- n.Run(ctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		<-runDone
		return nil, fmt.Errorf("bench: %w", err)
	}
	srv := api.New(n, cfg.Version, cfg.Log)
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		hs.Serve(ln)
	}()
	p := n.Params()
	t := &target{
		urls: []string{"http://" + ln.Addr().String()}, local: true, dataDir: dataDir,
		network: p.Network, difficulty: p.Difficulty(dag.MinSize + cfg.Payload), maxPayload: p.MaxPayload,
	}
	t.stop = func() error {
		srv.EndStreams()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		hs.Shutdown(sctx)
		<-serveDone
		cancel()
		return <-runDone
	}
	return t, nil
}

// connectRemote checks that a node answers at url and reads its network.
func connectRemote(ctx context.Context, url string, payload int) (*target, error) {
	c := client.New(url)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tips, err := c.Tips(tctx, payload)
	if err != nil {
		return nil, fmt.Errorf("bench: node %s: %w", url, err)
	}
	return &target{
		urls: []string{strings.TrimRight(url, "/")}, network: tips.NetworkID, difficulty: tips.Difficulty,
		maxPayload: tips.MaxPayload, stop: func() error { return nil },
	}, nil
}

// nodeMetrics are the metrics the bench reads from a node's /metrics.
type nodeMetrics struct {
	cpuSeconds float64 // process_cpu_seconds_total
	rssBytes   float64 // process_resident_memory_bytes
	confirmed  float64 // weft_messages_confirmed_total
	own        float64 // weft_own_messages_total: the node's own messages, as a validator
}

// confirmedOthers returns the messages confirmed that are not the node's own.
func (m nodeMetrics) confirmedOthers() float64 { return m.confirmed - m.own }

// scrapeMetrics reads a node's metrics from its /metrics.
func scrapeMetrics(ctx context.Context, hc *http.Client, base string) (nodeMetrics, error) {
	var m nodeMetrics
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
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
	found := 0
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "process_cpu_seconds_total":
			dst = &m.cpuSeconds
		case "process_resident_memory_bytes":
			dst = &m.rssBytes
		case "weft_messages_confirmed_total":
			dst = &m.confirmed
		case "weft_own_messages_total":
			dst = &m.own
		default:
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			*dst = v
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	if found < 4 {
		return m, errors.New("bench: the node's /metrics lacks process or weft metrics")
	}
	return m, nil
}

func jsonDecode(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(v)
}

// diskUsage returns the bytes allocated on disk to the files under dir.
func diskUsage(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += allocated(fi)
		return nil
	})
	return total, err
}
