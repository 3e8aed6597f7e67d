package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/rules"
)

// hookSink is a webhook receiver that records the deliveries it accepted,
// by delivery id, and whether each was signed with secret.
type hookSink struct {
	mu     sync.Mutex
	got    map[string]rules.Match
	bad    int
	secret string
}

func newHookSink(t *testing.T, secret string) (*hookSink, string) {
	s := &hookSink{got: map[string]rules.Match{}, secret: secret}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m rules.Match
		err := rules.Verify([]byte(s.secret), r.Header.Get(rules.HeaderTimestamp), r.Header.Get(rules.HeaderSignature), body, time.Now(), time.Minute)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil || json.Unmarshal(body, &m) != nil {
			s.bad++
			http.Error(w, "bad", http.StatusUnauthorized)
			return
		}
		s.got[m.Delivery] = m
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *hookSink) waitFor(t *testing.T, ids []dag.ID) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		missing := 0
		for _, id := range ids {
			found := false
			for _, m := range s.got {
				if m.Message.ID == id.String() {
					found = true
				}
			}
			if !found {
				missing++
			}
		}
		bad := s.bad
		s.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d deliveries failed the signature check", bad)
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d matches not delivered in 20 s", missing, len(ids))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const hookSecret = "a secret of sixteen bytes or more"

// TestRulesInNode: a rule of the configuration and one added through
// PutRule fire on what the node confirms; the added one survives a
// restart and goes on from its cursor; the configuration's cannot be
// changed; an event rule's matches reach the feed; TestRule replays.
func TestRulesInNode(t *testing.T) {
	dir := t.TempDir()
	cold, coldURL := newHookSink(t, hookSecret)
	any, anyURL := newHookSink(t, hookSecret)
	mod := func(c *Config) {
		c.Rules = []rules.Rule{{Name: "cold", Condition: `payload.temp_c > 8.0`,
			Action: rules.Action{Kind: rules.KindWebhook, URL: coldURL, Secret: hookSecret}}}
		c.RuleEngine.PollInterval = 20 * time.Millisecond
		c.MaxRules = 3
	}
	n, stop := startNode(t, dir, mod)
	ctx := context.Background()
	dev := testKey(9)
	seq := uint64(0)
	submit := func(n *Node, payload string) dag.ID {
		t.Helper()
		seq++
		m := device(t, n, dev, seq, payload)
		if errs := n.Submit(ctx, []*dag.Message{m}); errs[0] != nil {
			t.Fatal(errs[0])
		}
		return m.ID()
	}

	if _, err := n.PutRule(rules.Rule{Name: "cold", Condition: "true", Action: rules.Action{Kind: rules.KindLog}}, "ops", true); !errors.Is(err, ErrRuleInConfig) || Code(err) != "rule_in_config" {
		t.Errorf("replacing the configuration's rule: %v", err)
	}
	if err := n.RemoveRule("cold"); !errors.Is(err, ErrRuleInConfig) {
		t.Errorf("removing the configuration's rule: %v", err)
	}
	bad := rules.Rule{Name: "bad", Condition: "temperature > 8", Action: rules.Action{Kind: rules.KindLog}}
	if _, err := n.PutRule(bad, "ops", false); !errors.Is(err, rules.ErrInvalid) || Code(err) != "invalid_rule" {
		t.Errorf("a rule that does not compile: %v", err)
	}
	all := rules.Rule{Name: "all", Condition: `has(payload.temp_c)`, Action: rules.Action{Kind: rules.KindWebhook, URL: anyURL, Secret: hookSecret}}
	if created, err := n.PutRule(all, "ops", false); err != nil || !created {
		t.Fatalf("adding a rule: %v %v", created, err)
	}
	if _, err := n.PutRule(all, "ops", false); !errors.Is(err, ErrRuleExists) {
		t.Errorf("adding it again: %v", err)
	}
	ev := rules.Rule{Name: "ev", Condition: `payload.temp_c < 0.0`, Action: rules.Action{Kind: rules.KindEvent}}
	if _, err := n.PutRule(ev, "ops", false); err != nil {
		t.Fatal(err)
	}
	if _, err := n.PutRule(rules.Rule{Name: "four", Condition: "true", Action: rules.Action{Kind: rules.KindLog}}, "ops", false); !errors.Is(err, ErrTooManyRules) {
		t.Errorf("a fourth rule past max-rules 3: %v", err)
	}
	sub, err := n.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	var hot, temps []dag.ID
	var freezing dag.ID
	for i, temp := range []float64{3, 9.5, 12, -1, 7.9, 8.1} {
		id := submit(n, fmt.Sprintf(`{"temp_c":%g,"i":%d}`, temp, i))
		temps = append(temps, id)
		if temp > 8 {
			hot = append(hot, id)
		}
		if temp < 0 {
			freezing = id
		}
	}
	waitConfirmed(t, n, submit(n, "not json"))
	cold.waitFor(t, hot)
	any.waitFor(t, temps)
	// The event rule's match is on the feed.
	deadline := time.After(20 * time.Second)
	found := false
	for !found {
		evs, wait, err := sub.Next(nil, 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind == EventRule {
				if e.Rule != "ev" || e.ID != freezing || e.Issuer != pub(9) {
					t.Fatalf("rule event %+v, want rule ev on %s", e, freezing)
				}
				found = true
			}
		}
		if wait != nil {
			select {
			case <-wait:
			case <-deadline:
				t.Fatal("no rule event in 20 s")
			}
		}
	}
	// The figures: cold matched and delivered 3; all, whose has() guards
	// it from the message that is not JSON, matched 6 and failed on none.
	// The receiver can hold the third delivery a moment before the engine
	// has read its answer and counted it.
	ri, err := n.Rule("cold")
	for end := time.Now().Add(10 * time.Second); err == nil && ri.Stats.Delivered < 3 && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
		ri, err = n.Rule("cold")
	}
	if err != nil || ri.Source != RuleFromConfig || ri.Stats.Matches != 3 || ri.Stats.Delivered != 3 || ri.Stats.Pending != 0 {
		t.Errorf("cold: %+v %v", ri, err)
	}
	if ri, err := n.Rule("all"); err != nil || ri.Source != RuleFromAPI || ri.Who != "ops" || ri.Stats.Matches != 6 || ri.Stats.EvalErrors != 0 {
		t.Errorf("all: %+v %v", ri, err)
	}
	if _, err := n.Rule("nope"); !errors.Is(err, rules.ErrNoRule) || Code(err) != "not_found" {
		t.Errorf("an unknown rule: %v", err)
	}

	// A test replays what is stored: the three hot readings, and the
	// message that is not JSON fails the condition.
	res, more, err := n.TestRule(ctx, rules.Rule{Name: "t", Condition: `payload.temp_c > 8.0`, Action: rules.Action{Kind: rules.KindLog}},
		TimeRange{Issuer: ptr(pub(9)), From: 0, To: time.Now().Add(time.Hour).UnixNano()}, 100)
	if err != nil || more || res.Evaluated != 7 || len(res.Matches) != 3 || len(res.Errors) != 1 {
		t.Errorf("test: %+v more %v err %v", res, more, err)
	}

	// Restarted: the added rules are there, and go on from their cursors.
	stop()
	n, stop = startNode(t, dir, mod)
	defer stop()
	if got := len(n.Rules()); got != 3 {
		t.Fatalf("%d rules after the restart, want 3", got)
	}
	more1 := submit(n, `{"temp_c":20}`)
	cold.waitFor(t, []dag.ID{more1})
	any.waitFor(t, []dag.ID{more1})
	if err := n.RemoveRule("all"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Rule("all"); !errors.Is(err, rules.ErrNoRule) {
		t.Errorf("a removed rule: %v", err)
	}
	stop()
	// Removed, it stays removed; and a rule gone from the configuration
	// leaves nothing in the store.
	n, stop = startNode(t, dir, func(c *Config) { mod(c); c.Rules = nil })
	defer stop()
	if rs := n.Rules(); len(rs) != 1 || rs[0].Rule.Name != "ev" {
		t.Fatalf("rules after removing one and dropping the configuration's: %+v", rs)
	}
	if v, err := (ruleStore{n.store}).Get([]byte("rules.cursor"), []byte("cold")); v != nil || err != nil {
		t.Errorf("the cursor of the rule gone from the configuration: %x %v", v, err)
	}
}

