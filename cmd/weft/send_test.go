package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/client/clienttest"
	"github.com/weftnet/weft/dag"
)

// newKey runs keygen and returns the key file and the public key.
func newKey(t *testing.T) (string, dag.PublicKey) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "device.key")
	stdout, _, err := run(t, "", "keygen", "--out", path)
	if err != nil {
		t.Fatal(err)
	}
	var pub dag.PublicKey
	if _, err := hex.Decode(pub[:], []byte(strings.TrimSpace(stdout))); err != nil {
		t.Fatal(err)
	}
	return path, pub
}

// sentID parses the id send printed on its first line and returns the
// message the node holds under it.
func sentID(t *testing.T, node *clienttest.Server, stdout string) (dag.ID, *dag.Message) {
	t.Helper()
	id, err := dag.ParseID(strings.SplitN(stdout, "\n", 2)[0])
	if err != nil {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	m, ok := node.Message(id)
	if !ok {
		t.Fatalf("the node does not have %s", id)
	}
	return id, m
}

func TestSend(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{PoWBase: 8})
	defer node.Close()
	key, pub := newKey(t)
	payloadFile := filepath.Join(t.TempDir(), "reading.json")
	os.WriteFile(payloadFile, []byte(`{"from": "file"}`), 0o644)

	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"data", "", []string{"--data", `{"t": 21.5}`}, `{"t": 21.5}`},
		{"empty data", "ignored", []string{"--data", ""}, ""},
		{"file", "", []string{"--file", payloadFile}, `{"from": "file"}`},
		{"stdin", "from stdin\n", nil, "from stdin\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"send", "--node", node.URL, "--key", key}, tc.args...)
			stdout, _, err := run(t, tc.stdin, args...)
			if err != nil {
				t.Fatal(err)
			}
			id, m := sentID(t, node, stdout)
			if stdout != id.String()+"\n" || string(m.Payload) != tc.want || m.Issuer != pub {
				t.Fatalf("stdout %q, payload %q, issuer %s", stdout, m.Payload, m.Issuer)
			}
		})
	}
}

func TestSendWait(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{PoWBase: 8, AutoConfirm: true})
	defer node.Close()
	key, _ := newKey(t)
	stdout, _, err := run(t, "", "send", "--node", node.URL, "--key", key, "--data", "x", "--wait")
	if err != nil {
		t.Fatal(err)
	}
	sentID(t, node, stdout)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "confirmed at ") {
		t.Fatalf("stdout %q", stdout)
	}

	// Never confirmed: the timeout ends the wait.
	slow := clienttest.NewServer(clienttest.Config{PoWBase: 8})
	defer slow.Close()
	stdout, _, err = run(t, "", "send", "--node", slow.URL, "--key", key, "--data", "y", "--wait", "--timeout", "300ms")
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("err %v", err)
	}
	sentID(t, slow, stdout) // the id was printed before the wait
}

func TestSendRemotePoW(t *testing.T) {
	key, pub := newKey(t)
	node := clienttest.NewServer(clienttest.Config{PoWBase: 8, RemotePoW: []dag.PublicKey{pub}})
	defer node.Close()
	stdout, _, err := run(t, "", "send", "--node", node.URL, "--key", key, "--data", "x", "--remote-pow")
	if err != nil {
		t.Fatal(err)
	}
	sentID(t, node, stdout)

	other, _ := newKey(t)
	_, _, err = run(t, "", "send", "--node", node.URL, "--key", other, "--data", "x", "--remote-pow")
	if err == nil || !strings.HasPrefix(err.Error(), "node refused the message: forbidden: ") {
		t.Fatalf("key not listed: %v", err)
	}
}

