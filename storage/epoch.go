package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A store is a directory of bbolt files: one per epoch, a range of log
// positions [lo, next lo), named epoch-<lo, 16 hex digits>.db; state.db,
// the node-local state; and frontier, what the last drop left behind (the
// first position kept and the entry points). The newest epoch takes the
// records; older ones take only late confirmations of their positions,
// until every position in them is settled, and then nothing. Dropping an
// epoch is removing its file (docs/STORAGE.md, "Retention").
const (
	epochPrefix  = "epoch-"
	epochSuffix  = ".db"
	stateFile    = "state.db"
	frontierFile = "frontier"
)

// Meta keys of an epoch file beside those of codec.go.
var (
	metaLo       = []byte("lo")       // 8: the epoch's first position
	metaCreated  = []byte("created")  // 8: unix ns when the epoch was begun
	metaCut      = []byte("cut")      // 8: unix ns when the next epoch was begun; absent in the newest
	metaConfBase = []byte("confbase") // 8: the first confirmation-log place this file holds
	bucketRedo   = []byte("redo")     // the last commit's confirmations of older epochs' positions
	redoKey      = []byte{0}
)

// epoch is one file of the store. lo and path never change; db is closed
// only once the epoch has left Store.epochs. runs is the run list of an
// older epoch (fixed once it was cut); the newest epoch's runs are the
// writer's (writer.runs) and a reader reads them from its transaction.
type epoch struct {
	lo       uint64
	path     string
	db       *bolt.DB
	ids      *os.File // the ID file (ids.go)
	runs     []run
	created  int64 // unix ns
	cutAt    int64 // unix ns; 0 for the newest
	confBase uint64
	// span holds the least and greatest timestamps of the epoch's records
	// once no more records go to it (every epoch but the newest): a
	// lookup that knows a message's timestamp skips the epochs outside.
	span timeSpan
}

// timeSpan is the range of the timestamps of an epoch's records; known is
// false while records may still be added (the newest epoch).
type timeSpan struct {
	lo, hi int64
	known  bool
}

// excludes reports whether the epoch cannot hold a record with timestamp
// ts.
func (sp timeSpan) excludes(ts int64) bool { return sp.known && (ts < sp.lo || ts > sp.hi) }

// readSpan reads the span of the records in tx's epoch from the first and
// last keys of its time index. An epoch with no records excludes every
// timestamp.
func readSpan(tx *bolt.Tx) (timeSpan, error) {
	c := tx.Bucket(bucketTime).Cursor()
	first, _ := c.First()
	if first == nil {
		return timeSpan{lo: math.MaxInt64, hi: math.MinInt64, known: true}, nil
	}
	last, _ := c.Last()
	lo, _, err := decodeTimeKey(first)
	if err != nil {
		return timeSpan{}, err
	}
	hi, _, err := decodeTimeKey(last)
	if err != nil {
		return timeSpan{}, err
	}
	return timeSpan{lo: lo, hi: hi, known: true}, nil
}

func epochName(lo uint64) string { return fmt.Sprintf("%s%016x%s", epochPrefix, lo, epochSuffix) }

// parseEpochName returns the lo of an epoch file's name.
func parseEpochName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, epochPrefix) || !strings.HasSuffix(name, epochSuffix) {
		return 0, false
	}
	hex := strings.TrimSuffix(strings.TrimPrefix(name, epochPrefix), epochSuffix)
	if len(hex) != 16 {
		return 0, false
	}
	lo, err := strconv.ParseUint(hex, 16, 64)
	return lo, err == nil
}

// openBolt opens a bbolt file of the store with the store's options,
// mapping bbolt's errors to the package's.
func openBolt(path string, cfg Config) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      cfg.OpenTimeout,
		NoSync:       cfg.NoSync,
		FreelistType: bolt.FreelistMapType,
		MaxSize:      int(min(cfg.MaxSize, 1<<62)),
		// Address space, not memory: a new epoch's file grows from
		// nothing, and bbolt remaps it (waiting for every read) each
		// time its mapping doubles, a dozen times in its first seconds,
		// unless the first mapping is large.
		InitialMmapSize: initialMmap,
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, path, cfg.OpenTimeout)
	case errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	case err != nil:
		return nil, fmt.Errorf("storage: opening %s: %w", path, err)
	}
	return db, nil
}

