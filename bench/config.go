package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
)

// Scenario names a benchmark.
type Scenario string

const (
	// Ingest offers pre-built messages (signed and solved before the clock
	// starts) from simulated devices, through gateways that submit batches
	// (Config.Batch > 1) or single messages, at a fixed rate or as fast as
	// the node takes them.
	Ingest Scenario = "ingest"
	// Devices runs simulated devices that do what real ones do for every
	// message, live: ask the node for tips, build, sign, solve the proof of
	// work, submit. It reports the devices' CPU cost per message beside
	// the node's throughput.
	Devices Scenario = "devices"
	// Network is Ingest over a network of Config.Nodes nodes on this
	// machine, all validators, peered in a full mesh over QUIC: the senders
	// are spread over the nodes, and the run adds how long messages take to
	// reach the other nodes and to be confirmed on all of them.
	Network Scenario = "network"
	// Gateway runs a Fleet: gateways that own the devices, ask the node
	// for fresh tips before every batch, build, sign and solve the
	// devices' messages live, submit them in batches and send again, with
	// backoff, what the node did not take. Config.Clients is the number of
	// gateways and Config.Batch the most messages a batch carries.
	Gateway Scenario = "gateway"
)

// Defaults of a Config's zero fields.
const (
	DefaultNetwork  = "weft-bench"
	DefaultPoWBase  = 4
	DefaultDevices  = 1000
	DefaultBatch    = 1024
	DefaultPayload  = 100
	DefaultDuration = 30 * time.Second
	DefaultLinger   = 5 * time.Millisecond
	DefaultDrain    = 10 * time.Second
	DefaultSeed     = 1
	// DefaultSteadyAfter is Config.SteadyAfter's default without
	// retention.
	DefaultSteadyAfter = 5 * time.Minute
	// DefaultGateways is the default number of concurrent senders for
	// batches; DefaultClients for single messages.
	DefaultGateways = 8
	DefaultClients  = 256
	// DefaultNodes is the size of the Network scenario's network.
	DefaultNodes = 3
	// MaxNodes bounds it: the nodes share this machine.
	MaxNodes = 16
)

// Retention is how long and how much the stores of the nodes a run starts
// keep: the storage.Config fields of the same names, which `weft node`
// takes as --retain, --max-disk, --epoch-records and --epoch-age. A zero
// field is the node's default; the node refuses values its store refuses.
// In JSON its durations are in seconds, as the report's others are.
type Retention struct {
	Retain       time.Duration
	MaxDisk      int64
	EpochRecords int
	EpochAge     time.Duration
}

// retentionJSON is Retention's JSON form.
type retentionJSON struct {
	RetainS      float64 `json:"retain_s,omitempty"`
	MaxDisk      int64   `json:"max_disk_bytes,omitempty"`
	EpochRecords int     `json:"epoch_records,omitempty"`
	EpochAgeS    float64 `json:"epoch_age_s,omitempty"`
}

