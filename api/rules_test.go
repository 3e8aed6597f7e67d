package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/rules"
)

const ruleSecret = "a webhook secret of 16+ bytes"

// TestRulesNeedAToken: every rules endpoint refuses a request without a
// token or with a wrong one, reads included; a node with no token
// configured refuses them all.
func TestRulesNeedAToken(t *testing.T) {
	srv, _ := testServer(t, nil)
	resp, b := call(t, "GET", srv.URL+wire.PathRules, opsSecret, nil)
	wantError(t, "rules on a node with no token", resp, b, 403, wire.CodeForbidden)

	srv, _ = testServerWith(t, nil, Options{Tokens: testTokens})
	body := wire.Rule{Name: "r", Condition: "true", Action: wire.RuleAction{Kind: "log"}}
	test := wire.RuleTest{Name: "r", From: "0", To: "1"}
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"GET", wire.PathRules, nil},
		{"POST", wire.PathRules, body},
		{"GET", wire.PathRules + "/r", nil},
		{"PUT", wire.PathRules + "/r", body},
		{"DELETE", wire.PathRules + "/r", nil},
		{"GET", wire.PathRules + "/r/dead-letters", nil},
		{"POST", wire.PathRuleTest, test},
	} {
		for _, secret := range []string{"", "wrong-secret-0123456789"} {
			resp, b := call(t, tc.method, srv.URL+tc.path, secret, tc.body)
			wantError(t, tc.method+" "+tc.path+" with "+secret, resp, b, 401, wire.CodeUnauthorized)
		}
	}
	if got, _ := getRules(t, srv.URL); len(got) != 0 {
		t.Fatalf("rules after refused changes: %+v", got)
	}
}

func getRules(t *testing.T, url string) ([]wire.Rule, *http.Response) {
	t.Helper()
	resp, b := call(t, "GET", url+wire.PathRules, opsSecret, nil)
	var l wire.RuleList
	if resp.StatusCode != 200 || json.Unmarshal(b, &l) != nil {
		t.Fatalf("GET rules: %d %s", resp.StatusCode, b)
	}
	return l.Rules, resp
}

