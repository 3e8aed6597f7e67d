package storage

import "math"

// NoPos is the ParentPos of a parent that is not in the store: the parent of
// the genesis message, or a solid entry point below the retention frontier.
// Any ParentPos that is not below the record's own Pos is treated the same
// way: it is stored as given and gets no children-index entry.
const NoPos = ^uint64(0)

// Record is one solid message as the store keeps it. Validity is the DAG
// core's business: the store checks only that the record is self-consistent,
// and uses the fields as index keys.
//
// Raw is the message's canonical encoding (dag.Message.Bytes), and Parents,
// Issuer, Seq and Timestamp must be the fields it encodes: the log keeps
// them only inside Raw, at the offsets package dag gives, and reads them
// back from there. A record whose Raw is shorter than dag.MinSize or whose
// fields disagree with it is refused with a *RecordError. The store does
// not otherwise parse Raw (nor check that ID is its hash).
//
// Pos is the record's place in the log, assigned by the caller: the first
// record a Store ever receives has Pos 0, and each next one has the Pos of
// the one before plus one (NextPos reports where the log ends after Open).
type Record struct {
	Pos       uint64      // log position: exactly the next position, in order
	ID        [32]byte    // the message ID
	Parents   [2][32]byte // as in Raw
	ParentPos [2]uint64   // positions of the parents; the children index is keyed by these
	Issuer    [32]byte    // the issuer's ed25519 public key, as in Raw
	Seq       uint64      // the issuer's sequence number, as in Raw
	Timestamp int64       // the message timestamp, unix nanoseconds, as in Raw
	Raw       []byte      // the canonical encoding of the message
}

// Confirmation records that the record at Pos was confirmed at At (unix
// nanoseconds, local time), or, with At == OrphanedAt, that it was given up
// as orphaned: never confirmed, and settled all the same, so that the
// ConfirmedPrefix watermark moves past it. Only the first confirmation of a
// position is kept; later ones for the same position are ignored.
type Confirmation struct {
	Pos uint64
	At  int64
}

// Write is the unit a caller submits: records to append, in position order,
// and confirmations to record. A Write is atomic: it is committed whole or
// not at all, and one transaction may carry many Writes (group commit).
//
// Confirmations may name any position below the end of the log once the
// Write's own records are appended, so a Write can confirm its own records.
type Write struct {
	Records       []Record
	Confirmations []Confirmation

	// ConfirmSeq is set by the store before done(nil): ConfirmSeq[i] is the
	// place of Confirmations[i] in the confirmation log (ByConfirmation), or
	// NoSeq if it took none (an orphan's settlement, or a position confirmed
	// before). The caller leaves it nil.
	ConfirmSeq []uint64
}

// OrphanedAt is the At of a Confirmation that settles a position as
// orphaned rather than confirmed.
const OrphanedAt = math.MinInt64

// Entry is a record as read back, with its confirmation state.
type Entry struct {
	Record
	// Orphaned reports that the position was settled as orphaned: it will
	// never be confirmed (Confirmed is false).
	Orphaned bool
	// Confirmed reports whether a confirmation was recorded for the position.
	// It is separate from ConfirmedAt so that a confirmation at time 0 (the
	// genesis message is confirmed by definition, at no time) is still one.
	Confirmed bool
	// ConfirmedAt is the At of the confirmation, 0 if there is none.
	ConfirmedAt int64
}

// SeqPos is a place in one issuer's messages, ordered by sequence number and
// then by position: ByIssuer starts there. Two messages of an issuer with one
// sequence number (an equivocation) differ in Pos, so paging by SeqPos never
// skips one of them.
type SeqPos struct {
	Seq uint64
	Pos uint64
}

// TimePos is a place in the time index, ordered by timestamp and then by
// position: ByTime starts there.
type TimePos struct {
	Time int64
	Pos  uint64
}
