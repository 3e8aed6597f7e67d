package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/weftnet/weft/dag"
)

const testNetwork = "weft-testnet"

var testNetworkID = dag.NetworkIDFromName(testNetwork)

// testKey returns a deterministic key.
func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

// testMessage returns a signed message on the test network whose parents
// are the genesis (its proof of work is not done).
func testMessage(key ed25519.PrivateKey, seq uint64, payload string) *dag.Message {
	g := dag.Genesis(testNetworkID).ID()
	m := &dag.Message{Version: dag.Version, Network: testNetworkID, Parents: [2]dag.ID{g, g}, Seq: seq,
		Timestamp: 1767225600000000000 + int64(seq), Payload: []byte(payload), Nonce: seq * 7}
	m.Sign(key)
	return m
}

// messageJSON writes m as docs/API.md shows a message, with extra fields
// added or replaced.
func messageJSONFor(m *dag.Message, extra map[string]any) []byte {
	v := map[string]any{
		"id": m.ID().String(), "version": m.Version, "network_id": fmt.Sprintf("%016x", uint64(m.Network)),
		"parents": []string{m.Parents[0].String(), m.Parents[1].String()}, "issuer": m.Issuer.String(),
		"seq": m.Seq, "timestamp": m.Timestamp, "payload": base64.StdEncoding.EncodeToString(m.Payload),
		"signature": hex.EncodeToString(m.Signature[:]), "nonce": m.Nonce, "position": 42, "solid": true,
		"confirmed": true, "confirmed_at": 1767225600120000000, "approval_weight": 1,
		"children": []string{dag.ID{9}.String()},
	}
	for k, x := range extra {
		if x == nil {
			delete(v, k)
		} else {
			v[k] = x
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestInfo(t *testing.T) {
	key := testKey(1).Public().(ed25519.PublicKey)
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/info" {
			t.Errorf("%s %s", r.Method, r.URL)
		}
		fmt.Fprintf(w, `{"node_id": "%x", "network": "weft-devnet", "network_id": "%016x", "version": "0.1.0",
 "messages": 1234, "solid": 1234, "confirmed": 1200, "unconfirmed": 34, "pending": 0, "tips": 12,
 "validators": [{"key": "%x", "weight": 1}], "threshold": "2/3", "peers": [],
 "messages_per_second": 812.5, "confirmed_per_second": 800.1, "something_new": true}`,
			key, uint64(dag.NetworkIDFromName("weft-devnet")), key)
	})
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &NodeInfo{
		NodeID: dag.PublicKey(key), Network: "weft-devnet", NetworkID: dag.NetworkIDFromName("weft-devnet"),
		Version: "0.1.0", Messages: 1234, Solid: 1234, Confirmed: 1200, Unconfirmed: 34, Tips: 12,
		Validators: []dag.Validator{{Key: dag.PublicKey(key), Weight: 1}}, Threshold: "2/3",
		Peers: []json.RawMessage{}, MessagesPerSecond: 812.5, ConfirmedPerSecond: 800.1,
	}
	if !reflect.DeepEqual(info, want) {
		t.Fatalf("got %+v\nwant %+v", info, want)
	}
}

