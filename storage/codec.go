package storage

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/weftnet/weft/dag"
)

// The on-disk encodings, byte by byte. docs/STORAGE.md describes the same
// layout for people; the two must agree. Every integer is big-endian so that
// byte order is numeric order in keys. Every decoder checks lengths and
// returns ErrCorrupt: bytes on disk are not trusted.

// Bucket names.
var (
	bucketMeta     = []byte("meta")
	bucketLog      = []byte("log")
	bucketConf     = []byte("conf")
	bucketChildren = []byte("children")
	bucketIssuers  = []byte("issuers")
	bucketTime     = []byte("time")
	bucketIDs      = []byte("ids")
	// bucketIssuerTimes holds the runs of the issuer-time index (timeidx.go).
	bucketIssuerTimes = []byte("issuertimes")
)

// Keys of the meta bucket.
var (
	metaFormat    = []byte("format")    // 1 byte: formatVersion
	metaNext      = []byte("next")      // 8 bytes: NextPos
	metaConfirmed = []byte("confirmed") // 8 bytes: ConfirmedPrefix
	metaRuns      = []byte("runs")      // the ID index's run list, see encodeRuns
	metaMerge     = []byte("merge")     // 17 bytes: the run being merged, absent if none
	metaFlush     = []byte("flush")     // 17 bytes: the run being flushed, partly written (flush.go), absent if none
)

// formatVersion is the version of this layout, kept in meta/format and as
// the first byte of every log value. Version 1 repeated the parents, issuer,
// sequence and timestamp in a 161-byte log header; version 2 takes them from
// Raw; version 3 adds the issuer-time index; version 4 splits the store into
// a directory of epoch files (epoch.go). Open refuses any other version
// with a FormatError.
const formatVersion = 4

// Sizes.
const (
	posSize       = 8
	issuerKeySize = 48 // issuer, seq, pos; and issuer, timestamp, pos
	timeKeySize   = 16 // timestamp (sign bit flipped), pos
	runSize       = 17 // lo, hi, level
	runNameSize   = 16 // lo, hi

	// entryHeaderSize is the fixed part of a log value before Raw: format
	// (1), ID (32), parent positions (16).
	entryHeaderSize = 1 + 32 + 16
	// minEntrySize is the size of a log value whose Raw is as short as a
	// message can be.
	minEntrySize = entryHeaderSize + dag.MinSize
)

// Offsets into a log value, and into the Raw that ends it: the parents,
// issuer, sequence and timestamp are read from the message encoding at the
// offsets package dag gives (docs/PROTOCOL.md).
const (
	offFormat    = 0
	offID        = 1
	offParentPos = offID + 32
	offRaw       = offParentPos + 16

	offRawParents = dag.OffsetParents
	offRawIssuer  = dag.OffsetIssuer
	offRawSeq     = dag.OffsetSeq
	offRawTime    = dag.OffsetTimestamp
)

func putU64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }

// appendPosKey appends the 8-byte key of a position.
func appendPosKey(b []byte, pos uint64) []byte { return binary.BigEndian.AppendUint64(b, pos) }

