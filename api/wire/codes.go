package wire

import (
	"net/http"
	"strconv"
)

// The outcome codes of the API (docs/API.md, "Errors"). Every answer outside
// 2xx carries one in its ErrorBody; CodePending is the one outcome that is
// not an error.
const (
	CodeMalformed          = "malformed"
	CodeBadRequest         = "bad_request"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeRevoked            = "revoked"
	CodeNotFound           = "not_found"
	CodePruned             = "pruned"
	CodeNoProof            = "no_proof"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeDuplicate          = "duplicate"
	CodeStaleSequence      = "stale_sequence"
	CodeDeviceExists       = "device_exists"
	CodeRegistryFull       = "registry_full"
	CodeInvalidRule        = "invalid_rule"
	CodeRuleExists         = "rule_exists"
	CodeRuleInConfig       = "rule_in_config"
	CodeTooManyRules       = "too_many_rules"
	CodeTooLarge           = "too_large"
	CodeWrongNetwork       = "wrong_network"
	CodeBadSignature       = "bad_signature"
	CodeInsufficientPoW    = "insufficient_pow"
	CodeInvalidTimestamp   = "invalid_timestamp"
	CodeInvalidParent      = "invalid_parent"
	CodeUnknownParents     = "unknown_parents"
	CodeRateLimited        = "rate_limited"
	CodeOverloaded         = "overloaded"
	CodeShuttingDown       = "shutting_down"
	CodeStorageUnavailable = "storage_unavailable"
	CodeNotReady           = "not_ready"
	CodeInternal           = "internal"
	// CodePending is not an error: a submitted message was accepted and is
	// held until its parents arrive (202 Accepted).
	CodePending = "pending"
)

// Code is one row of the API's table of outcomes: a stable code, the HTTP
// status that carries it, and what it means in one line.
type Code struct {
	Code    string
	Status  int
	Meaning string
}

// codes is the table. docs/API.md's table lists exactly these rows
// (TestDocTableMatches).
var codes = []Code{
	{CodePending, http.StatusAccepted, "accepted and held until its parents arrive; not stored yet, not an error"},
	{CodeMalformed, http.StatusBadRequest, "not a canonical message encoding, a batch body that cannot be split, or an ID or key that is not 64 hex characters"},
	{CodeBadRequest, http.StatusBadRequest, "a query parameter is out of range or not a number, or a device's field is not acceptable"},
	{CodeUnauthorized, http.StatusUnauthorized, "the endpoint needs an API token, and the request has none or a wrong one"},
	{CodeForbidden, http.StatusForbidden, "remote proof of work refused for the key, a device not allowed to submit, or a state-changing endpoint on a node with no API token configured"},
	{CodeRevoked, http.StatusForbidden, "the device is revoked in the node's registry"},
	{CodeInvalidRule, http.StatusBadRequest, "a rule's name or action is not acceptable, or its condition does not compile; the message is the compiler's"},
	{CodeNotFound, http.StatusNotFound, "no such message, device, rule or endpoint"},
	{CodePruned, http.StatusGone, "the message was dropped by the node's retention (for the dropped messages that kept ones name as parents; others are 404)"},
	{CodeNoProof, http.StatusNotFound, "not enough validators' checkpoints cover the message on this node yet; Retry-After says when to ask again"},
	{CodeMethodNotAllowed, http.StatusMethodNotAllowed, "the path exists, not with this method; Allow lists the methods"},
	{CodeDuplicate, http.StatusConflict, "the message is already in the ledger"},
	{CodeStaleSequence, http.StatusConflict, "the issuer already has a message with this sequence number or a higher one, or another is in the pipeline with it"},
	{CodeDeviceExists, http.StatusConflict, "the device is already in the registry"},
	{CodeRegistryFull, http.StatusConflict, "the registry holds the most devices it takes"},
	{CodeRuleExists, http.StatusConflict, "a rule of that name exists; PUT replaces it"},
	{CodeRuleInConfig, http.StatusConflict, "the rule is defined in the node's configuration, and changes only there"},
	{CodeTooManyRules, http.StatusConflict, "the node has the most rules it takes (max-rules)"},
	{CodeTooLarge, http.StatusRequestEntityTooLarge, "the payload, the body or a batch exceeds its limit"},
	{CodeWrongNetwork, http.StatusUnprocessableEntity, "the message names another network"},
	{CodeBadSignature, http.StatusUnprocessableEntity, "the signature does not verify"},
	{CodeInsufficientPoW, http.StatusUnprocessableEntity, "the ID has fewer leading zero bits than the message's size needs"},
	{CodeInvalidTimestamp, http.StatusUnprocessableEntity, "older than a parent, or too far ahead of the node's clock"},
	{CodeInvalidParent, http.StatusUnprocessableEntity, "a parent is invalid"},
	{CodeUnknownParents, http.StatusUnprocessableEntity, "the node held the message for its parents as long as it holds any, and they never came; it was not stored"},
	{CodeRateLimited, http.StatusTooManyRequests, "the issuer is over its rate; retry after Retry-After"},
	{CodeOverloaded, http.StatusServiceUnavailable, "the node's queues are full, or the message was not stored in time; retry later"},
	{CodeShuttingDown, http.StatusServiceUnavailable, "the node is stopping"},
	{CodeStorageUnavailable, http.StatusServiceUnavailable, "the node's store cannot commit (a full disk, an I/O error); it takes no messages until it can"},
	{CodeNotReady, http.StatusServiceUnavailable, "the node is not ready to serve (GET /readyz); the message says why"},
	{CodeInternal, http.StatusInternalServerError, "anything else: a bug or a failed disk; the message says what"},
}

// Codes returns the table of outcomes, in the order docs/API.md lists them.
// The slice is a copy: changing it changes nothing.
func Codes() []Code { return append([]Code(nil), codes...) }

// Status returns the HTTP status of code; an unknown code is 500, as
// CodeInternal.
func Status(code string) int {
	for _, c := range codes {
		if c.Code == code {
			return c.Status
		}
	}
	return http.StatusInternalServerError
}

// Known reports whether code is in the table.
func Known(code string) bool {
	for _, c := range codes {
		if c.Code == code {
			return true
		}
	}
	return false
}

// Retryable reports whether an answer with status may succeed if the same
// request is sent again later: 429 and 503. These answers carry
// Retry-After.
func Retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable
}

// RetryAfterSeconds is the Retry-After the node sends with 429 and 503.
const RetryAfterSeconds = 1

// WriteJSON answers with status and v in JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	writeBody(w, v)
}

// WriteError answers with status and the API's error body; 429 and 503
// carry Retry-After. Servers pass Status(code) as status; a fake that
// imitates a broken node may pass another.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	if Retryable(status) {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
	WriteJSON(w, status, ErrorBody{Error: Error{Code: code, Message: message}})
}