// initialMmap is the size of each file's first mapping.
const initialMmap = 1 << 30

// listEpochs returns the los of the epoch files in dir, ascending.
func listEpochs(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var los []uint64
	for _, de := range des {
		if lo, ok := parseEpochName(de.Name()); ok {
			los = append(los, lo)
		}
	}
	slices.Sort(los)
	return los, nil
}

// syncDir makes the directory's entries (files created, renamed, removed)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// epochMeta is what an epoch file's meta bucket says.
type epochMeta struct {
	lo, next, confirmed uint64
	runs                []run
	merge               *run
	created, cut        int64
	confBase, confCount uint64
}

// initEpoch writes the meta of a new epoch file that begins at lo, or
// checks that of an existing one, and returns it.
func initEpoch(db *bolt.DB, lo, confirmed, confCount uint64, now int64) (epochMeta, error) {
	var m epochMeta
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketLog, bucketConf, bucketChildren, bucketTime, bucketIDs, bucketIssuers, bucketIssuerTimes, bucketConfLog, bucketRedo} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("%w: bucket %s: %v", ErrCorrupt, name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(metaFormat); {
		case v == nil:
			if tx.Bucket(bucketLog).Stats().KeyN != 0 {
				return fmt.Errorf("%w: records but no format", ErrCorrupt)
			}
			for _, kv := range [][2][]byte{
				{metaFormat, {formatVersion}}, {metaLo, binaryPos(lo)}, {metaNext, binaryPos(lo)},
				{metaConfirmed, binaryPos(confirmed)}, {metaRuns, {}}, {metaCreated, binaryPos(uint64(now))},
				{metaConfBase, binaryPos(confCount)}, {metaConfLog, binaryPos(confCount)},
			} {
				if err := meta.Put(kv[0], kv[1]); err != nil {
					return err
				}
			}
			if lo%confBlock != 0 {
				// The block that holds lo begins in the epoch before: this
				// file keeps its own copy, for its positions.
				if err := tx.Bucket(bucketConf).Put(binaryPos(lo/confBlock), zeroConfBlock[:]); err != nil {
					return err
				}
			}
		case len(v) != 1:
			return fmt.Errorf("%w: format %x", ErrCorrupt, v)
		case v[0] != formatVersion:
			return &FormatError{Found: int(v[0]), Want: formatVersion}
		}
		return nil
	})
	if err != nil {
		return m, err
	}
	err = db.View(func(tx *bolt.Tx) (err error) {
		m, err = readEpochMeta(tx)
		return err
	})
	return m, err
}

// readEpochMeta reads and checks an epoch file's meta bucket.
func readEpochMeta(tx *bolt.Tx) (epochMeta, error) {
	var m epochMeta
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return m, fmt.Errorf("%w: no meta bucket", ErrCorrupt)
	}
	u64 := func(key []byte, dst *uint64) error {
		v, err := decodeU64("meta "+string(key), meta.Get(key))
		*dst = v
		return err
	}
	var created uint64
	for _, f := range []struct {
		k []byte
		p *uint64
	}{{metaLo, &m.lo}, {metaNext, &m.next}, {metaConfirmed, &m.confirmed}, {metaCreated, &created}, {metaConfBase, &m.confBase}} {
		if err := u64(f.k, f.p); err != nil {
			return m, err
		}
	}
	m.created = int64(created)
	if v := meta.Get(metaCut); v != nil {
		cut, err := decodeU64("meta cut", v)
		if err != nil {
			return m, err
		}
		m.cut = max(int64(cut), 1)
	}
	if m.next < m.lo {
		return m, fmt.Errorf("%w: epoch from %d ends at %d", ErrCorrupt, m.lo, m.next)
	}
	last, _ := tx.Bucket(bucketLog).Cursor().Last()
	switch {
	case last == nil && m.next != m.lo:
		return m, fmt.Errorf("%w: empty log, next position %d", ErrCorrupt, m.next)
	case last != nil:
		lp, err := decodeU64("log key", last)
		if err != nil {
			return m, err
		}
		if lp+1 != m.next {
			return m, fmt.Errorf("%w: log ends at %d, next position %d", ErrCorrupt, lp, m.next)
		}
	}
	var err error
	if m.runs, m.merge, err = loadRuns(tx); err != nil {
		return m, err
	}
	if len(m.runs) > 0 && m.runs[0].lo != m.lo {
		return m, fmt.Errorf("%w: first run starts at %d, the epoch at %d", ErrCorrupt, m.runs[0].lo, m.lo)
	}
	if len(m.runs) > 0 && m.runs[len(m.runs)-1].hi > m.next {
		return m, fmt.Errorf("%w: ID index reaches %d beyond the log's end %d", ErrCorrupt, m.runs[len(m.runs)-1].hi, m.next)
	}
	if m.merge != nil {
		if _, _, err := mergeSources(m.runs, *m.merge); err != nil {
			return m, err
		}
	}
	if m.confCount, err = loadConfLogCount(tx, m.confBase); err != nil {
		return m, err
	}
	return m, nil
}