// decodeU64 decodes an 8-byte value or key; what names it for the error.
func decodeU64(what string, v []byte) (uint64, error) {
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: %s is %d bytes, want 8", ErrCorrupt, what, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// rawFields sets r's Parents, Issuer, Seq and Timestamp from raw, which
// must be at least dag.MinSize bytes.
func rawFields(raw []byte, r *Record) {
	copy(r.Parents[0][:], raw[offRawParents:])
	copy(r.Parents[1][:], raw[offRawParents+32:])
	copy(r.Issuer[:], raw[offRawIssuer:])
	r.Seq = binary.BigEndian.Uint64(raw[offRawSeq:])
	r.Timestamp = int64(binary.BigEndian.Uint64(raw[offRawTime:]))
}

// checkRecord returns a *RecordError if r cannot be stored: its Raw is
// shorter than a message, or its Parents, Issuer, Seq or Timestamp are not
// those in Raw. The log keeps those four fields only in Raw, so a record
// whose fields disagree with it would read back different.
func checkRecord(r *Record) error {
	if len(r.Raw) < dag.MinSize {
		return &RecordError{Pos: r.Pos, Field: "Raw", Detail: fmt.Sprintf("%d bytes, a message has at least %d", len(r.Raw), dag.MinSize)}
	}
	var f Record
	rawFields(r.Raw, &f)
	switch {
	case f.Parents != r.Parents:
		return &RecordError{Pos: r.Pos, Field: "Parents", Detail: fmt.Sprintf("%x, Raw has %x", r.Parents, f.Parents)}
	case f.Issuer != r.Issuer:
		return &RecordError{Pos: r.Pos, Field: "Issuer", Detail: fmt.Sprintf("%x, Raw has %x", r.Issuer, f.Issuer)}
	case f.Seq != r.Seq:
		return &RecordError{Pos: r.Pos, Field: "Seq", Detail: fmt.Sprintf("%d, Raw has %d", r.Seq, f.Seq)}
	case f.Timestamp != r.Timestamp:
		return &RecordError{Pos: r.Pos, Field: "Timestamp", Detail: fmt.Sprintf("%d, Raw has %d", r.Timestamp, f.Timestamp)}
	}
	return nil
}

// appendEntry appends the log value of r: format, ID, parent positions, then
// Raw. r must have passed checkRecord: its other fields are not stored.
func appendEntry(b []byte, r *Record) []byte {
	b = append(b, formatVersion)
	b = append(b, r.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, r.ParentPos[0])
	b = binary.BigEndian.AppendUint64(b, r.ParentPos[1])
	return append(b, r.Raw...)
}

// decodeEntry decodes the log value v of position pos into r. Raw is copied:
// v belongs to a bbolt transaction and is only valid during it.
func decodeEntry(pos uint64, v []byte, r *Record) error {
	if err := decodeHeader(pos, v, r); err != nil {
		return err
	}
	r.Raw = append([]byte(nil), v[offRaw:]...)
	return nil
}

// decodeHeader decodes all of the log value v but Raw, whose fields it
// reads in place.
func decodeHeader(pos uint64, v []byte, r *Record) error {
	if err := checkEntry(pos, v); err != nil {
		return err
	}
	r.Pos = pos
	copy(r.ID[:], v[offID:])
	r.ParentPos[0] = binary.BigEndian.Uint64(v[offParentPos:])
	r.ParentPos[1] = binary.BigEndian.Uint64(v[offParentPos+8:])
	rawFields(v[offRaw:], r)
	return nil
}

// checkEntry checks the length and format of the log value v.
func checkEntry(pos uint64, v []byte) error {
	if len(v) < minEntrySize {
		return fmt.Errorf("%w: log value at %d is %d bytes, want at least %d", ErrCorrupt, pos, len(v), minEntrySize)
	}
	if v[offFormat] != formatVersion {
		return fmt.Errorf("%w: log value at %d has format %d, want %d", ErrCorrupt, pos, v[offFormat], formatVersion)
	}
	return nil
}

// entryID returns the ID stored in log value v without decoding the rest.
func entryID(pos uint64, v []byte) ([32]byte, error) {
	var id [32]byte
	if err := checkEntry(pos, v); err != nil {
		return id, err
	}
	copy(id[:], v[offID:])
	return id, nil
}

// The conf bucket keeps confirmations in blocks of confBlock positions: the
// key is the block number (position / confBlock, 8 bytes), the value a
// bitmap of the positions confirmed (8 bytes; the most significant bit is
// the block's first position) and then an At for each position (8 bytes,
// two's complement; 0 where the bit is clear). The writer creates a block,
// all clear, when the log reaches its first position, so blocks are appended
// in key order, and a confirmation rewrites a value of the same size: no page
// splits however late a confirmation comes. One key per position instead
// cost 32 bytes a position at best, and with a node's order of confirmations
// its pages settled about 60% full (docs/STORAGE.md).
const (
	confBlock     = 64
	confBlockSize = 8 + confBlock*8
)

// zeroConfBlock is the value of a block without confirmations.
var zeroConfBlock [confBlockSize]byte

// blockConfs is the decoded value of a conf block.
type blockConfs struct {
	set uint64 // bit 63-i: position block*confBlock+i is confirmed
	at  [confBlock]int64
}

// appendConfKey appends the conf key of the block that holds pos.
func appendConfKey(b []byte, pos uint64) []byte { return appendPosKey(b, pos/confBlock) }

// get returns the confirmation of pos, which the block must hold.
func (c *blockConfs) get(pos uint64) (at int64, ok bool) {
	i := pos % confBlock
	return c.at[i], c.set&(1<<(63-i)) != 0
}

// put records a confirmation of pos, unless it has one (only the first
// confirmation of a position is kept), and reports whether it did.
func (c *blockConfs) put(pos uint64, at int64) bool {
	i := pos % confBlock
	if c.set&(1<<(63-i)) != 0 {
		return false
	}
	c.set |= 1 << (63 - i)
	c.at[i] = at
	return true
}

// run returns how many positions from pos on, to the block's end, are
// confirmed.
func (c *blockConfs) run(pos uint64) uint64 {
	i := pos % confBlock
	return min(uint64(bits.LeadingZeros64(^(c.set << i))), confBlock-i)
}

func (c *blockConfs) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, c.set)
	for _, at := range c.at {
		b = binary.BigEndian.AppendUint64(b, uint64(at))
	}
	return b
}

