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

// appendConfLog appends positions to the confirmation log of tx, whose
// file holds the sequence numbers from base on and which holds count
// sequence numbers in all, and returns the new count. Each epoch file
// keeps the places given while it was the newest, in blocks counted from
// its base.
func appendConfLog(tx *bolt.Tx, base, count uint64, positions []uint64) (uint64, error) {
	b := tx.Bucket(bucketConfLog)
	b.FillPercent = 1
	for i := 0; i < len(positions); {
		local := count - base
		block := local / confLogBlock
		k := binaryPos(block)
		old := b.Get(k)
		if len(old) != int(local%confLogBlock)*8 {
			return count, fmt.Errorf("%w: confirmation log block %d is %d bytes, want %d", ErrCorrupt, block, len(old), local%confLogBlock*8)
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

// loadConfLogCount reads the count of the confirmation log of an epoch
// file whose places begin at base, and checks it against the file's last
// block.
func loadConfLogCount(tx *bolt.Tx, base uint64) (uint64, error) {
	lk, lv := tx.Bucket(bucketConfLog).Cursor().Last()
	count, err := decodeU64("meta conflog", tx.Bucket(bucketMeta).Get(metaConfLog))
	if err != nil {
		return 0, err
	}
	want := base
	if lk != nil {
		block, err := decodeU64("conflog key", lk)
		if err != nil {
			return 0, err
		}
		if len(lv) == 0 || len(lv)%8 != 0 || len(lv) > confLogBlock*8 {
			return 0, fmt.Errorf("%w: confirmation log block %d is %d bytes", ErrCorrupt, block, len(lv))
		}
		want = base + block*confLogBlock + uint64(len(lv))/8
	}
	if count != want {
		return 0, fmt.Errorf("%w: confirmation log count %d, its blocks hold %d", ErrCorrupt, count, want)
	}
	return count, nil
}

// ByConfirmation returns the entries of the confirmation log from sequence
// number from on, in that order, at most limit of them (limit <= 0: no
// limit; callers that serve untrusted requests must pass one). To read the
// next page, pass the last Seq plus one. A from whose place was dropped
// with its epoch gets ErrPruned (FirstConfirmation says where the log now
// begins); places kept whose positions were dropped (a late confirmation
// of a message in an older epoch) are passed over. Safe from any
// goroutine.
func (s *Store) ByConfirmation(from uint64, limit int) ([]Confirmed, error) {
	sn, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer sn.close()
	if from < sn.eps[0].confBase {
		return nil, fmt.Errorf("%w: confirmation %d, the log begins at %d", ErrPruned, from, sn.eps[0].confBase)
	}
	var out []Confirmed
	for i := len(sn.eps) - 1; i >= 0; i-- {
		if sn.eps[i].confBase > from && i > 0 {
			continue
		}
		for ; i < len(sn.eps); i++ {
			tx, err := sn.tx(i)
			if err != nil {
				return nil, err
			}
			base := sn.eps[i].confBase
			b := tx.Bucket(bucketConfLog)
			if b == nil {
				return nil, fmt.Errorf("%w: missing bucket", ErrCorrupt)
			}
			lf := max(from, base) - base
			c := b.Cursor()
			for k, v := c.Seek(binaryPos(lf / confLogBlock)); k != nil; k, v = c.Next() {
				block, err := decodeU64("conflog key", k)
				if err != nil {
					return nil, err
				}
				if len(v)%8 != 0 || len(v) > confLogBlock*8 {
					return nil, fmt.Errorf("%w: confirmation log block %d is %d bytes", ErrCorrupt, block, len(v))
				}
				for j := 0; j < len(v); j += 8 {
					seq := base + block*confLogBlock + uint64(j/8)
					if seq < from {
						continue
					}
					if limit > 0 && len(out) == limit {
						return out, nil
					}
					pos := binary.BigEndian.Uint64(v[j:])
					e, err := sn.entryAt(pos)
					if errors.Is(err, ErrPruned) {
						continue
					}
					if errors.Is(err, ErrNotFound) {
						err = fmt.Errorf("%w: the confirmation log names position %d, which is not in the log", ErrCorrupt, pos)
					}
					if err == nil && !e.Confirmed && pos < sn.eps[i].lo {
						// Confirmed in the newest file's commit; its older
						// epoch's file takes it just after (applyRedo).
						return out, nil
					}
					if err == nil && !e.Confirmed {
						err = fmt.Errorf("%w: the confirmation log names position %d, which is not confirmed", ErrCorrupt, pos)
					}
					if err != nil {
						return nil, err
					}
					out = append(out, Confirmed{Seq: seq, Entry: e})
				}
			}
		}
		break
	}
	return out, nil
}

// FirstConfirmation returns the first place the confirmation log still
// holds: 0 until an epoch has been dropped.
func (s *Store) FirstConfirmation() uint64 { return s.epochList()[0].confBase }
