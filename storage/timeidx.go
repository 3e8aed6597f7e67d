package storage

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The issuer-time index answers "what did this device report between T1
// and T2". A device sets its own timestamps, and nothing makes them follow
// its sequence numbers, so the issuer index cannot answer it; the global
// time index can only by reading every device's messages of the range. The
// index is keyed by issuer (32), timestamp (8, sign flipped, as in the time
// index) and position (8), with no value. Like the issuer index, each
// issuer's new entries land at its own place in the key space, so it is
// kept in the same runs (runs.go): the newest entries in the memtable, the
// others in sorted runs flushed and merged with those of the ID and issuer
// indexes, one bucket per run under "issuertimes".

// appendIssuerTimeKey appends the issuer-time-index key: issuer, then the
// time-index key of (t, pos).
func appendIssuerTimeKey(b []byte, issuer *[32]byte, t int64, pos uint64) []byte {
	return appendTimeKey(append(b, issuer[:]...), t, pos)
}

// decodeIssuerTimeKey decodes an issuer-time-index key.
func decodeIssuerTimeKey(k []byte) (issuer [32]byte, t int64, pos uint64, err error) {
	if len(k) != issuerKeySize {
		return issuer, 0, 0, fmt.Errorf("%w: issuer-time key is %d bytes, want %d", ErrCorrupt, len(k), issuerKeySize)
	}
	copy(issuer[:], k)
	t, pos, err = decodeTimeKey(k[32:])
	return issuer, t, pos, err
}

// compareTimePos orders TimePos by time, then position.
func compareTimePos(a, b TimePos) int {
	return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Pos, b.Pos))
}

// ByIssuerTime returns the entries of issuer whose (Timestamp, Pos) is at
// least from and whose Timestamp is below until, in that order, at most
// limit of them (limit <= 0: no limit; callers that serve untrusted
// requests must pass one). To read the next page, pass
// TimePos{last.Timestamp, last.Pos + 1}. Safe from any goroutine.
//
// It reads the issuer-time index: its cost is that of the issuer's entries
// in the range (a seek in every run and a read of each entry's record),
// not that of the store or of other issuers' messages.
func (s *Store) ByIssuerTime(issuer [32]byte, from TimePos, until int64, limit int) ([]Entry, error) {
	if from.Time >= until {
		return nil, nil
	}
	sn, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer sn.close()
	var tps []TimePos
	for _, e := range sn.memIssuer(&issuer, func(e memEntry) bool {
		return compareTimePos(TimePos{e.time, e.pos}, from) >= 0 && e.time < until
	}) {
		tps = append(tps, TimePos{e.time, e.pos})
	}
	seek := appendIssuerTimeKey(nil, &issuer, from.Time, from.Pos)
	for i := range sn.eps {
		tx, err := sn.tx(i)
		if err != nil {
			return nil, err
		}
		err = scanRuns(tx, issuerTimeIndex, seek, limit, func(k []byte, r run) (bool, error) {
			if !bytes.HasPrefix(k, issuer[:]) {
				return false, nil
			}
			_, t, pos, err := decodeIssuerTimeKey(k)
			if err != nil {
				return false, err
			}
			if t >= until {
				return false, nil
			}
			if pos < r.lo || pos >= r.hi {
				return false, fmt.Errorf("%w: issuer-time run [%d, %d) names position %d", ErrCorrupt, r.lo, r.hi, pos)
			}
			tps = append(tps, TimePos{t, pos})
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(tps, compareTimePos)
	// Right after a flush a reader can see a position both in the memtable
	// and in the new run.
	tps = slices.Compact(tps)
	if limit > 0 && len(tps) > limit {
		tps = tps[:limit]
	}
	return sn.timeEntries(tps, &issuer, "issuer-time")
}

// maxStep is the farthest timeEntries steps its cursor forward rather than
// seek: a step is a fraction of a seek, which searches the tree from its
// root.
const maxStep = 16

// timeEntries reads the entries at tps, which index (named for errors) gave
// for those timestamps, and checks that each has its timestamp (and is
// issuer's, if issuer is not nil). Positions a little after the one
// before (a time range of every issuer, whose timestamps mostly follow
// arrival; a busy device's) are reached by stepping a cursor, and a block
// of confirmations is decoded once for the positions it holds, as Range
// does.
func (sn *snap) timeEntries(tps []TimePos, issuer *[32]byte, index string) ([]Entry, error) {
	var (
		ep    = -1 // the epoch of c
		c     *bolt.Cursor
		conf  *bolt.Bucket
		k, v  []byte
		last  = NoPos // the position c is at
		blk   blockConfs
		block = NoPos // the block in blk
		key   [8]byte
	)
	out := make([]Entry, 0, len(tps))
	var arena []byte
	for _, tp := range tps {
		i, err := sn.epochOf(tp.Pos)
		if err != nil {
			return nil, fmt.Errorf("%w: the %s index names position %d: %w", ErrCorrupt, index, tp.Pos, err)
		}
		if i != ep {
			tx, err := sn.tx(i)
			if err != nil {
				return nil, err
			}
			logb := tx.Bucket(bucketLog)
			conf = tx.Bucket(bucketConf)
			if logb == nil || conf == nil {
				return nil, fmt.Errorf("%w: missing bucket", ErrCorrupt)
			}
			c, ep, last, block = logb.Cursor(), i, NoPos, NoPos
		}
		putU64(key[:], tp.Pos)
		if last != NoPos && tp.Pos > last && tp.Pos-last <= maxStep {
			for range tp.Pos - last {
				k, v = c.Next()
			}
		} else {
			k, v = c.Seek(key[:])
		}
		last = tp.Pos
		if !bytes.Equal(k, key[:]) {
			return nil, fmt.Errorf("%w: the %s index names position %d, which is not in the log", ErrCorrupt, index, tp.Pos)
		}
		var e Entry
		if err := decodeHeader(tp.Pos, v, &e.Record); err != nil {
			return nil, err
		}
		// The Raws share one buffer, which spares an allocation each. When
		// it grows, those before keep the old one: they stay valid.
		if arena == nil { // room for all, if the rest are about this size
			arena = make([]byte, 0, (len(v)-offRaw)*len(tps)*5/4)
		}
		start := len(arena)
		arena = append(arena, v[offRaw:]...)
		e.Raw = arena[start:len(arena):len(arena)]
		if e.Timestamp != tp.Time || (issuer != nil && e.Issuer != *issuer) {
			return nil, fmt.Errorf("%w: the %s index names position %d, which has another timestamp or issuer", ErrCorrupt, index, tp.Pos)
		}
		if b := tp.Pos / confBlock; b != block {
			if err := decodeConfBlock(b, conf.Get(binaryPos(b)), &blk); err != nil {
				return nil, err
			}
			block = b
		}
		setConf(&e, &blk)
		out = append(out, e)
	}
	return out, nil
}