func TestSendErrors(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{PoWBase: 8, MaxPayload: 10})
	defer node.Close()
	key, _ := newKey(t)
	send := func(args ...string) error {
		_, _, err := run(t, "", append([]string{"send", "--node", node.URL, "--key", key}, args...)...)
		return err
	}

	node.FailNext("/api/v1/messages", http.StatusUnprocessableEntity, client.CodeBadSignature, "dag: invalid signature")
	err := send("--data", "x")
	if err == nil || err.Error() != "node refused the message: bad_signature: dag: invalid signature" {
		t.Fatalf("refused: %v", err)
	}
	if !client.IsCode(err, client.CodeBadSignature) {
		t.Fatalf("the error does not wrap the APIError: %v", err)
	}

	node.FailNext("/api/v1/messages", http.StatusTooManyRequests, client.CodeRateLimited, "slow down")
	if err := send("--data", "x", "--retries", "1"); err == nil || !strings.Contains(err.Error(), "rate_limited: slow down") {
		t.Fatalf("rate limited: %v", err)
	}

	node.FailNext("/api/v1/tips", http.StatusServiceUnavailable, client.CodeShuttingDown, "bye")
	if err := send("--data", "x", "--retries", "1"); err == nil || !strings.Contains(err.Error(), "shutting_down: bye") {
		t.Fatalf("tips refused: %v", err)
	}

	if err := send("--data", "more than ten bytes"); !errors.Is(err, dag.ErrTooLarge) {
		t.Fatalf("over the network's limit: %v", err)
	}
	if err := send("--data", "x", "--file", "y"); err == nil {
		t.Fatal("--data and --file together")
	}
	if err := send("--file", filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing payload file: %v", err)
	}
	if _, _, err := run(t, strings.Repeat("x", dag.MaxPayload+1), "send", "--node", node.URL, "--key", key); err == nil {
		t.Fatal("a payload over the encoding's limit")
	}
	if _, _, err := run(t, "", "send", "--node", "127.0.0.1:8080", "--key", key, "--data", "x"); err == nil || !strings.Contains(err.Error(), "--node") {
		t.Fatalf("a node that is not a URL: %v", err)
	}
	if _, _, err := run(t, "", "send", "--node", node.URL, "--data", "x"); err == nil {
		t.Fatal("no --key")
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	if _, _, err := run(t, "", "send", "--node", node.URL, "--key", bad, "--data", "x"); !errors.Is(err, client.ErrKeyFormat) {
		t.Fatalf("malformed key: %v", err)
	}
	if node.Len() != 1 {
		t.Fatalf("the node holds %d messages, want only the genesis", node.Len())
	}
}

func TestSendUnreachableNode(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{})
	url := node.URL
	node.Close()
	key, _ := newKey(t)
	_, _, err := run(t, "", "send", "--node", url, "--key", key, "--data", "x")
	if err == nil || !strings.HasPrefix(err.Error(), "building the message: no answer from the node at 127.0.0.1:") {
		t.Fatalf("err %v", err)
	}
}

// TestSendPending: a message the node holds for its parents (202) is not
// stored, so send offers the same bytes again until it is, and then prints
// its id.
func TestSendPending(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{PoWBase: 0})
	defer node.Close()
	key, _ := newKey(t)
	other, _ := newKey(t) // the parent is another device's
	parentFile := filepath.Join(t.TempDir(), "parent.bin")
	stdout, _, err := run(t, "", "send", "--node", node.URL, "--key", other, "--data", "parent", "--out", parentFile)
	if err != nil {
		t.Fatal(err)
	}
	parentID := strings.TrimSpace(stdout)
	type result struct {
		stdout string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		out, _, err := run(t, "", "send", "--node", node.URL, "--key", key, "--data", "child",
			"--parents", parentID+","+parentID, "--difficulty", "0", "--network", "weft-testnet", "--timeout", "20s")
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("send returned before the parent was there: %q %v", r.stdout, r.err)
	case <-time.After(2 * pendingRetry): // the child was offered, and held, at least twice
	}
	raw, err := os.ReadFile(parentFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(node.URL+"/api/v1/messages", "application/octet-stream", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the parent: %d", resp.StatusCode)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("send: %v", r.err)
	}
	id, m := sentID(t, node, r.stdout)
	if string(m.Payload) != "child" || m.Parents[0].String() != parentID {
		t.Fatalf("stored %s: payload %q, parents %v", id, m.Payload, m.Parents)
	}
}
