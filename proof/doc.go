// Package proof builds and checks proofs that a message was recorded and
// confirmed, resting on the validators' own signed statements and nothing
// else: no node, no coordinator.
//
// A validator's checkpoint is an ordinary message of its own whose payload
// (Checkpoint) commits, as the root of a Merkle tree (Root), to the messages
// its checkpoint newly approves. A proof (Document) is a message's bytes and,
// for validators whose weight reaches the confirmation threshold, each one's
// checkpoint message and the path from the message's id to that checkpoint's
// root. Verify checks a proof offline, with BLAKE3 and ed25519 alone, against
// a validator set the verifier chose to trust. docs/PROTOCOL.md section 8
// specifies all of it byte by byte; the package is pure (no I/O, no clock).
package proof