// decodeConfBlock decodes the conf value v of block into c. A nil v (no
// block) is a block with no confirmations.
func decodeConfBlock(block uint64, v []byte, c *blockConfs) error {
	*c = blockConfs{}
	if v == nil {
		return nil
	}
	if len(v) != confBlockSize {
		return fmt.Errorf("%w: confirmations of block %d: %d bytes, want %d", ErrCorrupt, block, len(v), confBlockSize)
	}
	c.set = binary.BigEndian.Uint64(v)
	for i := range c.at {
		c.at[i] = int64(binary.BigEndian.Uint64(v[8+8*i:]))
		if c.at[i] != 0 && c.set&(1<<(63-i)) == 0 {
			return fmt.Errorf("%w: confirmations of block %d: a time for unconfirmed position %d", ErrCorrupt, block, block*confBlock+uint64(i))
		}
	}
	return nil
}

// The children index maps a parent's position (the key, 8 bytes) to the
// positions of its children (the value, 8 bytes each, ascending): one entry
// per parent rather than one per edge, which halves the index. The writer
// appends a parent's new children to its list.

// appendChild appends the children-index encoding of one child position.
func appendChild(b []byte, child uint64) []byte { return binary.BigEndian.AppendUint64(b, child) }

// decodeChildren decodes the children-index value v of parent: at least one
// position, each above the one before and the first above parent.
func decodeChildren(parent uint64, v []byte) ([]uint64, error) {
	if len(v) == 0 || len(v)%posSize != 0 {
		return nil, fmt.Errorf("%w: children of %d: value of %d bytes, want a non-zero multiple of %d", ErrCorrupt, parent, len(v), posSize)
	}
	out := make([]uint64, 0, len(v)/posSize)
	prev := parent
	for i := 0; i < len(v); i += posSize {
		c := binary.BigEndian.Uint64(v[i:])
		if c <= prev {
			return nil, fmt.Errorf("%w: children of %d: position %d does not follow %d", ErrCorrupt, parent, c, prev)
		}
		out = append(out, c)
		prev = c
	}
	return out, nil
}

// appendIssuerKey appends the issuer-index key: issuer, sequence, position.
func appendIssuerKey(b []byte, issuer *[32]byte, seq, pos uint64) []byte {
	b = append(b, issuer[:]...)
	b = binary.BigEndian.AppendUint64(b, seq)
	return binary.BigEndian.AppendUint64(b, pos)
}