func TestTips(t *testing.T) {
	p0, p1 := dag.ID{1}, dag.ID{2}
	nid := fmt.Sprintf("%016x", uint64(testNetworkID))
	for _, tc := range []struct {
		name, body string
		want       *Tips // nil: ErrBadResponse
	}{
		{"two parents", fmt.Sprintf(`{"parents": [%q, %q], "min_timestamp": 5, "difficulty": 11, "network": %q, "network_id": %q, "max_payload": 1024}`, p0, p1, testNetwork, nid),
			&Tips{Parents: [2]dag.ID{p0, p1}, MinTimestamp: 5, Difficulty: 11, Network: testNetwork, NetworkID: testNetworkID, MaxPayload: 1024}},
		{"one parent", fmt.Sprintf(`{"parents": [%q], "min_timestamp": 0, "difficulty": 10, "network": %q, "network_id": %q, "max_payload": 100}`, p0, testNetwork, nid),
			&Tips{Parents: [2]dag.ID{p0, p0}, Difficulty: 10, Network: testNetwork, NetworkID: testNetworkID, MaxPayload: 100}},
		{"no parents", fmt.Sprintf(`{"parents": [], "network": %q, "network_id": %q}`, testNetwork, nid), nil},
		{"three parents", fmt.Sprintf(`{"parents": [%q, %q, %q], "network": %q, "network_id": %q}`, p0, p0, p0, testNetwork, nid), nil},
		{"id of another network", fmt.Sprintf(`{"parents": [%q], "network": "weft-devnet", "network_id": %q}`, p0, nid), nil},
		{"short network id", fmt.Sprintf(`{"parents": [%q], "network": %q, "network_id": "2161"}`, p0, testNetwork), nil},
		{"bad parent", fmt.Sprintf(`{"parents": ["xyz"], "network": %q, "network_id": %q}`, testNetwork, nid), nil},
		{"difficulty", fmt.Sprintf(`{"parents": [%q], "difficulty": 65, "network": %q, "network_id": %q}`, p0, testNetwork, nid), nil},
		{"negative timestamp", fmt.Sprintf(`{"parents": [%q], "min_timestamp": -1, "network": %q, "network_id": %q}`, p0, testNetwork, nid), nil},
		{"max payload", fmt.Sprintf(`{"parents": [%q], "max_payload": 65536, "network": %q, "network_id": %q}`, p0, testNetwork, nid), nil},
		{"not json", `parents`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/tips" || r.URL.Query().Get("size") != "17" {
					t.Errorf("request %s", r.URL)
				}
				io.WriteString(w, tc.body)
			})
			got, err := c.Tips(context.Background(), 17)
			if tc.want == nil {
				if !errors.Is(err, ErrBadResponse) {
					t.Fatalf("got %+v, %v; want ErrBadResponse", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestSubmit(t *testing.T) {
	m := testMessage(testKey(1), 1, "hello")
	var lie bool
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/messages" || r.URL.RawQuery != "" ||
			r.Header.Get("Content-Type") != "application/octet-stream" || !bytes.Equal(body, m.Bytes()) {
			t.Errorf("request %s %s %q %x", r.Method, r.URL, r.Header.Get("Content-Type"), body)
		}
		id := m.ID()
		if lie {
			id[0] ^= 1
		}
		w.Header().Set("Location", "/api/v1/messages/"+id.String())
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id": %q}`, id)
	})
	id, err := c.Submit(context.Background(), m.Bytes())
	if err != nil || id != m.ID() {
		t.Fatalf("Submit = %s, %v; want %s", id, err, m.ID())
	}
	lie = true
	if _, err := c.Submit(context.Background(), m.Bytes()); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("a node answering another id: %v, want ErrBadResponse", err)
	}
}

func TestSubmitRemotePoW(t *testing.T) {
	m := testMessage(testKey(1), 1, "hello")
	const nonce = 987654321
	var answer string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/messages" || r.URL.Query().Get("remote_pow") != "1" {
			t.Errorf("request %s", r.URL)
		}
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, answer)
	})
	want := testMessage(testKey(1), 1, "hello")
	want.SetNonce(nonce)

	answer = fmt.Sprintf(`{"id": %q, "nonce": %d}`, want.ID(), uint64(nonce))
	id, n, err := c.SubmitRemotePoW(context.Background(), m.Bytes())
	if err != nil || id != want.ID() || n != nonce {
		t.Fatalf("SubmitRemotePoW = %s, %d, %v; want %s, %d", id, n, err, want.ID(), nonce)
	}
	if m.Nonce != 7 || !bytes.Equal(m.Bytes(), testMessage(testKey(1), 1, "hello").Bytes()) {
		t.Fatal("SubmitRemotePoW changed its argument")
	}
	for _, bad := range []string{
		fmt.Sprintf(`{"id": %q}`, want.ID()),                          // no nonce
		fmt.Sprintf(`{"id": %q, "nonce": %d}`, want.ID(), nonce+1),    // the id is not the message's with that nonce
		fmt.Sprintf(`{"id": %q, "nonce": %d}`, m.ID(), uint64(nonce)), // the unsolved id
	} {
		answer = bad
		if _, _, err := c.SubmitRemotePoW(context.Background(), m.Bytes()); !errors.Is(err, ErrBadResponse) {
			t.Errorf("answer %s: %v, want ErrBadResponse", bad, err)
		}
	}
}

func TestEncodeBatch(t *testing.T) {
	raws := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{0xff}, 300)}
	got, err := EncodeBatch(raws)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0, 0, 0, 1, 'a', 0, 0, 0, 0, 0, 0, 1, 0x2c}
	want = append(want, raws[2]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
	if _, err := EncodeBatch(make([][]byte, MaxBatchMessages+1)); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("too many: %v", err)
	}
	if _, err := EncodeBatch(make([][]byte, MaxBatchMessages)); err != nil {
		t.Fatalf("as many as allowed: %v", err)
	}
	big := [][]byte{make([]byte, MaxBatchBytes-8), {}}
	if _, err := EncodeBatch(big); err != nil {
		t.Fatalf("exactly MaxBatchBytes: %v", err)
	}
	big = append(big, []byte{})
	if _, err := EncodeBatch(big); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("over MaxBatchBytes: %v", err)
	}
}

