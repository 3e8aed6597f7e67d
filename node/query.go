package node

import (
	"context"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// TimeRange selects stored messages by their timestamp, which their issuer
// set: those in [From, To), of Issuer only unless it is nil, and only the
// confirmed ones if Confirmed.
type TimeRange struct {
	Issuer    *dag.PublicKey
	From, To  int64
	Confirmed bool
}

// Place is a point in the (timestamp, position) order a time range is
// listed in: a listing resumes at the first message at or after it.
type Place struct {
	Time int64
	Pos  uint64
}

// MaxScan bounds the messages one call of TimeMessages reads: with
// Confirmed, a range of unconfirmed messages would otherwise be read whole
// to fill one page.
const MaxScan = 10_000

// TimeMessages returns up to limit messages of r from place from on (from
// must not be before r.From), in (timestamp, position) order, and the
// place the next page starts at, nil when the range holds no more. It reads
// at most MaxScan messages, so a page of a Confirmed range may be short,
// even empty, with a next place: the caller goes on until next is nil.
// Safe for concurrent use.
func (n *Node) TimeMessages(r TimeRange, from Place, limit int) (mis []*MessageInfo, next *Place, err error) {
	limit = max(limit, 1)
	scanned := 0
	for {
		es, err := n.readRange(r, from, min(limit, MaxScan)+1)
		if err != nil {
			return nil, nil, storeErr(err)
		}
		for _, e := range es {
			if len(mis) == limit || scanned == MaxScan {
				return mis, &from, nil
			}
			scanned++
			from = Place{Time: e.Timestamp, Pos: e.Pos + 1}
			if r.Confirmed && !e.Confirmed {
				continue
			}
			mi, err := n.entryInfo(e)
			if err != nil {
				return nil, nil, err
			}
			mis = append(mis, mi)
		}
		if len(es) <= min(limit, MaxScan) {
			return mis, nil, nil
		}
	}
}

// readRange reads up to limit entries of r from p on.
func (n *Node) readRange(r TimeRange, p Place, limit int) ([]storage.Entry, error) {
	tp := storage.TimePos{Time: p.Time, Pos: p.Pos}
	if r.Issuer != nil {
		return n.store.ByIssuerTime(*r.Issuer, tp, r.To, limit)
	}
	return n.store.ByTime(tp, r.To, limit)
}

// ExportPage is how many messages EachTimeMessage reads at a time.
const ExportPage = 1000

// EachTimeMessage calls fn with every message of r, in (timestamp,
// position) order, reading ExportPage at a time in short read transactions
// of their own: it holds no more than a page in memory and no transaction
// while fn runs. It stops at the first error of fn or of the store, or when
// ctx ends, and returns that error. Messages stored meanwhile are listed if
// the part of the range they fall in is not read yet. Safe for concurrent
// use.
func (n *Node) EachTimeMessage(ctx context.Context, r TimeRange, fn func(*MessageInfo) error) error {
	from := Place{Time: r.From}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		mis, next, err := n.TimeMessages(r, from, ExportPage)
		if err != nil {
			return err
		}
		for _, mi := range mis {
			if err := fn(mi); err != nil {
				return err
			}
		}
		if next == nil {
			return nil
		}
		from = *next
	}
}
