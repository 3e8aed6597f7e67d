package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

func newDevnetCmd() *cobra.Command {
	var (
		nodes      int
		dir        string
		apiPort    int
		gossipPort int
		network    string
		powBase    int
		extra      []string
	)
	cmd := &cobra.Command{
		Use:   "devnet",
		Short: "Run a network of N nodes on this machine",
		Long: `Start N nodes on this machine as one network: separate processes, each with its own
data directory under --dir, peered in a full mesh over QUIC on 127.0.0.1, all of them validators
of equal weight. It prints each node's API URL and stops them all cleanly on Ctrl-C, SIGTERM or
SIGHUP; on Linux the nodes die with it even if it is killed (SIGKILL). A node that fails to start
is reported with its error line and stops the others: devnet then exits with status 1. Identities
are kept in the data directories, so running it again on the same --dir resumes the same network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 || nodes > 64 {
				return usagef("--nodes %d: want 1..64", nodes)
			}
			var apiAddrs, gossipAddrs []string
			for i := range nodes {
				apiAddrs = append(apiAddrs, fmt.Sprintf("127.0.0.1:%d", apiPort+i))
				gossipAddrs = append(gossipAddrs, fmt.Sprintf("127.0.0.1:%d", gossipPort+i))
			}
			net, err := planDevnet(dir, apiAddrs, gossipAddrs)
			if err != nil {
				return err
			}
			args := []string{"--network", network, "--pow-base", strconv.Itoa(powBase)}
			for _, e := range extra {
				args = append(args, "--"+e)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGHUP)
			defer stop()
			return runDevnet(ctx, cmd.OutOrStdout(), net, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 3, "number of nodes")
	f.StringVar(&dir, "dir", "./weft-devnet", "directory for the nodes' data directories")
	f.IntVar(&apiPort, "api-port", 8081, "API port of the first node; node i uses api-port+i")
	f.IntVar(&gossipPort, "gossip-port", 7071, "gossip port of the first node; node i uses gossip-port+i")
	f.StringVar(&network, "network", "weft-devnet", "network name")
	f.IntVar(&powBase, "pow-base", 10, "network base proof-of-work difficulty")
	f.StringSliceVar(&extra, "node-flag", nil, "extra flag for every node, without the leading dashes (e.g. --node-flag no-sync), repeatable")
	return cmd
}

// devnetNode is one planned node.
type devnetNode struct {
	dir        string
	key        dag.PublicKey
	apiAddr    string
	gossipAddr string
}

// planDevnet creates (or reads) the identities of nodes with the API and
// gossip addresses given, one data directory each under dir.
func planDevnet(dir string, apiAddrs, gossipAddrs []string) ([]devnetNode, error) {
	var out []devnetNode
	for i := range apiAddrs {
		d := filepath.Join(dir, fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		key, _, err := loadIdentity(d)
		if err != nil {
			return nil, fmt.Errorf("node %d identity: %w", i, err)
		}
		var pk dag.PublicKey
		copy(pk[:], key.Public().(ed25519.PublicKey))
		out = append(out, devnetNode{dir: d, key: pk, apiAddr: apiAddrs[i], gossipAddr: gossipAddrs[i]})
	}
	return out, nil
}

// devnetArgs returns the `weft node` arguments of node i.
func devnetArgs(net []devnetNode, i int, common []string) []string {
	nd := net[i]
	args := []string{"node", "--data-dir", nd.dir, "--api-addr", nd.apiAddr, "--gossip-addr", nd.gossipAddr}
	for j, p := range net {
		args = append(args, "--validator", p.key.String()+":1")
		if j != i {
			args = append(args, "--peer", p.key.String()+"@"+p.gossipAddr)
		}
	}
	return append(args, common...)
}

// runDevnet starts the nodes, prints their URLs, and stops them when ctx
// ends (Ctrl-C, SIGTERM, SIGHUP) or when one of them exits.
func runDevnet(ctx context.Context, out io.Writer, net []devnetNode, common []string) error {
	d, err := startDevnet(ctx, out, net, common)
	if err != nil {
		return err
	}
	for i, nd := range net {
		fmt.Fprintf(out, "node%d  http://%s  gossip %s  id %s\n", i, nd.apiAddr, nd.gossipAddr, nd.key)
	}
	fmt.Fprintf(out, "%d nodes running; Ctrl-C stops them. Logs: <dir>/nodeN/node.log\n", len(net))
	select {
	case <-ctx.Done():
		d.stop()
		return nil
	case i := <-d.exited:
		d.stop()
		return fmt.Errorf("node%d exited: %s; stopped the others", i, d.children[i].cause())
	}
}

// devnet is a running network of node processes.
type devnet struct {
	net      []devnetNode
	children []*devnetChild
	spawn    *spawner
	// exited receives the index of each node whose process ends.
	exited   chan int
	stopOnce sync.Once
}

// devnetChild is one node's process.
type devnetChild struct {
	cmd  *exec.Cmd
	done chan error // the process's exit, once its stderr is read to the end

	mu      sync.Mutex
	lastErr string // the node's last error line: an error record's message, or weft's own "weft: ..." line
	waitErr error
}

// cause says why a node's process ended: its last error line, else how
// it exited.
func (c *devnetChild) cause() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastErr != "" {
		return c.lastErr
	}
	if c.waitErr != nil {
		return c.waitErr.Error()
	}
	return "it exited with status 0"
}

// stop sends every node SIGTERM and waits for them, killing those that
// take more than 30 s. Calls after the first do nothing.
func (d *devnet) stop() { d.stopOnce.Do(d.stopNodes) }

func (d *devnet) stopNodes() {
	for _, c := range d.children {
		c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range d.children {
		select {
		case err := <-c.done:
			c.done <- err
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
		}
	}
	for _, c := range d.children {
		err := <-c.done
		c.done <- err
	}
	d.spawn.close()
}

// startDevnet starts one `weft node` process per planned node, each logging
// to node.log in its data directory (error lines are also copied to out),
// and returns once every node's API answers as that node. A node that
// exits first fails it at once, with the node's last error line.
//
// The nodes die with the caller's process, even of SIGKILL, where the
// system allows (Linux: see childProcAttr), and are in process groups of
// their own: the caller stops them, with stop.
func startDevnet(ctx context.Context, out io.Writer, net []devnetNode, common []string) (*devnet, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	d := &devnet{net: net, spawn: newSpawner(), exited: make(chan int, len(net))}
	var outMu sync.Mutex
	for i := range net {
		if err := d.startNode(self, i, common, out, &outMu); err != nil {
			d.stop()
			return nil, err
		}
	}
	if err := d.waitReady(ctx); err != nil {
		d.stop()
		return nil, err
	}
	return d, nil
}

// startNode starts node i and the goroutine that copies its stderr to its
// log.
func (d *devnet) startNode(self string, i int, common []string, out io.Writer, outMu *sync.Mutex) error {
	cmd := exec.Command(self, devnetArgs(d.net, i, common)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(d.net[i].dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if err := d.spawn.start(cmd); err != nil {
		logf.Close()
		return fmt.Errorf("starting node%d: %w", i, err)
	}
	c := &devnetChild{cmd: cmd, done: make(chan error, 1)}
	d.children = append(d.children, c)
	go func() {
		c.copyLog(i, stderr, logf, out, outMu)
		logf.Close()
		err := cmd.Wait()
		c.mu.Lock()
		c.waitErr = err
		c.mu.Unlock()
		c.done <- err
		d.exited <- i
	}()
	return nil
}

// copyLog copies the node's stderr to its log file, and its error lines
// (error records, and lines that are not JSON: weft's own last word) to
// out, keeping the last one.
func (c *devnetChild) copyLog(i int, stderr io.Reader, logf io.Writer, out io.Writer, outMu *sync.Mutex) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		logf.Write(append(sc.Bytes(), '\n'))
		var rec struct{ Level, Message, Error string }
		errLine := ""
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			errLine = sc.Text()
		} else if rec.Level == "error" || rec.Level == "fatal" {
			errLine = rec.Message
			if rec.Error != "" {
				errLine += ": " + rec.Error
			}
		}
		if errLine == "" {
			continue
		}
		c.mu.Lock()
		c.lastErr = errLine
		c.mu.Unlock()
		outMu.Lock()
		fmt.Fprintf(out, "node%d: %s\n", i, sc.Text())
		outMu.Unlock()
	}
	// A line over the scanner's limit ends the scan: copy the rest as it
	// is, so that the node never blocks on a full pipe.
	io.Copy(logf, stderr)
}

// waitReady returns once every node's API answers with the node's own id.
// It fails at once when a node exits, with the node's last error line, and
// after 30 s or when ctx ends.
func (d *devnet) waitReady(ctx context.Context) error {
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	ready := make([]bool, len(d.net))
	why := make([]string, len(d.net))
	for {
		pending := -1
		for i, nd := range d.net {
			if !ready[i] {
				ready[i], why[i] = probe(ctx, nd)
			}
			if !ready[i] && pending < 0 {
				pending = i
			}
		}
		if pending < 0 {
			return nil
		}
		select {
		case i := <-d.exited:
			return fmt.Errorf("node%d failed to start: %s (log: %s)", i, d.children[i].cause(), filepath.Join(d.net[i].dir, "node.log"))
		case <-ctx.Done():
			return fmt.Errorf("interrupted while the nodes started: %w", ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("node%d did not start in 30s: %s (log: %s)", pending, why[pending], filepath.Join(d.net[pending].dir, "node.log"))
		case <-tick.C:
		}
	}
}

// probe asks nd's API for its info: ready if it answers as nd, else why
// not.
func probe(ctx context.Context, nd devnetNode) (bool, string) {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	info, err := client.New("http://" + nd.apiAddr).Info(ictx)
	switch {
	case err != nil:
		return false, err.Error()
	case info.NodeID != nd.key:
		return false, fmt.Sprintf("%s answers as another node, %s: is another node or devnet running there?", nd.apiAddr, info.NodeID)
	}
	return true, ""
}

// spawner starts processes from one goroutine locked to its OS thread,
// which lives until close. On Linux a child's parent-death signal
// (childProcAttr) fires when the thread that forked it ends, not only the
// process, and a Go goroutine may run on any thread; starting every child
// from this one thread, kept until the children are waited for, ties them
// to the process's life and to nothing shorter.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *spawner) run() {
	// Never unlocked: when run returns, Go ends the thread with it.
	runtime.LockOSThread()
	defer close(s.done)
	for r := range s.reqs {
		r.cmd.SysProcAttr = childProcAttr()
		r.err <- r.cmd.Start()
	}
}

// start starts cmd from the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	r := spawnReq{cmd: cmd, err: make(chan error, 1)}
	s.reqs <- r
	return <-r.err
}

// close ends the spawner's thread: call it once the children have exited.
func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}
