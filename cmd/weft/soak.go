package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/bench"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/internal/loopback"
)

// soakFlags are the settings of `weft bench soak`.
type soakFlags struct {
	kills          int
	upMin, upMax   time.Duration
	tail           time.Duration
	fleet          bench.Fleet
	powBase        int
	byID           int
	workDir        string
	jsonOut, quiet bool
}

// soakFirstAckWait bounds the wait for the first acknowledgement after a
// restart: a node that takes longer has failed the soak.
const soakFirstAckWait = time.Minute

// newSoakCmd is `weft bench soak`: a node process killed again and again
// under a gateway load, and every acknowledged message looked for after.
func newSoakCmd() *cobra.Command {
	sf := &soakFlags{}
	cmd := &cobra.Command{
		Use:   "soak [--kills N] [--rate N]",
		Short: "Kill a node with SIGKILL again and again under gateway load; check that nothing acknowledged is lost",
		Long: `Soak starts a weft node process (fsync on, proof-of-work base --pow-base) on a data
directory under the work directory and loads it with the gateway fleet of
weft bench gateway. --kills times, at a moment drawn (from the seed) between
--up-min and --up-max after the node's start, it kills the node with SIGKILL,
starts it again on the same data directory and address, and waits for the
gateways' first acknowledgement. After the last restart and --tail more of load,
it reads every acknowledged message back from the node (each device's listing,
and a sample by id) and reports: kills, messages acknowledged, lost, the gateways'
resends, and the time from each restart to its first 201.

It exits non-zero if any acknowledged message is lost, if the node lists an
equivocation, or if the node refused a message the gateways built. The seed is
printed first; --seed replays the kill moments (not the scheduler's timing).
docs/TESTING.md ("Soak") describes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sf.kills < 0 || sf.upMin <= 0 || sf.upMax < sf.upMin {
				return usagef("bench soak: want --kills >= 0 and 0 < --up-min <= --up-max")
			}
			rep, err := runSoak(cmd.Context(), cmd.ErrOrStderr(), sf)
			if rep != nil {
				if perr := rep.print(cmd.OutOrStdout(), sf.jsonOut); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&sf.kills, "kills", 30, "times the node is killed with SIGKILL and started again")
	f.DurationVar(&sf.upMin, "up-min", 2*time.Second, "shortest time from a start of the node to its kill")
	f.DurationVar(&sf.upMax, "up-max", 8*time.Second, "longest time from a start of the node to its kill")
	f.DurationVar(&sf.tail, "tail", 3*time.Second, "load after the last restart's first acknowledgement")
	f.Float64Var(&sf.fleet.Rate, "rate", 2000, "messages a second the devices produce in all (0: as fast as the node takes)")
	f.IntVar(&sf.fleet.Devices, "devices", bench.DefaultDevices, "devices")
	f.IntVar(&sf.fleet.Gateways, "gateways", bench.DefaultFleetGateways, "gateways, each with one request in flight")
	f.IntVar(&sf.fleet.Batch, "batch", bench.DefaultFleetBatch, "most messages in a gateway's batch")
	f.IntVar(&sf.fleet.Payload, "payload", bench.DefaultPayload, "payload size in bytes")
	f.DurationVar(&sf.fleet.MaxDelay, "max-delay", bench.DefaultMaxDelay, "the gateways' longest backoff")
	f.Uint64Var(&sf.fleet.Seed, "seed", 0, "seed of the kill moments, the devices' keys and the jitter (0: from the clock)")
	f.IntVar(&sf.powBase, "pow-base", bench.DefaultPoWBase, "proof-of-work base difficulty of the node")
	f.IntVar(&sf.byID, "by-id", 1000, "acknowledged messages also read one by one (GET /api/v1/messages/{id}), a sample")
	f.StringVar(&sf.workDir, "work-dir", "", "keep the node's data and log under `DIR` (default: a temporary directory, removed unless a message was lost)")
	f.BoolVar(&sf.jsonOut, "json", false, "print the report as one JSON object")
	f.BoolVar(&sf.quiet, "quiet", false, "no line per kill")
	return cmd
}

// soakReport is what a soak found.
type soakReport struct {
	Seed          uint64            `json:"seed"`
	Kills         int               `json:"kills"`
	DurationS     float64           `json:"duration_s"`
	Acked         int               `json:"acked"`
	AckedPerS     float64           `json:"acked_per_s"`
	Lost          int               `json:"lost"`
	LostIDs       []string          `json:"lost_ids,omitempty"` // the first 20
	ByID          int               `json:"checked_by_id"`
	Equivocations int               `json:"equivocations"`
	Fleet         bench.FleetStats  `json:"fleet"`
	FirstAckMs    []float64         `json:"first_ack_after_restart_ms"`
	ReadyMs       []float64         `json:"ready_after_restart_ms"`
	Setup         map[string]string `json:"setup"`
	DataDir       string            `json:"data_dir,omitempty"` // kept: given, or a loss
}

// runSoak runs the soak. It returns the report when it got as far as the
// check, and an error for a loss, an equivocation, a refused message, or
// a soak that could not run.
func runSoak(ctx context.Context, errOut io.Writer, sf *soakFlags) (rep *soakReport, err error) {
	f := &sf.fleet
	if f.Seed == 0 {
		f.Seed = uint64(time.Now().UnixNano())
	}
	fmt.Fprintf(errOut, "soak: seed %d\n", f.Seed)
	dir, keep := sf.workDir, sf.workDir != ""
	if dir == "" {
		if dir, err = os.MkdirTemp("", "weft-soak-"); err != nil {
			return nil, err
		}
	}
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	apiAddrs, err := loopback.FreeAddrs("tcp", 1)
	if err != nil {
		return nil, err
	}
	gossipAddrs, err := loopback.FreeAddrs("udp", 1)
	if err != nil {
		return nil, err
	}
	net, err := planDevnet(dir, apiAddrs, gossipAddrs)
	if err != nil {
		return nil, err
	}
	common := []string{"--network", "weft-soak", "--pow-base", strconv.Itoa(sf.powBase), "--log-level", "warn"}
	d, err := startDevnet(ctx, errOut, net, common)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	url := "http://" + net[0].apiAddr

	var acks bench.AckLog
	var restartNs, firstNs atomic.Int64 // the last restart; its first acknowledgement
	acked := make(chan struct{}, 1)
	f.Node = url
	f.OnAck = func(a bench.Ack) {
		acks.Add(a)
		if at := a.At.UnixNano(); at > restartNs.Load() {
			firstNs.CompareAndSwap(0, at)
		}
		select {
		case acked <- struct{}{}:
		default:
		}
	}
	rep = &soakReport{Seed: f.Seed, FirstAckMs: []float64{}, ReadyMs: []float64{}, Setup: map[string]string{
		"node":  fmt.Sprintf("weft node process, fsync on, pow base %d, network weft-soak", sf.powBase),
		"load":  fmt.Sprintf("%g msgs/s from %d devices through %d gateways, batches of at most %d, payload %d B", f.Rate, f.Devices, f.Gateways, f.Batch, f.Payload),
		"kills": fmt.Sprintf("%d, SIGKILL %v..%v after each start", sf.kills, sf.upMin, sf.upMax),
	}}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	ran := make(chan error, 1)
	start := time.Now()
	restartNs.Store(start.UnixNano())
	seed := f.Seed
	go func() { ran <- f.Run(loadCtx) }() // Run owns f from here on: Stats only
	rng := rand.New(rand.NewPCG(seed, 2))
	if err := waitFirstAck(ctx, &firstNs, acked, start); err != nil {
		return nil, fmt.Errorf("soak: before the first kill: %w", err)
	}
	up := start
	for k := 1; k <= sf.kills; k++ {
		wait := sf.upMin + time.Duration(rng.Int64N(int64(sf.upMax-sf.upMin)+1))
		if !sleepCtx(ctx, time.Until(up.Add(wait))) {
			return nil, ctx.Err()
		}
		c := d.children[0]
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("soak: kill %d: %w", k, err)
		}
		<-c.done
		<-d.exited
		restarted := time.Now()
		restartNs.Store(restarted.UnixNano())
		firstNs.Store(0)
		if err := restartChild(d, 0, common, errOut); err != nil {
			return nil, fmt.Errorf("soak: restart %d: %w", k, err)
		}
		if err := d.waitReady(ctx); err != nil {
			return nil, fmt.Errorf("soak: restart %d: %w", k, err)
		}
		ready := time.Now()
		if err := waitFirstAck(ctx, &firstNs, acked, restarted); err != nil {
			return nil, fmt.Errorf("soak: after restart %d: %w", k, err)
		}
		first := time.Unix(0, firstNs.Load())
		rep.Kills = k
		rep.ReadyMs = append(rep.ReadyMs, ms(ready.Sub(restarted)))
		rep.FirstAckMs = append(rep.FirstAckMs, ms(first.Sub(restarted)))
		if !sf.quiet {
			fmt.Fprintf(errOut, "soak: kill %d/%d after %v up; ready in %.0f ms, first 201 in %.0f ms; %d acknowledged\n",
				k, sf.kills, wait.Round(time.Millisecond), ms(ready.Sub(restarted)), ms(first.Sub(restarted)), acks.Len())
		}
		up = restarted
	}
	sleepCtx(ctx, sf.tail)
	stopLoad()
	if err := <-ran; err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.DurationS = time.Since(start).Seconds()
	rep.Fleet = f.Stats()
	all := acks.Acks()
	rep.Acked = len(all)
	rep.AckedPerS = float64(len(all)) / rep.DurationS
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	chk, err := bench.CheckAcks(cctx, client.New(url), all, sf.byID, seed)
	if err != nil {
		return nil, fmt.Errorf("soak: checking the acknowledged messages: %w", err)
	}
	rep.Lost, rep.ByID, rep.Equivocations = len(chk.Lost), chk.ByID, chk.Equivocations
	for _, a := range chk.Lost[:min(len(chk.Lost), 20)] {
		rep.LostIDs = append(rep.LostIDs, a.ID.String())
	}
	d.stop()
	c := d.children[0]
	c.mu.Lock()
	werr := c.waitErr
	c.mu.Unlock()
	if werr != nil {
		err = errors.Join(err, fmt.Errorf("soak: the node did not stop cleanly on SIGTERM: %s", c.cause()))
	}
	if rep.Lost > 0 {
		keep = true
		err = errors.Join(err, fmt.Errorf("soak: %d of %d acknowledged messages lost", rep.Lost, rep.Acked))
	}
	if rep.Equivocations > 0 {
		err = errors.Join(err, fmt.Errorf("soak: the node lists %d equivocations of the gateways' devices", rep.Equivocations))
	}
	if len(rep.Fleet.Failed) > 0 {
		err = errors.Join(err, fmt.Errorf("soak: the node refused messages the gateways built: %v", rep.Fleet.Failed))
	}
	if keep {
		rep.DataDir = dir
	}
	return rep, err
}

// restartChild starts node i of d again, in its slot: startNode appends a
// child, and the dead one it replaces is done with.
func restartChild(d *devnet, i int, common []string, errOut io.Writer) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var outMu sync.Mutex // the dead child's log copier has finished
	if err := d.startNode(self, i, common, errOut, &outMu); err != nil {
		return err
	}
	last := len(d.children) - 1
	d.children[i] = d.children[last]
	d.children = d.children[:last]
	return nil
}

// waitFirstAck waits until *firstNs holds an acknowledgement after since,
// at most soakFirstAckWait.
func waitFirstAck(ctx context.Context, firstNs *atomic.Int64, acked <-chan struct{}, since time.Time) error {
	timeout := time.NewTimer(soakFirstAckWait)
	defer timeout.Stop()
	for firstNs.Load() <= since.UnixNano() {
		select {
		case <-acked:
		case <-timeout.C:
			return fmt.Errorf("no message acknowledged within %v", soakFirstAckWait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// sleepCtx waits d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// p50Max returns the median (nearest rank) and the largest of v.
func p50Max(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := slices.Sorted(slices.Values(v))
	return s[(len(s)+1)/2-1], s[len(s)-1]
}

// print writes the report as a table or as JSON.
func (r *soakReport) print(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string, a ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(v, a...)) }
	fmt.Fprintf(tw, "weft bench soak\n")
	row("seed", "%d", r.Seed)
	for _, k := range []string{"node", "load", "kills"} {
		row(k, "%s", r.Setup[k])
	}
	row("ran", "%.1f s, %d kills", r.DurationS, r.Kills)
	row("acknowledged", "%d (%.0f/s over the run, outages included)", r.Acked, r.AckedPerS)
	row("lost", "%d (every device's listing read; %d also read by id)", r.Lost, r.ByID)
	row("equivocations", "%d", r.Equivocations)
	st := r.Fleet
	row("gateways", "%d built, %d sent again as the same bytes, %d rebuilt on fresh tips, %d requests unanswered, %d readings skipped",
		st.Built, st.Resends, st.Rebuilds, st.Unanswered, st.Skipped)
	for _, c := range slices.Sorted(maps.Keys(st.Answers)) {
		row("answered "+c, "%d", st.Answers[c])
	}
	p50, mx := p50Max(r.FirstAckMs)
	row("first 201 after restart", "p50 %.0f ms, max %.0f ms (from the start of the process)", p50, mx)
	p50, mx = p50Max(r.ReadyMs)
	row("API ready after restart", "p50 %.0f ms, max %.0f ms (polled every 100 ms)", p50, mx)
	if r.DataDir != "" {
		row("data", "%s", r.DataDir)
	}
	return tw.Flush()
}
