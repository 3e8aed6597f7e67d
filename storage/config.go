package storage

import (
	"fmt"
	"time"
)

// Config tunes a Store. Its zero value is a working configuration: every zero
// field means the default documented on it. Open fills the defaults in and
// refuses out-of-range values with ErrConfig.
type Config struct {
	// MaxBatch bounds the records in one transaction (confirmations are not
	// counted: they are small). The writer commits whatever is queued when
	// it is free, up to this many records; a single larger Write is
	// committed alone, never split. Default 4096.
	MaxBatch int

	// MaxDelay is how long the writer may wait for more Writes once it has
	// taken all that was queued and the batch is still below MaxBatch: it
	// keeps taking what arrives until MaxDelay has passed or the batch is
	// full. The default, 0, never waits: while one transaction commits, the
	// next Writes queue up and are committed together (natural group
	// commit), so waiting only adds latency. A few hundred microseconds can
	// save fsyncs when Writes trickle in one at a time.
	MaxDelay time.Duration

	// QueueLen bounds the Writes waiting for the writer. Submit blocks while
	// the queue is full. Default 64.
	QueueLen int

	// NoSync skips fsync. A crash of the machine (not only of the process)
	// can then lose acknowledged Writes or corrupt the file. For tests only.
	NoSync bool

	// OpenTimeout is how long Open waits for the file lock before it gives
	// up with ErrLocked. Default 100 ms.
	OpenTimeout time.Duration

	// FlushEvery is how many records' ID and issuer index entries are kept
	// in memory before they are written out as one sorted run per index
	// (see runs.go and docs/STORAGE.md). Larger values make fewer runs and
	// merges at the cost of memory (about 100 bytes a record), of a longer
	// flushing transaction, and of the log Open reads to rebuild them.
	// Default 65,536.
	FlushEvery int

	// MaxSize, if positive, bounds the file in bytes: a transaction that
	// would grow it beyond fails (Failing), as on a full disk. Default no
	// bound.
	MaxSize int64

	// MergeFanIn is how many runs of one level the ID and issuer indexes
	// merge into one run of the next level. Higher values write less and
	// leave more runs for a lookup to probe. Default 16; at least 2.
	MergeFanIn int

	// Retain, if positive, is how long the store keeps an epoch after it
	// was cut: older epochs are dropped whole once every message in them is
	// settled (confirmed or orphaned). Default 0: keep everything.
	Retain time.Duration

	// MaxDisk, if positive, bounds the bytes of the store's files: the
	// oldest settled epochs are dropped while the files hold more. Default
	// 0: no bound.
	MaxDisk int64

	// KeepIDs keeps the ID files of the epochs dropped (32 bytes a
	// record), until ForgetIDs lets them go: IDsAt then answers for
	// positions whose records are gone. Default false: they go with their
	// epochs.
	KeepIDs bool

	// EpochRecords is how many records an epoch (one bbolt file) holds
	// before the writer cuts the next one. The default, 524,288, is eight
	// times FlushEvery's default: an epoch's index then stays at eight runs
	// and is never merged.
	EpochRecords int

	// EpochAge is how long an epoch is written before the writer cuts the
	// next one, however few records it holds. Default 1 h, or Retain/8 if
	// that is shorter.
	EpochAge time.Duration
}

// Defaults of the Config fields of the same names.
const (
	DefaultMaxBatch     = 4096
	DefaultQueueLen     = 64
	DefaultOpenTimeout  = 100 * time.Millisecond
	DefaultFlushEvery   = 1 << 16
	DefaultMergeFanIn   = 16
	DefaultEpochRecords = 1 << 19
	DefaultEpochAge     = time.Hour
)

// withDefaults returns cfg with every zero field set to its default, or an
// error wrapping ErrConfig if a field is out of range.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.MaxBatch < 0 || cfg.QueueLen < 0 || cfg.FlushEvery < 0 || cfg.MergeFanIn < 0 ||
		cfg.MaxDelay < 0 || cfg.OpenTimeout < 0 || cfg.MaxSize < 0 ||
		cfg.Retain < 0 || cfg.MaxDisk < 0 || cfg.EpochRecords < 0 || cfg.EpochAge < 0 {
		return cfg, fmt.Errorf("%w: negative value in %+v", ErrConfig, cfg)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = DefaultQueueLen
	}
	if cfg.OpenTimeout == 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.FlushEvery == 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.MergeFanIn == 0 {
		cfg.MergeFanIn = DefaultMergeFanIn
	}
	if cfg.EpochRecords == 0 {
		cfg.EpochRecords = DefaultEpochRecords
	}
	if cfg.EpochAge == 0 {
		cfg.EpochAge = DefaultEpochAge
		if cfg.Retain > 0 {
			cfg.EpochAge = min(cfg.EpochAge, cfg.Retain/8)
		}
	}
	if cfg.EpochAge < time.Second {
		return cfg, fmt.Errorf("%w: EpochAge %v (Retain %v), want at least 1s", ErrConfig, cfg.EpochAge, cfg.Retain)
	}
	if cfg.MergeFanIn < 2 || cfg.MergeFanIn > 64 {
		return cfg, fmt.Errorf("%w: MergeFanIn %d, want 2..64", ErrConfig, cfg.MergeFanIn)
	}
	if cfg.MaxDelay > time.Second {
		return cfg, fmt.Errorf("%w: MaxDelay %v, want at most 1s", ErrConfig, cfg.MaxDelay)
	}
	return cfg, nil
}
