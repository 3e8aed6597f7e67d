package main

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/rules"
)

// nodeSettingsOf parses `weft node` args and reads the settings with the
// environment env (KEY=VALUE).
func nodeSettingsOf(t *testing.T, env []string, args ...string) (*nodeSettings, error) {
	t.Helper()
	cmd := newNodeCmd()
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	return readNodeSettings(cmd.Flags(), env)
}

// writeYAML writes a YAML file in a temporary directory and returns its
// path.
func writeYAML(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "weft.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func testKeys(t *testing.T, n int) []dag.PublicKey {
	t.Helper()
	var out []dag.PublicKey
	for range n {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, dag.PublicKey(pub))
	}
	return out
}

// wantUsage fails unless err is a usage error wrapping kind whose message
// has every one of parts.
func wantUsage(t *testing.T, err error, kind error, parts ...string) {
	t.Helper()
	var ue *usageError
	if !errors.As(err, &ue) || !errors.Is(err, kind) {
		t.Fatalf("err %v: want a usage error wrapping %v", err, kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("err %q: want it to say %q", err, p)
		}
	}
}

func TestSettingsUnknownFileKey(t *testing.T) {
	path := writeYAML(t, "api_addr: 127.0.0.1:9000\nlog-levle: debug\nnetwork: ok\n")
	_, err := nodeSettingsOf(t, nil, "--config", path)
	wantUsage(t, err, errUnknownSetting,
		`unknown setting "log-levle" in `+path+`; did you mean "log-level"?`,
		`unknown setting "api_addr" in `+path+`; did you mean "api-addr"?`)

	_, err = nodeSettingsOf(t, nil, "--config", writeYAML(t, "config: other.yaml\n"))
	wantUsage(t, err, errUnknownSetting, `unknown setting "config"`)

	// Every flag but config is a key; case does not matter, as in viper.
	ns, err := nodeSettingsOf(t, nil, "--config", writeYAML(t, "Network: mine\npow-base: 0\n"))
	if err != nil || ns.cfg.Network != "mine" || ns.cfg.PoWBase != 0 || !ns.cfg.NoPoW {
		t.Fatalf("%+v %v", ns, err)
	}
}

func TestSettingsUnknownEnv(t *testing.T) {
	for _, tc := range []struct{ env, near string }{
		{"WEFT_LOG_LEVLE=debug", "WEFT_LOG_LEVEL"},
		{"WEFT_DATADIR=/tmp", "WEFT_DATA_DIR"},
		{"WEFT_PEERS=x", "WEFT_PEER"},
		{"WEFT_ALLOWLIST=x", "WEFT_ALLOW"},
		{"WEFT_API_ADDRESS=x", "WEFT_API_ADDR"},
	} {
		_, err := nodeSettingsOf(t, []string{"HOME=/", tc.env})
		name, _, _ := strings.Cut(tc.env, "=")
		wantUsage(t, err, errUnknownSetting, "unknown environment variable "+name+"; did you mean "+tc.near+"?")
	}
	// Far from every setting: another program's; and the project's own
	// test variables, however close.
	for _, env := range []string{"WEFT_SOMETHING_ELSE=1", "WEFT_SEED=7", "WEFT_NETFAULT_SEED=3", "NOT_WEFT=1"} {
		if _, err := nodeSettingsOf(t, []string{env}); err != nil {
			t.Fatalf("%s: %v", env, err)
		}
	}
}