// TestRulesAPI: rules are added, read (never with their secret),
// replaced, tested, listed with their figures and removed; bad ones are
// refused with the compiler's message; the configuration's cannot be
// changed; an event rule's matches are on the feed as kind=rule.
func TestRulesAPI(t *testing.T) {
	var mu sync.Mutex
	var got []rules.Match
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if rules.Verify([]byte(ruleSecret), r.Header.Get(rules.HeaderTimestamp), r.Header.Get(rules.HeaderSignature), b, time.Now(), time.Minute) != nil {
			http.Error(w, "bad signature", 401)
			return
		}
		var m rules.Match
		json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}))
	defer hook.Close()
	srv, n := testServerWith(t, func(c *node.Config) {
		c.Rules = []rules.Rule{{Name: "configured", Condition: "false", Action: rules.Action{Kind: rules.KindLog}}}
		c.RuleEngine.PollInterval = 20 * time.Millisecond
	}, Options{Tokens: testTokens})
	base := srv.URL + wire.PathRules

	hot := wire.Rule{Name: "hot", Condition: `payload.temp_c > 8.0`, Action: wire.RuleAction{Kind: "webhook", URL: hook.URL, Secret: ruleSecret}}
	resp, b := call(t, "POST", base, opsSecret, hot)
	if resp.StatusCode != 201 || resp.Header.Get("Location") != wire.PathRules+"/hot" {
		t.Fatalf("POST: %d %s %q", resp.StatusCode, b, resp.Header.Get("Location"))
	}
	if strings.Contains(string(b), ruleSecret) {
		t.Fatalf("the answer carries the secret: %s", b)
	}
	var r wire.Rule
	json.Unmarshal(b, &r)
	if r.Source != "api" || r.UpdatedBy != "ops" || !r.Action.SecretSet || r.Action.Secret != "" || r.Stats == nil || r.Updated == 0 {
		t.Fatalf("POST answered %+v", r)
	}
	resp, b = call(t, "POST", base, opsSecret, hot)
	wantError(t, "POST again", resp, b, 409, wire.CodeRuleExists)

	bad := wire.Rule{Name: "bad", Condition: "temperature > 8", Action: wire.RuleAction{Kind: "log"}}
	resp, b = call(t, "POST", base, opsSecret, bad)
	if e := wantError(t, "a condition that does not compile", resp, b, 400, wire.CodeInvalidRule); !strings.Contains(e.Message, "undeclared reference to 'temperature'") {
		t.Errorf("the refusal is not the compiler's: %s", e.Message)
	}
	for _, tc := range []struct {
		what string
		rule wire.Rule
	}{
		{"a bad name", wire.Rule{Name: "Bad Name", Condition: "true", Action: wire.RuleAction{Kind: "log"}}},
		{"an unknown action", wire.Rule{Name: "x", Condition: "true", Action: wire.RuleAction{Kind: "sms"}}},
		{"a webhook without a secret", wire.Rule{Name: "x", Condition: "true", Action: wire.RuleAction{Kind: "webhook", URL: hook.URL}}},
		{"not bool", wire.Rule{Name: "x", Condition: "payload.alarm", Action: wire.RuleAction{Kind: "log"}}},
	} {
		resp, b := call(t, "POST", base, opsSecret, tc.rule)
		wantError(t, tc.what, resp, b, 400, wire.CodeInvalidRule)
	}
	resp, b = call(t, "POST", base, opsSecret, map[string]any{"name": "x", "condition": "true", "action": map[string]any{"kind": "log"}, "stats": map[string]any{}})
	wantError(t, "a body with the node's fields", resp, b, 400, wire.CodeBadRequest)
	resp, b = call(t, "PUT", base+"/configured", opsSecret, wire.Rule{Condition: "true", Action: wire.RuleAction{Kind: "log"}})
	wantError(t, "PUT on the configuration's rule", resp, b, 409, wire.CodeRuleInConfig)
	resp, b = call(t, "DELETE", base+"/configured", opsSecret, nil)
	wantError(t, "DELETE the configuration's rule", resp, b, 409, wire.CodeRuleInConfig)
	resp, b = call(t, "PUT", base+"/hot", opsSecret, wire.Rule{Name: "other", Condition: "true", Action: wire.RuleAction{Kind: "log"}})
	wantError(t, "PUT with another name in the body", resp, b, 400, wire.CodeBadRequest)

	// An event rule, by PUT: created.
	ev := wire.Rule{Condition: `payload.temp_c < 0.0`, Action: wire.RuleAction{Kind: "event"}}
	resp, b = call(t, "PUT", base+"/freezing", opsSecret, ev)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT a new rule: %d %s", resp.StatusCode, b)
	}
	feed := openFeed(t, srv.URL, "kind=rule", "")

	bl := &builder{t: t, n: n, key: key(7)}
	var hotIDs []string
	var freezing string
	for _, temp := range []float64{3, 9.5, -2, 12} {
		m := bl.build(fmt.Sprintf(`{"temp_c":%g}`, temp), nil)
		if st, out := post(t, srv.URL+wire.PathMessages, m.AppendEncoding(nil)); st != 201 {
			t.Fatalf("submit: %d %v", st, out)
		}
		switch {
		case temp > 8:
			hotIDs = append(hotIDs, m.ID().String())
		case temp < 0:
			freezing = m.ID().String()
		}
	}
	ev1 := feed.next()
	re, err := wire.DecodeRule(ev1.Data)
	if ev1.Name != wire.EventRule || ev1.ID != "" || err != nil || re.Rule != "freezing" || re.ID != freezing {
		t.Fatalf("feed: %s %q %s (%v), want the freezing rule's event on %s", ev1.Name, ev1.ID, ev1.Data, err, freezing)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k >= len(hotIDs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d webhook deliveries in 20 s", k, len(hotIDs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	for i, m := range got[:len(hotIDs)] {
		if m.Rule != "hot" || m.Message.ID != hotIDs[i] {
			t.Errorf("delivery %d: %+v, want %s", i, m, hotIDs[i])
		}
	}
	mu.Unlock()

	// The figures, and the test endpoint: by name, and a rule given whole.
	list, _ := getRules(t, srv.URL)
	if len(list) != 3 || list[0].Name != "configured" || list[0].Source != "config" || list[1].Name != "freezing" || list[2].Name != "hot" {
		t.Fatalf("rules: %+v", list)
	}
	// The receiver has both; the node settles each delivery once the
	// receiver's answer is in.
	for deadline := time.Now().Add(10 * time.Second); list[2].Stats.Delivered < 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		list, _ = getRules(t, srv.URL)
	}
	if s := list[2].Stats; s.Matches != 2 || s.Delivered != 2 || s.Pending != 0 {
		t.Errorf("hot's figures: %+v", s)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if in := n.Info(); in.Unconfirmed == 0 && in.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the readings were not confirmed in 20 s")
		}
	}
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var res wire.RuleTestResult
	resp, b = call(t, "POST", srv.URL+wire.PathRuleTest, opsSecret, wire.RuleTest{Name: "hot", From: "0", To: to, Issuer: pubOf(key(7)).String()})
	if resp.StatusCode != 200 || json.Unmarshal(b, &res) != nil || res.Evaluated != 4 || len(res.Matches) != 2 || res.More {
		t.Fatalf("test by name: %d %s", resp.StatusCode, b)
	}
	resp, b = call(t, "POST", srv.URL+wire.PathRuleTest, opsSecret, wire.RuleTest{Rule: &wire.Rule{Name: "t", Condition: "payload.temp_c > 0.0"}, From: "0", To: to, Limit: 2})
	if resp.StatusCode != 200 || json.Unmarshal(b, &res) != nil || res.Evaluated != 2 || !res.More {
		t.Fatalf("test of a rule given whole, limit 2: %d %s", resp.StatusCode, b)
	}
	resp, b = call(t, "POST", srv.URL+wire.PathRuleTest, opsSecret, wire.RuleTest{Rule: &wire.Rule{Name: "t", Condition: "nope"}, From: "0", To: to})
	wantError(t, "a test of a rule that does not compile", resp, b, 400, wire.CodeInvalidRule)
	resp, b = call(t, "POST", srv.URL+wire.PathRuleTest, opsSecret, wire.RuleTest{Name: "hot", From: to, To: "0"})
	wantError(t, "a test of an empty range", resp, b, 400, wire.CodeBadRequest)
	resp, b = call(t, "POST", srv.URL+wire.PathRuleTest, opsSecret, wire.RuleTest{Rule: &wire.Rule{Name: "t", Condition: "true", Source: "api"}})
	wantError(t, "a test of a rule with the node's fields", resp, b, 400, wire.CodeBadRequest)
	resp, b = call(t, "POST", srv.URL+wire.PathRuleTest, opsSecret, wire.RuleTest{Name: "hot"})
	if resp.StatusCode != 200 || json.Unmarshal(b, &res) != nil || res.Evaluated != 4 {
		t.Fatalf("a test of the whole store (no from, no to): %d %s", resp.StatusCode, b)
	}

	// Replaced: it goes on from its cursor, with the new condition.
	resp, b = call(t, "PUT", base+"/hot", opsSecret, wire.Rule{Condition: `payload.temp_c > 100.0`, Action: wire.RuleAction{Kind: "webhook", URL: hook.URL, Secret: ruleSecret}})
	if resp.StatusCode != 200 {
		t.Fatalf("PUT replacing: %d %s", resp.StatusCode, b)
	}
	json.Unmarshal(b, &r)
	if r.Condition != `payload.temp_c > 100.0` || r.Stats.Matches != 2 {
		t.Errorf("replaced: %+v", r)
	}
	resp, b = call(t, "GET", base+"/hot/dead-letters", opsSecret, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"dead_letters":[]`) {
		t.Errorf("dead letters: %d %s", resp.StatusCode, b)
	}
	resp, _ = call(t, "DELETE", base+"/hot", opsSecret, nil)
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	for _, path := range []string{"/hot", "/hot/dead-letters"} {
		resp, b = call(t, "GET", base+path, opsSecret, nil)
		wantError(t, "GET a removed rule"+path, resp, b, 404, wire.CodeNotFound)
	}
	resp, b = call(t, "DELETE", base+"/hot", opsSecret, nil)
	wantError(t, "DELETE again", resp, b, 404, wire.CodeNotFound)
}
