package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/weftnet/weft/bench"
	"github.com/weftnet/weft/internal/loopback"
)

// benchFlags are the settings shared by the bench scenarios.
type benchFlags struct {
	cfg        bench.Config
	maxDisk    string
	jsonOut    bool
	plot       string
	csv        string
	cpuProfile string
	quiet      bool
	inProcess  bool
}

// newBenchCmd is `weft bench`: the benchmark scenarios of the bench package.
func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a node's throughput and confirmation latency",
		Long: `Bench loads a node with simulated devices and measures messages per second offered,
accepted (durable) and confirmed, refusals by reason, confirmation latency, CPU per
message, memory, disk per message, and this machine's signature-verification rate.

By default the node runs in this process on a temporary data directory (network
weft-bench, proof-of-work base 4); --node URL loads a running node instead. Every run
stops by itself (--duration, or --messages); Ctrl-C stops it early with a partial
report. A progress line goes to standard error; the report to standard output, as a
table or, with --json, as one JSON object. docs/BENCH_TOOL.md explains each figure.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newBenchScenarioCmd(bench.Ingest), newBenchScenarioCmd(bench.Devices), newBenchScenarioCmd(bench.Network),
		newBenchScenarioCmd(bench.Gateway), newSoakCmd())
	return cmd
}

func newBenchScenarioCmd(sc bench.Scenario) *cobra.Command {
	bf := &benchFlags{cfg: bench.Config{Scenario: sc}}
	cmd := &cobra.Command{Args: cobra.NoArgs}
	switch sc {
	case bench.Ingest:
		cmd.Use = "ingest [--rate N] [--batch N] [--duration D]"
		cmd.Short = "Offer pre-built messages (signed and solved before the clock starts)"
		cmd.Long = `Ingest offers messages signed and solved before the clock starts, from --devices
simulated devices, through --clients senders: gateways submitting batches of --batch
messages (the batch endpoint), or, with --batch 1, clients submitting single messages.
Each sender has one request in flight and owns a share of the devices, so each
device's messages arrive in sequence order. --rate N offers N messages a second
(latency is then counted from when each message was due); --rate 0, the default,
offers them as fast as the node answers.`
	case bench.Devices:
		cmd.Use = "devices [--rate N] [--devices N] [--duration D]"
		cmd.Short = "Run simulated devices that ask tips, sign, solve and submit live"
		cmd.Long = `Devices runs --devices simulated devices, each doing for every message what a real
