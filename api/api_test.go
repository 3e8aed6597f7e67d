package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/pow"
	"github.com/weftnet/weft/storage"
)

const testPoWBase = 6

func key(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed)
}

func pubOf(k ed25519.PrivateKey) dag.PublicKey {
	var p dag.PublicKey
	copy(p[:], k.Public().(ed25519.PublicKey))
	return p
}

// testServer runs a real node behind the API until the test ends.
func testServer(t *testing.T, mod func(*node.Config)) (*httptest.Server, *node.Node) {
	t.Helper()
	return testServerWith(t, mod, Options{})
}

// testServerWith runs a real node behind the API with opt until the test
// ends.
func testServerWith(t *testing.T, mod func(*node.Config), opt Options) (*httptest.Server, *node.Node) {
	t.Helper()
	return testServerWrapped(t, mod, opt, nil)
}

// testServerWrapped is testServerWith with the API behind wrap, if not nil.
func testServerWrapped(t testing.TB, mod func(*node.Config), opt Options, wrap func(http.Handler) http.Handler) (*httptest.Server, *node.Node) {
	t.Helper()
	cfg := node.Config{DataDir: t.TempDir(), Identity: key(1), Network: "api-test", PoWBase: testPoWBase,
		IssueInterval: 5 * time.Millisecond, SubmitTimeout: 300 * time.Millisecond,
		Store: storage.Config{NoSync: true}}
	if mod != nil {
		mod(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	api := NewWithOptions(n, "test", zerolog.Nop(), opt)
	var h http.Handler = api
	if wrap != nil {
		h = wrap(api)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		api.EndStreams()
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return srv, n
}

type builder struct {
	t   *testing.T
	n   *node.Node
	key ed25519.PrivateKey
	seq uint64
}

// build makes a valid message; edit may change its fields before signing.
func (b *builder) build(payload string, edit func(*dag.Message)) *dag.Message {
	b.t.Helper()
	tips := b.n.Tips(len(payload))
	b.seq++
	m := &dag.Message{Version: dag.Version, Network: b.n.Params().Network, Parents: tips.Parents, Seq: b.seq,
		Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: []byte(payload)}
	if edit != nil {
		edit(m)
	}
	m.Sign(b.key)
	if err := m.Solve(context.Background(), b.n.Params(), 1); err != nil {
		b.t.Fatal(err)
	}
	return m
}

func post(t *testing.T, url string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer is not JSON: %q", b)
	}
	return resp.StatusCode, out
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// lowPoW returns m with a nonce that misses its difficulty.
func lowPoW(t *testing.T, p dag.Params, m *dag.Message) []byte {
	enc := bytes.Clone(m.Bytes())
	d := p.Difficulty(len(enc))
	for n := uint64(0); ; n++ {
		binary.BigEndian.PutUint64(enc[len(enc)-8:], n)
		if pow.LeadingZeros(pow.Hash(enc)) < d {
			return enc
		}
	}
}

func TestBadInputs(t *testing.T) {
	srv, n := testServer(t, func(c *node.Config) { c.RemotePoWKeys = []dag.PublicKey{pubOf(key(50))} })
	url := srv.URL + "/api/v1/messages"
	dev := &builder{t: t, n: n, key: key(7)}
	good := dev.build("first", nil)
	if st, out := post(t, url, good.Bytes()); st != http.StatusCreated || out["id"] != good.ID().String() {
		t.Fatalf("good message: %d %v", st, out)
	}
	p := n.Params()
	badSig := bytes.Clone(dev.build("sig", nil).Bytes())
	badSig[dag.HeaderSize+3+3] ^= 1 // inside the signature
	// Re-solve so that only the signature is wrong.
	if m, err := p.Decode(badSig); err == nil {
		m.Solve(context.Background(), p, 1)
		badSig = m.Bytes()
	}
	wrongNet := dev.build("net", func(m *dag.Message) { m.Network++ })
	future := dev.build("future", func(m *dag.Message) { m.Timestamp = time.Now().Add(time.Hour).UnixNano() })
	orphan := dev.build("orphan", func(m *dag.Message) { m.Parents = [2]dag.ID{{1, 2, 3}, {4, 5, 6}} })
	older := dev.build("older", func(m *dag.Message) { m.Parents = [2]dag.ID{good.ID(), good.ID()}; m.Timestamp = good.Timestamp - 1 })
	replay := dev.build("replay", func(m *dag.Message) { m.Seq = 0 }) // below the stored sequence 1
	big := dev.build(strings.Repeat("x", p.MaxPayload), nil).Bytes()
	oversize := append(bytes.Clone(big[:dag.HeaderSize-2]), 0xff, 0xff)
	oversize = append(oversize, make([]byte, 0xffff+dag.TrailerSize)...)
	notListed := dev.build("pow", nil)

	for _, tc := range []struct {
		name   string
		url    string
		body   []byte
		status int
		code   string
	}{
		{"garbage", url, []byte("garbage"), 400, "malformed"},
		{"empty", url, nil, 400, "malformed"},
		{"truncated", url, good.Bytes()[:len(good.Bytes())-1], 400, "malformed"},
		{"trailing", url, append(bytes.Clone(good.Bytes()), 0), 400, "malformed"},
		{"oversize body", url, oversize, 413, "too_large"},
		{"payload over the limit", url, func() []byte {
			b := bytes.Clone(big)
			binary.BigEndian.PutUint16(b[dag.HeaderSize-2:], uint16(p.MaxPayload+1))
			return append(b[:dag.HeaderSize+p.MaxPayload+1], b[len(b)-dag.TrailerSize:]...)
		}(), 413, "too_large"},
		{"bad signature", url, badSig, 422, "bad_signature"},
		{"low pow", url, lowPoW(t, p, dev.build("low", nil)), 422, "insufficient_pow"},
		{"wrong network", url, wrongNet.Bytes(), 422, "wrong_network"},
		{"future timestamp", url, future.Bytes(), 422, "invalid_timestamp"},
		{"older than parent", url, older.Bytes(), 422, "invalid_timestamp"},
		{"unknown parents: held, pending", url, orphan.Bytes(), 202, ""},
		{"duplicate", url, good.Bytes(), 409, "duplicate"},
		{"replayed sequence", url, replay.Bytes(), 409, "stale_sequence"},
		{"remote pow, key not listed", url + "?remote_pow=1", notListed.Bytes(), 403, "forbidden"},
		{"bad id", srv.URL + "/api/v1/messages/xyz/raw", nil, 0, ""},
	} {
		if tc.status == 0 {
			continue
		}
		st, out := post(t, tc.url, tc.body)
		if st != tc.status || errCode(out) != tc.code {
			t.Errorf("%s: %d %v, want %d %s", tc.name, st, out, tc.status, tc.code)
		}
	}

	// The node goes on serving.
	after := dev.build("after", nil)
	if st, out := post(t, url, after.Bytes()); st != http.StatusCreated {
		t.Fatalf("after the bad inputs: %d %v", st, out)
	}
	for _, path := range []string{"/api/v1/messages/" + strings.Repeat("0", 64), "/api/v1/messages/zz", "/nope"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 && resp.StatusCode != 400 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

func TestRateLimit(t *testing.T) {
	srv, n := testServer(t, func(c *node.Config) { c.RatePerIssuer = 1; c.RateBurst = 2 })
	dev := &builder{t: t, n: n, key: key(8)}
	var codes []int
	for i := 0; i < 4; i++ {
		st, _ := post(t, srv.URL+"/api/v1/messages", dev.build(fmt.Sprint(i), nil).Bytes())
		codes = append(codes, st)
	}
	if codes[0] != 201 || codes[1] != 201 || codes[3] != 429 {
		t.Fatalf("statuses %v, want 201 201 ... 429", codes)
	}
}

func TestRemotePoW(t *testing.T) {
	allowed := key(9)
	srv, n := testServer(t, func(c *node.Config) { c.RemotePoWKeys = []dag.PublicKey{pubOf(allowed)} })
	tips := n.Tips(4)
	m := &dag.Message{Version: dag.Version, Network: n.Params().Network, Parents: tips.Parents, Seq: 1,
		Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: []byte("weak")}
	m.Sign(allowed) // no proof of work: the node does it
	st, out := post(t, srv.URL+"/api/v1/messages?remote_pow=1", m.Bytes())
	if st != 201 {
		t.Fatalf("remote pow: %d %v", st, out)
	}
	resp, err := http.Get(srv.URL + "/api/v1/messages/" + out["id"].(string) + "/raw")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	stored, err := n.Params().Decode(raw)
	if err != nil || n.Params().Check(stored) != nil || !bytes.Equal(stored.SigningBytes(), m.SigningBytes()) {
		t.Fatalf("stored message: %v", err)
	}
}

func TestBatchAndQueries(t *testing.T) {
	srv, n := testServer(t, nil)
	var body []byte
	var ids []string
	for d := 0; d < 5; d++ {
		dev := &builder{t: t, n: n, key: key(byte(20 + d))}
		for i := 0; i < 4; i++ {
			m := dev.build(fmt.Sprintf("d%d-%d", d, i), nil)
			body = binary.BigEndian.AppendUint32(body, uint32(len(m.Bytes())))
			body = append(body, m.Bytes()...)
			ids = append(ids, m.ID().String())
		}
	}
	body = binary.BigEndian.AppendUint32(body, 7)
	body = append(body, "garbage"...)
	resp, err := http.Post(srv.URL+"/api/v1/messages/batch", "application/x-weft-batch", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Results []struct {
			ID     string
			Status int
			Error  *struct{ Code string }
		}
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if len(out.Results) != 21 {
		t.Fatalf("%d results", len(out.Results))
	}
	for i, r := range out.Results[:20] {
		if r.Status != 201 || r.ID != ids[i] {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if last := out.Results[20]; last.Status != 400 || last.Error == nil || last.Error.Code != "malformed" {
		t.Fatalf("garbage in the batch: %+v", last)
	}

	// One device's messages, paginated.
	issuer := pubOf(key(22)).String()
	var seqs []float64
	after := ""
	for {
		resp, err := http.Get(srv.URL + "/api/v1/issuers/" + issuer + "/messages?limit=3" + after)
		if err != nil {
			t.Fatal(err)
		}
		var page map[string]any
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		for _, m := range page["messages"].([]any) {
			seqs = append(seqs, m.(map[string]any)["seq"].(float64))
		}
		next, ok := page["next_after_seq"]
		if !ok {
			break
		}
		after = fmt.Sprintf("&after_seq=%d", int(next.(float64)))
	}
	if fmt.Sprint(seqs) != "[1 2 3 4]" {
		t.Fatalf("issuer's sequence numbers %v", seqs)
	}

	// A message's JSON, and its confirmation.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/api/v1/messages/" + ids[0])
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if m["confirmed"] == true {
			if m["id"] != ids[0] || m["issuer"] != pubOf(key(20)).String() || m["solid"] != true {
				t.Fatalf("message JSON %v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not confirmed: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
