package main

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// TestRulesCLI: weft rules add (from flags and from a file), list, show,
// test, dead and rm against a node, each checked on what it printed, and
// the refusals: a condition that does not compile, with the compiler's
// message, a missing token and a rule of the node's file.
func TestRulesCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	cfg := filepath.Join(t.TempDir(), "weft.yaml")
	if err := os.WriteFile(cfg, []byte("rules:\n  - {name: filed, condition: 'false', action: {kind: log}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startNode(t, t.TempDir(), "--pow-base", "0", "--api-tokens", "ops:"+e2eSecret, "--config", cfg)
	env := []string{"WEFT_API_TOKEN=" + e2eSecret}
	run := func(env []string, a ...string) (string, string, int) {
		return weftOut(t, env, append([]string{"rules", "--node", p.url}, a...)...)
	}
	must := func(a ...string) string {
		t.Helper()
		out, errOut, code := run(env, a...)
		if code != 0 {
			t.Fatalf("weft rules %v: exit %d\n%s", a, code, errOut)
		}
		return out
	}

	out := must("add", "hot", "--condition", "payload.temp_c > 8.0", "--log")
	if !strings.Contains(out, "hot") || !strings.Contains(out, "api") || !strings.Contains(out, "payload.temp_c > 8.0") {
		t.Fatalf("add printed:\n%s", out)
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "hook.secret")
	os.WriteFile(secret, []byte("a secret of sixteen bytes or more\n"), 0o600)
	must("add", "hook", "--condition", "true", "--webhook", "http://127.0.0.1:9/weft", "--secret-file", secret)
	file := filepath.Join(dir, "rule.yaml")
	os.WriteFile(file, []byte("name: cold\ncondition: 'payload.temp_c < 0.0'\naction: {kind: event}\n"), 0o600)
	must("add", "-f", file)

	_, errOut, code := run(env, "add", "bad", "--condition", "temperature > 8", "--log")
	if code != 1 || !strings.Contains(errOut, "invalid_rule") || !strings.Contains(errOut, "undeclared reference to 'temperature'") {
		t.Fatalf("a condition that does not compile: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := run([]string{"WEFT_API_TOKEN="}, "list"); code != 1 || !strings.Contains(errOut, "unauthorized") {
		t.Fatalf("list without a token: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := run(env, "rm", "filed"); code != 1 || !strings.Contains(errOut, "rule_in_config") {
		t.Fatalf("rm of the file's rule: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := run(env, "add", "x", "--condition", "true"); code != 2 || !strings.Contains(errOut, "give one action") {
		t.Fatalf("add without an action: exit %d\n%s", code, errOut)
	}

	// Readings, then what the rules say of them.
	_, dev, _ := ed25519.GenerateKey(nil)
	for i, payload := range []string{`{"temp_c":4}`, `{"temp_c":9.5}`, `{"temp_c":-1}`, `not json`} {
		m := rawMessage(t, p.url, dev, uint64(i+1), []byte(payload))
		if st, err := postRaw(p.url, m.Bytes()); err != nil || st != http.StatusCreated {
			t.Fatalf("submit: %d %v", st, err)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if in, err := info(p.url); err == nil && in.Unconfirmed == 0 && in.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the readings were not confirmed in 30 s")
		}
	}
	out = must("test", "hot", "--issuer", dag.PublicKey(dev.Public().(ed25519.PublicKey)).String())
	if !strings.Contains(out, `{"temp_c":9.5}`) || strings.Contains(out, `{"temp_c":4}`) || !strings.Contains(out, "4 evaluated, 1 matched, 1 errors") {
		t.Fatalf("test hot:\n%s", out)
	}
	out = must("test", "--condition", "size(payload_raw) > 12", "--issuer", dag.PublicKey(dev.Public().(ed25519.PublicKey)).String(), "--limit", "2", "--json")
	var res wire.RuleTestResult
	if json.Unmarshal([]byte(out), &res) != nil || res.Evaluated != 2 || !res.More || len(res.Matches) != 1 {
		t.Fatalf("test --condition --limit 2 --json:\n%s", out)
	}
	out = must("list", "--json")
	var rs []wire.Rule
	if json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 4 || rs[0].Name != "cold" || rs[1].Name != "filed" || rs[1].Source != "config" ||
		rs[2].Name != "hook" || !rs[2].Action.SecretSet || strings.Contains(out, "sixteen bytes") {
		t.Fatalf("list --json:\n%s", out)
	}
	var shown wire.Rule
	if out := must("show", "cold"); json.Unmarshal([]byte(out), &shown) != nil || shown.Action.Kind != "event" || shown.Condition != "payload.temp_c < 0.0" {
		t.Fatalf("show cold:\n%s", out)
	}
	if out := must("dead", "hook"); !strings.HasPrefix(out, "FAILED_AT") {
		t.Fatalf("dead hook:\n%s", out)
	}
	must("add", "hot", "--condition", "payload.temp_c > 20.0", "--log", "--replace")
	if out := must("show", "hot"); !strings.Contains(out, "payload.temp_c > 20.0") {
		t.Fatalf("show after --replace:\n%s", out)
	}
	must("rm", "hot")
	if _, errOut, code := run(env, "show", "hot"); code != 1 || !strings.Contains(errOut, `the node has no rule "hot"`) {
		t.Fatalf("show a removed rule: exit %d\n%s", code, errOut)
	}
}
