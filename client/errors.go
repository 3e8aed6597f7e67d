package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weftnet/weft/api/wire"
)

// The stable codes of the API (docs/API.md, "Errors"; the table is
// wire.Codes). An APIError's Code is one of these when the node answered
// with the API's error body, or a code newer than this client.
const (
	// CodeMalformed: the body is not a canonical message encoding, or a
	// parameter is malformed (400).
	CodeMalformed = wire.CodeMalformed
	// CodeBadRequest: a query parameter is out of range or not a number (400).
	CodeBadRequest = wire.CodeBadRequest
	// CodeUnauthorized: the endpoint needs an API token, and the request
	// had none or a wrong one (401).
	CodeUnauthorized = wire.CodeUnauthorized
	// CodeForbidden: remote proof of work refused for this key, the device
	// is not allowed to submit, or the node has no API token configured for
	// a state-changing endpoint (403).
	CodeForbidden = wire.CodeForbidden
	// CodeRevoked: the device is revoked in the node's registry (403).
	CodeRevoked = wire.CodeRevoked
	// CodeNotFound: no such message, device, rule or endpoint (404).
	CodeNotFound = wire.CodeNotFound
	// CodePruned: the node's retention dropped the message (410).
	CodePruned = wire.CodePruned
	// CodeNoProof: not enough validators' checkpoints cover the message on
	// the node yet; see APIError.RetryAfter (404).
	CodeNoProof = wire.CodeNoProof
	// CodeMethodNotAllowed: the path does not take the method (405).
	CodeMethodNotAllowed = wire.CodeMethodNotAllowed
	// CodeDuplicate: the message is already in the ledger (409).
	CodeDuplicate = wire.CodeDuplicate
	// CodeStaleSequence: the issuer already has a message with this
	// sequence number or a higher one on this node (409).
	CodeStaleSequence = wire.CodeStaleSequence
	// CodeDeviceExists: the device is already in the registry (409).
	CodeDeviceExists = wire.CodeDeviceExists
	// CodeRegistryFull: the registry holds the most devices it takes (409).
	CodeRegistryFull = wire.CodeRegistryFull
	// CodeInvalidRule: a rule's name or action is not acceptable, or its
	// condition does not compile; the message is the compiler's (400).
	CodeInvalidRule = wire.CodeInvalidRule
	// CodeRuleExists: a rule of that name exists; PutRule replaces it (409).
	CodeRuleExists = wire.CodeRuleExists
	// CodeRuleInConfig: the rule is defined in the node's configuration
	// file, and changes only there (409).
	CodeRuleInConfig = wire.CodeRuleInConfig
	// CodeTooManyRules: the node has the most rules it takes (409).
	CodeTooManyRules = wire.CodeTooManyRules
	// CodeTooLarge: the payload or the body is too large (413).
	CodeTooLarge = wire.CodeTooLarge
	// CodeWrongNetwork: the message names another network (422).
	CodeWrongNetwork = wire.CodeWrongNetwork
	// CodeBadSignature: the signature does not verify (422).
	CodeBadSignature = wire.CodeBadSignature
	// CodeInsufficientPoW: the ID has too few leading zero bits (422).
	CodeInsufficientPoW = wire.CodeInsufficientPoW
	// CodeInvalidTimestamp: older than a parent, or too far ahead of the
	// node's clock (422).
	CodeInvalidTimestamp = wire.CodeInvalidTimestamp
	// CodeInvalidParent: a parent is invalid (422).
	CodeInvalidParent = wire.CodeInvalidParent
	// CodeUnknownParents: the parents did not become known in time; the
	// message was not stored (422).
	CodeUnknownParents = wire.CodeUnknownParents
	// CodeRateLimited: the issuer is over its rate; see APIError.RetryAfter (429).
	CodeRateLimited = wire.CodeRateLimited
	// CodeOverloaded: the node's queues are full; retry later (503).
	CodeOverloaded = wire.CodeOverloaded
	// CodeShuttingDown: the node is stopping (503).
	CodeShuttingDown = wire.CodeShuttingDown
	// CodeStorageUnavailable: the node's store cannot commit; it takes no
	// messages until it can (503).
	CodeStorageUnavailable = wire.CodeStorageUnavailable
	// CodeNotReady: the node is not ready (GET /readyz, 503).
	CodeNotReady = wire.CodeNotReady
	// CodeInternal: a bug or a failed disk on the node (500).
	CodeInternal = wire.CodeInternal
)

