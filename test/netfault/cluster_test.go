package netfault

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/loopback"
)

// networkName is the network the test nodes run.
const networkName = "netfault"

// nodeSpec is one node of a test network: its identity, where it runs, and
// its addresses.
type nodeSpec struct {
	key ed25519.PrivateKey
	pub dag.PublicKey
	dir string
	// netns is the network namespace the node runs in ("" for the test's).
	netns string
	// apiAddr and gossipAddr are the node's --api-addr and --gossip-addr.
	apiAddr, gossipAddr string
	// dialAddr is where the other nodes reach its gossip: gossipAddr, or a
	// proxy in front of it.
	dialAddr string
}

// newSpecs makes n node identities from rng, each with a data directory
// holding its node.key, so that the test knows every public key before
// any node starts.
func newSpecs(t *testing.T, rng *rand.Rand, n int) []*nodeSpec {
	t.Helper()
	var specs []*nodeSpec
	for i := 0; i < n; i++ {
		var seed [ed25519.SeedSize]byte
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		key := ed25519.NewKeyFromSeed(seed[:])
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		// The node's identity file: the 64-hex-character seed and a
		// newline, mode 0600 (the `weft keygen` format).
		if err := client.WriteKeyFile(filepath.Join(dir, "node.key"), key); err != nil && !errors.Is(err, fs.ErrExist) {
			t.Fatal(err)
		}
		var pub dag.PublicKey
		copy(pub[:], key.Public().(ed25519.PublicKey))
		specs = append(specs, &nodeSpec{key: key, pub: pub, dir: dir})
	}
	return specs
}

// loopbackAddrs gives each spec an API on a free loopback port and a
// gossip address on a UDP port that was free a moment ago (the others must
// know it before the node starts, and it must stay the same across a
// restart).
func loopbackAddrs(t *testing.T, specs []*nodeSpec) {
	t.Helper()
	addrs, err := loopback.FreeAddrs("udp", len(specs))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range specs {
		s.apiAddr = "127.0.0.1:0"
		s.gossipAddr = addrs[i]
		s.dialAddr = s.gossipAddr
	}
}

// cluster is a network of `weft node` processes, all validators of weight
// 1, each peered with all the others.
type cluster struct {
	t     *testing.T
	specs []*nodeSpec
	flags []string // for every node, after the generated ones
	hc    *http.Client
	// quiet is how long converge waits with nothing changing before it
	// calls the network quiet; default defaultQuiet.
	quiet time.Duration

	mu    sync.Mutex
	procs []*proc // the current process of each node; nil until started
	died  []string
}

// startAll starts every node and waits until they form a full mesh.
func (c *cluster) startAll(ctx context.Context, within time.Duration) {
	for i := range c.specs {
		c.start(i)
	}
	c.waitMesh(ctx, all(len(c.specs)), within)
}

// newCluster prepares a cluster; start its nodes with start. Its cleanup
// kills every node still running and, if the test failed, logs the end of
// each node's log.
func newCluster(t *testing.T, specs []*nodeSpec, flags ...string) *cluster {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}
	c := &cluster{t: t, specs: specs, flags: flags, hc: &http.Client{Transport: tr},
		quiet: defaultQuiet, procs: make([]*proc, len(specs))}
	t.Cleanup(func() {
		c.mu.Lock()
		procs := append([]*proc(nil), c.procs...)
		c.mu.Unlock()
		for _, p := range procs {
			if p != nil {
				p.stop(syscall.SIGKILL, 10*time.Second)
			}
		}
		tr.CloseIdleConnections()
		for i, s := range specs {
			b, _ := os.ReadFile(filepath.Join(s.dir, "node.log"))
			if race := strings.Index(string(b), "WARNING: DATA RACE"); race >= 0 {
				t.Errorf("node%d: the race detector reported:\n%s", i, tail(string(b[race:]), 60))
			} else if t.Failed() {
				t.Logf("node%d: end of %s:\n%s", i, filepath.Join(s.dir, "node.log"), tail(string(b), 25))
			}
		}
	})
	return c
}