// decodeIssuerKey decodes an issuer-index key.
func decodeIssuerKey(k []byte) (issuer [32]byte, seq, pos uint64, err error) {
	if len(k) != issuerKeySize {
		return issuer, 0, 0, fmt.Errorf("%w: issuer key is %d bytes, want %d", ErrCorrupt, len(k), issuerKeySize)
	}
	copy(issuer[:], k)
	return issuer, binary.BigEndian.Uint64(k[32:]), binary.BigEndian.Uint64(k[40:]), nil
}

// timeBits maps a signed timestamp to an unsigned one with the same order.
func timeBits(t int64) uint64 { return uint64(t) ^ (1 << 63) }

// appendTimeKey appends the time-index key: timestamp, then position.
func appendTimeKey(b []byte, t int64, pos uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, timeBits(t))
	return binary.BigEndian.AppendUint64(b, pos)
}

// decodeTimeKey decodes a time-index key.
func decodeTimeKey(k []byte) (t int64, pos uint64, err error) {
	if len(k) != timeKeySize {
		return 0, 0, fmt.Errorf("%w: time key is %d bytes, want %d", ErrCorrupt, len(k), timeKeySize)
	}
	return int64(binary.BigEndian.Uint64(k) ^ (1 << 63)), binary.BigEndian.Uint64(k[8:]), nil
}

// run is one sorted run of the ID index: the IDs of positions [lo, hi), in a
// bucket of their own under "ids", named by runName. level counts the merges
// behind it: a run written from memory has level 0, merging MergeFanIn runs
// of level l gives one of level l+1.
type run struct {
	lo, hi uint64
	level  uint8
}

// name returns the run's bucket name: lo and hi, 8 bytes each.
func (r run) name() []byte {
	b := make([]byte, 0, runNameSize)
	b = binary.BigEndian.AppendUint64(b, r.lo)
	return binary.BigEndian.AppendUint64(b, r.hi)
}

// encodeRuns encodes the run list: 17 bytes a run (lo, hi, level), in
// position order.
func encodeRuns(runs []run) []byte {
	b := make([]byte, 0, len(runs)*runSize)
	for _, r := range runs {
		b = appendRun(b, r)
	}
	return b
}

func appendRun(b []byte, r run) []byte {
	b = binary.BigEndian.AppendUint64(b, r.lo)
	b = binary.BigEndian.AppendUint64(b, r.hi)
	return append(b, r.level)
}

func decodeRun(v []byte) (run, error) {
	if len(v) != runSize {
		return run{}, fmt.Errorf("%w: run is %d bytes, want %d", ErrCorrupt, len(v), runSize)
	}
	r := run{lo: binary.BigEndian.Uint64(v), hi: binary.BigEndian.Uint64(v[8:]), level: v[16]}
	if r.lo >= r.hi {
		return run{}, fmt.Errorf("%w: run [%d, %d) is empty", ErrCorrupt, r.lo, r.hi)
	}
	return r, nil
}

// decodeRuns decodes and checks a run list: whole runs, each non-empty, each
// starting where the one before ends.
func decodeRuns(v []byte) ([]run, error) {
	if len(v)%runSize != 0 {
		return nil, fmt.Errorf("%w: run list is %d bytes, not a multiple of %d", ErrCorrupt, len(v), runSize)
	}
	runs := make([]run, 0, len(v)/runSize)
	for i := 0; i < len(v); i += runSize {
		r, err := decodeRun(v[i : i+runSize])
		if err != nil {
			return nil, err
		}
		if n := len(runs); n > 0 && runs[n-1].hi != r.lo {
			return nil, fmt.Errorf("%w: run [%d, %d) does not follow [%d, %d)", ErrCorrupt, r.lo, r.hi, runs[n-1].lo, runs[n-1].hi)
		}
		runs = append(runs, r)
	}
	return runs, nil
}
