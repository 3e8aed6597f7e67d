package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/client/clienttest"
)

// devnetProc is a running `weft devnet`.
type devnetProc struct {
	cmd  *exec.Cmd
	dir  string
	done chan error // the process's exit, once its output is read

	mu   sync.Mutex
	out  bytes.Buffer  // stdout and stderr
	grew chan struct{} // closed, and replaced, when out grows
}

// startDevnetProc runs `weft devnet` with the nodes' ports from apiPort
// and gossipPort.
func startDevnetProc(t *testing.T, nodes, apiPort, gossipPort int) *devnetProc {
	t.Helper()
	d := &devnetProc{dir: t.TempDir(), done: make(chan error, 1), grew: make(chan struct{})}
	d.cmd = exec.Command(weftBin, "devnet", "--nodes", strconv.Itoa(nodes), "--dir", d.dir,
		"--api-port", strconv.Itoa(apiPort), "--gossip-port", strconv.Itoa(gossipPort),
		"--pow-base", "0", "--node-flag", "no-sync")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout, d.cmd.Stderr = w, w
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			d.mu.Lock()
			d.out.Write(append(sc.Bytes(), '\n'))
			close(d.grew)
			d.grew = make(chan struct{})
			d.mu.Unlock()
		}
		r.Close()
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		d.wait(t)
	})
	return d
}

// output returns what devnet printed so far.
func (d *devnetProc) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// wait waits up to a minute for devnet to exit and returns how it did.
func (d *devnetProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		return err
	case <-time.After(time.Minute):
		t.Fatalf("devnet did not exit in a minute:\n%s", d.output())
		return nil
	}
}

// waitOutput waits until devnet printed substr; it fails the test if
// devnet exits first.
func (d *devnetProc) waitOutput(t *testing.T, substr string) {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		d.mu.Lock()
		out, grew := d.out.String(), d.grew
		d.mu.Unlock()
		if strings.Contains(out, substr) {
			return
		}
		select {
		case <-grew:
		case err := <-d.done:
			d.done <- err
			t.Fatalf("devnet exited (%v) before printing %q:\n%s", err, substr, d.output())
		case <-timeout:
			t.Fatalf("devnet did not print %q:\n%s", substr, d.output())
		}
	}
}

// freePorts returns the first of n consecutive loopback ports that are
// free for network ("tcp" or "udp") at the time of the call, from base up.
func freePorts(t *testing.T, network string, n, base int) int {
	t.Helper()
	for first := base; first < base+2000; first += n {
		ok := true
		for p := first; p < first+n && ok; p++ {
			addr := fmt.Sprintf("127.0.0.1:%d", p)
			if network == "tcp" {
				ln, err := net.Listen("tcp", addr)
				if ok = err == nil; ok {
					ln.Close()
				}
			} else {
				c, err := net.ListenPacket("udp", addr)
				if ok = err == nil; ok {
					c.Close()
				}
			}
		}
		if ok {
			return first
		}
	}
	t.Fatalf("no %d consecutive free %s ports from %d", n, network, base)
	return 0
}

// testPortBase spreads the tests' ports by process, so that parallel runs
// of the package rarely meet.
func testPortBase() int { return 20000 + (os.Getpid()%400)*100 }

// childrenOf returns the pids of the processes whose parent is pid, from
// /proc.
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(child); ok && ppid == pid && state != "Z" {
			out = append(out, child)
		}
	}
	return out
}

// procStat returns the parent and the state of process pid, from
// /proc/PID/stat; ok is false if there is no such process.
func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

// waitGone waits, on the process's pidfd, until process pid has exited.
func waitGone(t *testing.T, pid int, timeout time.Duration) error {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(time.Until(deadline).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd of %d: %v", pid, err)
		}
		if n == 1 {
			return nil
		}
		return fmt.Errorf("process %d still runs after %s", pid, timeout)
	}
}