func TestSubmitBatch(t *testing.T) {
	key := testKey(1)
	msgs := []*dag.Message{testMessage(key, 1, "a"), testMessage(key, 2, ""), testMessage(key, 3, strings.Repeat("z", 300))}
	var raws [][]byte
	for _, m := range msgs {
		raws = append(raws, m.Bytes())
	}
	var answer string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/messages/batch" || r.Header.Get("Content-Type") != "application/x-weft-batch" {
			t.Errorf("request %s %s %q", r.Method, r.URL, r.Header.Get("Content-Type"))
		}
		body, _ := io.ReadAll(r.Body)
		// Split it as the node does: exactly 4-byte big-endian length prefixes.
		var got [][]byte
		for len(body) > 0 {
			n := binary.BigEndian.Uint32(body)
			got = append(got, body[4:4+n])
			body = body[4+n:]
		}
		if !reflect.DeepEqual(got, raws) {
			t.Errorf("batch splits into %d messages, not the ones sent", len(got))
		}
		io.WriteString(w, answer)
	})
	answer = fmt.Sprintf(`{"results": [{"id": %q, "status": 201},
		{"status": 422, "error": {"code": "bad_signature", "message": "dag: invalid signature"}},
		{"status": 409, "error": {"code": "duplicate", "message": "have it"}}]}`, msgs[0].ID())
	res, err := c.SubmitBatch(context.Background(), raws)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].ID != msgs[0].ID() || res[0].Status != 201 || res[0].Err != nil {
		t.Fatalf("result 0: %+v", res)
	}
	if res[1].Status != 422 || !IsCode(res[1].Err, CodeBadSignature) || res[1].ID != (dag.ID{}) {
		t.Fatalf("result 1: %+v", res[1])
	}
	var ae *APIError
	if !errors.As(res[2].Err, &ae) || *ae != (APIError{Status: 409, Code: CodeDuplicate, Message: "have it"}) {
		t.Fatalf("result 2: %+v", res[2])
	}

	for name, bad := range map[string]string{
		"too few results": fmt.Sprintf(`{"results": [{"id": %q, "status": 201}]}`, msgs[0].ID()),
		"wrong id":        fmt.Sprintf(`{"results": [{"id": %q, "status": 201}, {"id": %q, "status": 201}, {"id": %q, "status": 201}]}`, msgs[0].ID(), msgs[0].ID(), msgs[2].ID()),
		"no status":       fmt.Sprintf(`{"results": [{"id": %q, "status": 201}, {"error": {"code": "x"}}, {"id": %q, "status": 201}]}`, msgs[0].ID(), msgs[2].ID()),
		"not json":        `{"results": `,
	} {
		answer = bad
		if _, err := c.SubmitBatch(context.Background(), raws); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v, want ErrBadResponse", name, err)
		}
	}

	res, err = c.SubmitBatch(context.Background(), nil)
	if err != nil || len(res) != 0 {
		t.Fatalf("empty batch: %v, %v", res, err)
	}
}

func TestGet(t *testing.T) {
	m := testMessage(testKey(1), 1, "telemetry")
	var body []byte
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/messages/"+m.ID().String() {
			t.Errorf("request %s", r.URL)
		}
		w.Write(body)
	})
	body = messageJSONFor(m, nil)
	got, err := c.Get(context.Background(), m.ID())
	if err != nil {
		t.Fatal(err)
	}
	one := uint64(1)
	want := &MessageInfo{
		ID: m.ID(), Version: 1, NetworkID: testNetworkID, Parents: m.Parents, Issuer: m.Issuer, Seq: 1,
		Timestamp: m.Timestamp, Payload: []byte("telemetry"), Signature: m.Signature, Nonce: m.Nonce,
		Position: 42, Solid: true, Confirmed: true, ConfirmedAt: 1767225600120000000, ApprovalWeight: &one,
		Children: []dag.ID{{9}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if got.Message().ID() != m.ID() {
		t.Fatal("Message() does not rebuild the message")
	}

	// Round trip through MarshalJSON.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var back MessageInfo
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(&back, want) {
		t.Fatalf("round trip: %v\n%s", err, b)
	}

	// Unconfirmed, weight unknown, no children.
	body = messageJSONFor(m, map[string]any{"confirmed": false, "confirmed_at": nil, "approval_weight": nil, "children": []string{}})
	got, err = c.Get(context.Background(), m.ID())
	if err != nil || got.Confirmed || got.ConfirmedAt != 0 || got.ApprovalWeight != nil || got.Children == nil || len(got.Children) != 0 {
		t.Fatalf("unconfirmed: %+v, %v", got, err)
	}

	for name, extra := range map[string]map[string]any{
		"another id":         {"id": dag.ID{1}.String()},
		"fields do not hash": {"seq": 2},
		"payload changed":    {"payload": base64.StdEncoding.EncodeToString([]byte("Telemetry"))},
		"short signature":    {"signature": "00"},
		"one parent":         {"parents": []string{m.Parents[0].String()}},
		"bad issuer":         {"issuer": "zz"},
		"bad child":          {"children": []string{"00"}},
		"negative time":      {"timestamp": -5},
	} {
		body = messageJSONFor(m, extra)
		if _, err := c.Get(context.Background(), m.ID()); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v, want ErrBadResponse", name, err)
		}
	}
}