// TestSettingsRepoEnv checks that no WEFT_ variable the project's code
// reads (test knobs) is refused by `weft node`, which runs under them in
// the tests that start nodes.
func TestSettingsRepoEnv(t *testing.T) {
	re := regexp.MustCompile(`"(WEFT_[A-Z0-9_]+)"`)
	var found []string
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || path == filepath.Join("..", "..", "cmd", "weft")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			found = append(found, m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(found, "WEFT_NETFAULT_SEED") {
		t.Fatalf("the scan found %v, not even WEFT_NETFAULT_SEED: it does not scan the repository", found)
	}
	for _, name := range found {
		if _, err := nodeSettingsOf(t, []string{name + "=1"}); errors.Is(err, errUnknownSetting) {
			t.Errorf("%s, read by the project's code, is refused: %v", name, err)
		}
	}
}

func TestSettingsLists(t *testing.T) {
	k := testKeys(t, 3)
	want := k[:2]
	// The environment is comma-separated, as the flags are.
	ns, err := nodeSettingsOf(t, []string{"WEFT_ALLOW=" + k[0].String() + "," + k[1].String()})
	if err != nil || !slices.Equal(ns.cfg.Allowlist, want) {
		t.Fatalf("env: %v %v", ns, err)
	}
	ns, err = nodeSettingsOf(t, []string{"WEFT_REMOTE_POW_KEY=" + k[0].String() + ", " + k[1].String(),
		"WEFT_VALIDATOR=" + k[0].String() + ":2," + k[1].String(),
		"WEFT_PEER=" + k[0].String() + "@127.0.0.1:7001," + k[1].String() + "@127.0.0.1:7002"})
	if err != nil || !slices.Equal(ns.cfg.RemotePoWKeys, want) || len(ns.cfg.Validators) != 2 ||
		ns.cfg.Validators[0].Weight != 2 || ns.cfg.Validators[1].Weight != 1 ||
		len(ns.cfg.Peers) != 2 || ns.cfg.Peers[1].Addr != "127.0.0.1:7002" {
		t.Fatalf("env: %+v %v", ns, err)
	}
	// The old form, separated by spaces, is one malformed key.
	_, err = nodeSettingsOf(t, []string{"WEFT_ALLOW=" + k[0].String() + " " + k[1].String()})
	wantUsage(t, err, errBadSetting, "WEFT_ALLOW")
	// The file takes a list or a comma-separated string.
	path := writeYAML(t, "allow:\n  - "+k[0].String()+"\n  - "+k[1].String()+"\nremote-pow-key: "+k[0].String()+","+k[1].String()+"\n")
	ns, err = nodeSettingsOf(t, nil, "--config", path)
	if err != nil || !slices.Equal(ns.cfg.Allowlist, want) || !slices.Equal(ns.cfg.RemotePoWKeys, want) {
		t.Fatalf("file: %+v %v", ns, err)
	}
	// Precedence: flag over environment over file.
	ns, err = nodeSettingsOf(t, []string{"WEFT_ALLOW=" + k[1].String()}, "--config", path)
	if err != nil || !slices.Equal(ns.cfg.Allowlist, k[1:2]) {
		t.Fatalf("env over file: %v %v", ns, err)
	}
	ns, err = nodeSettingsOf(t, []string{"WEFT_ALLOW=" + k[1].String()}, "--config", path, "--allow", k[2].String())
	if err != nil || !slices.Equal(ns.cfg.Allowlist, k[2:3]) {
		t.Fatalf("flag over env: %v %v", ns, err)
	}
	// Empty means the default: everyone.
	ns, err = nodeSettingsOf(t, []string{"WEFT_ALLOW="}, "--config", writeYAML(t, "allow: []\n"))
	if err != nil || len(ns.cfg.Allowlist) != 0 {
		t.Fatalf("empty: %v %v", ns, err)
	}
	ns, err = nodeSettingsOf(t, nil, "--config", writeYAML(t, "allow:\nnetwork:\n"))
	if err != nil || len(ns.cfg.Allowlist) != 0 || ns.cfg.Network != "weft-devnet" {
		t.Fatalf("keys without a value: %v %v", ns, err)
	}
}

func TestSettingsValues(t *testing.T) {
	ns, err := nodeSettingsOf(t, []string{"WEFT_ISSUE_INTERVAL=20ms", "WEFT_RATE_PER_ISSUER=2.5", "WEFT_OPEN=true"},
		"--config", writeYAML(t, "max-payload: 200\nsubmit-timeout: 2s\nno-sync: true\nlog-level: debug\n"))
	if err != nil || ns.cfg.IssueInterval != 20*time.Millisecond || ns.cfg.RatePerIssuer != 2.5 || !ns.cfg.OpenGossip ||
		ns.cfg.MaxPayload != 200 || ns.cfg.SubmitTimeout != 2*time.Second || !ns.cfg.Store.NoSync || ns.logLevel.String() != "debug" {
		t.Fatalf("%+v %v", ns, err)
	}
	for _, tc := range []struct {
		env, file, says string
	}{
		{env: "WEFT_POW_BASE=abc", says: `WEFT_POW_BASE="abc": want an integer`},
		{env: "WEFT_OPEN=yes", says: `WEFT_OPEN="yes": want true or false`},
		{env: "WEFT_SUBMIT_TIMEOUT=5", says: `WEFT_SUBMIT_TIMEOUT="5": want a duration`},
		{file: "pow-base: ten\n", says: `pow-base in `},
		{file: "network: [a, b]\n", says: "a list, for a setting of one value"},
		{file: "allow: {a: b}\n", says: "allow in "},
		{file: "max-payload: 0\n", says: "max-payload in "},
		{env: "WEFT_LOG_LEVEL=loud", says: `WEFT_LOG_LEVEL: "loud": want debug, info, warn or error`},
		{env: "WEFT_RATE_BURST=-1", says: "WEFT_RATE_BURST"},
		{env: "WEFT_PEER=nokey", says: "want PUBKEY@HOST:PORT"},
		{env: "WEFT_VALIDATOR=" + strings.Repeat("ab", 32) + ":0", says: "weight must be a positive integer"},
		{env: "WEFT_CORS_ORIGIN=https://a.example/path", says: "want * or an origin"},
		{env: "WEFT_MEMORY_LIMIT=lots", says: `WEFT_MEMORY_LIMIT: "lots"`},
		{file: "memory-limit: 10MiB\n", says: "want 0 or at least 64MiB"},
	} {
		env := []string{tc.env}
		var args []string
		if tc.file != "" {
			args = []string{"--config", writeYAML(t, tc.file)}
		}
		_, err := nodeSettingsOf(t, env, args...)
		wantUsage(t, err, errBadSetting, tc.says)
	}
	ns, err = nodeSettingsOf(t, []string{"WEFT_CORS_ORIGIN=https://a.example,http://127.0.0.1:3000,*"})
	if err != nil || len(ns.corsOrigins) != 3 {
		t.Fatalf("cors-origin: %v %v", ns, err)
	}
	ns, err = nodeSettingsOf(t, []string{"WEFT_MEMORY_LIMIT=200MiB"})
	if err != nil || ns.memoryLimit != 200<<20 {
		t.Fatalf("memory-limit 200MiB: %v %v", ns, err)
	}
	// WEFT_CONFIG names the file.
	ns, err = nodeSettingsOf(t, []string{"WEFT_CONFIG=" + writeYAML(t, "network: fromfile\n")})
	if err != nil || ns.cfg.Network != "fromfile" {
		t.Fatalf("WEFT_CONFIG: %v %v", ns, err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"log-level", "log-levle", 1}, {"api_addr", "api-addr", 1},
		{"SEED", "PEER", 2}, {"kitten", "sitting", 3}, {"ab", "ba", 1},
	} {
		if d := editDistance(tc.a, tc.b); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, d, tc.d)
		}
		if d := editDistance(tc.b, tc.a); d != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.b, tc.a, d, tc.d)
		}
	}
}

