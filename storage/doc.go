// Package storage keeps the node's messages in one bbolt file: an
// append-only log of records keyed by a local position, indexes by ID,
// parent, issuer (by sequence and by timestamp) and time, and the
// confirmation state of every position.
// It knows no DAG rules: the DAG core decides what is valid, assigns the
// positions, and hands over records and confirmations in order; storage
// stores and indexes them. Of a message it knows only where the encoding
// keeps the parents, issuer, sequence and timestamp (dag's offsets): the log
// keeps those fields there and nowhere else.
//
// # The caller's loop
//
// Open the Store, read NextPos and ConfirmedPrefix, and restore the DAG core
// from Range(ConfirmedPrefix()). Then, for each batch of work the core hands
// back, build a Write (the newly solid messages as Records, with Pos
// continuing from the last one submitted, and the new Confirmations) and
// Submit it with a callback:
//
//	store.Submit(&storage.Write{Records: recs, Confirmations: confs}, func(err error) {
//		// The Write is durable (err == nil) or was refused or lost (err != nil).
//		// Acknowledge the messages to their devices, gossip them, only now.
//	})
//
// Submit returns at once unless the queue is full (backpressure). One writer
// goroutine commits everything queued in one transaction (group commit),
// fsyncs, and then calls the callbacks in submission order. Close drains
// the queue and closes the file.
//
// # Durability
//
// A Write whose callback got nil survives a crash of the process or the
// machine: bbolt wrote and fsynced its pages and then its meta page (unless
// Config.NoSync, which is for tests). A Write whose callback has not been
// called yet may or may not survive; a crash never leaves a part of one.
//
// # Failure
//
// A Write with a record out of position order (ErrOutOfOrder), or with a
// record whose fields disagree with its Raw (a *RecordError, wrapping
// ErrInvalidRecord), is refused whole and the Writes after it proceed. A
// transaction that fails to commit (a full disk, an I/O error) is retried,
// the same Writes at the same positions, every 10 ms at first and then at
// most every second, until it commits: nothing of it is acknowledged
// before, and once space is back the writer goes on by itself. Meanwhile
// Failing reports the cause, reads see the last committed state, and the
// queue fills, so Submit blocks: callers should check Failing and stop
// submitting. Close gives up on a failing transaction: its Writes and every
// later one get an error wrapping ErrFailed.
//
// Open refuses a store written in another format version with a
// *FormatError (wrapping ErrFormat) and leaves it untouched: stores are not
// migrated between versions.
//
// # Reading
//
// Reads are safe from any goroutine while the writer runs and see committed
// state only. Get, Has and Children find a message by ID; ByIssuer lists an
// issuer's messages by sequence number, ByIssuerTime by timestamp, ByTime
// every issuer's by timestamp; Range reads the log in position order. Bytes read from disk are checked, and what does not decode is
// reported as ErrCorrupt, never a panic. (The B+tree pages themselves are
// bbolt's to check: run `bbolt check` on a file you distrust.)
//
// docs/STORAGE.md describes the file layout byte by byte, why the keys are
// ordered as they are, with measurements, and how retention will work.
package storage
