package netfault

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The namespace network: a bridge the test creates, one network namespace
// per node joined to it by a veth pair, node i at 10.99.X.(i+1)/24 and the
// test's own namespace at 10.99.X.254 on the bridge, so that it reaches
// every node's API. Nothing else is touched: no routes beyond the bridges'
// subnets, no forwarding, no firewall.
//
// With a management network, each namespace has a second veth on a second
// bridge (10.99.Y.0/24, this host at .254) that carries only the API: the
// gossip link can then be cut while the test still talks to the node.
//
// Names carry the test process's pid (wnf<pid>-<i> for namespaces,
// wnf<pid>b and wnf<pid>m for the bridges, wnf<pid>g<i> and wnf<pid>a<i>
// for the host ends of the gossip and API veths), so that a later run can remove what a
// killed run left behind.

// netnsTopo is a namespace network of n nodes.
type netnsTopo struct {
	subnet string   // "10.99.X": the gossip network
	ns     []string // namespace of node i
	veth   []string // host end of node i's gossip veth
	// mgmt is the management subnet, "" without one.
	mgmt string
}

// nodeIP returns node i's address on the gossip network.
func (tp *netnsTopo) nodeIP(i int) string { return fmt.Sprintf("%s.%d", tp.subnet, i+1) }

// apiIP returns the address of node i's API: on the management network if
// there is one.
func (tp *netnsTopo) apiIP(i int) string {
	if tp.mgmt != "" {
		return fmt.Sprintf("%s.%d", tp.mgmt, i+1)
	}
	return tp.nodeIP(i)
}

// run runs a command and returns its combined output.
func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// netnsUnavailable says why the namespace network cannot be built here,
// or returns "".
func netnsUnavailable() string {
	if os.Getenv("WEFT_NETFAULT_NETNS") == "0" {
		return "WEFT_NETFAULT_NETNS=0 turns the network namespace tests off"
	}
	if os.Geteuid() != 0 {
		return "needs root: it creates network namespaces, veth pairs and a bridge"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs the ip command (iproute2) to create network namespaces"
	}
	return ""
}

// netnsAvailable skips the test unless it may create namespaces and links.
func netnsAvailable(t *testing.T) {
	t.Helper()
	if why := netnsUnavailable(); why != "" {
		t.Skip(why)
	}
}

var staleName = regexp.MustCompile(`^wnf(\d+)[-bmga]`)

// removeStale deletes namespaces and links left by earlier runs whose
// process is gone (a run killed by `go test -timeout` skips its cleanups).
func removeStale(t *testing.T) {
	alive := func(name string) bool {
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			return true // not ours
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() {
			return true
		}
		return syscall.Kill(pid, 0) == nil
	}
	if out, err := run("ip", "netns", "list"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && !alive(f[0]) {
				t.Logf("removing namespace %s left by an earlier run", f[0])
				run("ip", "netns", "del", f[0])
			}
		}
	}
	if out, err := run("ip", "-o", "link", "show"); err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if !alive(name) {
				t.Logf("removing link %s left by an earlier run", name)
				run("ip", "link", "del", name)
			}
		}
	}
}

// freeSubnets returns the first k 10.99.X (X in 0..250) with no address on
// this host.
func freeSubnets(t *testing.T, k int) []string {
	out, err := run("ip", "-4", "-o", "addr", "show")
	if err != nil {
		t.Skipf("cannot list addresses: %v", err)
	}
	var free []string
	for x := 0; x <= 250 && len(free) < k; x++ {
		s := fmt.Sprintf("10.99.%d", x)
		if !strings.Contains(out, " "+s+".") {
			free = append(free, s)
		}
	}
	if len(free) < k {
		t.Skipf("fewer than %d free 10.99.X.0/24 subnets on this host", k)
	}
	return free
}