func TestRaw(t *testing.T) {
	m := testMessage(testKey(1), 1, "x")
	var body []byte
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/messages/"+m.ID().String()+"/raw" {
			t.Errorf("request %s", r.URL)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	body = m.Bytes()
	got, err := c.Raw(context.Background(), m.ID())
	if err != nil || !bytes.Equal(got, m.Bytes()) {
		t.Fatalf("Raw = %x, %v", got, err)
	}
	body = testMessage(testKey(1), 2, "x").Bytes()
	if _, err := c.Raw(context.Background(), m.ID()); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("other bytes: %v", err)
	}
	body = make([]byte, maxRawBody+1)
	if _, err := c.Raw(context.Background(), m.ID()); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("too long: %v", err)
	}
}

func TestIssuerMessages(t *testing.T) {
	key := testKey(1)
	pub := dag.PublicKey(key.Public().(ed25519.PublicKey))
	msgs := []*dag.Message{testMessage(key, 5, "a"), testMessage(key, 6, "b"), testMessage(key, 7, "c")}
	var (
		query string
		body  string
	)
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/issuers/"+pub.String()+"/messages" {
			t.Errorf("request %s", r.URL)
		}
		query = r.URL.RawQuery
		io.WriteString(w, body)
	})
	page := func(next string, ms ...*dag.Message) string {
		var parts []string
		for _, m := range ms {
			parts = append(parts, string(messageJSONFor(m, map[string]any{"children": nil})))
		}
		return fmt.Sprintf(`{"messages": [%s]%s}`, strings.Join(parts, ","), next)
	}

	body = page(`, "next_after_seq": 6`, msgs[0], msgs[1])
	got, err := c.IssuerMessages(context.Background(), pub, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if query != "limit=2" || len(got.Messages) != 2 || got.Messages[1].ID != msgs[1].ID() || got.Messages[0].Children != nil ||
		got.NextAfterSeq == nil || *got.NextAfterSeq != 6 {
		t.Fatalf("first page: query %q, %+v", query, got)
	}

	body = page("", msgs[2])
	got, err = c.IssuerMessages(context.Background(), pub, got.NextAfterSeq, 0)
	if err != nil {
		t.Fatal(err)
	}
	if query != "after_seq=6" || len(got.Messages) != 1 || got.Messages[0].Seq != 7 || got.NextAfterSeq != nil {
		t.Fatalf("last page: query %q, %+v", query, got)
	}

	body = `{"messages": []}`
	if got, err := c.IssuerMessages(context.Background(), pub, nil, 0); err != nil || got.Messages == nil || len(got.Messages) != 0 {
		t.Fatalf("empty: %+v, %v", got, err)
	}

	body = page("", testMessage(testKey(2), 1, "a"))
	if _, err := c.IssuerMessages(context.Background(), pub, nil, 0); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("another issuer's message: %v", err)
	}
	body = page("", msgs...)
	if _, err := c.IssuerMessages(context.Background(), pub, nil, 2); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("more than the limit: %v", err)
	}
	if _, err := c.IssuerMessages(context.Background(), pub, nil, 1001); err == nil {
		t.Fatal("limit 1001 accepted")
	}
}

func TestOversizedAnswer(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"node_id": "`)
		chunk := strings.Repeat("0", 64<<10)
		for range 64 { // 4 MiB, more than an info answer may be
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	})
	if _, err := c.Info(context.Background()); !errors.Is(err, ErrBadResponse) {
		t.Fatalf("got %v", err)
	}
}

func TestContextBoundsCalls(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Info(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestWithHTTPClient(t *testing.T) {
	var used bool
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		used = true
		return nil, errors.New("no network here")
	})}
	c := New("http://node.invalid", WithHTTPClient(hc))
	if _, err := c.Info(context.Background()); err == nil || !used {
		t.Fatalf("err %v, used %v", err, used)
	}
	if c.BaseURL() != "http://node.invalid" {
		t.Fatal(c.BaseURL())
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
