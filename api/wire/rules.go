package wire

import "encoding/json"

// The rules on confirmed telemetry (docs/RULES.md). Every endpoint needs
// an API token, reads included: a webhook's URL can be a credential, and
// dead letters carry telemetry.
const (
	// GET lists, POST adds; GET, PUT (add or replace), DELETE
	// PathRules+"/{name}"; GET PathRules+"/{name}/dead-letters".
	PathRules = "/api/v1/rules"
	// POST: replay stored messages through a rule (RuleTest).
	PathRuleTest = "/api/v1/rules/test"
)

// MaxRuleBody bounds the body of POST and PUT on the rules, and of a test.
const MaxRuleBody = 16 << 10

// Rule is a rule: its definition (the body of POST and PUT) and, in
// answers, where it was defined and the node's figures. An answer never
// carries a webhook's secret: SecretSet says there is one.
type Rule struct {
	Name      string     `json:"name"`
	Condition string     `json:"condition"`
	Action    RuleAction `json:"action"`
	// Answers only.
	Source    string     `json:"source,omitempty"`     // "config" or "api"
	UpdatedBy string     `json:"updated_by,omitempty"` // the token that set it ("api")
	Updated   int64      `json:"updated,omitempty"`    // unix nanoseconds ("api")
	Stats     *RuleStats `json:"stats,omitempty"`
}

// RuleAction is what a rule does with a match: kind "log", "event" or
// "webhook" (with URL and Secret).
type RuleAction struct {
	Kind      string `json:"kind"`
	URL       string `json:"url,omitempty"`
	Secret    string `json:"secret,omitempty"`     // in requests only
	SecretSet bool   `json:"secret_set,omitempty"` // in answers: a webhook has a secret
	Topic     string `json:"topic,omitempty"`      // an mqtt action's topic
}

// RuleStats are a rule's figures. The counts are since the node started.
type RuleStats struct {
	Cursor             uint64 `json:"cursor"` // the next confirmation the rule evaluates
	Matches            uint64 `json:"matches"`
	EvalErrors         uint64 `json:"eval_errors"`
	LastEvalError      string `json:"last_eval_error,omitempty"`
	Pending            int    `json:"pending"` // matches in the outbox
	PendingBytes       int    `json:"pending_bytes"`
	Delivered          uint64 `json:"delivered"`
	FailedAttempts     uint64 `json:"failed_attempts"`
	LastDeliveryError  string `json:"last_delivery_error,omitempty"`
	DeadLetters        int    `json:"dead_letters"`
	DeadLettersDropped uint64 `json:"dead_letters_dropped"`
}

// RuleList is GET /api/v1/rules: every rule, by name.
type RuleList struct {
	Rules []Rule `json:"rules"`
}

// DeadLetter is a match that failed every attempt: Match is the document
// the webhook would have posted.
type DeadLetter struct {
	Match     json.RawMessage `json:"match"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error"`
	FailedAt  int64           `json:"failed_at"` // unix nanoseconds, the last attempt
}

// DeadLetters is GET /api/v1/rules/{name}/dead-letters, oldest first.
type DeadLetters struct {
	Rule        string       `json:"rule"`
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// RuleTest is the body of POST /api/v1/rules/test: the rule (by Name, one
// of the node's, or whole in Rule), the stored confirmed messages it
// replays (timestamps in [From, To): Unix nanoseconds or RFC 3339, as the
// queries take them, "" for the start and no end; of Issuer only unless
// it is ""), and at most Limit of them (default and most 100,000).
type RuleTest struct {
	Name   string `json:"name,omitempty"`
	Rule   *Rule  `json:"rule,omitempty"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	Issuer string `json:"issuer,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// RuleTestResult is what a rule would have fired: Matches are the
// documents, in the messages' order; More says the limit left messages
// of the range out.
type RuleTestResult struct {
	Rule      string            `json:"rule"`
	Evaluated int               `json:"evaluated"`
	More      bool              `json:"more"`
	Matches   []json.RawMessage `json:"matches"`
	Errors    []RuleEvalError   `json:"errors"`
}

// RuleEvalError is a message the condition failed on.
type RuleEvalError struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}