one does: ask the node for tips, build, sign (ed25519), solve the proof of work,
submit, and wait for the answer. It reports the devices' CPU time per message for
signing and for the proof of work beside the node's throughput. The devices share
this machine's cores with an in-process node.`
	case bench.Network:
		cmd.Use = "network [--nodes N] [--rate N] [--duration D]"
		cmd.Short = "Offer pre-built messages to a network of N nodes on this machine"
		cmd.Long = `Network starts a network of --nodes nodes on this machine, as weft devnet does:
separate processes, each with its own data directory under the work directory, all
validators, peered in a full mesh over QUIC on loopback. It then offers pre-built
messages as ingest does, with the senders spread over the nodes. Beside ingest's
figures (taken on the node each message was submitted to) it reports how long
messages take to be durable on the other nodes (propagation) and to be confirmed on
every node, and each node's CPU, memory and disk. --in-process runs the nodes in this
process instead.`
	case bench.Gateway:
		cmd.Use = "gateway [--rate N] [--gateways N] [--batch N] [--duration D]"
		cmd.Short = "Run gateways that build on fresh tips, submit batches and resend what the node did not take"
		cmd.Long = `Gateway runs --gateways simulated gateways for --devices devices, as a site's
gateways work: before each batch a gateway asks the node for tips, builds, signs and
solves its devices' messages on them, and submits at most --batch of them in one
request (the batch endpoint). What the node does not take (429, 503, no answer) is
sent again as the same bytes, with exponential backoff and jitter; what it refuses
for its parents (unknown_parents, a 202 that stays pending) is built anew on fresh
tips with the device's next sequence number. Latency runs from a message's first
submission, its resends included. weft bench soak runs the same gateways against a
node that is killed again and again.`
	}
	f := cmd.Flags()
	c := &bf.cfg
	if sc == bench.Network {
		f.IntVar(&c.Nodes, "nodes", bench.DefaultNodes, fmt.Sprintf("nodes in the network (at most %d)", bench.MaxNodes))
		f.BoolVar(&bf.inProcess, "in-process", false, "run the nodes in this process rather than as processes of their own")
	} else {
		f.StringVar(&c.Node, "node", "", "load the node whose API is at `URL` (default: start one in this process)")
	}
	f.IntVar(&c.Devices, "devices", bench.DefaultDevices, "simulated devices")
	f.Float64Var(&c.Rate, "rate", 0, "offered load in messages per second (0: as fast as the node takes)")
	f.DurationVar(&c.Duration, "duration", bench.DefaultDuration, "length of the load")
	f.IntVar(&c.Messages, "messages", 0, "stop after offering this many messages (0: no limit but --duration)")
	f.DurationVar(&c.Drain, "drain", bench.DefaultDrain, "after the load, wait at most this long for confirmations")
	if sc != bench.Devices {
		f.IntVar(&c.ProofSample, "proof-sample", 0, "ask the first node for the proof of one confirmed message in N, every 20 ms until served, and report how soon after confirmation (0: none)")
		f.BoolVar(&c.CheckAcks, "check-acks", false, fmt.Sprintf("look for every acknowledged message on its node, every %v (sooner with --retain) and after the drain; exit non-zero if one is lost", bench.DefaultAckCheckEvery))
	}
	f.DurationVar(&c.SteadyAfter, "steady-after", 0, "the time into the load from which the store's size should be flat: the report gives the disk then and its least and most after (default: --retain, or 5m)")
	f.Uint64Var(&c.Seed, "seed", bench.DefaultSeed, "seed of the devices' keys, payloads and DAG shape")
	f.IntVar(&c.Payload, "payload", bench.DefaultPayload, "payload size in bytes")
	f.BoolVar(&c.JSONPayload, "json-payload", false, fmt.Sprintf(`payloads are JSON readings {"i":N,"temp_c":T,"rh":H} padded with spaces to --payload bytes (at least %d), for rules to read`, bench.MinJSONPayload))
	f.StringVar(&c.Network, "network", bench.DefaultNetwork, "network name of the nodes the run starts")
	f.IntVar(&c.PoWBase, "pow-base", bench.DefaultPoWBase, "proof-of-work base difficulty of the nodes the run starts")
	f.StringVar(&c.WorkDir, "work-dir", "", "keep the started nodes' data and the pre-built messages under `DIR` (default: a temporary directory, removed)")
	f.BoolVar(&bf.jsonOut, "json", false, "print the report as one JSON object")
	f.StringVar(&bf.plot, "plot", "", "write an SVG chart of throughput, latency, memory and disk over time to `FILE`")
	f.StringVar(&bf.csv, "csv", "", "write the per-second series (throughput, latency, memory, disk) as CSV to `FILE`")
	f.StringVar(&bf.cpuProfile, "cpuprofile", "", "write a CPU profile of this process over the load to `FILE` (go tool pprof)")
	f.BoolVar(&bf.quiet, "quiet", false, "no progress line")
	f.DurationVar(&c.VerifyFor, "verify-for", time.Second, "how long to measure this machine's signature verification rate before the load")
	f.DurationVar(&c.Retention.Retain, "retain", 0, "the started nodes' --retain: drop settled epochs this long after they were cut (0: keep everything)")
	f.StringVar(&bf.maxDisk, "max-disk", "0", "the started nodes' --max-disk: bound on each store's files, such as 50GB (0: no bound)")
	f.IntVar(&c.Retention.EpochRecords, "epoch-records", 0, "the started nodes' --epoch-records: records per epoch file (0: the node's default)")
	f.DurationVar(&c.Retention.EpochAge, "epoch-age", 0, "the started nodes' --epoch-age: cut the newest epoch after this long (0: the node's default)")
	switch sc {
	case bench.Gateway:
		f.IntVar(&c.Batch, "batch", bench.DefaultFleetBatch, "most messages in a gateway's batch")
		f.IntVar(&c.Clients, "gateways", bench.DefaultFleetGateways, "gateways, each with one request in flight")
		f.DurationVar(&c.Linger, "linger", bench.DefaultLinger, "at a fixed rate, how long a gateway waits for its batch to fill")
	case bench.Ingest, bench.Network:
		f.IntVar(&c.Batch, "batch", bench.DefaultBatch, "messages per request (1: single messages)")
		f.IntVar(&c.Clients, "clients", 0, fmt.Sprintf("concurrent senders (default %d with batches, %d with single messages)", bench.DefaultGateways, bench.DefaultClients))
		f.DurationVar(&c.Linger, "linger", bench.DefaultLinger, "at a fixed rate, how long a gateway waits for its batch to fill")
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runBench(cmd, bf) }
	return cmd
}