// nodesOf returns the node processes of a running devnet, from /proc.
func nodesOf(t *testing.T, d *devnetProc, want int) []int {
	t.Helper()
	pids := childrenOf(t, d.cmd.Process.Pid)
	if len(pids) != want {
		t.Fatalf("devnet %d has children %v, want %d nodes", d.cmd.Process.Pid, pids, want)
	}
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if args := strings.Split(string(cmdline), "\x00"); len(args) < 2 || args[1] != "node" {
			t.Fatalf("child %d of devnet is not a node: %q", pid, cmdline)
		}
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // if the test failed to end it
	}
	return pids
}

func TestDevnetNodesDieWithIt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	api := freePorts(t, "tcp", 2, testPortBase())
	d := startDevnetProc(t, 2, api, freePorts(t, "udp", 2, api+10))
	d.waitOutput(t, "2 nodes running")
	pids := nodesOf(t, d, 2)

	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.wait(t)
	for _, pid := range pids {
		if err := waitGone(t, pid, 30*time.Second); err != nil {
			t.Fatalf("node %d outlived devnet's SIGKILL: %v", pid, err)
		}
		if _, state, ok := procStat(pid); ok && state != "Z" {
			t.Fatalf("node %d is in /proc in state %s after devnet's SIGKILL", pid, state)
		}
	}
}

func TestDevnetStopsOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	api := freePorts(t, "tcp", 2, testPortBase()+30)
	d := startDevnetProc(t, 2, api, freePorts(t, "udp", 2, api+10))
	d.waitOutput(t, "2 nodes running")
	pids := nodesOf(t, d, 2)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(t); err != nil {
		t.Fatalf("devnet on SIGHUP: %v\n%s", err, d.output())
	}
	for i, pid := range pids {
		if err := waitGone(t, pid, time.Second); err != nil {
			t.Fatal(err)
		}
		log, err := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("node%d", i), "node.log"))
		if err != nil || !bytes.Contains(log, []byte(`"stopped"`)) {
			t.Fatalf("node%d did not stop cleanly (%v):\n%s", i, err, log)
		}
	}
}

// TestDevnetPortTaken takes node1's API port with a server that answers
// as a node (another one): devnet must not count node1 as started, and
// must exit non-zero with node1's error line.
func TestDevnetPortTaken(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	var (
		squatter *clienttest.Server
		port     int
	)
	for range 20 {
		s := clienttest.NewServer(clienttest.Config{})
		_, p, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
		port, _ = strconv.Atoi(p)
		if port > 1024 && freePorts(t, "tcp", 1, port-1) == port-1 {
			squatter = s
			break
		}
		s.Close()
	}
	if squatter == nil {
		t.Fatal("found no server port with a free port below it")
	}
	defer squatter.Close()
	d := startDevnetProc(t, 2, port-1, freePorts(t, "udp", 2, testPortBase()+60))
	err := d.wait(t)
	out := d.output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("devnet exited %v, want a failure:\n%s", err, out)
	}
	for _, want := range []string{"node1 failed to start", "address already in use"} {
		if !strings.Contains(out, want) {
			t.Fatalf("devnet's output does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nodes running") {
		t.Fatalf("devnet said its nodes were running:\n%s", out)
	}
}

// TestDevnetNodeExits kills one running node: devnet stops the other and
// exits non-zero, naming the node.
func TestDevnetNodeExits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	api := freePorts(t, "tcp", 2, testPortBase()+90)
	d := startDevnetProc(t, 2, api, freePorts(t, "udp", 2, api+10))
	d.waitOutput(t, "2 nodes running")
	pids := nodesOf(t, d, 2)
	node1 := -1
	for _, pid := range pids {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte(filepath.Join(d.dir, "node1"))) {
			node1 = pid
		}
	}
	if node1 < 0 {
		t.Fatalf("no node1 among %v", pids)
	}
	syscall.Kill(node1, syscall.SIGKILL)
	err := d.wait(t)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(d.output(), "node1 exited: signal: killed; stopped the others") {
		t.Fatalf("devnet exited %v:\n%s", err, d.output())
	}
	for _, pid := range pids {
		if err := waitGone(t, pid, time.Second); err != nil {
			t.Fatal(err)
		}
	}
}
