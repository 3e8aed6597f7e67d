// Package rules acts on confirmed telemetry: an operator's rule is a
// condition in CEL (the expression language of Kubernetes and Envoy) over a
// confirmed message, and an action taken on every message it holds on: a
// log line, an event for the node's feed, or a signed webhook.
//
// # Rules
//
// A Rule has a name ([a-z0-9_-], 1 to 64 characters), a condition and an
// Action. Compile checks one: the condition must type-check as bool over
// these variables, or the rule is refused with a *CompileError carrying the
// compiler's message (every refusal wraps ErrInvalid):
//
//	id            string     the message ID, hex
//	issuer        string     the issuer's public key, hex
//	seq           uint       the issuer's sequence number
//	timestamp     timestamp  the issuer's timestamp
//	confirmed_at  timestamp  when this node confirmed it
//	position      uint       its place in this node's store
//	confirmation  uint       its place in this node's confirmation order
//	tags          list(string)  the registry's tags of the issuer
//	device        string     the registry's name of the issuer, "" if none
//	payload       dyn        the payload parsed as JSON; null if it is not JSON
//	payload_raw   bytes      the payload
//
// JSON numbers are doubles; comparisons across numeric types are allowed
// (payload.temp_c > 8 holds for 9.5). A condition fails on a message where
// it reads a field the payload lacks (payload.temp_c on {"rh": 40}): the
// engine counts the error for the rule and skips the message; has() tests
// for a field. A condition is at most MaxConditionLen bytes and nests at
// most 32 deep; one whose cost on a message could exceed CostLimit is
// metered as it runs and stops with an error at the limit.
//
// The variables of a message are computed on first use and shared by every
// rule that evaluates it: the payload is parsed once per message, and not
// at all when no condition reads it.
//
// # The engine
//
// An Engine is a consumer of the node's confirmation order (a Source) with
// a durable cursor per rule, kept in a Store (bbolt's buckets in a node, a
// MemStore in tests). The caller's loop is:
//
//	e, err := rules.New(cfg, configuredRules) // resumes every rule from its cursor
//	go e.Run(ctx)                             // until ctx is done or the store fails
//	...
//	e.Notify()                                // after each commit that confirmed messages
//
// One scanner reads each confirmed message once for every rule whose cursor
// has reached it, evaluates the rules, and commits the matches of
// delivered actions (webhook, and the kinds of Config.Kinds) with the new
// cursors in one Store.Write per batch of messages: a transactional
// outbox. A batch without such a match writes its cursors at most every
// Config.CursorInterval (and Run writes them as it returns). Each
// such rule has one delivery goroutine that sends its outbox in order, one
// request at a time, retrying with capped exponential backoff and jitter;
// a match leaves the outbox when delivered, or after Config.MaxAttempts
// failures for the rule's dead letters (DeadLetters), with the last error.
// A rule whose outbox is full (Config.OutboxBytes) is left out of the scan,
// its cursor held, until deliveries make room: a receiver that is down
// costs bounded space and loses nothing.
//
// Log and event actions run on the scanner's goroutine before the commit.
//
// # Guarantees
//
// Every match is delivered at least once, in confirmation order per rule,
// across crashes: a match is in the outbox before the cursor passes it, and
// it leaves only after a 2xx or dead-lettering. A crash between a delivery
// and its removal repeats that delivery, with the same X-Weft-Delivery id,
// so that a receiver can drop the duplicate. Log and event actions are at
// least once as well: a crash repeats those taken since their rule's
// cursor was last written (Config.CursorInterval, 1 s by default).
// A failing store stops Run with the error; nothing is skipped.
//
// # Webhooks
//
// A webhook is an HTTP POST of the Match document, with the headers
// X-Weft-Rule, X-Weft-Delivery ("RULE:CONFIRMATION"), X-Weft-Timestamp
// (Unix seconds) and X-Weft-Signature: "sha256=" and the hex of
// HMAC-SHA256(secret, timestamp + "." + body). Sign computes it, Verify
// checks it as a receiver should. Redirects are not followed; a response
// other than 2xx is a failure.
//
// Test replays messages through a rule and returns what it would have
// fired, without acting: the engine of `weft rules test`.
package rules
