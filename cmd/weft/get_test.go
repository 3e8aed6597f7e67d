package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/weftnet/weft/client/clienttest"
	"github.com/weftnet/weft/dag"
)

func TestGet(t *testing.T) {
	node := clienttest.NewServer(clienttest.Config{PoWBase: 8, AutoConfirm: true})
	defer node.Close()
	key, pub := newKey(t)
	stdout, _, err := run(t, "", "send", "--node", node.URL, "--key", key, "--data", `{"t": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	id, m := sentID(t, node, stdout)

	stdout, _, err = run(t, "", "get", "--node", node.URL, id.String())
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID        string `json:"id"`
		Issuer    string `json:"issuer"`
		Payload   []byte `json:"payload"`
		Confirmed bool   `json:"confirmed"`
		Parents   []string
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	if got.ID != id.String() || got.Issuer != pub.String() || string(got.Payload) != `{"t": 1}` || !got.Confirmed ||
		len(got.Parents) != 2 || got.Parents[0] != node.Genesis().String() {
		t.Fatalf("got %+v", got)
	}
	if !strings.HasPrefix(stdout, "{\n  \"id\": ") || !strings.HasSuffix(stdout, "}\n") {
		t.Fatalf("not indented:\n%s", stdout)
	}

	stdout, _, err = run(t, "", "get", "--node", node.URL, "--raw", id.String())
	if err != nil || !bytes.Equal([]byte(stdout), m.Bytes()) {
		t.Fatalf("raw: %x, %v", stdout, err)
	}

	missing := dag.ID{1}
	_, _, err = run(t, "", "get", "--node", node.URL, missing.String())
	if err == nil || err.Error() != "the node has no message "+missing.String() {
		t.Fatalf("missing: %v", err)
	}
	for _, args := range [][]string{{"get", "--node", node.URL}, {"get", "--node", node.URL, "abc"}, {"get", "--node", node.URL, id.String(), id.String()}} {
		if _, _, err := run(t, "", args...); err == nil {
			t.Errorf("%q succeeded", args)
		}
	}
}