// logSummary reads node i's log (all its runs) and counts the warnings and
// errors by message, and the gossip connections it made or took.
func (c *cluster) logSummary(i int) (problems map[string]int, connects int) {
	b, err := os.ReadFile(filepath.Join(c.specs[i].dir, "node.log"))
	if err != nil {
		c.t.Fatal(err)
	}
	problems = map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		var rec struct {
			Level, Message, Error string
		}
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		switch {
		case rec.Message == "gossip: peer connected":
			connects++
		case rec.Level == "warn" || rec.Level == "error" || rec.Level == "fatal":
			problems[rec.Level+": "+rec.Message]++
		}
	}
	return problems, connects
}

// disagreement are the log messages that mean two nodes disagreed on a
// message's validity, or that one broke its own rules: none of them may
// happen with honest nodes, whatever the network does.
var disagreement = []string{"peer sent an invalid message: disconnecting", "equivocation", "store write failed"}

// checkLogs logs each node's warnings and errors and its gossip
// connections, and fails the test on a disagreement.
func (c *cluster) checkLogs() {
	c.t.Helper()
	for i := range c.specs {
		problems, connects := c.logSummary(i)
		var s []string
		for m, k := range problems {
			s = append(s, fmt.Sprintf("%q x%d", m, k))
			for _, d := range disagreement {
				if strings.HasSuffix(m, ": "+d) {
					c.t.Errorf("node%d logged %q %d times", i, m, k)
				}
			}
		}
		sort.Strings(s)
		list := "none"
		if len(s) > 0 {
			list = strings.Join(s, ", ")
		}
		c.t.Logf("node%d log: %d gossip connections; warnings and errors: %s", i, connects, list)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// args returns the command line of node i.
func (c *cluster) args(i int) []string {
	s := c.specs[i]
	args := []string{"node", "--data-dir", s.dir, "--api-addr", s.apiAddr, "--gossip-addr", s.gossipAddr,
		"--network", networkName, "--log-level", "info"}
	for j, o := range c.specs {
		args = append(args, "--validator", o.pub.String()+":1")
		if j != i {
			args = append(args, "--peer", o.pub.String()+"@"+o.dialAddr)
		}
	}
	return append(args, c.flags...)
}

// proc is one run of a node.
type proc struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done

	mu       sync.Mutex
	stopping bool // the test stopped it on purpose
}

// start runs node i and returns once its API answers.
func (c *cluster) start(i int) {
	t := c.t
	t.Helper()
	s := c.specs[i]
	var cmd *exec.Cmd
	if s.netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", s.netns, weftBin}, c.args(i)...)...)
	} else {
		cmd = exec.Command(weftBin, c.args(i)...)
	}
	// If the test binary dies (a timeout panic skips the cleanups), the
	// node dies with it. `ip netns exec` execs the node in its own process.
	// (Linux sends the signal when the thread that started the node ends;
	// the Go runtime ends threads only after a locked goroutine exits.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(filepath.Join(s.dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting node%d: %v", i, err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	c.mu.Lock()
	c.procs[i] = p
	c.mu.Unlock()
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logf.Write(append(append(make([]byte, 0, len(line)+1), line...), '\n'))
			var rec struct{ API string }
			if json.Unmarshal(line, &rec) == nil && rec.API != "" {
				select {
				case urlc <- rec.API:
				default:
				}
			}
		}
		io.Copy(logf, stderr) // a line too long for the scanner: keep the pipe drained
		p.err = cmd.Wait()
		fmt.Fprintf(logf, "netfault: process exited: %v\n", p.err)
		logf.Close()
		p.mu.Lock()
		expected := p.stopping
		p.mu.Unlock()
		if !expected {
			c.mu.Lock()
			c.died = append(c.died, fmt.Sprintf("node%d exited by itself: %v", i, p.err))
			c.mu.Unlock()
		}
		close(p.done)
	}()
	select {
	case u := <-urlc:
		c.mu.Lock()
		p.url = u
		c.mu.Unlock()
	case <-p.done:
		t.Fatalf("node%d exited at start: %v", i, p.err)
	case <-time.After(30 * time.Second):
		p.stop(syscall.SIGKILL, 5*time.Second)
		t.Fatalf("node%d did not log its API address within 30 s", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.client(i).Info(ictx)
		icancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("node%d: API %s does not answer: %v", i, p.url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends sig to the process and waits up to wait for it to exit, then
// kills it. It reports whether the process exited within wait.
func (p *proc) stop(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	p.stopping = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return true
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return true
	case <-time.After(wait):
		p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// kill sends SIGKILL to node i and waits for it to exit.
func (c *cluster) kill(i int) {
	c.mu.Lock()
	p := c.procs[i]
	c.mu.Unlock()
	p.stop(syscall.SIGKILL, 10*time.Second)
}

// stopAll stops every node with SIGTERM, as an operator would, and fails
// the test if one does not stop cleanly.
func (c *cluster) stopAll() {
	c.t.Helper()
	c.mu.Lock()
	procs := append([]*proc(nil), c.procs...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]string, len(procs))
	for i, p := range procs {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.stop(syscall.SIGTERM, 30*time.Second) {
				errs[i] = fmt.Sprintf("node%d did not stop within 30 s of SIGTERM", i)
			} else if p.err != nil {
				errs[i] = fmt.Sprintf("node%d: exit after SIGTERM: %v", i, p.err)
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			c.t.Error(e)
		}
	}
}

// checkAlive fails the test if a node exited without being told to.
func (c *cluster) checkAlive() {
	c.t.Helper()
	c.mu.Lock()
	died := append([]string(nil), c.died...)
	c.mu.Unlock()
	if len(died) > 0 {
		c.t.Fatalf("%s", strings.Join(died, "; "))
	}
}

// client returns a client of node i's current process.
func (c *cluster) client(i int) *client.Client {
	c.mu.Lock()
	url := c.procs[i].url
	c.mu.Unlock()
	return client.New(url, client.WithHTTPClient(c.hc))
}

// peerState is a peer as /api/v1/info describes it.
type peerState struct {
	Key       string  `json:"key"`
	Connected bool    `json:"connected"`
	Dropped   uint64  `json:"dropped"`
	Invalid   uint64  `json:"invalid"`
	RTTms     float64 `json:"rtt_ms"`
}

func peersOf(info *client.NodeInfo) ([]peerState, error) {
	out := make([]peerState, 0, len(info.Peers))
	for _, raw := range info.Peers {
		var p peerState
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("peers: %v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// metricCounts are a few of a node's Prometheus counters.
type metricCounts struct {
	gossipIn, stored float64
}

// metrics reads node i's weft_messages_in_total{source="gossip"} (what
// peers sent that went into the pipeline, relays and catch-up pages) and
// weft_messages_stored_total.
func (c *cluster) metrics(ctx context.Context, i int) (metricCounts, error) {
	c.mu.Lock()
	url := c.procs[i].url
	c.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return metricCounts{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return metricCounts{}, err
	}
	defer resp.Body.Close()
	var m metricCounts
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case `weft_messages_in_total{source="gossip"}`:
			m.gossipIn = v
		case "weft_messages_stored_total":
			m.stored = v
		}
	}
	return m, sc.Err()
}

// waitMesh waits until each of the nodes is connected to each of the
// others.
func (c *cluster) waitMesh(ctx context.Context, nodes []int, within time.Duration) {
	c.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		c.checkAlive()
		missing := ""
		for _, i := range nodes {
			info, err := c.client(i).Info(ctx)
			if err != nil {
				missing = fmt.Sprintf("node%d: %v", i, err)
				break
			}
			peers, err := peersOf(info)
			if err != nil {
				c.t.Fatalf("node%d: %v", i, err)
			}
			up := map[string]bool{}
			for _, p := range peers {
				up[p.Key] = p.Connected
			}
			for _, j := range nodes {
				if j != i && !up[c.specs[j].pub.String()] {
					missing = fmt.Sprintf("node%d is not connected to node%d", i, j)
				}
			}
			if missing != "" {
				break
			}
		}
		if missing == "" {
			c.t.Logf("mesh of %d nodes connected after %v", len(nodes), time.Since(start).Round(time.Millisecond))
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("no full mesh within %v: %s", within, missing)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// all returns 0..n-1.
func all(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// without returns nodes without x.
func without(nodes []int, x int) []int {
	var out []int
	for _, i := range nodes {
		if i != x {
			out = append(out, i)
		}
	}
	return out
}

func nodeNames(nodes []int) string {
	var s []string
	for _, i := range nodes {
		s = append(s, "node"+strconv.Itoa(i))
	}
	return strings.Join(s, ",")
}
