// Package dag is Weft's ledger core: the message format (Message, Decode,
// Params.Check, the signature rule) and the DAG state machine (Core).
//
// # Messages
//
// docs/PROTOCOL.md specifies the encoding byte by byte. Decode accepts
// exactly the canonical encodings; Params.Check runs the checks that depend
// on a message's bytes alone (network, proof of work, signature). Both are
// pure and safe for concurrent use, so a node runs them on many goroutines.
// Verifier checks signatures in batches under the same rule.
//
// # The Core
//
// Core is a state machine in the manner of etcd's raft: it starts no
// goroutine, reads no clock and no global random source, and does no I/O.
// It is handed checked messages and the time, and hands back, in an Update,
// what its caller must do. One goroutine owns it and runs this loop:
//
//	for {
//		select {
//		case batch := <-checked: // messages that passed Params.Check
//			for _, m := range batch {
//				status, err := core.Add(now(), m) // Solid, Pending, Duplicate or Invalid
//				...                               // answer the submitter if it was Invalid or Duplicate
//			}
//		case <-ticker.C:
//			core.Tick(now()) // expiry, tip ageing, pruning
//		}
//		u := core.Ready()
//		// 1. Persist u.Solid (at their positions, in order) and u.Confirmed,
//		//    in one group commit.
//		// 2. After the commit: acknowledge submitters, gossip u.Solid, publish
//		//    u.Confirmed, record u.Equivocations.
//		// 3. Ask peers for u.Missing; answer waiters in u.Rejected.
//	}
//
// Add requires what Params.Check verifies; the Core does not repeat it. It
// applies the one validity rule that depends on parents (a message is not
// older than its parents) and rejects the descendants of invalid messages.
// Whether a message is valid never depends on arrival order or local state.
//
// # Positions
//
// Each message that becomes solid gets the next position: 0 is the genesis,
// then 1, 2, ... in the order messages became solid here, which is a
// topological order. The position is the store's primary key and what a
// peer asks for in catch-up sync. Positions are local: two nodes number the
// same messages differently.
//
// # Confirmation
//
// Each solid message keeps a bitset of the validators that approve it. When
// a validator's message becomes solid, the Core walks its past cone and sets
// that validator's bit, stopping where the bit is already set or the message
// is confirmed, so each (message, validator) pair is visited once and the
// cost per message does not grow with the unconfirmed backlog. A message is
// confirmed when its approvers' weight reaches the threshold; its past cone
// is then confirmed too. Stats.WalkSteps counts the walk's cost.
//
// # Memory
//
// The Core keeps a window of recent solid messages. Confirmed messages leave
// it after Config.KeepConfirmed, unconfirmed ones after OrphanAge (reported
// in Update.Orphaned). A message whose parent has left the window is
// reported in Update.Missing: the caller finds the parent in its store and
// hands it back with AddEntryPoint. The window's two indexes, by ID and by
// (issuer, seq), are open-addressed tables of positions (table.go) that
// compare keys against the window's nodes: 8 bytes a slot, at most half
// full, so they cost a few megabytes at 10,000 msgs/s where Go maps cost
// 27. The Core dedupes only within its window,
// its pending buffer and its bounded set of invalid IDs; the caller checks
// its store for a message it already holds when the Core asks for that
// message's parents. The pending buffer, the tip pool and every other set
// are bounded by the Config. Restore rebuilds a Core from the newest part of
// a store without replaying the history.
//
// # Caveats
//
// Fields of a Message must not be assigned after its encoding or ID has been
// computed (Decode computes both lazily from the bytes it was given); use
// Sign, SetNonce and Solve.
package dag
