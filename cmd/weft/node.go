package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
	"github.com/weftnet/weft/mqtt"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/pow"
	"github.com/weftnet/weft/rules"
	"github.com/weftnet/weft/storage"
)

// identityFile is the node's key, in its data directory.
const identityFile = "node.key"

func newNodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a node",
		Long: `Run a Weft node. With no flags and no file it starts on embedded defaults: data in
./weft-data, the API on 127.0.0.1:8080, a new identity kept in the data directory, and a
single-validator network of itself.

Settings come from, in increasing precedence: the defaults, a YAML file (--config or
WEFT_CONFIG), WEFT_* environment variables (WEFT_DATA_DIR, WEFT_API_ADDR, ...), and flags. The
YAML keys are the flag names (data-dir: ./weft-data); lists are comma-separated in the
environment, as in flags (WEFT_ALLOW=KEY1,KEY2). An unknown key in the file, or a WEFT_ variable
close to a setting's but none, is refused.

SIGHUP reloads log-level and allow from the file, the environment and the flags; the other
settings take effect at a restart. SIGINT and SIGTERM stop the node cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runNode(cmd.Context(), cmd.Flags()) },
	}
	f := cmd.Flags()
	f.String("config", "", "YAML configuration file")
	f.String("data-dir", "./weft-data", "data directory: the store and the node's identity")
	f.String("api-addr", "127.0.0.1:8080", "HTTP API address")
	f.String("debug-addr", "", "address of the Go profiler's HTTP endpoints (/debug/pprof/), such as 127.0.0.1:6060; default off")
	f.String("memory-limit", "0", "soft limit on the Go runtime's memory (e.g. 200MiB): the collector works harder near it; 0: none (or GOMEMLIMIT)")
	f.StringSlice("cors-origin", nil, "origin allowed to call the API from a browser (CORS), such as https://dash.example.com, or *; repeatable or comma-separated; default none")
	f.String("gossip-addr", "127.0.0.1:7070", "gossip address (UDP, QUIC); empty with no peers: no gossip")
	f.StringSlice("peer", nil, "peer PUBKEY@HOST:PORT (hex key), repeatable or comma-separated: the nodes to gossip with, pinned by key")
	f.Bool("open", false, "let nodes that are not in the peer list connect")
	f.String("network", "weft-devnet", "network name")
	f.String("log-level", "info", "log level: debug, info, warn, error (SIGHUP reloads it)")
	f.Int("max-payload", dag.DefaultMaxPayload, "network payload limit in bytes")
	f.Int("pow-base", pow.DefaultBase, "network base proof-of-work difficulty in bits; 0 turns proof of work off")
	f.StringSlice("validator", nil, "validator KEY:WEIGHT (hex key), repeatable or comma-separated; default this node alone")
	f.Duration("issue-interval", 50*time.Millisecond, "pace of this node's own messages as a validator, while there is unconfirmed traffic (sooner under load: after 50 others' messages, at most every 10ms)")
	f.Duration("checkpoint-interval", time.Second, "pace of this node's checkpoints as a validator, the signed statements proofs rest on (docs/PROTOCOL.md 8); 0: none")
	f.Int("checkpoint-every", 50_000, "checkpoint sooner, once this many messages were confirmed since the last one")
	f.Duration("proof-retain", 0, "keep the checkpoints proofs are built from this long, also after the messages are dropped; 0: as long as the messages")
	f.Float64("rate-per-issuer", 0, "messages a second each device may submit (0: no limit)")
	f.Int("rate-burst", 0, "burst allowed above the rate (default: one second's worth)")
	f.StringSlice("allow", nil, "device public keys allowed to submit (hex), repeatable or comma-separated; default everyone (SIGHUP reloads it)")
	f.StringSlice("remote-pow-key", nil, "device public keys the node does the proof of work for (hex), repeatable or comma-separated; default none")
	f.Duration("max-clock-skew", time.Minute, "refuse device messages timestamped further ahead of this node's clock")
	f.Duration("submit-timeout", 5*time.Second, "how long a submission waits for unknown parents")
	f.Int("max-subscribers", 1024, "most event streams (GET /api/v1/events) served at once; past it, 503")
	f.StringSlice("api-tokens", nil, "operator API token NAME:TOKEN (TOKEN: 16 to 256 of A-Z a-z 0-9 - . _ ~ + / =), repeatable or comma-separated: the API's state-changing endpoints take one; default none, and they refuse every request")
	f.String("api-token-file", "", "file of operator API tokens, a NAME:TOKEN a line (# comments); with api-tokens, both count")
	f.Bool("api-read-auth", false, "the API's read endpoints need a token too (all but tips and the probes)")
	f.Bool("devices-closed", false, "only devices in the registry, and allowed there, may submit (default: every device but the revoked ones)")
	f.Int("max-rules", node.DefaultMaxRules, "most rules, of the file's rules: list and the API's, together")
	f.Int("rule-attempts", 10, "failed attempts after which a webhook's match is dead-lettered")
	f.Duration("rule-retry-base", time.Second, "wait after a webhook's first failed attempt, doubled after each further one up to rule-retry-max, with jitter")
	f.Duration("rule-retry-max", 5*time.Minute, "longest wait between a webhook's attempts")
	f.Duration("retain", 0, "keep history for at least this long (e.g. 720h), then drop the oldest settled epochs; 0: keep everything")
	f.String("max-disk", "0", "bound on the store's files (e.g. 50GB, 512MiB): the oldest settled epochs are dropped while they take more; 0: no bound")
	f.Int("epoch-records", storage.DefaultEpochRecords, "records per epoch (one file of the store, the unit of retention)")
	f.Duration("epoch-age", 0, "cut the newest epoch after this long even if it is not full; 0: 1h, or retain/8 if shorter")
	f.String("mqtt-broker", "", "an MQTT broker to take submissions from and publish to (docs/MQTT.md): tcp://HOST:1883, or ssl://HOST:8883; default none")
	f.String("mqtt-client-id", "", "the node's client id at mqtt-broker, whose session is kept there (default weft- and the start of the node's key)")
	f.String("mqtt-username", "", "user name at mqtt-broker")
	f.String("mqtt-password", "", "password at mqtt-broker (better in the file or WEFT_MQTT_PASSWORD than on the command line)")
	f.String("mqtt-ca-file", "", "PEM file of the CAs mqtt-broker's certificate is checked against (default: the system's)")
	f.String("mqtt-cert-file", "", "client certificate (PEM) for mqtt-broker, with mqtt-key-file")
	f.String("mqtt-key-file", "", "the client certificate's key (PEM)")
	f.String("mqtt-listen", "", "address of an embedded MQTT broker, such as 127.0.0.1:1883; default none")
	f.Int("mqtt-max-clients", mqtt.DefaultMaxClients, "most sessions the embedded broker holds, connected or kept for a client that went away")
	f.Bool("mqtt-confirmed", false, "publish every confirmed message, with its payload, to weft/v1/<network>/confirmed/<issuer>")
	f.Bool("no-sync", false, "skip fsync (tests only: acknowledged messages can be lost on power failure)")
	return cmd
}

// minMemoryLimit is the least memory-limit taken: below it the collector
// would run all the time for a node's ordinary working set.
const minMemoryLimit = 64 << 20

// nodeSettings is what `weft node` runs with.
type nodeSettings struct {
	cfg         node.Config // without Identity and Log
	apiAddr     string
	debugAddr   string // empty: no profiler endpoints
	memoryLimit int64  // 0: the runtime's default
	logLevel    zerolog.Level
	corsOrigins []string
	tokens      []api.Token // never logged
	mqtt        mqtt.Config // without Log
	readAuth    bool
	// all is every setting's value as text: what a reload compares.
	all map[string]string
}

// readNodeSettings reads and checks the settings of `weft node` from its
// parsed flags, the environment environ and the YAML file: the one place
// that interprets them. Its errors are usage errors.
func readNodeSettings(f *pflag.FlagSet, environ []string) (*nodeSettings, error) {
	s, err := loadSettings(f, environ)
	if err != nil {
		return nil, err
	}
	ns := &nodeSettings{apiAddr: s.str("api-addr"), debugAddr: s.str("debug-addr"), all: s.describe()}
	var errs []error
	for _, step := range []func(*settings, *nodeSettings) error{
		readLocalSettings, readNetworkSettings, readGossipSettings, readEdgeSettings, readAuthSettings, readRuleSettings,
		readMQTTSettings,
	} {
		if err := step(s, ns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &usageError{err}
	}
	return ns, nil
}

// badSetting is the error of a value of setting name that its type
// allows but its meaning does not.
func badSetting(s *settings, name, format string, a ...any) error {
	return settingErr(errBadSetting, "%s: %s", s.from(name), fmt.Sprintf(format, a...))
}

// readLocalSettings reads what concerns this node alone: its directory,
// its log, its store, its API's browsers.
func readLocalSettings(s *settings, ns *nodeSettings) error {
	var errs []error
	ns.cfg.DataDir = s.str("data-dir")
	if ns.cfg.DataDir == "" {
		errs = append(errs, badSetting(s, "data-dir", "empty"))
	}
	ns.cfg.Store = storage.Config{
		NoSync:       s.boolean("no-sync"),
		Retain:       s.duration("retain"),
		EpochRecords: s.integer("epoch-records"),
		EpochAge:     s.duration("epoch-age"),
	}
	if ns.cfg.Store.Retain < 0 {
		errs = append(errs, badSetting(s, "retain", "%v: want 0 or a positive duration", ns.cfg.Store.Retain))
	}
	if ns.cfg.Store.EpochRecords < 1 {
		errs = append(errs, badSetting(s, "epoch-records", "%d: want at least 1", ns.cfg.Store.EpochRecords))
	}
	if age := ns.cfg.Store.EpochAge; age < 0 || (age > 0 && age < time.Second) {
		errs = append(errs, badSetting(s, "epoch-age", "%v: want 0 or at least 1s", age))
	}
	if ns.cfg.Store.EpochAge == 0 && ns.cfg.Store.Retain > 0 && ns.cfg.Store.Retain < 8*time.Second {
		errs = append(errs, badSetting(s, "retain", "%v: want at least 8s (or set epoch-age)", ns.cfg.Store.Retain))
	}
	if md, err := parseBytes(s.str("max-disk")); err != nil {
		errs = append(errs, badSetting(s, "max-disk", "%q: %v", s.str("max-disk"), err))
	} else {
		ns.cfg.Store.MaxDisk = md
	}
	switch ml, err := parseBytes(s.str("memory-limit")); {
	case err != nil:
		errs = append(errs, badSetting(s, "memory-limit", "%q: %v", s.str("memory-limit"), err))
	case ml > 0 && ml < minMemoryLimit:
		errs = append(errs, badSetting(s, "memory-limit", "%q: want 0 or at least 64MiB", s.str("memory-limit")))
	default:
		ns.memoryLimit = ml
	}
	if ns.cfg.MaxSubscribers = s.integer("max-subscribers"); ns.cfg.MaxSubscribers < 1 {
		errs = append(errs, badSetting(s, "max-subscribers", "%d: want at least 1", ns.cfg.MaxSubscribers))
	}
	lvl, err := parseLogLevel(s.str("log-level"))
	if err != nil {
		errs = append(errs, badSetting(s, "log-level", "%v", err))
	}
	ns.logLevel = lvl
	ns.corsOrigins = s.list("cors-origin")
	for _, o := range ns.corsOrigins {
		if err := checkOrigin(o); err != nil {
			errs = append(errs, badSetting(s, "cors-origin", "%q: %v", o, err))
		}
	}
	return errors.Join(errs...)
}

// parseBytes parses a size: a whole number of bytes, or one followed by
// a unit: B, kB/KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
// (powers of 1024).
func parseBytes(v string) (int64, error) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("want a number of bytes, such as 50GB or 512MiB")
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil {
		return 0, err
	}
	units := map[string]int64{"": 1, "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
	mul, ok := units[strings.TrimSpace(v[i:])]
	if !ok {
		return 0, fmt.Errorf("unit %q: want B, kB, MB, GB, TB, KiB, MiB, GiB or TiB", strings.TrimSpace(v[i:]))
	}
	if n > math.MaxInt64/mul {
		return 0, errors.New("too large")
	}
	return n * mul, nil
}

// checkOrigin accepts * or a browser origin: scheme://host[:port] and
// nothing else.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want * or an origin such as https://dash.example.com")
	}
	return nil
}

// readNetworkSettings reads the network's parameters: what every node of
// a network must agree on.
func readNetworkSettings(s *settings, ns *nodeSettings) error {
	cfg := &ns.cfg
	cfg.Network = s.str("network")
	cfg.MaxPayload = s.integer("max-payload")
	cfg.PoWBase = s.integer("pow-base")
	cfg.IssueInterval = s.duration("issue-interval")
	cfg.NoPoW = cfg.PoWBase == 0
	var errs []error
	if cfg.Network == "" {
		errs = append(errs, badSetting(s, "network", "empty"))
	}
	if cfg.MaxPayload < 1 || cfg.MaxPayload > dag.MaxPayload {
		errs = append(errs, badSetting(s, "max-payload", "%d: want 1..%d", cfg.MaxPayload, dag.MaxPayload))
	}
	if cfg.PoWBase < 0 || cfg.PoWBase > pow.MaxDifficulty {
		errs = append(errs, badSetting(s, "pow-base", "%d: want 0..%d", cfg.PoWBase, pow.MaxDifficulty))
	}
	if cfg.IssueInterval <= 0 {
		errs = append(errs, badSetting(s, "issue-interval", "%v: want a positive duration", cfg.IssueInterval))
	}
	switch cfg.CheckpointInterval = s.duration("checkpoint-interval"); {
	case cfg.CheckpointInterval < 0:
		errs = append(errs, badSetting(s, "checkpoint-interval", "%v: want 0 (none) or a positive duration", cfg.CheckpointInterval))
	case cfg.CheckpointInterval == 0:
		cfg.CheckpointInterval = -1 // node.Config: negative is none
	}
	if cfg.CheckpointEvery = s.integer("checkpoint-every"); cfg.CheckpointEvery < 1 {
		errs = append(errs, badSetting(s, "checkpoint-every", "%d: want at least 1", cfg.CheckpointEvery))
	}
	if cfg.ProofRetain = s.duration("proof-retain"); cfg.ProofRetain < 0 {
		errs = append(errs, badSetting(s, "proof-retain", "%v: want 0 or a positive duration", cfg.ProofRetain))
	}
	for _, v := range s.list("validator") {
		val, err := parseValidator(v)
		if err != nil {
			errs = append(errs, badSetting(s, "validator", "%q: %v", v, err))
			continue
		}
		cfg.Validators = append(cfg.Validators, val)
	}
	return errors.Join(errs...)
}

// parseValidator parses KEY:WEIGHT, or KEY for weight 1.
func parseValidator(s string) (dag.Validator, error) {
	k, w, ok := strings.Cut(s, ":")
	if !ok {
		w = "1"
	}
	key, err := parseKey(k)
	if err != nil {
		return dag.Validator{}, err
	}
	weight, err := strconv.ParseUint(w, 10, 32)
	if err != nil || weight == 0 {
		return dag.Validator{}, errors.New("weight must be a positive integer")
	}
	return dag.Validator{Key: key, Weight: weight}, nil
}

// readGossipSettings reads where the node gossips and with whom.
func readGossipSettings(s *settings, ns *nodeSettings) error {
	ns.cfg.GossipListen = s.str("gossip-addr")
	ns.cfg.OpenGossip = s.boolean("open")
	var errs []error
	for _, p := range s.list("peer") {
		k, addr, ok := strings.Cut(p, "@")
		if !ok || addr == "" {
			errs = append(errs, badSetting(s, "peer", "%q: want PUBKEY@HOST:PORT", p))
			continue
		}
		key, err := parseKey(k)
		if err != nil {
			errs = append(errs, badSetting(s, "peer", "%q: %v", p, err))
			continue
		}
		ns.cfg.Peers = append(ns.cfg.Peers, gossip.Peer{Key: key, Addr: addr})
	}
	return errors.Join(errs...)
}

// readEdgeSettings reads the node's policy for the devices that submit to
// it.
func readEdgeSettings(s *settings, ns *nodeSettings) error {
	cfg := &ns.cfg
	cfg.RatePerIssuer = s.float("rate-per-issuer")
	cfg.RateBurst = s.integer("rate-burst")
	cfg.MaxClockSkew = s.duration("max-clock-skew")
	cfg.SubmitTimeout = s.duration("submit-timeout")
	var errs []error
	if cfg.RatePerIssuer < 0 || math.IsNaN(cfg.RatePerIssuer) || math.IsInf(cfg.RatePerIssuer, 0) {
		errs = append(errs, badSetting(s, "rate-per-issuer", "%v: want 0 (no limit) or a positive rate", cfg.RatePerIssuer))
	}
	if cfg.RateBurst < 0 {
		errs = append(errs, badSetting(s, "rate-burst", "%d: want 0 (one second's worth) or more", cfg.RateBurst))
	}
	if cfg.MaxClockSkew <= 0 {
		errs = append(errs, badSetting(s, "max-clock-skew", "%v: want a positive duration", cfg.MaxClockSkew))
	}
	if cfg.SubmitTimeout <= 0 {
		errs = append(errs, badSetting(s, "submit-timeout", "%v: want a positive duration", cfg.SubmitTimeout))
	}
	var err error
	if cfg.Allowlist, err = parseKeys(s.list("allow")); err != nil {
		errs = append(errs, badSetting(s, "allow", "%v", err))
	}
	if cfg.RemotePoWKeys, err = parseKeys(s.list("remote-pow-key")); err != nil {
		errs = append(errs, badSetting(s, "remote-pow-key", "%v", err))
	}
	return errors.Join(errs...)
}

// readMQTTSettings reads the MQTT bridge's settings (docs/MQTT.md).
func readMQTTSettings(s *settings, ns *nodeSettings) error {
	ns.mqtt = mqtt.Config{
		Network:    ns.cfg.Network,
		Broker:     s.str("mqtt-broker"),
		ClientID:   s.str("mqtt-client-id"),
		Username:   s.str("mqtt-username"),
		Password:   s.str("mqtt-password"),
		CAFile:     s.str("mqtt-ca-file"),
		CertFile:   s.str("mqtt-cert-file"),
		KeyFile:    s.str("mqtt-key-file"),
		Listen:     s.str("mqtt-listen"),
		MaxClients: s.integer("mqtt-max-clients"),
		Confirmed:  s.boolean("mqtt-confirmed"),
	}
	if ns.mqtt.MaxClients < 1 {
		return badSetting(s, "mqtt-max-clients", "%d: want at least 1", ns.mqtt.MaxClients)
	}
	if ns.mqtt.Confirmed && ns.mqtt.Broker == "" && ns.mqtt.Listen == "" {
		return badSetting(s, "mqtt-confirmed", "set, with neither mqtt-broker nor mqtt-listen to publish to")
	}
	if _, err := mqtt.New(ns.mqtt); err != nil {
		return settingErr(errBadSetting, "%v", err)
	}
	return nil
}

// readRuleSettings reads the rules on confirmed telemetry: the file's
// rules list (docs/RULES.md) and the engine's bounds.
func readRuleSettings(s *settings, ns *nodeSettings) error {
	cfg := &ns.cfg
	cfg.MaxRules = s.integer("max-rules")
	cfg.RuleEngine.MaxAttempts = s.integer("rule-attempts")
	cfg.RuleEngine.BackoffBase = s.duration("rule-retry-base")
	cfg.RuleEngine.BackoffMax = s.duration("rule-retry-max")
	var errs []error
	if cfg.MaxRules < 1 {
		errs = append(errs, badSetting(s, "max-rules", "%d: want at least 1", cfg.MaxRules))
	}
	if cfg.RuleEngine.MaxAttempts < 1 {
		errs = append(errs, badSetting(s, "rule-attempts", "%d: want at least 1", cfg.RuleEngine.MaxAttempts))
	}
	if b := cfg.RuleEngine.BackoffBase; b < 10*time.Millisecond {
		errs = append(errs, badSetting(s, "rule-retry-base", "%v: want at least 10ms", b))
	}
	if m := cfg.RuleEngine.BackoffMax; m < cfg.RuleEngine.BackoffBase {
		errs = append(errs, badSetting(s, "rule-retry-max", "%v: want at least rule-retry-base (%v)", m, cfg.RuleEngine.BackoffBase))
	}
	if _, err := s.fileSection("rules", &cfg.Rules); err != nil {
		return errors.Join(append(errs, settingErr(errBadSetting, "%v", err))...)
	}
	seen := map[string]bool{}
	for i, r := range cfg.Rules {
		if _, err := rules.Compile(r); err != nil {
			errs = append(errs, settingErr(errBadSetting, "rules in %s, rule %d: %v", s.file, i+1, err))
		}
		if seen[r.Name] {
			errs = append(errs, settingErr(errBadSetting, "rules in %s: two rules named %q", s.file, r.Name))
		}
		seen[r.Name] = true
	}
	if len(cfg.Rules) > cfg.MaxRules {
		errs = append(errs, settingErr(errBadSetting, "rules in %s: %d rules, more than max-rules (%d)", s.file, len(cfg.Rules), cfg.MaxRules))
	}
	return errors.Join(errs...)
}

func parseKey(s string) (dag.PublicKey, error) {
	id, err := dag.ParseID(strings.TrimSpace(s))
	return dag.PublicKey(id), err
}

func parseKeys(ss []string) ([]dag.PublicKey, error) {
	var out []dag.PublicKey
	for _, s := range ss {
		k, err := parseKey(s)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// parseLogLevel accepts the documented levels: debug, info, warn, error.
func parseLogLevel(s string) (zerolog.Level, error) {
	switch s {
	case "debug":
		return zerolog.DebugLevel, nil
	case "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.InfoLevel, fmt.Errorf("%q: want debug, info, warn or error", s)
}

// newLogger logs for people on a terminal and as JSON lines otherwise.
// The logger itself passes debug, the lowest level a setting takes;
// zerolog's global level, set here to lvl and changed by a reload, filters
// what it writes.
func newLogger(lvl zerolog.Level) zerolog.Logger {
	zerolog.SetGlobalLevel(lvl)
	var log zerolog.Logger
	if isatty.IsTerminal(os.Stderr.Fd()) {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(zerolog.DebugLevel).With().Timestamp().Logger()
}

// loadIdentity reads the node's key from the data directory, creating it on
// first start.
func loadIdentity(dir string) (ed25519.PrivateKey, bool, error) {
	path := filepath.Join(dir, identityFile)
	key, err := client.ReadKeyFile(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, err
	}
	if err := client.WriteKeyFile(path, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

func runNode(ctx context.Context, flags *pflag.FlagSet) error {
	// SIGHUP is a reload from the start: its default would kill the node.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	ns, err := readNodeSettings(flags, os.Environ())
	if err != nil {
		return err
	}
	log := newLogger(ns.logLevel)
	if ns.memoryLimit > 0 {
		debug.SetMemoryLimit(ns.memoryLimit)
	}
	key, created, err := loadIdentity(ns.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("node identity: %w", err)
	}
	cfg := ns.cfg
	cfg.Identity = key
	cfg.Log = log
	mcfg := ns.mqtt
	mcfg.Log = log
	bridge, err := mqtt.New(mcfg)
	if err != nil {
		return &usageError{err}
	}
	cfg.RuleEngine.Kinds = map[string]rules.NewDeliverer{"mqtt": bridge.Deliverer}
	n, err := node.New(cfg)
	switch {
	case errors.Is(err, storage.ErrLocked):
		return fmt.Errorf("another node is running on data directory %s (its store is locked)", cfg.DataDir)
	case errors.Is(err, node.ErrConfig):
		return &usageError{err}
	case err != nil:
		return err
	}
	ln, err := net.Listen("tcp", ns.apiAddr)
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	if ns.debugAddr != "" {
		dln, err := net.Listen("tcp", ns.debugAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("debug: %w", err)
		}
		defer dln.Close()
		go servePprof(dln)
		log.Info().Str("debug", "http://"+dln.Addr().String()+"/debug/pprof/").Msg("profiler endpoints on")
	}
	log.Info().Str("node_id", cfg.PublicKey().String()).Bool("new_identity", created).
		Str("network", cfg.Network).Str("data_dir", cfg.DataDir).
		Str("api", "http://"+ln.Addr().String()).Msg("node starting")

	nodeCtx, stopNode := context.WithCancel(context.Background())
	defer stopNode()
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(nodeCtx) }()
	if bridge.Enabled() {
		if err := bridge.Start(n); err != nil {
			ln.Close()
			stopNode()
			<-nodeDone
			return err
		}
		defer bridge.Close()
	}

	handler := api.NewWithOptions(n, version, log, api.Options{CORSOrigins: ns.corsOrigins,
		Tokens: ns.tokens, ReadAuth: ns.readAuth})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	srv.RegisterOnShutdown(handler.EndStreams)
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Serve(ln) }()

	r := &reloader{flags: flags, cur: ns, node: n, log: log}
	r.serve(ctx, hup, srvDone)
	log.Info().Msg("shutting down: finishing requests in flight")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	srv.Shutdown(shutCtx)
	if bridge.Enabled() {
		bridge.Close() // its submissions in flight answered, while the node runs
	}
	stopNode()
	return <-nodeDone
}

// reloader applies SIGHUP: it reads the settings again and applies those a
// running node can change, log-level and allow.
type reloader struct {
	flags *pflag.FlagSet
	cur   *nodeSettings // what the node runs with
	node  *node.Node
	log   zerolog.Logger
}

// reloadable are the settings a reload applies.
var reloadable = []string{"allow", "log-level"}

// serve reloads on every signal of hup until ctx ends or the API server
// stops.
func (r *reloader) serve(ctx context.Context, hup <-chan os.Signal, srvDone <-chan error) {
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-srvDone:
			r.log.Error().Err(err).Msg("api stopped")
			return
		case <-hup:
			r.reload(os.Environ())
		}
	}
}

// reload reads the settings from the file, environ and the flags; if they
// are valid it applies log-level and allow and logs what changed, else it
// logs why and changes nothing.
func (r *reloader) reload(environ []string) {
	next, err := readNodeSettings(r.flags, environ)
	if err != nil {
		r.log.Error().Err(err).Msg("reload refused: the configuration is invalid; nothing changed")
		return
	}
	var restart []string
	for name, v := range next.all {
		if r.cur.all[name] != v && !slices.Contains(reloadable, name) {
			restart = append(restart, name)
		}
	}
	sort.Strings(restart)
	// Report at the more verbose of the old and the new level.
	quieter := next.logLevel > r.cur.logLevel
	if !quieter {
		zerolog.SetGlobalLevel(next.logLevel)
	}
	ev := r.log.Info().Strs("restart_needed", restart)
	if next.logLevel != r.cur.logLevel {
		ev = ev.Str("log_level_from", r.cur.logLevel.String()).Str("log_level", next.logLevel.String())
	}
	if !sameKeys(next.cfg.Allowlist, r.cur.cfg.Allowlist) {
		if err := r.node.SetAllowlist(next.cfg.Allowlist); err != nil {
			r.log.Error().Err(err).Msg("allow: the allowlist applies, but its devices were not all added to the registry")
		}
		ev = ev.Int("allow_from", len(r.cur.cfg.Allowlist)).Strs("allow", keyStrings(next.cfg.Allowlist))
	}
	ev.Msg("configuration reloaded")
	if quieter {
		zerolog.SetGlobalLevel(next.logLevel)
	}
	r.cur.logLevel, r.cur.cfg.Allowlist = next.logLevel, next.cfg.Allowlist
	for _, name := range reloadable {
		r.cur.all[name] = next.all[name]
	}
}

// sameKeys reports whether a and b hold the same keys, in any order.
func sameKeys(a, b []dag.PublicKey) bool {
	as, bs := keyStrings(a), keyStrings(b)
	sort.Strings(as)
	sort.Strings(bs)
	as, bs = slices.Compact(as), slices.Compact(bs)
	return slices.Equal(as, bs)
}

func keyStrings(keys []dag.PublicKey) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k.String())
	}
	return out
}
