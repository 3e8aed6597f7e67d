package node

import (
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
	"github.com/weftnet/weft/pow"
	"github.com/weftnet/weft/rules"
	"github.com/weftnet/weft/storage"
)

// Config configures a Node. Zero fields mean the defaults documented on
// each; Identity and DataDir must be set (cmd/weft fills them).
type Config struct {
	// DataDir holds the store (weft.db). Required.
	DataDir string
	// Identity is the node's ed25519 key: it signs the node's own messages
	// as a validator. Required.
	Identity ed25519.PrivateKey

	// Network is the network's name; its id is derived from it. Default "weft-devnet".
	Network string
	// MaxPayload is the network's payload limit. Default dag.DefaultMaxPayload.
	MaxPayload int
	// PoWBase is the network's base proof-of-work difficulty. Default
	// pow.DefaultBase; NoPoW turns proof of work off (test networks).
	PoWBase int
	NoPoW   bool
	// Validators is the validator set. Default: this node alone, weight 1.
	Validators []dag.Validator

	// IssueInterval is the pace of the node's own messages, as a validator,
	// while messages of others wait for confirmation. Default 50 ms.
	IssueInterval time.Duration
	// Under load a validator issues sooner: once IssueEvery messages of
	// others became solid since its last one, but no more often than every
	// IssueMinInterval. Its own messages stay at most 1/IssueEvery of the
	// traffic, and confirmation waits less for them. Defaults 50 and 10 ms.
	IssueEvery       int
	IssueMinInterval time.Duration
	// CheckpointInterval is the pace of a validator's checkpoints
	// (docs/PROTOCOL.md 8): at most this long apart while there is something
	// to cover. Default 1 s; negative: the node issues none (it still keeps
	// other validators' checkpoints and serves proofs from them).
	CheckpointInterval time.Duration
	// CheckpointEvery: a validator checkpoints sooner once this many
	// messages were confirmed since its last checkpoint. Default 50,000.
	CheckpointEvery int
	// ProofRetain is how long the node keeps the checkpoints it serves
	// proofs from, and their leaves (a byte or two a message a validator),
	// by the checkpoints' timestamps. Default: as long as the store keeps
	// the messages (Store.Retain, Store.MaxDisk; forever without
	// retention). Longer keeps proofs available after the messages' bodies
	// are dropped (POST /api/v1/proofs with the message): the store then
	// keeps the dropped epochs' ID files too (Store.KeepIDs, 32 bytes a
	// message), as long as the checkpoints need them.
	ProofRetain time.Duration
	// TickInterval is how often the DAG core is told the time. Default 100 ms.
	TickInterval time.Duration

	// Verifiers is the number of goroutines checking signatures. Default GOMAXPROCS.
	Verifiers int
	// MaxInflight bounds the messages in the pipeline, submitted but not
	// yet answered; past it, submissions get ErrOverloaded. Default 65,536.
	MaxInflight int
	// MaxUnconfirmed: while more messages than this wait for confirmation,
	// submissions get ErrOverloaded. Default 200,000: a few seconds of a
	// node's capacity, about 100 MB of the core's memory. Peers' messages
	// are always taken.
	MaxUnconfirmed int
	// SubmitTimeout is how long a submission waits for unknown parents
	// before it is answered with ErrUnknownParents. Default 5 s.
	SubmitTimeout time.Duration
	// MaxSubscribers bounds the open event subscriptions; past it,
	// Subscribe answers ErrTooManySubscribers. Default 1,024.
	MaxSubscribers int
	// EventBuffer is how many of the latest events the node keeps for its
	// subscribers, rounded down to a power of two: one buffer shared by all
	// of them, allocated with the first (EventSize bytes an event). A
	// subscriber that falls further behind is cut. Default 65,536, about
	// 11 MB.
	EventBuffer int

	// Rules are the rules of the configuration (node/rules.go): they run
	// beside those added through PutRule, and cannot be changed through
	// it. MaxRules bounds them all; default DefaultMaxRules. RuleEngine
	// tunes the rules engine; its Source, Store, Lookup, OnEvent and Log
	// are set by the node.
	Rules      []rules.Rule
	MaxRules   int
	RuleEngine rules.Config

	// Edge policy: it applies to what devices submit, never to gossip.

	// MaxClockSkew: a device's message more than this ahead of the node's
	// clock is refused. Default 1 min.
	MaxClockSkew time.Duration
	// RatePerIssuer limits each issuer to this many messages a second, with
	// bursts of RateBurst. 0 (the default) means no limit.
	RatePerIssuer float64
	RateBurst     int
	// Allowlist, when not empty, is the only issuers this node takes from
	// devices. New adds its keys to the device registry, as allowed, where
	// they are not registered; SetAllowlist does the same.
	Allowlist []dag.PublicKey
	// MaxDevices bounds the device registry (registry.go); past it, adding
	// a device is ErrRegistryFull. Default DefaultMaxDevices.
	MaxDevices int
	// MaxDeviceChanges is how many of the latest changes the registry's
	// change log keeps. Default DefaultMaxDeviceChanges.
	MaxDeviceChanges int
	// DevicesClosed: only devices in the registry, and allowed there, may
	// submit. Otherwise every device but the revoked ones may (within the
	// Allowlist, when it is not empty).
	DevicesClosed bool
	// RemotePoWKeys are the issuers this node does the proof of work for.
	// Empty (the default): remote proof of work is off.
	RemotePoWKeys []dag.PublicKey

	// GossipListen is the UDP address gossip listens on ("" with no Peers:
	// no gossip, a node alone). Peers are the nodes this one talks to,
	// pinned by key; OpenGossip lets nodes not in Peers connect too.
	GossipListen string
	Peers        []gossip.Peer
	OpenGossip   bool
	// Gossip tunes the transport; its identity, network, peers and handler
	// are set from the fields above.
	Gossip gossip.Config
	// SyncInterval is how often the node asks each peer for what it missed
	// (besides on every connect). Default 5 s.
	SyncInterval time.Duration

	// Core tunes the DAG core; its Params and Validators are set from the
	// fields above.
	Core dag.Config
	// Store tunes the store.
	Store storage.Config
	// Log receives the node's logs. Default: none.
	Log zerolog.Logger

	// Time returns the current time, as crypto/tls's Config.Time does: every
	// reading of the clock in the node goes through it (the DAG core's
	// ticks, the edge policy's clock skew and rates, the validator's pace,
	// timestamps of the node's own messages, rates and latencies). Timers
	// and tickers (TickInterval, IssueInterval, SubmitTimeout, SyncInterval)
	// stay on the real clock. Default (nil): time.Now. It is called from
	// several goroutines at once and must be safe for that.
	Time func() time.Time
	// Rand is the node's source of randomness: tip selection for its own
	// messages, the tips Tips hands devices, the sample of tips readers see,
	// the jitter of catch-up syncs and the peer a missing parent is asked
	// of. The node serializes its calls, so Rand need not be safe for
	// concurrent use; it must not be used elsewhere while the node runs.
	// Default (nil): a PCG seeded from crypto/rand. Batch signature
	// verification does not use it: its scalars must be unpredictable and
	// come from crypto/rand.
	Rand rand.Source
}

