package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/gossip"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/pow"
	"github.com/weftnet/weft/storage"
)

// identityFile is the node's key, in its data directory.
const identityFile = "node.key"

func newNodeCmd() *cobra.Command {
	v := viper.New()
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run a node",
		Long: `Run a Weft node. With no flags and no file it starts on embedded defaults: data in
./weft-data, the API on 127.0.0.1:8080, a new identity kept in the data directory, and a
single-validator network of itself.

Settings come from, in increasing precedence: the defaults, a YAML file (--config), WEFT_*
environment variables (WEFT_DATA_DIR, WEFT_API_ADDR, ...), and flags. The YAML keys are the
flag names (data-dir: ./weft-data).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runNode(cmd.Context(), v) },
	}
	f := cmd.Flags()
	f.String("config", "", "YAML configuration file")
	f.String("data-dir", "./weft-data", "data directory: the store and the node's identity")
	f.String("api-addr", "127.0.0.1:8080", "HTTP API address")
	f.String("gossip-addr", "127.0.0.1:7070", "gossip address (UDP, QUIC); empty with no peers: no gossip")
	f.StringSlice("peer", nil, "peer PUBKEY@HOST:PORT (hex key), repeatable: the nodes to gossip with, pinned by key")
	f.Bool("open", false, "let nodes that are not in the peer list connect")
	f.String("network", "weft-devnet", "network name")
	f.String("log-level", "info", "log level: debug, info, warn, error")
	f.Int("max-payload", dag.DefaultMaxPayload, "network payload limit in bytes")
	f.Int("pow-base", pow.DefaultBase, "network base proof-of-work difficulty in bits; 0 turns proof of work off")
	f.StringSlice("validator", nil, "validator KEY:WEIGHT (hex key), repeatable; default this node alone")
	f.Duration("issue-interval", 50*time.Millisecond, "pace of this node's own messages as a validator, while there is unconfirmed traffic (sooner under load: after 50 others' messages, at most every 10ms)")
	f.Float64("rate-per-issuer", 0, "messages a second each device may submit (0: no limit)")
	f.Int("rate-burst", 0, "burst allowed above the rate (default: one second's worth)")
	f.StringSlice("allow", nil, "device public keys allowed to submit (hex), repeatable; default everyone")
	f.StringSlice("remote-pow-key", nil, "device public keys the node does the proof of work for (hex), repeatable; default none")
	f.Duration("max-clock-skew", time.Minute, "refuse device messages timestamped further ahead of this node's clock")
	f.Duration("submit-timeout", 5*time.Second, "how long a submission waits for unknown parents")
	f.Bool("no-sync", false, "skip fsync (tests only: acknowledged messages can be lost on power failure)")
	v.BindPFlags(f)
	v.SetEnvPrefix("WEFT")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	return cmd
}

// nodeConfig reads the settings into a node.Config: the one place that
// interprets flags, environment and files.
func nodeConfig(v *viper.Viper) (node.Config, error) {
	if f := v.GetString("config"); f != "" {
		v.SetConfigFile(f)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return node.Config{}, fmt.Errorf("reading %s: %w", f, err)
		}
	}
	cfg := node.Config{
		DataDir:       v.GetString("data-dir"),
		Network:       v.GetString("network"),
		MaxPayload:    v.GetInt("max-payload"),
		PoWBase:       v.GetInt("pow-base"),
		IssueInterval: v.GetDuration("issue-interval"),
		RatePerIssuer: v.GetFloat64("rate-per-issuer"),
		RateBurst:     v.GetInt("rate-burst"),
		MaxClockSkew:  v.GetDuration("max-clock-skew"),
		SubmitTimeout: v.GetDuration("submit-timeout"),
		Store:         storage.Config{NoSync: v.GetBool("no-sync")},
	}
	if cfg.PoWBase == 0 {
		cfg.NoPoW = true
	}
	if cfg.MaxPayload < 1 || cfg.MaxPayload > dag.MaxPayload {
		return cfg, fmt.Errorf("max-payload %d: want 1..%d", cfg.MaxPayload, dag.MaxPayload)
	}
	for _, s := range v.GetStringSlice("validator") {
		k, w, ok := strings.Cut(s, ":")
		if !ok {
			w = "1"
		}
		key, err := parseKey(k)
		if err != nil {
			return cfg, fmt.Errorf("validator %q: %w", s, err)
		}
		weight, err := strconv.ParseUint(w, 10, 32)
		if err != nil || weight == 0 {
			return cfg, fmt.Errorf("validator %q: weight must be a positive integer", s)
		}
		cfg.Validators = append(cfg.Validators, dag.Validator{Key: key, Weight: weight})
	}
	cfg.GossipListen = v.GetString("gossip-addr")
	cfg.OpenGossip = v.GetBool("open")
	for _, s := range v.GetStringSlice("peer") {
		k, addr, ok := strings.Cut(s, "@")
		if !ok || addr == "" {
			return cfg, fmt.Errorf("peer %q: want PUBKEY@HOST:PORT", s)
		}
		key, err := parseKey(k)
		if err != nil {
			return cfg, fmt.Errorf("peer %q: %w", s, err)
		}
		cfg.Peers = append(cfg.Peers, gossip.Peer{Key: key, Addr: addr})
	}
	var err error
	if cfg.Allowlist, err = parseKeys(v.GetStringSlice("allow")); err != nil {
		return cfg, fmt.Errorf("allow: %w", err)
	}
	if cfg.RemotePoWKeys, err = parseKeys(v.GetStringSlice("remote-pow-key")); err != nil {
		return cfg, fmt.Errorf("remote-pow-key: %w", err)
	}
	return cfg, nil
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

// newLogger logs for people on a terminal and as JSON lines otherwise.
func newLogger(level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("log-level %q: want debug, info, warn or error", level)
	}
	var log zerolog.Logger
	if isatty.IsTerminal(os.Stderr.Fd()) {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(lvl).With().Timestamp().Logger(), nil
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

func runNode(ctx context.Context, v *viper.Viper) error {
	cfg, err := nodeConfig(v)
	if err != nil {
		return err
	}
	log, err := newLogger(v.GetString("log-level"))
	if err != nil {
		return err
	}
	key, created, err := loadIdentity(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("node identity: %w", err)
	}
	cfg.Identity = key
	cfg.Log = log
	n, err := node.New(cfg)
	if errors.Is(err, storage.ErrLocked) {
		return fmt.Errorf("another node is running on data directory %s (its store is locked)", cfg.DataDir)
	}
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", v.GetString("api-addr"))
	if err != nil {
		return fmt.Errorf("api: %w", err)
	}
	log.Info().Str("node_id", cfg.PublicKey().String()).Bool("new_identity", created).
		Str("network", cfg.Network).Str("data_dir", cfg.DataDir).
		Str("api", "http://"+ln.Addr().String()).Msg("node starting")

	nodeCtx, stopNode := context.WithCancel(context.Background())
	defer stopNode()
	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(nodeCtx) }()

	handler := api.New(n, version, log)
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

	select {
	case <-ctx.Done():
	case err := <-srvDone:
		log.Error().Err(err).Msg("api stopped")
	}
	log.Info().Msg("shutting down: finishing requests in flight")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	srv.Shutdown(shutCtx)
	stopNode()
	return <-nodeDone
}