// TestRuleTestBounded: a test over large payloads that all match stops
// at MaxRuleTestBytes of matches and says that it left messages out; one
// over the rest of the range is cut by its limit.
func TestRuleTestBounded(t *testing.T) {
	n, _ := startNode(t, t.TempDir(), func(c *Config) { c.MaxPayload = 60_000 })
	ctx := context.Background()
	dev := testKey(9)
	payload := strings.Repeat("x", 50_000)
	const count = 200 // 10 MB of payloads
	var last dag.ID
	for i := range count {
		m := device(t, n, dev, uint64(i+1), payload)
		if errs := n.Submit(ctx, []*dag.Message{m}); errs[0] != nil {
			t.Fatal(errs[0])
		}
		last = m.ID()
	}
	waitConfirmed(t, n, last)
	all := rules.Rule{Name: "all", Condition: "size(payload_raw) > 0", Action: rules.Action{Kind: rules.KindLog}}
	tr := TimeRange{Issuer: ptr(pub(9)), From: 0, To: time.Now().Add(time.Hour).UnixNano()}
	res, more, err := n.TestRule(ctx, all, tr, MaxRuleTest)
	if err != nil {
		t.Fatal(err)
	}
	size := 0
	for _, m := range res.Matches {
		size += len(m.Message.Payload)
	}
	if !more || res.Evaluated >= count || len(res.Matches) != res.Evaluated || size > MaxRuleTestBytes+ruleTestBatchBytes+70_000 {
		t.Fatalf("%d evaluated, %d matched, %d bytes of payloads, more %v: want a test cut near %d bytes", res.Evaluated, len(res.Matches), size, more, MaxRuleTestBytes)
	}
	if res, more, err := n.TestRule(ctx, all, tr, 10); err != nil || !more || res.Evaluated != 10 {
		t.Fatalf("limit 10: %d evaluated, more %v, %v", res.Evaluated, more, err)
	}
}
