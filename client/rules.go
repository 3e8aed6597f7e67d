package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/weftnet/weft/api/wire"
)

// Rules on confirmed telemetry (docs/RULES.md, docs/API.md "Rules"). Every
// call needs an operator's token (WithToken), reads included. A rule as
// the node answers it never carries its webhook's secret
// (Action.SecretSet says there is one).
type (
	// Rule is a rule: as sent, its name, condition and action; as
	// answered, also where it was defined and its figures.
	Rule = wire.Rule
	// RuleAction is what a rule does: "log", "event" or "webhook" (with
	// URL and Secret).
	RuleAction = wire.RuleAction
	// RuleStats are a rule's figures since the node started.
	RuleStats = wire.RuleStats
	// DeadLetter is a match that failed every attempt.
	DeadLetter = wire.DeadLetter
	// RuleTest is what TestRule replays: a rule of the node (Name) or one
	// given whole (Rule), over the stored confirmed messages of a range.
	RuleTest = wire.RuleTest
	// RuleTestResult is what the rule would have fired.
	RuleTestResult = wire.RuleTestResult
)

// Bounds of the answers: a rule's fields (a condition of 4 KiB, a URL of
// 2 KiB, two error messages of 512 bytes) with JSON's escapes; a test's
// matches and dead letters at a few KiB each.
const (
	maxRuleAnswer  = 32 << 10
	maxRulesAnswer = 64 * maxRuleAnswer
	maxDeadAnswer  = 1000*8<<10 + 4096
	maxTestAnswer  = 256 << 20
)

// Rules returns the node's rules, by name.
func (c *Client) Rules(ctx context.Context) ([]Rule, error) {
	var l wire.RuleList
	if err := c.getJSON(ctx, wire.PathRules, nil, maxRulesAnswer, &l); err != nil {
		return nil, err
	}
	return l.Rules, nil
}

// Rule returns the rule named name; an *APIError with CodeNotFound if
// there is none.
func (c *Client) Rule(ctx context.Context, name string) (Rule, error) {
	var r Rule
	err := c.getJSON(ctx, rulePath(name), nil, maxRuleAnswer, &r)
	return r, err
}

// AddRule adds r and returns it as the node has it; a rule of that name is
// an *APIError with CodeRuleExists, and one that does not compile
// CodeInvalidRule with the compiler's message.
func (c *Client) AddRule(ctx context.Context, r Rule) (Rule, error) {
	out, _, err := c.sendRule(ctx, http.MethodPost, wire.PathRules, r)
	return out, err
}

// PutRule adds r, or replaces the rule of its name (which keeps its
// cursor and outbox), and reports whether it was new.
func (c *Client) PutRule(ctx context.Context, r Rule) (Rule, bool, error) {
	return c.sendRule(ctx, http.MethodPut, rulePath(r.Name), r)
}

// RemoveRule removes the rule named name, with its cursor, outbox and dead
// letters.
func (c *Client) RemoveRule(ctx context.Context, name string) error {
	resp, _, err := c.do(ctx, http.MethodDelete, rulePath(name), nil, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// DeadLetters returns the dead letters of the rule named name, oldest
// first.
func (c *Client) DeadLetters(ctx context.Context, name string) ([]DeadLetter, error) {
	var d wire.DeadLetters
	if err := c.getJSON(ctx, rulePath(name)+"/dead-letters", nil, maxDeadAnswer, &d); err != nil {
		return nil, err
	}
	return d.DeadLetters, nil
}

// TestRule replays stored confirmed messages through a rule and returns
// what it would have fired; the node acts on nothing.
func (c *Client) TestRule(ctx context.Context, t RuleTest) (*RuleTestResult, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var res RuleTestResult
	if _, err := c.post(ctx, wire.PathRuleTest, nil, "application/json", b, maxTestAnswer, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// sendRule sends r to path with method and reads back the rule, and
// whether the node created it (201).
func (c *Client) sendRule(ctx context.Context, method, path string, r Rule) (Rule, bool, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return Rule{}, false, fmt.Errorf("client: %w", err)
	}
	resp, _, err := c.do(ctx, method, path, nil, "application/json", b)
	if err != nil {
		return Rule{}, false, err
	}
	defer resp.Body.Close()
	var out Rule
	if err := decodeJSON(resp.Body, maxRuleAnswer, path, &out); err != nil {
		return Rule{}, false, err
	}
	if out.Name != r.Name {
		return Rule{}, false, fmt.Errorf("%w: sent rule %q, got %q", ErrBadResponse, r.Name, out.Name)
	}
	return out, resp.StatusCode == http.StatusCreated, nil
}

func rulePath(name string) string { return wire.PathRules + "/" + url.PathEscape(name) }
