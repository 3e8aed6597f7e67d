package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/rules"
)

const (
	e2eHookSecret = "the receiver's secret, 16+ bytes"
	e2eOpsToken   = "ops:e2e-ops-token-0123456789"
)

// hookReceiver is a webhook receiver, written from docs/RULES.md: it
// checks each request's signature and timestamp, refuses about half of
// them at random (500), can be taken down and brought back on the same
// address, and records each delivery id it accepted first, by rule.
type hookReceiver struct {
	t    *testing.T
	addr string
	rng  *rand.Rand

	mu       sync.Mutex
	srv      *http.Server
	requests int
	refused  int
	bad      []string
	first    map[string][]rules.Match // by rule, in the order first accepted
	seen     map[string]bool          // delivery ids accepted
}

func newHookReceiver(t *testing.T, seed uint64) *hookReceiver {
	r := &hookReceiver{t: t, rng: rand.New(rand.NewPCG(seed, 3)), first: map[string][]rules.Match{}, seen: map[string]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	r.serve(l)
	t.Cleanup(r.down)
	return r
}

func (r *hookReceiver) serve(l net.Listener) {
	r.srv = &http.Server{Handler: r}
	go r.srv.Serve(l)
}

// down closes the listener and every connection: requests are refused
// at the TCP level until up.
func (r *hookReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *hookReceiver) up() {
	l, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("the receiver cannot listen on %s again: %v", r.addr, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serve(l)
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.rng.IntN(2) == 0 {
		r.refused++
		http.Error(w, "the receiver is having a bad day", http.StatusInternalServerError)
		return
	}
	var m rules.Match
	problem := ""
	switch {
	case err != nil:
		problem = err.Error()
	case rules.Verify([]byte(e2eHookSecret), req.Header.Get("X-Weft-Timestamp"), req.Header.Get("X-Weft-Signature"), body, time.Now(), 5*time.Minute) != nil:
		problem = "bad signature on " + req.Header.Get("X-Weft-Delivery")
	case json.Unmarshal(body, &m) != nil || m.Delivery != req.Header.Get("X-Weft-Delivery") || m.Rule != req.Header.Get("X-Weft-Rule"):
		problem = "a body that does not match its headers: " + string(body)
	}
	if problem != "" {
		r.bad = append(r.bad, problem)
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	if !r.seen[m.Delivery] {
		r.seen[m.Delivery] = true
		r.first[m.Rule] = append(r.first[m.Rule], m)
	}
	w.WriteHeader(http.StatusNoContent)
}

// delivered returns the message ids each rule's deliveries carried.
func (r *hookReceiver) delivered() map[string]map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[string]bool{}
	for rule, ms := range r.first {
		out[rule] = map[string]bool{}
		for _, m := range ms {
			out[rule][m.Message.ID] = true
		}
	}
	return out
}

// e2eDevice is a device of the rules test: its key, and the temperatures
// it reports.
type e2eDevice struct {
	key  ed25519.PrivateKey
	tags []string
}

// TestRulesWebhookAcrossOutageAndKill: a node with a rule of its file
// (the cold-chain example of docs/RULES.md) and one added through the API
// posts every match to a receiver that refuses half its requests, is
// down for 30 s, and meanwhile sees the node SIGKILLed and restarted:
// when it is over, the receiver has every match of each rule at least
// once, first in confirmation order, every request signed, and no
// delivery of a message that does not match.
func TestRulesWebhookAcrossOutageAndKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary for a minute")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	rcv := newHookReceiver(t, seed)
	dir := t.TempDir()
	cfg := filepath.Join(t.TempDir(), "weft.yaml")
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`api-tokens: %q
rule-retry-base: 100ms
rule-retry-max: 2s
rule-attempts: 10000
rules:
  - name: cold-chain-breach
    condition: 'payload.temp_c > 8.0 && "cold-chain" in tags'
    action:
      kind: webhook
      url: http://%s/weft
      secret: %q
`, e2eOpsToken, rcv.addr, e2eHookSecret)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--config", cfg, "--pow-base", "4"}
	p := startNode(t, dir, args...)
	p.waitLog(t, `"rules loaded"`, 0)

	devices := []e2eDevice{
		{key: ed25519.NewKeyFromSeed(append(make([]byte, 31), 1)), tags: []string{"cold-chain", "site-a"}},
		{key: ed25519.NewKeyFromSeed(append(make([]byte, 31), 2)), tags: []string{"cold-chain"}},
		{key: ed25519.NewKeyFromSeed(append(make([]byte, 31), 3)), tags: []string{"ambient"}},
	}
	token := "Bearer " + strings.SplitN(e2eOpsToken, ":", 2)[1]
	for i, d := range devices {
		body := wire.NewDevice{Key: dag.PublicKey(d.key.Public().(ed25519.PublicKey)).String(), Name: fmt.Sprintf("fridge-%d", i+1), Tags: d.tags}
		if st, b := sendJSON(t, "POST", p.url+wire.PathDevices, token, body); st != 201 {
			t.Fatalf("registering a device: %d %s", st, b)
		}
	}
	// A rule of the API: every reading above 10 °C, tagged or not. It is
	// kept in the store, and must survive the SIGKILL.
	apiRule := wire.Rule{Name: "very-hot", Condition: `has(payload.temp_c) && payload.temp_c > 10.0`,
		Action: wire.RuleAction{Kind: "webhook", URL: "http://" + rcv.addr + "/weft", Secret: e2eHookSecret}}
	if st, b := sendJSON(t, "POST", p.url+wire.PathRules, token, apiRule); st != 201 {
		t.Fatalf("adding a rule: %d %s", st, b)
	}

	var (
		mu  sync.Mutex
		url = p.url
	)
	curURL := func() string { mu.Lock(); defer mu.Unlock(); return url }
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	for i, d := range devices {
		load.Add(1)
		drng := rand.New(rand.NewPCG(seed, uint64(10+i)))
		go func() {
			defer load.Done()
			for seq := uint64(1); loadCtx.Err() == nil; {
				temp := 2 + drng.Float64()*10 // 2..12 °C: a third above 8
				m, err := buildRaw(curURL(), d.key, seq, []byte(fmt.Sprintf(`{"temp_c":%.2f,"seq":%d}`, temp, seq)))
				if err != nil {
					time.Sleep(50 * time.Millisecond) // the node is down
					continue
				}
				st, err := postRaw(curURL(), m.Bytes())
				switch {
				case err == nil && (st == 201 || st == 409): // 409: stored before a kill, unanswered
					seq++
				default:
					time.Sleep(50 * time.Millisecond)
				}
				// A reading every half second: a failed request holds its
				// rule's queue for the backoff (50 to 100 ms after a first
				// failure here, 0.5 to 1 s by default).
				time.Sleep(500 * time.Millisecond)
			}
		}()
	}

	time.Sleep(3 * time.Second)
	rcv.down()
	downAt := time.Now()
	time.Sleep(time.Duration(10+rng.IntN(8)) * time.Second)
	if err := p.kill(syscall.SIGKILL); err == nil {
		t.Fatal("the node exited 0 on SIGKILL")
	}
	p = startNode(t, dir, args...)
	mu.Lock()
	url = p.url
	mu.Unlock()
	time.Sleep(time.Until(downAt.Add(30 * time.Second)))
	rcv.up()
	time.Sleep(3 * time.Second)
	stopLoad()
	load.Wait()

	// Every confirmed message, from the node's own export: what the rules
	// must have matched.
	deadline := time.Now().Add(time.Minute)
	for {
		in, err := info(p.url)
		if err == nil && in.Unconfirmed == 0 && in.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not confirm everything in a minute: %+v %v", in, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tags := map[string][]string{}
	for _, d := range devices {
		tags[dag.PublicKey(d.key.Public().(ed25519.PublicKey)).String()] = d.tags
	}
	want := map[string]map[string]bool{"cold-chain-breach": {}, "very-hot": {}}
	readings := 0
	for _, rec := range exportAll(t, p.url) {
		var pl struct {
			TempC *float64 `json:"temp_c"`
		}
		dt, ok := tags[rec.Issuer]
		if !ok || !rec.Confirmed || rec.PayloadEncoding != wire.PayloadJSON || json.Unmarshal(rec.Payload, &pl) != nil || pl.TempC == nil {
			continue // the validator's own messages
		}
		readings++
		if *pl.TempC > 8 && slices.Contains(dt, "cold-chain") {
			want["cold-chain-breach"][rec.ID] = true
		}
		if *pl.TempC > 10 {
			want["very-hot"][rec.ID] = true
		}
	}
	// The receiver gets them all, in time.
	deadline = time.Now().Add(time.Minute)
	for {
		got := rcv.delivered()
		missing := 0
		for rule, ids := range want {
			for id := range ids {
				if !got[rule][id] {
					missing++
				}
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d matches never delivered in a minute after the receiver came back (want %d and %d)", missing, len(want["cold-chain-breach"]), len(want["very-hot"]))
		}
		time.Sleep(200 * time.Millisecond)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Fatalf("%d requests failed the receiver's checks, the first: %s", len(rcv.bad), rcv.bad[0])
	}
	for rule, ms := range rcv.first {
		last := int64(-1)
		for _, m := range ms {
			if !want[rule][m.Message.ID] {
				t.Errorf("rule %s delivered %s, which does not match (payload %s)", rule, m.Message.ID, m.Message.Payload)
			}
			if int64(m.Message.Confirmation) <= last {
				t.Errorf("rule %s: confirmation %d first delivered after %d", rule, m.Message.Confirmation, last)
			}
			last = int64(m.Message.Confirmation)
		}
	}
	if len(want["cold-chain-breach"]) == 0 || len(want["very-hot"]) == 0 || rcv.refused == 0 {
		t.Fatalf("nothing to prove: %d and %d matches, %d refusals", len(want["cold-chain-breach"]), len(want["very-hot"]), rcv.refused)
	}
	t.Logf("%d readings confirmed; %d and %d matches all delivered, in order, over %d requests (%d refused, 30 s down, one SIGKILL)",
		readings, len(want["cold-chain-breach"]), len(want["very-hot"]), rcv.requests, rcv.refused)

	// The figures agree: no dead letter, and the outboxes empty. A
	// delivery the receiver has taken can still be in an outbox for a
	// moment: its answer not yet read, or a copy sent again after the
	// SIGKILL (delivery is at least once) waiting out a refusal's backoff.
	deadline = time.Now().Add(time.Minute)
	for {
		st, b := sendJSON(t, "GET", p.url+wire.PathRules, token, nil)
		var list wire.RuleList
		if st != 200 || json.Unmarshal(b, &list) != nil || len(list.Rules) != 2 {
			t.Fatalf("GET rules: %d %s", st, b)
		}
		pending := 0
		for _, r := range list.Rules {
			if r.Stats.DeadLetters != 0 {
				t.Fatalf("rule %s has dead letters: %+v", r.Name, r.Stats)
			}
			pending += r.Stats.Pending
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outboxes not empty a minute after every match was delivered: %+v", list.Rules)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sendJSON sends method to url with the Authorization header auth and a
// JSON body (nil: none), and returns the status and the body.
func sendJSON(t *testing.T, method, url, auth string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// exportAll returns every message the node at url holds, from its export.
func exportAll(t *testing.T, url string) []wire.ExportRecord {
	t.Helper()
	to := time.Now().Add(time.Hour).UnixNano()
	resp, err := http.Get(fmt.Sprintf("%s%s?from=0&to=%d&format=ndjson", url, wire.PathExport, to))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("export: %d %s", resp.StatusCode, b)
	}
	var out []wire.ExportRecord
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec wire.ExportRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("export line %q: %v", sc.Bytes(), err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return out
}
