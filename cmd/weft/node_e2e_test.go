package main

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// runWeft runs the weft binary with args, the test's environment and
// extra variables env, and returns its stderr and exit status.
func runWeft(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	_, stderr, code := weftOut(t, env, args...)
	return stderr, code
}

func TestExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dir := t.TempDir()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	node := []string{"node", "--data-dir", dir, "--gossip-addr", "127.0.0.1:0", "--no-sync"}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		says string
	}{
		{"unknown command", nil, []string{"nod"}, 2, `unknown command "nod"`},
		{"unknown flag", nil, append(node, "--bogus"), 2, "unknown flag: --bogus"},
		{"bad flag value", nil, append(node, "--pow-base", "ten"), 2, `invalid argument "ten"`},
		{"stray argument", nil, append(node, "extra"), 2, "unknown command"},
		{"unknown key in the file", nil, append(node, "--config", writeYAML(t, "log-levle: debug\n")), 2,
			`did you mean "log-level"?`},
		{"bad value in the file", nil, append(node, "--config", writeYAML(t, "max-payload: lots\n")), 2, "max-payload in "},
		{"missing file", nil, append(node, "--config", dir+"/none.yaml"), 2, "none.yaml"},
		{"unknown variable", []string{"WEFT_LOG_LEVLE=debug"}, node, 2, "did you mean WEFT_LOG_LEVEL?"},
		{"bad variable", []string{"WEFT_ALLOW=nokey"}, node, 2, "WEFT_ALLOW"},
		{"send without --key", nil, []string{"send", "--data", "x"}, 2, "--key FILE is required"},
		{"exclusive flags", nil, []string{"send", "--key", "k", "--data", "x", "--file", "y"}, 2, "none of the others can be"},
		{"flags needed together", nil, []string{"send", "--key", "k", "--out", "m.bin", "--difficulty", "8"}, 2, "must all be set"},
		{"the API address is taken", nil, append(node, "--api-addr", taken.Addr().String()), 1, "address already in use"},
		{"no node to send to", nil, []string{"get", "--node", "http://" + taken.Addr().String(), "--timeout", "1s",
			strings.Repeat("00", 32)}, 1, "getting message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr, code := runWeft(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.says) {
				t.Fatalf("exit %d, want %d; stderr (want %q):\n%s", code, tc.code, tc.says, stderr)
			}
		})
	}
}

// submitAs posts a message of key to the node and returns the status.
func submitAs(t *testing.T, p *proc, key ed25519.PrivateKey) int {
	t.Helper()
	m := rawMessage(t, p.url, key, uint64(time.Now().UnixNano()), []byte("reading"))
	st, err := postRaw(p.url, m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestReloadOnSIGHUP changes the allowlist in the node's file, sends
// SIGHUP and checks that the node refuses and accepts devices by the new
// list; an invalid file on the next SIGHUP changes nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	_, a, _ := ed25519.GenerateKey(nil)
	_, b, _ := ed25519.GenerateKey(nil)
	hexKey := func(k ed25519.PrivateKey) string { return dag.PublicKey(k.Public().(ed25519.PublicKey)).String() }
	path := writeYAML(t, "allow:\n  - "+hexKey(a)+"\nlog-level: info\n")
	p := startNode(t, t.TempDir(), "--pow-base", "0", "--no-sync", "--config", path)

	if st := submitAs(t, p, a); st != http.StatusCreated {
		t.Fatalf("device a, allowed: %d", st)
	}
	if st := submitAs(t, p, b); st != http.StatusForbidden {
		t.Fatalf("device b, not allowed: %d", st)
	}

	if err := os.WriteFile(path, []byte("allow: "+hexKey(b)+"\nlog-level: debug\nrate-per-issuer: 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	off := p.waitLog(t, `"node starting"`, 0)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	off = p.waitLog(t, `"configuration reloaded"`, off)
	line := p.logText()
	line = line[strings.LastIndex(line[:off-1], "\n")+1 : off]
	for _, want := range []string{`"log_level":"debug"`, `"log_level_from":"info"`, hexKey(b), `"restart_needed":["rate-per-issuer"]`} {
		if !strings.Contains(line, want) {
			t.Fatalf("the reload's log line does not say %s:\n%s", want, line)
		}
	}
	if st := submitAs(t, p, b); st != http.StatusCreated {
		t.Fatalf("device b, allowed after the reload: %d", st)
	}
	if st := submitAs(t, p, a); st != http.StatusForbidden {
		t.Fatalf("device a, no longer allowed: %d", st)
	}

	// An invalid file: logged, nothing changes, the node runs on.
	if err := os.WriteFile(path, []byte("allow: "+hexKey(a)+"\nlog-levle: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, `"reload refused: the configuration is invalid; nothing changed"`, off)
	if st := submitAs(t, p, b); st != http.StatusCreated {
		t.Fatalf("device b after a refused reload: %d", st)
	}
	if st := submitAs(t, p, a); st != http.StatusForbidden {
		t.Fatalf("device a after a refused reload: %d", st)
	}
	if err := p.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the node is gone after SIGHUP: %v", err)
	}
	if err := p.kill(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.logs)
	}
	if !strings.Contains(p.logs.String(), `"stopped"`) {
		t.Fatalf("no clean stop in the logs:\n%s", p.logs)
	}
}

// TestDebugAddr: --debug-addr serves the profiler on a listener of its
// own, and the API does not.
func TestDebugAddr(t *testing.T) {
	p := startNode(t, t.TempDir(), "--debug-addr", "127.0.0.1:0")
	end := p.waitLog(t, "profiler endpoints on", 0)
	line := p.logText()[:end]
	line = line[strings.LastIndex(strings.TrimSuffix(line, "\n"), "\n")+1:]
	var rec struct{ Debug string }
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Debug == "" {
		t.Fatalf("log line %q: %v", line, err)
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(rec.Debug + "heap?debug=1"); code != http.StatusOK || !strings.Contains(body, "heap profile") {
		t.Fatalf("heap profile: %d %.200q", code, body)
	}
	if code, _ := get(p.url + "/debug/pprof/heap"); code != http.StatusNotFound {
		t.Fatalf("the API serves the profiler: %d", code)
	}
}
