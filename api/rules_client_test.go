package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/rules"
)

// TestRulesClient: the Go client's rules methods against a node, and its
// feed options asking for rule events.
func TestRulesClient(t *testing.T) {
	srv, n := testServerWith(t, func(c *node.Config) {
		c.RuleEngine.PollInterval = 20 * time.Millisecond
	}, Options{Tokens: testTokens})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ae *client.APIError
	anon := client.New(srv.URL, client.WithRetry(client.Retry{Attempts: 1}))
	if _, err := anon.Rules(ctx); !errors.As(err, &ae) || ae.Status != 401 || ae.Code != client.CodeUnauthorized {
		t.Fatalf("rules without a token: %v", err)
	}
	c := client.New(srv.URL, client.WithToken(opsSecret))
	freezing := client.Rule{Name: "freezing", Condition: "payload.temp_c < 0.0", Action: client.RuleAction{Kind: rules.KindEvent}}
	r, err := c.AddRule(ctx, freezing)
	if err != nil || r.Source != node.RuleFromAPI || r.UpdatedBy != "ops" || r.Stats == nil {
		t.Fatalf("add: %+v, %v", r, err)
	}
	if _, err := c.AddRule(ctx, freezing); !errors.As(err, &ae) || ae.Code != client.CodeRuleExists {
		t.Fatalf("add again: %v", err)
	}
	_, err = c.AddRule(ctx, client.Rule{Name: "bad", Condition: "nope > 1", Action: client.RuleAction{Kind: rules.KindLog}})
	if !errors.As(err, &ae) || ae.Code != client.CodeInvalidRule || !strings.Contains(ae.Message, "undeclared reference to 'nope'") {
		t.Fatalf("a rule that does not compile: %v", err)
	}
	hook := client.Rule{Name: "hook", Condition: "true", Action: client.RuleAction{Kind: rules.KindWebhook, URL: "http://127.0.0.1:9/x", Secret: ruleSecret}}
	if r, created, err := c.PutRule(ctx, hook); err != nil || !created || !r.Action.SecretSet || r.Action.Secret != "" {
		t.Fatalf("put a new rule: %+v %v %v", r, created, err)
	}
	hook.Condition = "false"
	if r, created, err := c.PutRule(ctx, hook); err != nil || created || r.Condition != "false" {
		t.Fatalf("put replacing: %+v %v %v", r, created, err)
	}
	if rs, err := c.Rules(ctx); err != nil || len(rs) != 2 || rs[0].Name != "freezing" || rs[1].Name != "hook" {
		t.Fatalf("list: %+v %v", rs, err)
	}
	if dls, err := c.DeadLetters(ctx, "hook"); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters: %+v %v", dls, err)
	}
	if err := c.RemoveRule(ctx, "hook"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rule(ctx, "hook"); !errors.As(err, &ae) || ae.Code != client.CodeNotFound {
		t.Fatalf("a removed rule: %v", err)
	}
	if _, err := c.DeadLetters(ctx, "hook"); !errors.As(err, &ae) || ae.Code != client.CodeNotFound {
		t.Fatalf("dead letters of a removed rule: %v", err)
	}

	// Rule events, through the client's feed.
	events := make(chan client.RuleEvent, 4)
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	go anon.EventsWith(feedCtx, client.FeedOptions{Kinds: []string{client.EventRule}}, func(ev client.Event) error {
		re, err := ev.Rule()
		if err != nil {
			t.Error(err)
			return err
		}
		events <- *re
		return nil
	})
	bl := &builder{t: t, n: n, key: key(8)}
	var want string
	for i, temp := range []float64{4, -3, 5} {
		m := bl.build(fmt.Sprintf(`{"temp_c":%g}`, temp), nil)
		if i == 0 {
			waitSubscribed(t, n)
		}
		if st, out := post(t, srv.URL+"/api/v1/messages", m.AppendEncoding(nil)); st != 201 {
			t.Fatalf("submit: %d %v", st, out)
		}
		if temp < 0 {
			want = m.ID().String()
		}
	}
	select {
	case re := <-events:
		if re.Rule != "freezing" || re.ID != want {
			t.Fatalf("rule event %+v, want freezing on %s", re, want)
		}
	case <-ctx.Done():
		t.Fatal("no rule event")
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
	res, err := c.TestRule(ctx, client.RuleTest{Name: "freezing", From: "0", To: to})
	if err != nil || res.Evaluated != 3 || len(res.Matches) != 1 {
		t.Fatalf("test: %+v %v", res, err)
	}
}

// waitSubscribed waits until the node has an event subscriber.
func waitSubscribed(t *testing.T, n *node.Node) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.Subscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no subscriber in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
