package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
)

// buildCDevice builds the C library's example, weft-msg, with the
// sanitizers (clients/c), and returns its path. It skips the test, saying
// why, where there is no C compiler or libsodium (.ci/run installs them).
func buildCDevice(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"make", "cc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s here: the C device is not tested (.ci/run installs build-essential)", tool)
		}
	}
	if err := exec.Command("pkg-config", "--exists", "libsodium").Run(); err != nil {
		t.Skip("no libsodium here: the C device is not tested (.ci/run installs libsodium-dev)")
	}
	out := t.TempDir()
	if b, err := exec.Command("make", "-s", "-C", "../../clients/c", "O="+out, out+"/san/weft-msg").CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, b)
	}
	return filepath.Join(out, "san", "weft-msg")
}

// TestCDevice: messages built by the C library's example, from a key file
// written by weft keygen, piped to curl as clients/c/README.md shows, are
// stored and confirmed by a node at the default proof of work.
func TestCDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	msgBin := buildCDevice(t)
	p := startNode(t, t.TempDir())
	key, pub := newKey(t)
	c := client.New(p.url)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, curlErr := exec.LookPath("curl")

	var ids []dag.ID
	for i, payload := range []string{`{"t":21.5}`, "", strings.Repeat("x", 300)} {
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/tips?size=%d", p.url, len(payload)))
		if err != nil {
			t.Fatal(err)
		}
		var tips struct {
			Parents      []string `json:"parents"`
			MinTimestamp int64    `json:"min_timestamp"`
		}
		json.NewDecoder(resp.Body).Decode(&tips)
		resp.Body.Close()
		args := []string{"--key", key, "--network", "e2e", "--parents", tips.Parents[0], tips.Parents[1],
			"--min-timestamp", strconv.FormatInt(tips.MinTimestamp, 10)}
		var status string
		var stderr bytes.Buffer
		if curlErr == nil && i != 1 {
			// The pipeline of the README, the payload as an argument.
			script := `"$0" "$@" | curl -sS -o /dev/null -w '%{http_code}' ` +
				`-H 'Content-Type: application/octet-stream' --data-binary @- ` + p.url + "/api/v1/messages"
			cmd := exec.Command("sh", append([]string{"-c", script, msgBin}, append(args, "--payload", payload)...)...)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("weft-msg | curl: %v\n%s", err, stderr.Bytes())
			}
			status = string(out)
		} else {
			// The payload on stdin, the bytes posted from here.
			cmd := exec.Command(msgBin, args...)
			cmd.Stdin, cmd.Stderr = strings.NewReader(payload), &stderr
			raw, err := cmd.Output()
			if err != nil {
				t.Fatalf("weft-msg: %v\n%s", err, stderr.Bytes())
			}
			st, err := postRaw(p.url, raw)
			if err != nil {
				t.Fatal(err)
			}
			status = strconv.Itoa(st)
		}
		if status != "201" {
			t.Fatalf("message %d: status %s; weft-msg said:\n%s", i, status, stderr.Bytes())
		}
		id, err := dag.ParseID(strings.TrimSpace(stderr.String()))
		if err != nil {
			t.Fatalf("weft-msg's stderr %q: %v", stderr.Bytes(), err)
		}
		m, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Payload) != payload || m.Issuer != pub {
			t.Fatalf("message %d: payload %q issuer %s, want %q %s", i, m.Payload, m.Issuer, payload, pub)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if mi, err := c.WaitConfirmed(ctx, id); err != nil || !mi.Confirmed {
			t.Fatalf("waiting for %s: %v", id, err)
		}
	}
}
