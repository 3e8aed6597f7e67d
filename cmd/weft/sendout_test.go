package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/client/clienttest"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// postFile posts the bytes of the file at path to the node's
// /api/v1/messages, as README's curl does, and returns the status and the
// id the node answered.
func postFile(t *testing.T, url, path string) (int, string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/api/v1/messages", "application/octet-stream", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ ID string }
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &body)
	return resp.StatusCode, body.ID
}

// checkOut decodes the message send wrote to path and checks it against
// the id send printed, the issuer and payload asked for, and its proof of
// work.
func checkOut(t *testing.T, path, stdout string, issuer dag.PublicKey, payload string, difficulty int) *dag.Message {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dag.Decode(b, dag.MaxPayload)
	if err != nil {
		t.Fatalf("the file is not a message: %v", err)
	}
	if stdout != m.ID().String()+"\n" || m.Issuer != issuer || string(m.Payload) != payload {
		t.Fatalf("stdout %q, message %s issuer %s payload %q", stdout, m.ID(), m.Issuer, m.Payload)
	}
	if id := m.ID(); !pow.Meets(id, difficulty) {
		t.Fatalf("the message's id %s does not meet difficulty %d", id, difficulty)
	}
	return m
}

func TestSendOut(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{PoWBase: 8})
	defer node.Close()
	key, pub := newKey(t)
	out := filepath.Join(t.TempDir(), "message.bin")
	stdout, _, err := run(t, "", "send", "--node", node.URL, "--key", key, "--data", `{"temp_c":21.5}`, "--out", out)
	if err != nil {
		t.Fatal(err)
	}
	tips, err := client.New(node.URL).Tips(context.Background(), len(`{"temp_c":21.5}`))
	if err != nil {
		t.Fatal(err)
	}
	checkOut(t, out, stdout, pub, `{"temp_c":21.5}`, tips.Difficulty)
	if node.Len() != 1 {
		t.Fatalf("send --out submitted: the node holds %d messages", node.Len())
	}
	if st, id := postFile(t, node.URL, out); st != http.StatusCreated || id+"\n" != stdout {
		t.Fatalf("posting the file: %d %q", st, id)
	}
}

func TestSendOutOffline(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{PoWBase: 8, Network: "offline-net"})
	defer node.Close()
	key, pub := newKey(t)
	tips, err := client.New(node.URL).Tips(context.Background(), 4)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "message.bin")
	offline := []string{"send", "--key", key, "--data", "temp", "--out", out,
		"--node", "http://127.0.0.1:1", // no node there: it must not be asked
		"--parents", tips.Parents[0].String() + "," + tips.Parents[1].String(),
		"--min-timestamp", strconv.FormatInt(tips.MinTimestamp, 10),
		"--difficulty", strconv.Itoa(tips.Difficulty), "--network", "offline-net"}
	stdout, _, err := run(t, "", offline...)
	if err != nil {
		t.Fatal(err)
	}
	m := checkOut(t, out, stdout, pub, "temp", tips.Difficulty)
	if m.Parents != tips.Parents || m.Timestamp < tips.MinTimestamp || m.Network != tips.NetworkID {
		t.Fatalf("message %+v, tips %+v", m, tips)
	}
	if st, id := postFile(t, node.URL, out); st != http.StatusCreated || id+"\n" != stdout {
		t.Fatalf("posting the file: %d %q", st, id)
	}

	p := tips.Parents[0].String()
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--parents", p, "--difficulty", "8"}, "two ids"},
		{[]string{"--parents", p + ",nothex", "--difficulty", "8"}, `"nothex" is not a message id`},
		{[]string{"--parents", p + "," + p}, "difficulty"},
		{[]string{"--difficulty", "8"}, "parents"},
		{[]string{"--min-timestamp", "5"}, "--min-timestamp needs --parents"},
		{[]string{"--parents", p + "," + p, "--difficulty", "300"}, "--difficulty 300"},
		{[]string{"--wait"}, "wait"},
		{[]string{"--remote-pow"}, "remote-pow"},
	} {
		args := append([]string{"send", "--node", node.URL, "--key", key, "--data", "x", "--out", out}, tc.args...)
		_, _, err := run(t, "", args...)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%v: %v, want a usage error saying %q", tc.args, err, tc.says)
		}
	}
	if node.Len() != 2 {
		t.Fatalf("the node holds %d messages, want the genesis and the one posted", node.Len())
	}
}

// TestReadmeCurlWalk follows README.md's walk with curl, with net/http in
// curl's place, against a running node: keygen, the tips, send --out, the
// POST of the file (201 once durable), the message, the node's info.
func TestReadmeCurlWalk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`./weft keygen --out device.key`,
		`curl -s 'http://127.0.0.1:8080/api/v1/tips?size=15'`,
		`./weft send --key device.key --data '{"temp_c":21.5}' --out message.bin`,
		`curl -s --data-binary @message.bin -H 'Content-Type: application/octet-stream' \`,
		`http://127.0.0.1:8080/api/v1/messages `,
		`curl -s http://127.0.0.1:8080/api/v1/messages/<id>`,
	} {
		if !bytes.Contains(readme, []byte(line)) {
			t.Fatalf("README.md's walk no longer has %q: update this test with it", line)
		}
	}

	p := startNode(t, t.TempDir())
	dir := t.TempDir()
	weft := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(weftBin, args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("weft %v: %v", args, err)
		}
		return string(out)
	}
	weft("keygen", "--out", "device.key")

	resp, err := http.Get(p.url + "/api/v1/tips?size=15")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("tips: %v %v", resp, err)
	}
	resp.Body.Close()

	stdout := weft("send", "--node", p.url, "--key", "device.key", "--data", `{"temp_c":21.5}`, "--out", "message.bin")
	st, id := postFile(t, p.url, filepath.Join(dir, "message.bin"))
	if st != http.StatusCreated || id+"\n" != stdout {
		t.Fatalf("POST message.bin: %d %q, send printed %q", st, id, stdout)
	}
	for _, path := range []string{"/api/v1/messages/" + id, "/api/v1/info"} {
		resp, err := http.Get(p.url + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	if st, _ := postFile(t, p.url, filepath.Join(dir, "message.bin")); st != http.StatusConflict {
		t.Fatalf("the same file again: %d, want %d (duplicate)", st, http.StatusConflict)
	}
}
