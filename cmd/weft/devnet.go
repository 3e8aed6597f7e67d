package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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
of equal weight. It prints each node's API URL and stops them all on Ctrl-C or SIGTERM. Identities
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
			return runDevnet(cmd.Context(), cmd.OutOrStdout(), net, args)
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
// ends (Ctrl-C, SIGTERM) or when one of them exits.
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
		return errors.New("node" + strconv.Itoa(i) + " exited; stopped the others")
	}
}

// devnet is a running network of node processes.
type devnet struct {
	children []*devnetChild
	// exited receives the index of each node whose process ends.
	exited chan int
}

type devnetChild struct {
	cmd  *exec.Cmd
	done chan error
}

// stop sends every node SIGTERM and waits for them, killing those that
// take more than 30 s.
func (d *devnet) stop() {
	for _, c := range d.children {
		c.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, c := range d.children {
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.done
		}
	}
}

// startDevnet starts one `weft node` process per planned node, each logging
// to node.log in its data directory (error lines are also copied to out),
// and returns once every API answers.
func startDevnet(ctx context.Context, out io.Writer, net []devnetNode, common []string) (*devnet, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	d := &devnet{exited: make(chan int, len(net))}
	var logMu sync.Mutex
	for i := range net {
		cmd := exec.Command(self, devnetArgs(net, i, common)...)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			d.stop()
			return nil, err
		}
		logf, err := os.OpenFile(filepath.Join(net[i].dir, "node.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			d.stop()
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			logf.Close()
			d.stop()
			return nil, fmt.Errorf("starting node %d: %w", i, err)
		}
		c := &devnetChild{cmd: cmd, done: make(chan error, 1)}
		d.children = append(d.children, c)
		go func(i int) {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				logf.Write(append(sc.Bytes(), '\n'))
				var rec struct{ Level, Message string }
				if json.Unmarshal(sc.Bytes(), &rec) == nil && (rec.Level == "error" || rec.Level == "fatal") {
					logMu.Lock()
					fmt.Fprintf(out, "node%d: %s\n", i, sc.Text())
					logMu.Unlock()
				}
			}
			logf.Close()
			c.done <- cmd.Wait()
			d.exited <- i
		}(i)
	}
	// Wait until every API answers.
	deadline := time.Now().Add(30 * time.Second)
	for i, nd := range net {
		c := client.New("http://" + nd.apiAddr)
		for {
			ictx, cancel := context.WithTimeout(ctx, time.Second)
			_, err := c.Info(ictx)
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				d.stop()
				return nil, fmt.Errorf("node %d did not start (see %s): %v", i, filepath.Join(nd.dir, "node.log"), err)
			}
			select {
			case i := <-d.exited:
				d.stop()
				return nil, fmt.Errorf("node %d exited at start (see %s)", i, filepath.Join(net[i].dir, "node.log"))
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return d, nil
}
