// Package bench drives load against a Weft node and measures what an
// operator sizing an edge server needs: messages per second offered,
// accepted (durable) and confirmed, refusals by reason, confirmation
// latency, CPU time and memory of the node, disk per message, and the rate
// at which the machine verifies signatures, the node's main cost. It is
// the engine of `weft bench`; docs/BENCH_TOOL.md is its manual.
//
// # Basics
//
// A Config names a Scenario and its load; Run runs it and returns a
// Result, which prints as a table (Table), as JSON (its fields carry
// tags), or as an SVG chart over time (PlotSVG):
//
//	res, err := bench.Config{Scenario: bench.Ingest, Rate: 10_000, Duration: 30 * time.Second}.Run(ctx)
//	...
//	res.Table(os.Stdout)
//
// Unless Config.Node names a running node, Run starts one in this process
// on a temporary data directory, with a low proof-of-work base (4) so
// that building messages is quick; a node checks a proof of work with one
// hash at any difficulty, so this does not lighten its work. Signatures
// are real ed25519 signatures, checked by the node.
//
// # A run
//
//  1. Measure signature verification: dag.Verifier batches on GOMAXPROCS
//     goroutines for Config.VerifyFor.
//  2. Ingest only: pre-build the messages, signed and solved, into tapes on
//     disk (one per sender, so that the memory measured is the node's),
//     on a generator DAG of their own whose genesis is the network's.
//     Their timestamps follow the planned schedule, since a node neither
//     builds on messages much older than what it confirms nor takes them
//     far ahead of its clock; a run as fast as possible therefore first
//     probes the node's rate to size and time the tape.
//  3. The measured window: load for Config.Duration (or Config.Messages),
//     following the node's event stream for confirmations and polling a
//     sample of devices' listings as a check on it, while a sampler
//     records a Sample every second and writes the progress line.
//  4. The cool-down and drain: the load goes on, neither counted nor
//     tracked, until the measured messages are confirmed or Config.Drain
//     passes, so that the last measured messages are confirmed as in a
//     steady state rather than by a tail of the node's own messages.
//
// Each device's messages reach the node in sequence order: a sender owns
// a share of the devices and has one request in flight. A run always stops
// by itself; when its context ends it stops at once with a partial Result.
//
// # Gateways
//
// The Gateway scenario, and `weft bench soak`, run a Fleet: gateways that
// build their devices' messages live on fresh tips, submit them in
// batches and send again, with backoff, what the node did not take, so
// that they go on through refusals and restarts of the node where the
// tapes of Ingest would fail as unknown_parents. A Fleet also runs on its
// own (Fleet.Run), with OnAck and AckLog recording what it acknowledged
// and CheckAcks looking for all of it in a node afterwards.
//
// # More nodes
//
// A run loads a target: the API URLs of the nodes to spread the senders
// over, and whether they live in this process. A scenario over a network
// of nodes (`weft bench network`, with `weft devnet`) starts the nodes and
// hands their URLs to the target; the rest of a run is the same.
//
// # Caveats
//
// An in-process node shares this process with the load generator: its CPU
// time is the process's minus what the generator's own threads used (they
// run on locked OS threads and are measured there), and its memory is the
// process's resident set. For a node in another process, both come from
// its /metrics. On two cores the load generator's share matters; the
// Result says what each figure includes.
package bench
