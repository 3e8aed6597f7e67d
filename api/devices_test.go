package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/node"
)

const (
	opsSecret   = "ops-secret-0123456789"
	auditSecret = "audit-secret-0123456789"
)

var testTokens = []Token{{Name: "ops", Secret: opsSecret}, {Name: "audit", Secret: auditSecret}}

// call sends method to url with a JSON body (nil: none) and the bearer
// token secret ("": no Authorization), and returns the answer.
func call(t *testing.T, method, url, secret string, body any) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	header := map[string]string{}
	if secret != "" {
		header["Authorization"] = "Bearer " + secret
	}
	return doBody(t, method, url, header, r)
}

// wantError checks an answer's status and code.
func wantError(t *testing.T, what string, resp *http.Response, b []byte, status int, code string) wire.Error {
	t.Helper()
	e := errorBody(t, b)
	if resp.StatusCode != status || e.Code != code {
		t.Fatalf("%s: %d %s (%s), want %d %s", what, resp.StatusCode, e.Code, e.Message, status, code)
	}
	return e
}

func TestDevicesNeedAToken(t *testing.T) {
	// No token configured: changes are refused, and the message says how
	// to configure one; reads are open.
	srv, _ := testServer(t, nil)
	dev := srv.URL + wire.PathDevices
	resp, b := call(t, "POST", dev, opsSecret, wire.NewDevice{Key: pubOf(key(9)).String()})
	if e := wantError(t, "no token configured", resp, b, 403, wire.CodeForbidden); !strings.Contains(e.Message, "api-tokens") {
		t.Fatalf("the refusal does not say how to configure a token: %s", e.Message)
	}
	if resp, b := call(t, "GET", dev, "", nil); resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}

	srv, _ = testServerWith(t, nil, Options{Tokens: testTokens})
	dev = srv.URL + wire.PathDevices
	k := pubOf(key(9)).String()
	for _, tc := range []struct{ method, path, secret, header string }{
		{"POST", "", "", `Bearer realm="weft"`},
		{"POST", "", "wrong-secret-0123456789", `Bearer realm="weft", error="invalid_token"`},
		{"POST", "", opsSecret + "x", `Bearer realm="weft", error="invalid_token"`},
		{"POST", "", opsSecret[:len(opsSecret)-1], `Bearer realm="weft", error="invalid_token"`},
		{"PATCH", "/" + k, "", `Bearer realm="weft"`},
		{"DELETE", "/" + k, "wrong-secret-0123456789", `Bearer realm="weft", error="invalid_token"`},
	} {
		resp, b := call(t, tc.method, dev+tc.path, tc.secret, wire.NewDevice{Key: k})
		wantError(t, tc.method+" with "+tc.secret, resp, b, 401, wire.CodeUnauthorized)
		if got := resp.Header.Get("WWW-Authenticate"); got != tc.header {
			t.Errorf("%s with %q: WWW-Authenticate %q, want %q", tc.method, tc.secret, got, tc.header)
		}
		if bytes.Contains(b, []byte("secret")) {
			t.Errorf("the answer quotes a token: %s", b)
		}
	}
	// Not a bearer token at all.
	req, _ := http.NewRequest("POST", dev, strings.NewReader(`{"key":"`+k+`"}`))
	req.Header.Set("Authorization", "Basic "+opsSecret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("basic auth: %v %v", resp, err)
	}
	// The scheme is case-insensitive; the token's name is who.
	req, _ = http.NewRequest("POST", dev, strings.NewReader(`{"key":"`+k+`"}`))
	req.Header.Set("Authorization", "bearer "+auditSecret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("lower-case bearer: %v %v", resp, err)
	}
	resp, b = call(t, "GET", srv.URL+wire.PathDeviceChanges, "", nil)
	var cs wire.DeviceChanges
	if err := json.Unmarshal(b, &cs); err != nil || resp.StatusCode != 200 || len(cs.Changes) != 1 || cs.Changes[0].Who != "audit" {
		t.Fatalf("changes: %d %s", resp.StatusCode, b)
	}
}

func TestReadAuth(t *testing.T) {
	srv, _ := testServerWith(t, nil, Options{Tokens: testTokens, ReadAuth: true})
	for _, p := range []string{wire.PathDevices, wire.PathDeviceChanges, wire.PathInfo, wire.PathIssuers + "/" + pubOf(key(9)).String() + "/messages", "/metrics", "/"} {
		resp, b := call(t, "GET", srv.URL+p, "", nil)
		wantError(t, "GET "+p, resp, b, 401, wire.CodeUnauthorized)
		if resp, b := call(t, "GET", srv.URL+p, opsSecret, nil); resp.StatusCode != 200 {
			t.Fatalf("GET %s with a token: %d %s", p, resp.StatusCode, b)
		}
	}
	for _, p := range []string{wire.PathTips, wire.PathHealth, wire.PathReady} {
		if resp, b := call(t, "GET", srv.URL+p, "", nil); resp.StatusCode != 200 {
			t.Fatalf("GET %s without a token: %d %s", p, resp.StatusCode, b)
		}
	}
}

