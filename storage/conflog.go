package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The confirmation log lists the positions confirmed, in the order their
// confirmations were committed: the node's confirmation order, which a
// consumer of its event feed resumes from. The first confirmation of each
// position gets the next sequence number, from 0; an orphan's settlement
// gets none. It is kept in blocks of confLogBlock sequence numbers: the
// key is the block number (sequence / confLogBlock, 8 bytes), the value the
// positions of the block's sequence numbers so far, 8 bytes each. Blocks
// are appended in key order and the last one grows, so pages fill to 100%:
// 8 bytes a confirmation, where a key per confirmation cost 32. The meta
// key confLog holds the count of sequence numbers given (8 bytes).
var (
	bucketConfLog = []byte("conflog")
	metaConfLog   = []byte("conflog")
)

const confLogBlock = 64

// NoSeq is the ConfirmSeq of a Confirmation that took no place in the
// confirmation log: an orphan's settlement, or a position confirmed
// before.
const NoSeq = ^uint64(0)

// Confirmed is an entry as the confirmation log lists it: its place there,
// Seq, and the entry.
type Confirmed struct {
	Seq uint64
	Entry
}

// ConfirmCount returns the number of positions in the confirmation log: the
// Seq the next confirmation will get.
func (s *Store) ConfirmCount() uint64 { return s.confCount.Load() }

// appendConfLog appends positions to the confirmation log of tx, which
// holds count sequence numbers, and returns the new count.
func appendConfLog(tx *bolt.Tx, count uint64, positions []uint64) (uint64, error) {
	b := tx.Bucket(bucketConfLog)
	b.FillPercent = 1
	for i := 0; i < len(positions); {
		block := count / confLogBlock
		k := binaryPos(block)
		old := b.Get(k)
		if len(old) != int(count%confLogBlock)*8 {
			return count, fmt.Errorf("%w: confirmation log block %d is %d bytes, want %d", ErrCorrupt, block, len(old), count%confLogBlock*8)
		}
		v := make([]byte, len(old), len(old)+min(len(positions)-i, confLogBlock)*8)
		copy(v, old)
		for ; i < len(positions) && len(v) < confLogBlock*8; i++ {
			v = binary.BigEndian.AppendUint64(v, positions[i])
			count++
		}
		if err := b.Put(k, v); err != nil {
			return count, err
		}
	}
	return count, tx.Bucket(bucketMeta).Put(metaConfLog, binaryPos(count))
}

// loadConfLogCount reads the count of the confirmation log and checks it
// against the log's last block. A store written before the log existed has
// neither: its count is 0.
func loadConfLogCount(tx *bolt.Tx) (uint64, error) {
	v := tx.Bucket(bucketMeta).Get(metaConfLog)
	lk, lv := tx.Bucket(bucketConfLog).Cursor().Last()
	if v == nil {
		if lk != nil {
			return 0, fmt.Errorf("%w: a confirmation log without a count", ErrCorrupt)
		}
		return 0, nil
	}
	count, err := decodeU64("meta conflog", v)
	if err != nil {
		return 0, err
	}
	var want uint64
	if lk != nil {
		block, err := decodeU64("conflog key", lk)
		if err != nil {
			return 0, err
		}
		if len(lv) == 0 || len(lv)%8 != 0 || len(lv) > confLogBlock*8 {
			return 0, fmt.Errorf("%w: confirmation log block %d is %d bytes", ErrCorrupt, block, len(lv))
		}
		want = block*confLogBlock + uint64(len(lv))/8
	}
	if count != want {
		return 0, fmt.Errorf("%w: confirmation log count %d, its blocks hold %d", ErrCorrupt, count, want)
	}
	return count, nil
}

// ByConfirmation returns the entries of the confirmation log from sequence
// number from on, in that order, at most limit of them (limit <= 0: no
// limit; callers that serve untrusted requests must pass one). To read the
// next page, pass the last Seq plus one. Safe from any goroutine.
func (s *Store) ByConfirmation(from uint64, limit int) ([]Confirmed, error) {
	var out []Confirmed
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketConfLog)
		if b == nil {
			return fmt.Errorf("%w: missing bucket", ErrCorrupt)
		}
		c := b.Cursor()
		for k, v := c.Seek(binaryPos(from / confLogBlock)); k != nil; k, v = c.Next() {
			block, err := decodeU64("conflog key", k)
			if err != nil {
				return err
			}
			if len(v)%8 != 0 || len(v) > confLogBlock*8 {
				return fmt.Errorf("%w: confirmation log block %d is %d bytes", ErrCorrupt, block, len(v))
			}
			for i := 0; i < len(v); i += 8 {
				seq := block*confLogBlock + uint64(i/8)
				if seq < from {
					continue
				}
				if limit > 0 && len(out) == limit {
					return nil
				}
				pos := binary.BigEndian.Uint64(v[i:])
				e, err := entryAt(tx, pos)
				if errors.Is(err, ErrNotFound) {
					err = fmt.Errorf("%w: the confirmation log names position %d, which is not in the log", ErrCorrupt, pos)
				}
				if err == nil && !e.Confirmed {
					err = fmt.Errorf("%w: the confirmation log names position %d, which is not confirmed", ErrCorrupt, pos)
				}
				if err != nil {
					return err
				}
				out = append(out, Confirmed{Seq: seq, Entry: e})
			}
		}
		return nil
	})
	return out, err
}
