// Package client speaks to a Weft node's HTTP API (docs/API.md) for devices,
// gateways and tools. It uses net/http only, and every call takes a context
// that bounds it.
//
// # Basics
//
// A Client is one node's API. A Device is a key and a Client: its Send asks
// the node for parents, builds, signs and solves a message, and submits it.
//
//	key, err := client.ReadKeyFile("device.key")
//	...
//	dev := &client.Device{Key: key, Client: client.New("http://127.0.0.1:8080")}
//	id, err := dev.Send(ctx, []byte(`{"t":21.5}`))
//	...
//	info, err := dev.Client.WaitConfirmed(ctx, id)
//
// # Errors
//
// Every answer of the node outside 2xx is an *APIError carrying the API's
// stable code; test it with IsCode or errors.As, never by its text:
//
//	if client.IsCode(err, client.CodeDuplicate) { ... } // already in the ledger
//
// The client reads answers through bounded readers and checks what it can:
// an ID the node returns must be the hash of the bytes it names. An answer
// that breaks the API fails with ErrBadResponse.
//
// # Retries
//
// A call whose answer may pass (429 rate_limited, 503 overloaded or
// shutting_down) or whose connection fails is sent again: up to 5 attempts
// within 10 s by default, with capped exponential backoff and full jitter,
// and never sooner than the node's Retry-After. Submissions are retried
// too: the same bytes are the same message, and a retry that meets
// duplicate reports the earlier attempt's success. WithRetry changes the
// policy (Retry{Attempts: 1} turns it off); its clock, sleep and random
// source can be injected for tests.
//
// # Pending
//
// A node may accept a message whose parents it does not have yet and hold
// it (202): Submit returns its ID and an error wrapping ErrPending,
// SubmitOutcome and BatchResult report Pending without an error, and the
// message is not durable until its parents arrive.
//
// # Events
//
// Events follows the node's server-sent-events stream until its context
// ends, its callback fails, or the node drops it (ErrOverflow,
// ErrStreamEnded). WaitConfirmed combines the stream with polling, so a
// missed event delays it by at most a poll interval.
//
// # Key files
//
// WriteKeyFile and ReadKeyFile store an ed25519 key as its 32-byte seed in
// 64 lower-case hex characters and a newline, in a file of mode 0600. Nodes
// use the same format for their identity keys.
package client