// MarshalJSON writes r with its durations in seconds.
func (r Retention) MarshalJSON() ([]byte, error) {
	return json.Marshal(retentionJSON{r.Retain.Seconds(), r.MaxDisk, r.EpochRecords, r.EpochAge.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Retention) UnmarshalJSON(b []byte) error {
	var j retentionJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Retention{time.Duration(j.RetainS * float64(time.Second)), j.MaxDisk, j.EpochRecords,
		time.Duration(j.EpochAgeS * float64(time.Second))}
	return nil
}

// IsZero reports whether r leaves the nodes' defaults alone.
func (r Retention) IsZero() bool { return r == Retention{} }

// String describes r for people: "retain 5m0s, epoch age 10s".
func (r Retention) String() string {
	if r.IsZero() {
		return "the node's defaults: keep everything"
	}
	var parts []string
	if r.Retain > 0 {
		parts = append(parts, "retain "+r.Retain.String())
	}
	if r.MaxDisk > 0 {
		parts = append(parts, fmt.Sprintf("max disk %s", mb(r.MaxDisk)))
	}
	if r.EpochRecords > 0 {
		parts = append(parts, fmt.Sprintf("epochs of %s records", group(float64(r.EpochRecords))))
	}
	if r.EpochAge > 0 {
		parts = append(parts, "epoch age "+r.EpochAge.String())
	}
	return strings.Join(parts, ", ")
}

// ErrConfig: a Config is unusable.
var ErrConfig = errors.New("bench: bad config")

// Config describes a run. Zero fields mean the defaults documented on each.
type Config struct {
	// Scenario is Ingest, Devices, Network or Gateway. Required.
	Scenario Scenario

	// Node is the API URL of a running node to load ("http://host:port").
	// Empty (the default): a node is started in this process on a fresh
	// data directory under WorkDir, with Network and PoWBase, and stopped
	// after the run.
	Node string
	// Nodes is the number of nodes of the Network scenario. Default
	// DefaultNodes; at most MaxNodes.
	Nodes int
	// Retention is the retention of the stores of the nodes the run starts
	// (docs/STORAGE.md); its zero value keeps everything, as a node does by
	// default. A run that loads a node at Node cannot set it.
	Retention Retention
	// Launch starts the Network scenario's nodes. Nil: they run in this
	// process (each with its own data directory, store and gossip endpoint
	// on loopback), so their CPU and memory are this process's together.
	// `weft bench network` starts them as separate processes instead.
	Launch Launcher

	// WorkDir holds the in-process node's data and the tapes of pre-built
	// messages. Default: a new temporary directory, removed after the run.
	WorkDir string
	// Network is the in-process node's network name. Default DefaultNetwork.
	Network string
	// PoWBase is the in-process node's base proof-of-work difficulty.
	// Default DefaultPoWBase (4): low, so that pre-building and simulated
	// devices are quick. The node checks a proof of work with one hash at
	// any difficulty, so its own cost does not depend on it.
	PoWBase int

	// Devices is the number of simulated devices, each with its own key.
	// Default DefaultDevices.
	Devices int
	// Rate is the offered load in messages per second; 0 offers messages
	// as fast as the node takes them (each sender waits for the answer to
	// its request before sending the next).
	Rate float64
	// Batch is the number of messages per request in Ingest: 1 submits
	// single messages (POST /api/v1/messages), more uses the batch
	// endpoint. Default DefaultBatch. Devices always submit singly. In
	// Gateway, the most messages a gateway's batch carries (the batch
	// endpoint always; default DefaultFleetBatch).
	Batch int
	// Clients is the number of concurrent senders in Ingest, each with one
	// connection and one request in flight; each owns a share of the
	// devices, so every device's messages arrive in sequence order. Default
	// DefaultGateways with batches, DefaultClients with single messages;
	// at most Devices. In Devices every device is its own client. In
	// Gateway, the gateways (default DefaultFleetGateways).
	Clients int
	// Linger is how long a sender at a fixed rate waits, once a message is
	// due, for more to fill its batch. Default DefaultLinger; ignored for
	// single messages and at Rate 0.
	Linger time.Duration
	// Payload is the payload size in bytes. Default DefaultPayload.
	Payload int
	// JSONPayload makes each payload a JSON reading (Reading): the
	// message's index in the run, a temperature and a humidity, padded
	// with spaces to Payload bytes, for conditions of rules to read.
	// Payload must then be at least MinJSONPayload. Otherwise a payload is
	// printable filler that begins with the index in 8 bytes.
	JSONPayload bool

	// ProofSample, if positive, samples one measured message in
	// ProofSample (by ID) as the first node confirms it, and asks that node
	// for the message's proof every 20 ms until it is served: Result.Proofs.
	ProofSample int

	// CheckAcks looks for every message a node acknowledged (201) on that
	// node, while the load runs and after it (AckCheck), and reports those
	// lost. Not for the Devices scenario.
	CheckAcks bool

	// Duration bounds the load. Default DefaultDuration.
	Duration time.Duration
	// SteadyAfter is how long after the start of the load the store's
	// size should have levelled off: the report's footprint gives the
	// disk then, and its least and most after. Default Retention.Retain
	// if set, else DefaultSteadyAfter.
	SteadyAfter time.Duration
	// Messages, if positive, is the number of messages to offer; the run
	// ends when they are all answered or at Duration, whichever is first.
	Messages int
	// Drain is how long the run waits after the load, at most, for the
	// messages accepted to be confirmed. Default DefaultDrain.
	Drain time.Duration
	// Seed makes the devices' keys, the payloads and the shape of the
	// generator's DAG reproducible. Default DefaultSeed.
	Seed uint64
	// VerifyFor is how long the signature-verification measurement runs
	// before the load. Default 1 s.
	VerifyFor time.Duration

	// Progress receives a progress line every second, if set.
	Progress io.Writer
	// ProgressInPlace rewrites the progress line in place (a terminal)
	// instead of writing one line each time.
	ProgressInPlace bool
	// CPUProfile, if set, receives a CPU profile of this process taken over
	// the load (the in-process node and the load generator).
	CPUProfile io.Writer
	// Log receives the in-process node's logs and the run's notes.
	Log zerolog.Logger
	// Version is what the in-process node's API reports.
	Version string
	// NodeEnv lists the node settings that the node processes a run
	// starts take from the environment (WEFT_MEMORY_LIMIT=200MiB, ...):
	// reported in the setup, so that a report says what its nodes ran
	// with. The launcher passes the environment; this only records it.
	NodeEnv []string
}

func (cfg Config) withDefaults() (Config, error) {
	switch cfg.Scenario {
	case Ingest, Devices, Network, Gateway:
	default:
		return cfg, fmt.Errorf("%w: unknown scenario %q", ErrConfig, cfg.Scenario)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if cfg.Network == "" {
		cfg.Network = DefaultNetwork
	}
	def(&cfg.PoWBase, DefaultPoWBase)
	def(&cfg.Devices, DefaultDevices)
	if cfg.Scenario == Gateway {
		def(&cfg.Batch, DefaultFleetBatch)
		def(&cfg.Clients, DefaultFleetGateways)
	}
	def(&cfg.Batch, DefaultBatch)
	def(&cfg.Payload, DefaultPayload)
	defd(&cfg.Duration, DefaultDuration)
	defd(&cfg.Linger, DefaultLinger)
	defd(&cfg.Drain, DefaultDrain)
	defd(&cfg.VerifyFor, time.Second)
	if cfg.Retention.Retain > 0 {
		defd(&cfg.SteadyAfter, cfg.Retention.Retain)
	}
	defd(&cfg.SteadyAfter, DefaultSteadyAfter)
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.Scenario == Network {
		def(&cfg.Nodes, DefaultNodes)
		if cfg.Nodes < 1 || cfg.Nodes > MaxNodes {
			return cfg, fmt.Errorf("%w: %d nodes, want 1..%d", ErrConfig, cfg.Nodes, MaxNodes)
		}
		if cfg.Node != "" {
			return cfg, fmt.Errorf("%w: the network scenario starts its own nodes; it takes no node URL", ErrConfig)
		}
	} else {
		cfg.Nodes = 1
	}
	if cfg.Scenario == Devices {
		cfg.Batch = 1
		cfg.Clients = cfg.Devices
	}
	if cfg.Batch == 1 {
		def(&cfg.Clients, DefaultClients)
	} else {
		def(&cfg.Clients, DefaultGateways)
	}
	switch {
	case cfg.Rate < 0:
		return cfg, fmt.Errorf("%w: negative rate", ErrConfig)
	case cfg.Devices < 1:
		return cfg, fmt.Errorf("%w: %d devices", ErrConfig, cfg.Devices)
	case cfg.Batch < 1 || cfg.Batch > 4096:
		return cfg, fmt.Errorf("%w: batch %d, want 1..4096", ErrConfig, cfg.Batch)
	case cfg.Clients < 1:
		return cfg, fmt.Errorf("%w: %d clients", ErrConfig, cfg.Clients)
	case cfg.Payload < 0 || cfg.Payload > dag.MaxPayload:
		return cfg, fmt.Errorf("%w: payload %d bytes", ErrConfig, cfg.Payload)
	case cfg.JSONPayload && cfg.Payload < MinJSONPayload:
		return cfg, fmt.Errorf("%w: payload %d bytes: a JSON reading takes at least %d", ErrConfig, cfg.Payload, MinJSONPayload)
	case cfg.Duration < 0 || cfg.Drain < 0 || cfg.Linger < 0 || cfg.VerifyFor < 0 || cfg.SteadyAfter < 0:
		return cfg, fmt.Errorf("%w: negative duration", ErrConfig)
	case cfg.Messages < 0:
		return cfg, fmt.Errorf("%w: negative message count", ErrConfig)
	case cfg.PoWBase < 0:
		return cfg, fmt.Errorf("%w: negative pow base", ErrConfig)
	case cfg.Retention.Retain < 0 || cfg.Retention.MaxDisk < 0 || cfg.Retention.EpochRecords < 0 || cfg.Retention.EpochAge < 0:
		return cfg, fmt.Errorf("%w: negative retention setting %+v", ErrConfig, cfg.Retention)
	case cfg.CheckAcks && cfg.Scenario == Devices:
		return cfg, fmt.Errorf("%w: the devices scenario does not check its acknowledgements", ErrConfig)
	case cfg.Node != "" && !cfg.Retention.IsZero():
		return cfg, fmt.Errorf("%w: the retention of a node at a URL is that node's own; set it there", ErrConfig)
	}
	cfg.Clients = min(cfg.Clients, cfg.Devices)
	return cfg, nil
}