// newNetnsTopo creates the namespace network for n nodes, with a
// management network if mgmt, or skips the test if the machine does not
// allow it. Its cleanup removes everything it created; call it before
// starting processes in it, so that they are killed first (cleanups run
// last-in, first-out).
func newNetnsTopo(t *testing.T, n int, mgmt bool) *netnsTopo {
	t.Helper()
	netnsAvailable(t)
	removeStale(t)
	pid := os.Getpid()
	nets := 1
	if mgmt {
		nets = 2
	}
	subnets := freeSubnets(t, nets)
	tp := &netnsTopo{subnet: subnets[0]}
	var bridges, links []string
	t.Cleanup(func() {
		for _, ns := range tp.ns {
			if _, err := run("ip", "netns", "del", ns); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		// Deleting a namespace deletes its ends of the veth pairs, and
		// with them the host ends; delete the host ends too in case that
		// has not happened yet.
		for _, v := range links {
			run("ip", "link", "del", v)
		}
		for _, b := range bridges {
			if _, err := run("ip", "link", "del", b); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	// The first of each kind of object is the probe: if the machine does
	// not allow it, the test skips; a later failure is an error.
	for k, subnet := range subnets {
		br := fmt.Sprintf("wnf%d%c", pid, "bm"[k])
		if _, err := run("ip", "link", "add", br, "type", "bridge"); err != nil {
			t.Skipf("cannot create a bridge: %v", err)
		}
		bridges = append(bridges, br)
		for _, s := range [][]string{
			{"addr", "add", subnet + ".254/24", "dev", br},
			{"link", "set", br, "up"},
		} {
			if _, err := run("ip", s...); err != nil {
				t.Fatalf("bridge: %v", err)
			}
		}
	}
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("wnf%d-%d", pid, i)
		if _, err := run("ip", "netns", "add", ns); err != nil {
			if i == 0 {
				t.Skipf("cannot create a network namespace: %v", err)
			}
			t.Fatal(err)
		}
		tp.ns = append(tp.ns, ns)
		if _, err := run("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
			t.Fatal(err)
		}
		for k, subnet := range subnets {
			host := fmt.Sprintf("wnf%d%c%d", pid, "ga"[k], i)
			peer := host + "p"
			dev := []string{"eth0", "mgmt0"}[k]
			if _, err := run("ip", "link", "add", host, "type", "veth", "peer", "name", peer); err != nil {
				if i == 0 && k == 0 {
					t.Skipf("cannot create a veth pair: %v", err)
				}
				t.Fatal(err)
			}
			links = append(links, host)
			if k == 0 {
				tp.veth = append(tp.veth, host)
			}
			for _, s := range [][]string{
				{"link", "set", peer, "netns", ns},
				{"-n", ns, "link", "set", peer, "name", dev},
				{"-n", ns, "addr", "add", fmt.Sprintf("%s.%d/24", subnet, i+1), "dev", dev},
				{"-n", ns, "link", "set", dev, "up"},
				{"link", "set", host, "master", bridges[k]},
				{"link", "set", host, "up"},
			} {
				if _, err := run("ip", s...); err != nil {
					t.Fatalf("namespace %s: %v", ns, err)
				}
			}
		}
	}
	if mgmt {
		tp.mgmt = subnets[1]
		t.Logf("namespace network: gossip on %s (nodes at %s.1-%d), APIs on %s (nodes at %s.1-%d), this host at .254 on both",
			bridges[0], tp.subnet, n, bridges[1], tp.mgmt, n)
	} else {
		t.Logf("namespace network: bridge %s, nodes at %s.1-%d, this host at %s.254", bridges[0], tp.subnet, n, tp.subnet)
	}
	return tp
}

// place puts node i of specs in namespace i, with its API on :8080 and its
// gossip on :7070 of its addresses.
func (tp *netnsTopo) place(specs []*nodeSpec) {
	for i, s := range specs {
		s.netns = tp.ns[i]
		s.apiAddr = tp.apiIP(i) + ":8080"
		s.gossipAddr = tp.nodeIP(i) + ":7070"
		s.dialAddr = s.gossipAddr
	}
}

// cut takes node i's gossip link down: with no management network it can
// reach neither the other nodes nor this host.
func (tp *netnsTopo) cut(t *testing.T, i int) {
	t.Helper()
	if _, err := run("ip", "link", "set", tp.veth[i], "down"); err != nil {
		t.Fatal(err)
	}
}

// heal brings node i's gossip link back.
func (tp *netnsTopo) heal(t *testing.T, i int) {
	t.Helper()
	if _, err := run("ip", "link", "set", tp.veth[i], "up"); err != nil {
		t.Fatal(err)
	}
}
