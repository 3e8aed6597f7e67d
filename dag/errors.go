package dag

import "errors"

// Errors returned by decoding and validation. Each is wrapped with detail;
// test for them with errors.Is. Every one of them is a deterministic fault of
// the message's bytes (or of its parents), the same on every node.
var (
	// ErrMalformed: the bytes are not a canonical encoding of a message
	// (truncated, trailing bytes, bad length, bad hex).
	ErrMalformed = errors.New("dag: malformed message")
	// ErrVersion: the version byte is not one this node speaks.
	ErrVersion = errors.New("dag: unknown message version")
	// ErrTooLarge: the payload exceeds the network's limit.
	ErrTooLarge = errors.New("dag: payload too large")
	// ErrNetwork: the message belongs to another network.
	ErrNetwork = errors.New("dag: wrong network")
	// ErrSignature: the issuer's signature does not verify.
	ErrSignature = errors.New("dag: invalid signature")
	// ErrPoW: the ID has fewer leading zero bits than the message's size requires.
	ErrPoW = errors.New("dag: insufficient proof of work")
	// ErrTimestamp: the message is older than one of its parents.
	ErrTimestamp = errors.New("dag: timestamp before parent")
	// ErrInvalidParent: a parent is invalid, so the message is too.
	ErrInvalidParent = errors.New("dag: invalid parent")
)
