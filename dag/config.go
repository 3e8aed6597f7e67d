package dag

import (
	"errors"
	"fmt"
	"time"
)

// Validator is a member of the network's validator set. Its own messages are
// what confirm other messages.
type Validator struct {
	Key    PublicKey
	Weight uint64
}

// Config configures a Core. Zero fields mean the defaults documented on each;
// Params and Validators have none and must be set.
type Config struct {
	// Params are the network's validity parameters.
	Params Params
	// Validators is the validator set, at most MaxValidators, each weight
	// positive. A single node is a network whose validator set is itself.
	Validators []Validator
	// ThresholdNum/ThresholdDen is the share of the total weight that
	// confirms a message. Default 2/3.
	ThresholdNum, ThresholdDen uint64

	// MaxPending bounds the messages waiting for parents. Default 50,000;
	// when full, the oldest is dropped (reported as expired).
	MaxPending int
	// PendingTTL is how long a message may wait for its parents. Default 1 min.
	PendingTTL time.Duration

	// MaxTips bounds the tip pool. Default 4096; when full, the oldest tip leaves.
	MaxTips int
	// TipMaxAge is how long a message stays in the pool. Default 30 s.
	TipMaxAge time.Duration
	// TipMaxChildren: a tip leaves the pool once it has this many children.
	// Default 1, the tangle paper's model (a tip is an unapproved message):
	// with 2, tips leave only as fast as they come and the pool drifts up to
	// MaxTips, which delays approval, and so confirmation, in proportion.
	TipMaxChildren int
	// NotTips lists issuers whose messages never join the tip pool: a
	// validator node lists itself, since approving its own messages adds
	// no weight (its walks stop at once), and in a pool that nobody else
	// draws its messages from they would crowd out the others'.
	NotTips []PublicKey
	// LazyAge: a message with an unconfirmed parent that became solid this
	// much earlier than the message itself is lazy: it is never offered as
	// a tip. Default 30 s.
	LazyAge time.Duration

	// KeepConfirmed is how long a confirmed message stays in memory after it
	// became solid, so that late children find their parents without a
	// store lookup. Default 10 s. Unconfirmed messages are never dropped.
	KeepConfirmed time.Duration
	// MaxEntryPoints bounds the below-window messages brought back with
	// AddEntryPoint. Default 4096.
	MaxEntryPoints int
	// MaxInvalid bounds the remembered invalid IDs. Default 65,536.
	MaxInvalid int

	// Checkpoint reports whether a validator's message is a checkpoint
	// (docs/PROTOCOL.md 8.1) and, if so, its from: the lowest timestamp it
	// may cover. Nil: no message is a checkpoint. It must be a pure
	// function of the message's bytes.
	Checkpoint func(m *Message) (from int64, ok bool)
}

// MaxValidators is the largest validator set a Core supports.
const MaxValidators = 1024

// ErrConfig: a Config is unusable.
var ErrConfig = errors.New("dag: bad config")

// withDefaults returns cfg with every zero field set to its default, or an
// error if what is set is unusable.
func (cfg Config) withDefaults() (Config, error) {
	if err := cfg.Params.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if len(cfg.Validators) == 0 || len(cfg.Validators) > MaxValidators {
		return cfg, fmt.Errorf("%w: %d validators, want 1..%d", ErrConfig, len(cfg.Validators), MaxValidators)
	}
	seen := make(map[PublicKey]bool, len(cfg.Validators))
	var total uint64
	for _, v := range cfg.Validators {
		if v.Weight == 0 || v.Weight > 1<<32 {
			return cfg, fmt.Errorf("%w: validator %s has weight %d, want 1..2^32", ErrConfig, v.Key, v.Weight)
		}
		if seen[v.Key] {
			return cfg, fmt.Errorf("%w: validator %s listed twice", ErrConfig, v.Key)
		}
		seen[v.Key] = true
		total += v.Weight
	}
	if cfg.ThresholdNum == 0 && cfg.ThresholdDen == 0 {
		cfg.ThresholdNum, cfg.ThresholdDen = 2, 3
	}
	if cfg.ThresholdNum == 0 || cfg.ThresholdDen == 0 || cfg.ThresholdNum > cfg.ThresholdDen || cfg.ThresholdDen > 1<<20 {
		return cfg, fmt.Errorf("%w: threshold %d/%d", ErrConfig, cfg.ThresholdNum, cfg.ThresholdDen)
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
	def(&cfg.MaxPending, 50_000)
	defd(&cfg.PendingTTL, time.Minute)
	def(&cfg.MaxTips, 4096)
	defd(&cfg.TipMaxAge, 30*time.Second)
	def(&cfg.TipMaxChildren, 1)
	defd(&cfg.LazyAge, 30*time.Second)
	defd(&cfg.KeepConfirmed, 10*time.Second)
	def(&cfg.MaxEntryPoints, 4096)
	def(&cfg.MaxInvalid, 65_536)
	return cfg, nil
}
