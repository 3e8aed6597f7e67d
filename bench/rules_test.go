package bench

import (
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/rules"
)

// TestRules checks that the benchmark's rules compile, post to the URL
// asked, and match on readings as rules.yaml says: webhooks well under 1%
// of messages in all, and each rule that reads the readings' fields on
// some of them.
func TestRules(t *testing.T) {
	rs, err := Rules("http://127.0.0.1:1/hook")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 10 {
		t.Fatalf("%d rules, want 10", len(rs))
	}
	const n = 100_000
	msgs := make([]rules.Message, n)
	now := time.Now()
	for i := range msgs {
		m := &dag.Message{Version: dag.Version, Seq: uint64(i), Timestamp: now.UnixNano(), Payload: Reading(uint64(i), 100)}
		m.ID()
		msgs[i] = rules.Message{Confirmation: uint64(i), ConfirmedAt: now.Add(time.Second), Msg: m}
	}
	want := map[string]float64{ // the fraction of readings each should match
		"temp-high": 0.0005, "temp-low": 0.0005, "audit-sample": 0.001, "humid": 0.002, "hot-and-humid": 0.0028,
	}
	webhooks := 0
	for _, r := range rs {
		if _, err := rules.Compile(r); err != nil {
			t.Fatal(err)
		}
		if r.Action.Kind == rules.KindWebhook && r.Action.URL != "http://127.0.0.1:1/hook" {
			t.Errorf("rule %s posts to %s", r.Name, r.Action.URL)
		}
		res, err := rules.Test(r, msgs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Errors) > 0 {
			t.Errorf("rule %s: %d errors on readings, the first %+v", r.Name, len(res.Errors), res.Errors[0])
		}
		got := float64(len(res.Matches)) / n
		t.Logf("%-18s %-8s %.4f%%", r.Name, r.Action.Kind, 100*got)
		if w := want[r.Name]; got < w*0.8 || got > w*1.2 {
			t.Errorf("rule %s matched %.4f%% of readings, want about %.4f%%", r.Name, 100*got, 100*w)
		}
		if r.Action.Kind == rules.KindWebhook {
			webhooks += len(res.Matches)
		}
	}
	if f := float64(webhooks) / n; f > 0.003 {
		t.Errorf("webhooks match %.3f%% of readings", 100*f)
	}
	def, err := Rules("")
	if err != nil {
		t.Fatal(err)
	}
	if def[0].Action.URL != RulesWebhookURL {
		t.Errorf("rules.yaml's webhook posts to %s, not RulesWebhookURL", def[0].Action.URL)
	}
}