// TestSettingsRules: the file's rules list becomes the node's rules; a
// field no rule has, a condition that does not compile and two rules of
// one name are refused, with the file and the rule named.
func TestSettingsRules(t *testing.T) {
	path := writeYAML(t, `
max-rules: 5
rule-retry-max: 30s
rule-retry-base: 2s
rules:
  - name: cold-chain
    condition: 'payload.temp_c > 8.0 && "cold-chain" in tags'
    action:
      kind: webhook
      url: http://127.0.0.1:9000/weft
      secret: "a long random secret, 16 bytes or more"
  - name: logged
    condition: "true"
    action: {kind: log}
`)
	ns, err := nodeSettingsOf(t, nil, "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	r := ns.cfg.Rules
	if len(r) != 2 || r[0].Name != "cold-chain" || r[0].Action.URL != "http://127.0.0.1:9000/weft" || r[1].Action.Kind != "log" ||
		ns.cfg.MaxRules != 5 || ns.cfg.RuleEngine.BackoffMax != 30*time.Second || ns.cfg.RuleEngine.BackoffBase != 2*time.Second || ns.cfg.RuleEngine.MaxAttempts != 10 {
		t.Fatalf("rules %+v, max %d, engine %+v", r, ns.cfg.MaxRules, ns.cfg.RuleEngine)
	}
	for _, tc := range []struct{ text, want string }{
		{"rules:\n  - name: x\n    condition: 'true'\n    action: {kind: log}\n    when: now\n", "field when not found"},
		{"rules:\n  - name: x\n    condition: 'temperature > 8'\n    action: {kind: log}\n", "undeclared reference to 'temperature'"},
		{"rules:\n  - {name: x, condition: 'true', action: {kind: log}}\n  - {name: x, condition: 'false', action: {kind: log}}\n", `two rules named "x"`},
		{"rules: 3\n", "cannot unmarshal"},
		{"max-rules: 1\nrules:\n  - {name: x, condition: 'true', action: {kind: log}}\n  - {name: y, condition: 'true', action: {kind: log}}\n", "more than max-rules"},
	} {
		_, err := nodeSettingsOf(t, nil, "--config", writeYAML(t, tc.text))
		wantUsage(t, err, errBadSetting, tc.want, "weft.yaml")
	}
}

// TestRulesDocExamples: what docs/RULES.md tells an operator to write is
// taken: its YAML rule, the worked example's configuration file, and every
// example condition.
func TestRulesDocExamples(t *testing.T) {
	b, err := os.ReadFile("../../docs/RULES.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var files []string
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		files = append(files, m[1])
	}
	for _, m := range regexp.MustCompile("(?s)cat > weft.yaml <<'YAML'\n(.*?)YAML\n").FindAllStringSubmatch(doc, -1) {
		files = append(files, m[1])
	}
	if len(files) < 2 {
		t.Fatalf("docs/RULES.md has %d configuration examples, want the rule and the worked example's file", len(files))
	}
	for _, f := range files {
		ns, err := nodeSettingsOf(t, nil, "--config", writeYAML(t, f))
		if err != nil || len(ns.cfg.Rules) == 0 {
			t.Fatalf("docs/RULES.md's\n%s\nis refused (%v) or has no rule", f, err)
		}
	}
	ex := regexp.MustCompile("(?s)Examples:\n\n```\n(.*?)```").FindStringSubmatch(doc)
	if ex == nil {
		t.Fatal("docs/RULES.md has no block of example conditions")
	}
	for _, line := range strings.Split(strings.TrimSpace(ex[1]), "\n") {
		cond := strings.TrimSpace(strings.SplitN(line, "  #", 2)[0])
		if _, err := rules.Compile(rules.Rule{Name: "doc", Condition: cond, Action: rules.Action{Kind: rules.KindLog}}); err != nil {
			t.Errorf("docs/RULES.md's example condition %q: %v", cond, err)
		}
	}
}