func TestDevicesAPI(t *testing.T) {
	srv, n := testServerWith(t, nil, Options{Tokens: testTokens})
	dev := srv.URL + wire.PathDevices
	b1 := &builder{t: t, n: n, key: key(20)}
	k := pubOf(b1.key).String()

	resp, b := call(t, "POST", dev, opsSecret, wire.NewDevice{Key: k, Name: "fridge 1", Tags: []string{"cold-chain"}, Owner: "ward 3"})
	var d wire.Device
	if err := json.Unmarshal(b, &d); err != nil || resp.StatusCode != 201 || resp.Header.Get("Location") != wire.PathDevices+"/"+k ||
		d.Key != k || d.State != "allowed" || d.Created == 0 || d.Updated != d.Created {
		t.Fatalf("add: %d %s", resp.StatusCode, b)
	}
	resp, b = call(t, "POST", dev, opsSecret, wire.NewDevice{Key: k})
	wantError(t, "add again", resp, b, 409, wire.CodeDeviceExists)
	for what, body := range map[string]any{
		"a short key":   wire.NewDevice{Key: k[:10]},
		"a long name":   wire.NewDevice{Key: pubOf(key(21)).String(), Name: strings.Repeat("x", node.MaxDeviceName+1)},
		"a bad tag":     wire.NewDevice{Key: pubOf(key(21)).String(), Tags: []string{"Cold Chain"}},
		"a bad state":   wire.NewDevice{Key: pubOf(key(21)).String(), State: "banned"},
		"a stray field": map[string]string{"key": pubOf(key(21)).String(), "colour": "red"},
	} {
		resp, b := call(t, "POST", dev, opsSecret, body)
		wantError(t, what, resp, b, 400, wire.CodeBadRequest)
	}
	resp, b = call(t, "POST", dev, opsSecret, strings.Repeat("x", wire.MaxDeviceBody))
	wantError(t, "a long body", resp, b, 413, wire.CodeTooLarge)

	if resp, b := call(t, "GET", dev+"/"+k, "", nil); resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"fridge 1"`)) {
		t.Fatalf("get: %d %s", resp.StatusCode, b)
	}
	resp, b = call(t, "GET", dev+"/"+pubOf(key(22)).String(), "", nil)
	wantError(t, "get unknown", resp, b, 404, wire.CodeNotFound)
	resp, b = call(t, "GET", dev+"/nothex", "", nil)
	wantError(t, "get a bad key", resp, b, 400, wire.CodeMalformed)

	// Revoked through the API, the device's next submission is refused.
	if st, out := post(t, srv.URL+wire.PathMessages, b1.build("before", nil).Bytes()); st != 201 {
		t.Fatalf("allowed device: %d %v", st, out)
	}
	resp, b = call(t, "PATCH", dev+"/"+k, "audit", nil)
	wantError(t, "patch with a token's name for a secret", resp, b, 401, wire.CodeUnauthorized)
	resp, b = call(t, "PATCH", dev+"/"+k, auditSecret, map[string]any{"state": "revoked", "add_tags": []string{"site:b"}})
	if err := json.Unmarshal(b, &d); err != nil || resp.StatusCode != 200 || d.State != "revoked" || !slices.Equal(d.Tags, []string{"cold-chain", "site:b"}) {
		t.Fatalf("patch: %d %s", resp.StatusCode, b)
	}
	if st, out := post(t, srv.URL+wire.PathMessages, b1.build("after", nil).Bytes()); st != 403 || errCode(out) != wire.CodeRevoked {
		t.Fatalf("revoked device: %d %v", st, out)
	}
	resp, b = call(t, "PATCH", dev+"/"+pubOf(key(22)).String(), opsSecret, map[string]any{"name": "x"})
	wantError(t, "patch unknown", resp, b, 404, wire.CodeNotFound)

	// Listing: by tag, in pages.
	for i := range 5 {
		tags := []string{"site:b"}
		if i%2 == 0 {
			tags = nil
		}
		if resp, b := call(t, "POST", dev, opsSecret, wire.NewDevice{Key: pubOf(key(byte(30 + i))).String(), Tags: tags}); resp.StatusCode != 201 {
			t.Fatalf("add %d: %d %s", i, resp.StatusCode, b)
		}
	}
	list := func(q string) (keys []string) {
		for after := ""; ; {
			u := dev + "?limit=2" + q
			if after != "" {
				u += "&after=" + after
			}
			resp, b := call(t, "GET", u, "", nil)
			var l wire.DeviceList
			if err := json.Unmarshal(b, &l); err != nil || resp.StatusCode != 200 {
				t.Fatalf("list %s: %d %s", u, resp.StatusCode, b)
			}
			for _, d := range l.Devices {
				keys = append(keys, d.Key)
			}
			if after = l.NextAfter; after == "" {
				return keys
			}
		}
	}
	if all := list(""); len(all) != 6 || !slices.IsSorted(all) {
		t.Fatalf("all: %v", all)
	}
	if tagged := list("&tag=site:b"); len(tagged) != 3 || !slices.Contains(tagged, k) {
		t.Fatalf("tagged site:b: %v", tagged)
	}
	resp, b = call(t, "GET", dev+"?tag=Bad%20Tag", "", nil)
	wantError(t, "list by a bad tag", resp, b, 400, wire.CodeBadRequest)

	if resp, b := call(t, "DELETE", dev+"/"+k, opsSecret, nil); resp.StatusCode != 204 {
		t.Fatalf("delete: %d %s", resp.StatusCode, b)
	}
	resp, b = call(t, "DELETE", dev+"/"+k, opsSecret, nil)
	wantError(t, "delete again", resp, b, 404, wire.CodeNotFound)

	// The change log, newest first, in pages, says who.
	var ops []string
	for before := ""; ; {
		u := srv.URL + wire.PathDeviceChanges + "?limit=3"
		if before != "" {
			u += "&before=" + before
		}
		resp, b := call(t, "GET", u, "", nil)
		var cs wire.DeviceChanges
		if err := json.Unmarshal(b, &cs); err != nil || resp.StatusCode != 200 {
			t.Fatalf("changes: %d %s", resp.StatusCode, b)
		}
		for _, c := range cs.Changes {
			if c.Key == k {
				ops = append(ops, c.Who+" "+c.Op+" "+c.Detail)
			}
		}
		if cs.NextBefore == nil {
			break
		}
		before = strconv.FormatUint(*cs.NextBefore, 10)
	}
	want := []string{"ops remove ", "audit revoke ", "audit tag site:b", "ops add allowed"}
	if !slices.Equal(ops, want) {
		t.Fatalf("the change log of %s: %q, want %q", k, ops, want)
	}
	resp, b = call(t, "GET", srv.URL+wire.PathDeviceChanges+"?before=x", "", nil)
	wantError(t, "changes before x", resp, b, 400, wire.CodeBadRequest)
}

// TestDeviceDocExamples: the JSON examples of docs/API.md's "Devices"
// section decode into the wire types with no unknown field, and have
// every field the node's own answers have.
func TestDeviceDocExamples(t *testing.T) {
	b, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "\n## Devices")
	if start < 0 {
		t.Fatal(`docs/API.md has no "## Devices" section`)
	}
	sec := doc[start+1:]
	if end := strings.Index(sec[3:], "\n## "); end >= 0 {
		sec = sec[:end+3]
	}
	srv, n := testServerWith(t, nil, Options{Tokens: testTokens})
	if _, err := n.AddDevice("ops", node.Device{Key: pubOf(key(40)), Name: "n", Tags: []string{"t"}, Owner: "o"}); err != nil {
		t.Fatal(err)
	}
	answers := map[string][]byte{}
	for _, p := range []string{wire.PathDevices + "?limit=1", wire.PathDevices + "/" + pubOf(key(40)).String(), wire.PathDeviceChanges + "?limit=1"} {
		_, answers[p] = call(t, "GET", srv.URL+p, "", nil)
	}
	var seen []string
	for i, blk := range strings.Split(sec, "```json\n")[1:] {
		ex := blk[:strings.Index(blk, "```")]
		var fields map[string]any
		if err := json.Unmarshal([]byte(ex), &fields); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		var v any
		var answer []byte
		switch {
		case fields["devices"] != nil:
			v, answer = &wire.DeviceList{}, answers[wire.PathDevices+"?limit=1"]
		case fields["changes"] != nil:
			v, answer = &wire.DeviceChanges{}, answers[wire.PathDeviceChanges+"?limit=1"]
		case fields["created"] != nil:
			v, answer = &wire.Device{}, answers[wire.PathDevices+"/"+pubOf(key(40)).String()]
		case fields["add_tags"] != nil || fields["remove_tags"] != nil:
			v = &wire.DevicePatch{}
		case fields["key"] != nil:
			v = &wire.NewDevice{}
		case fields["error"] != nil:
			continue
		default:
			t.Fatalf("example %d is of no device type:\n%s", i+1, ex)
		}
		if err := wire.DecodeStrict([]byte(ex), v); err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, ex)
		}
		seen = append(seen, strings.TrimPrefix(fmt.Sprintf("%T", v), "*wire."))
		if answer != nil {
			var got map[string]any
			if err := json.Unmarshal(answer, &got); err != nil {
				t.Fatal(err)
			}
			for k := range got {
				if _, ok := fields[k]; !ok && k != "next_after" && k != "next_before" {
					t.Errorf("example %d lacks %q, which the node answers:\n%s", i+1, k, ex)
				}
			}
		}
	}
	slices.Sort(seen)
	seen = slices.Compact(seen)
	if want := []string{"Device", "DeviceChanges", "DeviceList", "DevicePatch", "NewDevice"}; !slices.Equal(seen, want) {
		t.Errorf("the Devices section shows %v, want an example of each of %v", seen, want)
	}
}