func runBench(cmd *cobra.Command, bf *benchFlags) error {
	cfg := bf.cfg
	// A zero in bench.Config means the default; on the command line it is
	// a mistake.
	for _, name := range []string{"batch", "devices", "payload", "duration", "clients", "gateways", "pow-base", "nodes", "epoch-records", "epoch-age"} {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed && (fl.Value.String() == "0" || fl.Value.String() == "0s") {
			return usagef("bench: --%s must be positive", name)
		}
	}
	md, err := parseBytes(bf.maxDisk)
	if err != nil {
		return usagef("bench: --max-disk %q: %v", bf.maxDisk, err)
	}
	cfg.Retention.MaxDisk = md
	if cfg.Node != "" && !cfg.Retention.IsZero() {
		return usagef("bench: --retain, --max-disk, --epoch-records and --epoch-age set the nodes the run starts; a node at --node has its own")
	}
	cfg.Version = version
	stderr := cmd.ErrOrStderr()
	if !bf.quiet {
		cfg.Progress = stderr
		if f, ok := stderr.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			cfg.ProgressInPlace = true
		}
	}
	cfg.Log = zerolog.Nop()
	if cfg.Scenario == bench.Network && !bf.inProcess {
		cfg.Launch = processLauncher(stderr)
		cfg.NodeEnv = nodeEnv(os.Environ())
	}
	if bf.cpuProfile != "" {
		f, err := os.Create(bf.cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer f.Close()
		cfg.CPUProfile = f
	}
	res, err := cfg.Run(cmd.Context())
	if err != nil {
		return err
	}
	if bf.plot != "" {
		if err := writeFile(bf.plot, res.PlotSVG); err != nil {
			return err
		}
	}
	if bf.csv != "" {
		if err := writeFile(bf.csv, res.SeriesCSV); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	if bf.jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else if err := res.Table(out); err != nil {
		return err
	}
	if res.Interrupted {
		return errors.New("bench: interrupted: the report above is partial")
	}
	return res.Acks.Err()
}

// writeFile writes what fn writes to path.
func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := fn(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: %s: %w", path, err)
	}
	return f.Close()
}

// nodeEnv returns the entries of environ that set a `weft node` setting,
// which the node processes a bench starts inherit; tokens are secrets, and
// only their names are kept.
func nodeEnv(environ []string) []string {
	env := envMap(environ)
	var out []string
	for _, name := range settingNames(newNodeCmd().Flags()) {
		v, ok := env[envName(name)]
		switch {
		case !ok:
		case name == "api-tokens":
			out = append(out, envName(name)+"=(set)")
		default:
			out = append(out, envName(name)+"="+v)
		}
	}
	return out
}

// retentionArgs returns the `weft node` flags that set r, none for the
// node's defaults.
func retentionArgs(r bench.Retention) []string {
	var args []string
	if r.Retain > 0 {
		args = append(args, "--retain", r.Retain.String())
	}
	if r.MaxDisk > 0 {
		args = append(args, "--max-disk", strconv.FormatInt(r.MaxDisk, 10))
	}
	if r.EpochRecords > 0 {
		args = append(args, "--epoch-records", strconv.Itoa(r.EpochRecords))
	}
	if r.EpochAge > 0 {
		args = append(args, "--epoch-age", r.EpochAge.String())
	}
	return args
}

// processLauncher starts a bench network as `weft devnet` does: one `weft
// node` process per node, on free loopback ports, with the nodes' error
// lines copied to errOut.
func processLauncher(errOut io.Writer) bench.Launcher {
	return func(ctx context.Context, spec bench.NetSpec) ([]bench.LaunchedNode, func() error, error) {
		apiAddrs, err := loopback.FreeAddrs("tcp", spec.Nodes)
		if err != nil {
			return nil, nil, err
		}
		gossipAddrs, err := loopback.FreeAddrs("udp", spec.Nodes)
		if err != nil {
			return nil, nil, err
		}
		net, err := planDevnet(spec.Dir, apiAddrs, gossipAddrs)
		if err != nil {
			return nil, nil, err
		}
		common := append([]string{"--network", spec.Network, "--pow-base", strconv.Itoa(spec.PoWBase), "--log-level", "warn"},
			retentionArgs(spec.Retention)...)
		d, err := startDevnet(ctx, errOut, net, common)
		if err != nil {
			return nil, nil, err
		}
		out := make([]bench.LaunchedNode, len(net))
		for i, nd := range net {
			out[i] = bench.LaunchedNode{URL: "http://" + nd.apiAddr, DataDir: nd.dir, PID: d.children[i].cmd.Process.Pid}
		}
		return out, func() error { d.stop(); return nil }, nil
	}
}
