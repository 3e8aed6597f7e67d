// Package node is a Weft full node: it wires the pure DAG core (package
// dag), the store (storage), the transport (gossip) and the edge policy into
// one pipeline, and owns the one loop that drives the core. The api package
// serves it over HTTP; cmd/weft builds its Config.
//
// # The pipeline
//
// A message takes the same path whether a device submitted it or a peer
// sent it:
//
//	Submit, SubmitRemotePoW            gossiper (Messages, catch-up pages)
//	        \                                   /
//	         verifyQ (a job: one submission, or up to 512 of a peer's messages)
//	                |
//	         verifiers (Config.Verifiers goroutines): network, size and proof of
//	         work; the store's duplicate check; signatures in batches; then,
//	         for devices only, the edge policy (clock skew, the device
//	         registry, allowlist, sequence, rate)
//	                |
//	         coreQ (every job, settled items and all, in order)
//	                |
//	         the core loop (one goroutine): dag.Core.Add, Reject, Tick;
//	         dag.Core.Ready -> a storage.Write
//	                |
//	         the store's writer (storage's goroutine, group commit); its
//	         callback hands the result back on committed and does nothing else
//	                |
//	         the core loop again: the edge learns the stored sequences, the
//	         submitters are answered, the messages are relayed to the peers,
//	         the events published (Subscribe)
//
// A job is a slice of items, one per message; each item is settled once,
// by whichever stage gets to it first: a verifier that refuses it, the loop
// that refuses it or settles its commit, or the submitter giving up after
// Config.SubmitTimeout (with ErrPending if the core holds it for parents,
// ErrOverloaded otherwise). The job's done channel closes when its last item
// is settled. An item answered nil is durable: the loop answers only after
// the store has reported the commit that holds it.
//
// # Who owns what
//
//   - The core loop owns the dag.Core and everything beside it: the items
//     waiting for the core (waiters, and copies of them resubmitted), the
//     others' unconfirmed messages, the node's own sequence and pace as a
//     validator, the tip selector, the counters and rates, and the count of
//     commits in the store. No other goroutine touches them. Readers get a
//     snapshot the loop publishes after each step (Info, Tips), or run a
//     function on the loop (Message's look at the core's state, through
//     queries; a sync worker catching up from a pruned peer hands the
//     page's entry points to the core the same way).
//   - A job's items are guarded by the job's mutex: one per job, not per
//     message.
//   - The edge policy, the gossiper's peer state, its seen set and
//     in-flight map, the event hub and the equivocation list each have a
//     mutex of their own, beside what it guards. The device registry has
//     two: one serializes its changes (each committed to the store, then
//     published), the other guards the copy in memory the edge reads.
//   - mu guards stopping and the sends on verifyQ, so that the queue is
//     closed only when no send is running.
//   - Config.Time is called from any goroutine; Config.Rand is shared by
//     the loop, the readers (Tips) and the sync workers through a lock.
//
// # Goroutines
//
// Every goroutine the node starts has an owner that waits for it:
//
//   - Config.Verifiers verifiers and one issuer, started by Run and waited
//     for by it (the stages WaitGroup). The issuer signs and solves the
//     node's own messages, one at a time, and waits for each one's answer
//     in its own select.
//   - The core loop, started by Run and waited for by it. It selects on
//     coreQ, the tick (TickInterval: dag.Core.Tick, and every tenth tick a
//     new request for parents still missing), the issue ticker (the
//     validator's pace), queries, and committed.
//   - When gossip is on, the gossiper's run, started by Run and waited for
//     by it. It runs the transport (whose goroutines are the gossip
//     package's, all ended when its Run returns) and waits for the
//     catch-up sync workers.
//   - One sync worker per peer, started by the gossiper when the peer
//     first connects, and waited for by the gossiper's run.
//
// Goroutines the node does not start call into it: the API's (Submit and
// the readers, all safe for concurrent use), the transport's (the
// gossiper's handler methods), and the store's writer (the commit
// callback, which only sends on committed).
//
// # Commit results and backpressure
//
// The writer's send on committed must never block: the writer would then
// wait on a loop that may itself be blocked in storage.Store.Submit on the
// writer's full queue. The loop never has more commits in the store than
// committed holds (twice the store's queue length): before it submits one
// more, it takes the oldest result itself and settles it. The loop settles
// results as soon as it is free (committed is in the same select as coreQ)
// and between the jobs of a long step.
//
// Backpressure runs the other way: a full verifyQ makes Submit answer
// ErrOverloaded at once and makes a peer's handler block (the transport
// then stops reading from that peer); a full coreQ blocks the verifiers; a
// full store queue blocks the loop. MaxInflight and MaxUnconfirmed bound
// what devices may have in the pipeline.
//
// # Shutdown
//
// When Run's context ends, Run stops the stages in pipeline order, so that
// each drains into the next:
//
//  1. Ready reports the pipeline as not running.
//  2. Gossip stops: the transport returns (no handler call runs after
//     that), the sync workers end, and the sync cursors are saved.
//  3. Submissions stop: stopping is set and verifyQ closed; later Submits
//     answer ErrShuttingDown.
//  4. The issuer stops; the verifiers check what verifyQ still holds, hand
//     it to the loop and end.
//  5. coreQ is closed. The loop takes what is left and flushes it to the
//     store, answers ErrShuttingDown to what still waits for its parents
//     (never stored), then waits for every commit in the store and settles
//     it: what was committed is answered stored and published (relaying it
//     sends nothing: the transport has stopped).
//  6. The event subscriptions are closed, then the store.
//
// Nothing the node answered nil is lost: it was durable before the answer.
//
// # Caveats
//
// Run must be called once. Config.Time must be safe for concurrent use;
// Config.Rand must not be used by anything else while the node runs. The
// DAG core reads no clock of its own: the loop hands it Config.Time's
// readings, so a test that sets Config.Time drives the core's ages and
// expiries too. Timers and tickers (TickInterval, IssueInterval,
// SubmitTimeout, SyncInterval) run on the real clock.
package node
