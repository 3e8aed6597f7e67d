package storage

import (
	"encoding/binary"
	"fmt"
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
)

// Keys of the meta bucket.
var (
	metaFormat    = []byte("format")    // 1 byte: formatVersion
	metaNext      = []byte("next")      // 8 bytes: NextPos
	metaConfirmed = []byte("confirmed") // 8 bytes: ConfirmedPrefix
	metaRuns      = []byte("runs")      // the ID index's run list, see encodeRuns
	metaMerge     = []byte("merge")     // 17 bytes: the run being merged, absent if none
)

// formatVersion is the version of this layout, kept in meta/format and as
// the first byte of every log value.
const formatVersion = 1

// Sizes.
const (
	posSize       = 8
	childKeySize  = 16 // parent pos, child pos
	issuerKeySize = 48 // issuer, seq, pos
	timeKeySize   = 16 // timestamp (sign bit flipped), pos
	runSize       = 17 // lo, hi, level
	runNameSize   = 16 // lo, hi

	// entryHeaderSize is the fixed part of a log value before Raw: format
	// (1), ID (32), parents (64), parent positions (16), issuer (32), seq
	// (8), timestamp (8).
	entryHeaderSize = 1 + 32 + 64 + 16 + 32 + 8 + 8
)

// Offsets into a log value.
const (
	offFormat    = 0
	offID        = 1
	offParents   = offID + 32
	offParentPos = offParents + 64
	offIssuer    = offParentPos + 16
	offSeq       = offIssuer + 32
	offTime      = offSeq + 8
	offRaw       = offTime + 8
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

// appendEntry appends the log value of r: the fixed header, then Raw.
func appendEntry(b []byte, r *Record) []byte {
	b = append(b, formatVersion)
	b = append(b, r.ID[:]...)
	b = append(b, r.Parents[0][:]...)
	b = append(b, r.Parents[1][:]...)
	b = binary.BigEndian.AppendUint64(b, r.ParentPos[0])
	b = binary.BigEndian.AppendUint64(b, r.ParentPos[1])
	b = append(b, r.Issuer[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp))
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

// decodeHeader decodes all of the log value v but Raw.
func decodeHeader(pos uint64, v []byte, r *Record) error {
	if len(v) < entryHeaderSize {
		return fmt.Errorf("%w: log value at %d is %d bytes, want at least %d", ErrCorrupt, pos, len(v), entryHeaderSize)
	}
	if v[offFormat] != formatVersion {
		return fmt.Errorf("%w: log value at %d has format %d, want %d", ErrCorrupt, pos, v[offFormat], formatVersion)
	}
	r.Pos = pos
	copy(r.ID[:], v[offID:])
	copy(r.Parents[0][:], v[offParents:])
	copy(r.Parents[1][:], v[offParents+32:])
	r.ParentPos[0] = binary.BigEndian.Uint64(v[offParentPos:])
	r.ParentPos[1] = binary.BigEndian.Uint64(v[offParentPos+8:])
	copy(r.Issuer[:], v[offIssuer:])
	r.Seq = binary.BigEndian.Uint64(v[offSeq:])
	r.Timestamp = int64(binary.BigEndian.Uint64(v[offTime:]))
	return nil
}

// entryID returns the ID stored in log value v without decoding the rest.
func entryID(pos uint64, v []byte) ([32]byte, error) {
	var id [32]byte
	if len(v) < entryHeaderSize || v[offFormat] != formatVersion {
		return id, fmt.Errorf("%w: log value at %d: bad header (%d bytes)", ErrCorrupt, pos, len(v))
	}
	copy(id[:], v[offID:])
	return id, nil
}

// appendChildKey appends the children-index key: parent then child position,
// so that a parent's children are adjacent and new keys land near the end.
func appendChildKey(b []byte, parent, child uint64) []byte {
	b = binary.BigEndian.AppendUint64(b, parent)
	return binary.BigEndian.AppendUint64(b, child)
}

// decodeChildKey decodes a children-index key.
func decodeChildKey(k []byte) (parent, child uint64, err error) {
	if len(k) != childKeySize {
		return 0, 0, fmt.Errorf("%w: children key is %d bytes, want %d", ErrCorrupt, len(k), childKeySize)
	}
	return binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:]), nil
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
