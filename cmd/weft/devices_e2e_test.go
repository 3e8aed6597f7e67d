package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

const (
	e2eSecret  = "e2e-ops-secret-6f1c2a9d"
	e2eWrong   = "e2e-wrong-secret-77b3e0"
	e2eBadSecr = "tiny9"
)

// weftOut runs the weft binary with args and extra environment env and
// returns its stdout, stderr and exit status.
func weftOut(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, weftBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee) && ee.Exited():
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatalf("weft %v: %v\n%s", args, err, stderr.String())
	return "", "", -1
}

// submitCode posts a message of key to the node and returns the status
// and the error code of the answer.
func submitCode(t *testing.T, p *proc, key ed25519.PrivateKey) (int, string) {
	t.Helper()
	m := rawMessage(t, p.url, key, uint64(time.Now().UnixNano()), []byte("reading"))
	resp, err := http.Post(p.url+"/api/v1/messages", "application/octet-stream", bytes.NewReader(m.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Error struct{ Code string } }
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error.Code
}

// TestDevicesRevokeWithoutRestart runs a node and `weft devices`: a
// revoked device is refused at its next submission and taken again after
// allow, without a restart; changes need the right token; a revocation
// acknowledged just before a SIGKILL holds after the restart; the change
// log says who and when; no token appears in the node's log.
func TestDevicesRevokeWithoutRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dir := t.TempDir()
	args := []string{"--pow-base", "0", "--api-tokens", "ops:" + e2eSecret}
	p := startNode(t, dir, args...)
	_, dev, _ := ed25519.GenerateKey(nil)
	k := dag.PublicKey(dev.Public().(ed25519.PublicKey)).String()
	env := []string{"WEFT_API_TOKEN=" + e2eSecret}
	devices := func(env []string, a ...string) (string, string, int) {
		return weftOut(t, env, append([]string{"devices", "--node", p.url}, a...)...)
	}
	mustDevices := func(a ...string) string {
		t.Helper()
		out, errOut, code := devices(env, a...)
		if code != 0 {
			t.Fatalf("weft devices %v: exit %d\n%s", a, code, errOut)
		}
		return out
	}

	if st, code := submitCode(t, p, dev); st != http.StatusCreated {
		t.Fatalf("an unregistered device, open registry: %d %s", st, code)
	}
	start := time.Now()
	mustDevices("add", k, "--name", "fridge 12", "--tag", "cold-chain,site:north", "--owner", "ward 3")
	// Changes without the token, or with a wrong one, are refused.
	for _, e := range [][]string{{"WEFT_API_TOKEN="}, {"WEFT_API_TOKEN=" + e2eWrong}} {
		_, errOut, code := devices(e, "revoke", k)
		if code != 1 || !strings.Contains(errOut, "unauthorized") {
			t.Fatalf("revoke with %v: exit %d\n%s", e, code, errOut)
		}
	}
	if st, _ := submitCode(t, p, dev); st != http.StatusCreated {
		t.Fatalf("after refused revokes: %d", st)
	}
	mustDevices("revoke", k)
	if st, code := submitCode(t, p, dev); st != http.StatusForbidden || code != "revoked" {
		t.Fatalf("revoked device: %d %s", st, code)
	}
	mustDevices("allow", "--token", e2eSecret, k)
	if st, code := submitCode(t, p, dev); st != http.StatusCreated {
		t.Fatalf("allowed again: %d %s", st, code)
	}
	mustDevices("untag", k, "site:north")
	if out := mustDevices("list", "--tag", "cold-chain"); !strings.Contains(out, k) || !strings.Contains(out, `"fridge 12"`) || strings.Contains(out, "site:north") {
		t.Fatalf("list --tag cold-chain:\n%s", out)
	}
	// Revoked, then killed as soon as the revocation is answered.
	mustDevices("revoke", k)
	p.kill(syscall.SIGKILL)
	logs := p.logText()

	p = startNode(t, dir, args...)
	if st, code := submitCode(t, p, dev); st != http.StatusForbidden || code != "revoked" {
		t.Fatalf("revoked before a SIGKILL, after the restart: %d %s", st, code)
	}
	var shown struct{ State string }
	if out := mustDevices("show", k); json.Unmarshal([]byte(out), &shown) != nil || shown.State != "revoked" {
		t.Fatalf("show:\n%s", out)
	}
	out := mustDevices("changes")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var ops []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 5 {
			t.Fatalf("a change line: %q", l)
		}
		at, err := time.Parse(time.RFC3339Nano, f[1])
		if err != nil || at.Before(start.Add(-time.Second)) || at.After(time.Now()) || f[2] != "ops" || f[4] != k {
			t.Fatalf("a change line: %q (%v)", l, err)
		}
		ops = append(ops, f[3])
	}
	if want := "revoke untag allow revoke add"; strings.Join(ops, " ") != want {
		t.Fatalf("the change log's operations, newest first: %v, want %s\n%s", ops, want, out)
	}
	// A request with the wrong token on the restarted node, then the logs.
	if _, _, code := devices([]string{"WEFT_API_TOKEN=" + e2eWrong}, "allow", k); code != 1 {
		t.Fatalf("allow with a wrong token: exit %d", code)
	}
	if err := p.kill(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs += p.logText()
	if !strings.Contains(logs, "unknown token") {
		t.Fatalf("the node did not log the refusals:\n%s", logs)
	}
	for _, s := range []string{e2eSecret, e2eWrong} {
		if strings.Contains(logs, s) {
			t.Fatalf("the node's log holds a token:\n%s", logs)
		}
	}
}

// TestTokenNotLogged: a bad token setting is refused at start with a
// message that names it by its place, not its value; reads closed without
// a token are refused too.
func TestTokenNotLogged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	node := []string{"node", "--data-dir", t.TempDir(), "--gossip-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--no-sync"}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--api-tokens", "ops:" + e2eSecret + ",audit:" + e2eBadSecr}, "token 2"},
		{[]string{"--api-tokens", e2eBadSecr + e2eSecret}, "token 1"},
		{[]string{"--api-tokens", "ops:" + e2eSecret + ",ops2:" + e2eSecret}, "two tokens are the same"},
		{[]string{"--api-read-auth"}, "no token is configured"},
	} {
		_, stderr, code := weftOut(t, nil, append(node, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.says) {
			t.Fatalf("%v: exit %d, want 2 saying %q:\n%s", tc.args, code, tc.says, stderr)
		}
		if strings.Contains(stderr, e2eBadSecr) || strings.Contains(stderr, e2eSecret) {
			t.Fatalf("%v: the error shows a token:\n%s", tc.args, stderr)
		}
	}
	file := writeYAML(t, "# tokens\nops:"+e2eSecret+"\n\naudit:"+e2eBadSecr+"\n")
	_, stderr, code := weftOut(t, nil, append(node, "--api-token-file", file)...)
	if code != 2 || !strings.Contains(stderr, "line 4") || strings.Contains(stderr, e2eBadSecr) {
		t.Fatalf("a bad token file: exit %d\n%s", code, stderr)
	}
}