// redo encodes confirmations of older epochs' positions: position (8), at
// (8) each.
func encodeRedo(cs []confirm) []byte {
	b := make([]byte, 0, 16*len(cs))
	for _, c := range cs {
		b = binary.BigEndian.AppendUint64(b, c.pos)
		b = binary.BigEndian.AppendUint64(b, uint64(c.at))
	}
	return b
}

func decodeRedo(v []byte) ([]confirm, error) {
	if len(v)%16 != 0 {
		return nil, fmt.Errorf("%w: redo of %d bytes", ErrCorrupt, len(v))
	}
	cs := make([]confirm, 0, len(v)/16)
	for i := 0; i < len(v); i += 16 {
		cs = append(cs, confirm{pos: binary.BigEndian.Uint64(v[i:]), at: int64(binary.BigEndian.Uint64(v[i+8:]))})
	}
	return cs, nil
}

// setConfs sets the confirmations cs (sorted by position, all in the epoch
// of tx, below its next) in tx's blocks where they are not set yet, and
// returns those it set.
func setConfs(tx *bolt.Tx, cs []confirm, set func(c confirm)) error {
	conf := tx.Bucket(bucketConf)
	if conf == nil {
		return fmt.Errorf("%w: missing bucket", ErrCorrupt)
	}
	conf.FillPercent = 1
	var (
		blk     blockConfs
		cur     = NoPos
		changed bool
	)
	flush := func() error {
		if changed {
			if err := conf.Put(binaryPos(cur), blk.appendTo(nil)); err != nil {
				return err
			}
		}
		changed = false
		return nil
	}
	for _, c := range cs {
		if b := c.pos / confBlock; b != cur {
			if err := flush(); err != nil {
				return err
			}
			cur = b
			if err := decodeConfBlock(b, conf.Get(binaryPos(b)), &blk); err != nil {
				return err
			}
		}
		if blk.put(c.pos, c.at) {
			changed = true
			if set != nil {
				set(c)
			}
		}
	}
	return flush()
}

// DiskUsage returns the bytes the store's files take on the file system:
// the blocks allocated to them, not their sizes.
func (s *Store) DiskUsage() int64 {
	des, err := os.ReadDir(s.path)
	if err != nil {
		return 0
	}
	var total int64
	for _, de := range des {
		fi, err := de.Info()
		if err != nil {
			continue
		}
		total += allocated(fi)
	}
	return total
}

// Epochs describes the store's epochs, oldest first.
type EpochInfo struct {
	Lo, Hi  uint64 // positions [Lo, Hi); Hi is NextPos for the newest
	Created time.Time
	Cut     time.Time // zero for the newest
	Bytes   int64     // on the file system
}

// Epochs returns the store's epochs, oldest first.
func (s *Store) Epochs() []EpochInfo {
	s.mu.RLock()
	eps := s.epochs
	s.mu.RUnlock()
	out := make([]EpochInfo, len(eps))
	for i, e := range eps {
		hi := s.NextPos()
		if i+1 < len(eps) {
			hi = eps[i+1].lo
		}
		out[i] = EpochInfo{Lo: e.lo, Hi: hi, Created: time.Unix(0, e.created)}
		if e.cutAt != 0 {
			out[i].Cut = time.Unix(0, e.cutAt)
		}
		out[i].Bytes = fileBytes(e.path)
	}
	return out
}

func epochPath(dir string, lo uint64) string { return filepath.Join(dir, epochName(lo)) }

// allocated returns the bytes the file system allocated to a file: its
// blocks, not its size (bbolt files are sparse where they were grown but
// not written).
func allocated(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