// ErrConfig: the Config is unusable.
var ErrConfig = errors.New("node: bad config")

// Params returns the network's validity parameters.
func (cfg Config) Params() dag.Params {
	p := dag.DefaultParams(dag.NetworkIDFromName(cfg.Network))
	if cfg.MaxPayload > 0 {
		p.MaxPayload = cfg.MaxPayload
	}
	if cfg.PoWBase > 0 {
		p.PoWBase = cfg.PoWBase
	}
	if cfg.NoPoW {
		p.PoWBase = 0
	}
	return p
}

// PublicKey returns the node's public key: its id.
func (cfg Config) PublicKey() dag.PublicKey {
	var k dag.PublicKey
	copy(k[:], cfg.Identity.Public().(ed25519.PublicKey))
	return k
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.DataDir == "" {
		return cfg, fmt.Errorf("%w: no data directory", ErrConfig)
	}
	if len(cfg.Identity) != ed25519.PrivateKeySize {
		return cfg, fmt.Errorf("%w: no identity key", ErrConfig)
	}
	if cfg.Network == "" {
		cfg.Network = "weft-devnet"
	}
	if cfg.PoWBase < 0 || cfg.PoWBase > pow.MaxDifficulty {
		return cfg, fmt.Errorf("%w: pow base %d", ErrConfig, cfg.PoWBase)
	}
	if len(cfg.Validators) == 0 {
		cfg.Validators = []dag.Validator{{Key: cfg.PublicKey(), Weight: 1}}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defd(&cfg.IssueInterval, 50*time.Millisecond)
	def(&cfg.IssueEvery, 50)
	defd(&cfg.IssueMinInterval, 10*time.Millisecond)
	defd(&cfg.TickInterval, 100*time.Millisecond)
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = time.Second
	}
	def(&cfg.CheckpointEvery, 50_000)
	def(&cfg.Verifiers, runtime.GOMAXPROCS(0))
	def(&cfg.MaxInflight, 65_536)
	def(&cfg.MaxUnconfirmed, 200_000)
	defd(&cfg.SubmitTimeout, 5*time.Second)
	def(&cfg.MaxSubscribers, 1024)
	def(&cfg.EventBuffer, 1<<16)
	def(&cfg.MaxRules, DefaultMaxRules)
	defd(&cfg.MaxClockSkew, time.Minute)
	def(&cfg.MaxDevices, DefaultMaxDevices)
	def(&cfg.MaxDeviceChanges, DefaultMaxDeviceChanges)
	defd(&cfg.SyncInterval, 5*time.Second)
	if cfg.RatePerIssuer < 0 {
		return cfg, fmt.Errorf("%w: negative rate", ErrConfig)
	}
	if cfg.RatePerIssuer > 0 && cfg.RateBurst <= 0 {
		cfg.RateBurst = max(1, int(cfg.RatePerIssuer))
	}
	if cfg.Time == nil {
		cfg.Time = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = seededPCG()
	}
	cfg.Core.Params = cfg.Params()
	cfg.Core.Validators = cfg.Validators
	cfg.Core.NotTips = append(cfg.Core.NotTips, cfg.PublicKey())
	cfg.Core.Checkpoint = checkpointFrom
	if err := cfg.Core.Params.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return cfg, nil
}

// seededPCG returns a PCG seeded from crypto/rand.
func seededPCG() *rand.PCG {
	var seed [16]byte
	crand.Read(seed[:]) // never fails (crypto/rand's contract since Go 1.24)
	return rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))
}

// lockedSource serializes the calls to a rand.Source, so that the node's
// goroutines may share Config.Rand.
type lockedSource struct {
	mu  sync.Mutex
	src rand.Source
}

// Uint64 returns the next value of the source.
func (s *lockedSource) Uint64() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.src.Uint64()
}