// Errors of the client itself. Test for them with errors.Is.
var (
	// ErrBadResponse: the node answered with something the API does not
	// allow (a body that does not parse or is too large, an ID that does not
	// match the bytes, a field out of range). The node is broken or is not a
	// Weft node.
	ErrBadResponse = errors.New("client: bad response from node")

	// ErrPending: the node accepted the message and holds it, in memory,
	// until its parents arrive (202): it is not durable yet. Send the same
	// bytes again later; never build another message with its sequence.
	ErrPending = errors.New("client: accepted, held for its parents, not stored yet")
	// ErrOverflow: the node disconnected the event stream because the
	// client did not keep up. Reconnect and read what was missed through the
	// other endpoints.
	ErrOverflow = errors.New("client: event stream overflowed")
	// ErrStreamEnded: the node closed the event stream.
	ErrStreamEnded = errors.New("client: event stream ended")
	// ErrEventTooLarge: an event of the stream exceeds MaxEventSize (it is
	// wire.ErrEventTooLarge).
	ErrEventTooLarge = wire.ErrEventTooLarge
	// ErrBatchTooLarge: a batch exceeds MaxBatchMessages or MaxBatchBytes
	// (it is wire.ErrBatchTooLarge).
	ErrBatchTooLarge = wire.ErrBatchTooLarge
	// ErrWrongNetwork: the node serves another network than Device.Network.
	ErrWrongNetwork = errors.New("client: node is on another network")
	// ErrKeyFormat: a key file is not in the key file format. The error
	// returned is a *KeyFileError wrapping it.
	ErrKeyFormat = errors.New("client: malformed key file")
)

// maxErrorMessage bounds the Message of an APIError, in bytes.
const maxErrorMessage = 512

// APIError is the error for every answer of the node outside 2xx. When the
// body is the API's error JSON, Code is its stable code (one of the Code
// constants, or a code newer than this client) and Message its text for
// people. Otherwise (a proxy's error page, say) Code is empty and Message
// holds the start of the body, or the status text.
//
// Test for a code with IsCode, or with errors.As and the Code field; never
// match Message, which may change.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the API's stable error code, empty if the body had none.
	Code string
	// Message describes the error for people. It holds printable
	// characters only and at most 512 bytes.
	Message string
	// RetryAfter is the wait the node asked for with Retry-After (with
	// rate_limited, overloaded), 0 if it asked for none.
	RetryAfter time.Duration
}

// Error returns "client: node answered <status> <code>: <message>".
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = strings.ToLower(http.StatusText(e.Status))
	}
	if e.Message == "" {
		return fmt.Sprintf("client: node answered %d %s", e.Status, code)
	}
	return fmt.Sprintf("client: node answered %d %s: %s", e.Status, code, e.Message)
}

// IsCode reports whether err is, or wraps, an *APIError with the given code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// newAPIError builds the APIError for an answer with status and body b (the
// start of it) and the answer's header, received at now.
func newAPIError(status int, header http.Header, b []byte, now time.Time) *APIError {
	e := &APIError{Status: status, RetryAfter: parseRetryAfter(header.Get("Retry-After"), now)}
	if code, msg, ok := parseErrorBody(b); ok {
		e.Code, e.Message = code, msg
		return e
	}
	msg := printable(strings.TrimSpace(string(b)))
	if msg == "" || strings.HasPrefix(msg, "<") { // empty, or an HTML page
		msg = http.StatusText(status)
	}
	e.Message = msg
	return e
}

// parseErrorBody parses {"error": {"code": ..., "message": ...}}.
func parseErrorBody(b []byte) (code, msg string, ok bool) {
	var body wire.ErrorBody
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Code == "" {
		return "", "", false
	}
	return printable(body.Error.Code), printable(body.Error.Message), true
}

// parseRetryAfter reads a Retry-After header received at now: seconds, or
// an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}

// printable drops what a terminal would interpret (control characters,
// invalid UTF-8) from text the node sent, and truncates it.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			if r == '\n' || r == '\t' {
				return ' '
			}
			return -1
		}
		return r
	}, s)
	if len(s) > maxErrorMessage {
		cut := maxErrorMessage
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
