package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/client/clienttest"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

// The shared suite: the client's calls and the errors they can provoke,
// run against the real node (node.New and New behind httptest, bbolt in
// t.TempDir()) and against the fake of package clienttest. Both must
// answer every step with the same status and code, and with the one the
// contract names.
//
// What the fake does not model, and so what the suite cannot compare:
//   - the wait before pending: a node holds a message with unknown parents
//     for its submit timeout before it answers 202, the fake answers at
//     once; unknown_parents, which a node answers when a message it held
//     expires before its parents come (the fake holds them for ever), is
//     not provoked here;
//   - rate limiting (429 rate_limited), overload (503 overloaded), a node
//     shutting down (503 shutting_down) and readiness (/readyz): the fake has
//     no edge policy and no pipeline; TestRateLimit covers the node's 429;
//   - the device allowlist (403 forbidden for a device): the fake has none;
//   - /metrics: the fake serves none;
//   - approval weights and validators: the fake confirms on request;
//   - the time-range listings and the export (Client.Messages,
//     Client.Export): the fake keeps no time index; TestTimeRangePaging,
//     TestTimeRangeRefused and TestExportFormats cover the node's.

const contractNetwork = "contract-test"

// contractTarget is one server under the suite.
type contractTarget struct {
	name   string
	url    string
	c      *client.Client // no retries: every answer reaches the suite
	params dag.Params
}

// remoteKey is the issuer both servers do remote proof of work for.
var remoteKey = key(60)

func realTarget(t *testing.T) *contractTarget {
	t.Helper()
	srv, n := testServer(t, func(c *node.Config) {
		c.Network, c.RemotePoWKeys = contractNetwork, []dag.PublicKey{pubOf(remoteKey)}
	})
	return &contractTarget{name: "node", url: srv.URL, c: client.New(srv.URL, client.WithRetry(client.Retry{Attempts: 1})), params: n.Params()}
}

func fakeTarget(t *testing.T) *contractTarget {
	t.Helper()
	f := clienttest.NewServer(clienttest.Config{Network: contractNetwork, PoWBase: testPoWBase, AutoConfirm: true,
		RemotePoW: []dag.PublicKey{pubOf(remoteKey)}})
	t.Cleanup(f.Close)
	return &contractTarget{name: "clienttest", url: f.URL, c: client.New(f.URL, client.WithRetry(client.Retry{Attempts: 1})), params: f.Params()}
}

// outcome is what a step got: a status and a code ("" for success).
type outcome struct {
	Status int
	Code   string
}

func (o outcome) String() string { return fmt.Sprintf("%d %s", o.Status, o.Code) }

// outcomeOf reads a client call's error; ok is the status of its success.
func outcomeOf(t *testing.T, ok int, err error) outcome {
	t.Helper()
	if err == nil {
		return outcome{Status: ok}
	}
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("not an answer of the API: %v", err)
	}
	return outcome{ae.Status, ae.Code}
}

// rawOutcome sends a request the client would refuse to make, and reads
// the answer as the contract says: a status, and the error body outside
// 2xx.
func rawOutcome(t *testing.T, method, url, contentType string, body []byte) outcome {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 {
		return outcome{Status: resp.StatusCode}
	}
	var e wire.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("%s %s: %d without the error body: %q", method, url, resp.StatusCode, b)
	}
	if wire.Status(e.Error.Code) != resp.StatusCode {
		t.Errorf("%s %s: code %s with status %d, the table says %d", method, url, e.Error.Code, resp.StatusCode, wire.Status(e.Error.Code))
	}
	return outcome{resp.StatusCode, e.Error.Code}
}

// device builds messages for one target.
type device struct {
	t   *testing.T
	tg  *contractTarget
	key ed25519.PrivateKey
	seq uint64
}

// build makes a valid message from the target's tips; edit may change it
// before it is signed and solved.
func (d *device) build(payload string, edit func(*dag.Message)) *dag.Message {
	d.t.Helper()
	tips, err := d.tg.c.Tips(context.Background(), len(payload))
	if err != nil {
		d.t.Fatal(err)
	}
	d.seq++
	m := &dag.Message{Version: dag.Version, Network: tips.NetworkID, Parents: tips.Parents, Seq: d.seq,
		Timestamp: max(time.Now().UnixNano(), tips.MinTimestamp), Payload: []byte(payload)}
	if edit != nil {
		edit(m)
	}
	m.Sign(d.key)
	if err := m.Solve(context.Background(), d.tg.params, 1); err != nil {
		d.t.Fatal(err)
	}
	return m
}

// contractStep is one step of the suite: it runs against a target and
// returns what it got; want is what the contract says.
type contractStep struct {
	name string
	want outcome
	run  func(t *testing.T, tg *contractTarget, s *suiteState) outcome
}

// suiteState is what the steps share on one target.
type suiteState struct {
	dev     *device
	good    *dag.Message // stored by the first step
	stored  []uint64     // the sequence numbers of dev's stored messages
	orphan  *dag.Message // held pending, its parents unknown
	invalid dag.ID       // refused for its signature
}

func submit(t *testing.T, tg *contractTarget, raw []byte) outcome {
	sub, err := tg.c.SubmitOutcome(context.Background(), raw)
	if err == nil && sub.Pending {
		return outcome{Status: http.StatusAccepted}
	}
	return outcomeOf(t, http.StatusCreated, err)
}

var contractSteps = []contractStep{
	{"info", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		in, err := tg.c.Info(context.Background())
		if err == nil && (in.Network != contractNetwork || in.Tips == 0) {
			t.Errorf("info %+v", in)
		}
		return outcomeOf(t, 200, err)
	}},
	{"tips", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		tips, err := tg.c.Tips(context.Background(), 10)
		if err == nil && (tips.Network != contractNetwork || tips.Difficulty != tg.params.Difficulty(dag.MinSize+10)) {
			t.Errorf("tips %+v", tips)
		}
		return outcomeOf(t, 200, err)
	}},
	{"tips, size not a number", outcome{400, wire.CodeBadRequest}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathTips+"?size=ten", "", nil)
	}},
	{"tips, size out of range", outcome{400, wire.CodeBadRequest}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathTips+"?size=70000", "", nil)
	}},
	{"submit", outcome{Status: 201}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		s.good = s.dev.build("first", nil)
		s.stored = append(s.stored, s.good.Seq)
		return submit(t, tg, s.good.Bytes())
	}},
	{"submit, duplicate", outcome{409, wire.CodeDuplicate}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, s.good.Bytes())
	}},
	{"submit, malformed", outcome{400, wire.CodeMalformed}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, []byte("garbage"))
	}},
	{"submit, trailing byte", outcome{400, wire.CodeMalformed}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, append(bytes.Clone(s.dev.build("trailing", nil).Bytes()), 0))
	}},
	{"submit, body too large", outcome{413, wire.CodeTooLarge}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, make([]byte, dag.MinSize+tg.params.MaxPayload+1))
	}},
	{"submit, payload over the network's limit", outcome{413, wire.CodeTooLarge}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		big := s.dev.build(strings.Repeat("x", tg.params.MaxPayload), nil).Bytes()
		b := bytes.Clone(big)
		binary.BigEndian.PutUint16(b[dag.HeaderSize-2:], uint16(tg.params.MaxPayload+1))
		return submit(t, tg, append(b[:dag.HeaderSize+tg.params.MaxPayload+1], b[len(b)-dag.TrailerSize:]...))
	}},
	{"submit, bad signature", outcome{422, wire.CodeBadSignature}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		raw := bytes.Clone(s.dev.build("sig", nil).Bytes())
		raw[dag.HeaderSize+3+3] ^= 1 // inside the signature, after the 3-byte payload
		m, err := tg.params.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Solve(context.Background(), tg.params, 1); err != nil { // only the signature is wrong
			t.Fatal(err)
		}
		s.invalid = m.ID()
		return submit(t, tg, m.Bytes())
	}},
	{"submit, child of an invalid message", outcome{422, wire.CodeInvalidParent}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, s.dev.build("child", func(m *dag.Message) { m.Parents = [2]dag.ID{s.invalid, s.good.ID()} }).Bytes())
	}},
	{"submit, insufficient pow", outcome{422, wire.CodeInsufficientPoW}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, lowPoW(t, tg.params, s.dev.build("low", nil)))
	}},
	{"submit, wrong network", outcome{422, wire.CodeWrongNetwork}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, s.dev.build("net", func(m *dag.Message) { m.Network++ }).Bytes())
	}},
	{"submit, from the future", outcome{422, wire.CodeInvalidTimestamp}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, s.dev.build("future", func(m *dag.Message) { m.Timestamp = time.Now().Add(time.Hour).UnixNano() }).Bytes())
	}},
	{"submit, older than its parent", outcome{422, wire.CodeInvalidTimestamp}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, s.dev.build("older", func(m *dag.Message) {
			m.Parents, m.Timestamp = [2]dag.ID{s.good.ID(), s.good.ID()}, s.good.Timestamp-1
		}).Bytes())
	}},
	{"submit, stale sequence", outcome{409, wire.CodeStaleSequence}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, s.dev.build("replay", func(m *dag.Message) { m.Seq = 0 }).Bytes())
	}},
	{"submit, unknown parents: held pending", outcome{Status: 202}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		s.orphan = s.dev.build("orphan", func(m *dag.Message) { m.Parents = [2]dag.ID{{1, 2, 3}, {4, 5, 6}} })
		return submit(t, tg, s.orphan.Bytes())
	}},
	{"submit, the pending message again", outcome{Status: 202}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return submit(t, tg, s.orphan.Bytes())
	}},
	{"get, a pending message", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		mi, err := tg.c.Get(context.Background(), s.orphan.ID())
		if err == nil && (!mi.Pending || mi.Solid || mi.Position != 0) {
			t.Errorf("pending message %+v", mi)
		}
		return outcomeOf(t, 200, err)
	}},
	{"submit with remote pow", outcome{Status: 201}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		d := &client.Device{Key: remoteKey, Client: tg.c, RemotePoW: true}
		m, err := d.Build(context.Background(), []byte("weak"))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = tg.c.SubmitRemotePoW(context.Background(), m.Bytes())
		return outcomeOf(t, 201, err)
	}},
	{"submit with remote pow, key not listed", outcome{403, wire.CodeForbidden}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		_, _, err := tg.c.SubmitRemotePoW(context.Background(), s.dev.build("pow", nil).Bytes())
		return outcomeOf(t, 201, err)
	}},
	{"batch", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		ok := s.dev.build("batch", nil)
		s.stored = append(s.stored, ok.Seq)
		res, err := tg.c.SubmitBatch(context.Background(), [][]byte{ok.Bytes(), []byte("short"), s.good.Bytes(), lowPoW(t, tg.params, s.dev.build("low", nil))})
		if err != nil {
			return outcomeOf(t, 200, err)
		}
		var got []string
		for _, r := range res {
			got = append(got, outcomeOf(t, 201, r.Err).String())
		}
		if want := "[201  400 malformed 409 duplicate 422 insufficient_pow]"; fmt.Sprint(got) != want {
			t.Errorf("batch results %v, want %s", got, want)
		}
		return outcome{Status: 200}
	}},
	{"batch, body cannot be split", outcome{400, wire.CodeMalformed}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "POST", tg.url+wire.PathBatch, wire.ContentBatch, []byte{0, 0, 0, 9, 1})
	}},
	{"batch, a message longer than any", outcome{413, wire.CodeTooLarge}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "POST", tg.url+wire.PathBatch, wire.ContentBatch, []byte{0xff, 0xff, 0xff, 0xff})
	}},
	{"get", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		mi, err := tg.c.Get(context.Background(), s.good.ID())
		if err == nil && (mi.Issuer != s.good.Issuer || mi.Seq != s.good.Seq || !mi.Solid) {
			t.Errorf("message %+v", mi)
		}
		return outcomeOf(t, 200, err)
	}},
	{"get, not found", outcome{404, wire.CodeNotFound}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		_, err := tg.c.Get(context.Background(), dag.ID{7})
		return outcomeOf(t, 200, err)
	}},
	{"get, malformed id", outcome{400, wire.CodeMalformed}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathMessages+"/zz", "", nil)
	}},
	{"raw", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		b, err := tg.c.Raw(context.Background(), s.good.ID())
		if err == nil && !bytes.Equal(b, s.good.Bytes()) {
			t.Error("raw bytes differ")
		}
		return outcomeOf(t, 200, err)
	}},
	{"raw, not found", outcome{404, wire.CodeNotFound}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		_, err := tg.c.Raw(context.Background(), dag.ID{7})
		return outcomeOf(t, 200, err)
	}},
	{"issuer listing", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		var seqs []uint64
		var after *uint64
		for {
			page, err := tg.c.IssuerMessages(context.Background(), pubOf(s.dev.key), after, 1)
			if err != nil {
				return outcomeOf(t, 200, err)
			}
			for _, m := range page.Messages {
				seqs = append(seqs, m.Seq)
			}
			if after = page.NextAfterSeq; after == nil {
				break
			}
		}
		if fmt.Sprint(seqs) != fmt.Sprint(s.stored) {
			t.Errorf("sequence numbers %v, stored %v", seqs, s.stored)
		}
		return outcome{Status: 200}
	}},
	{"issuer listing, limit out of range", outcome{400, wire.CodeBadRequest}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathIssuers+"/"+pubOf(s.dev.key).String()+"/messages?limit=0", "", nil)
	}},
	{"issuer listing, after_seq not a number", outcome{400, wire.CodeBadRequest}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathIssuers+"/"+pubOf(s.dev.key).String()+"/messages?after_seq=-1", "", nil)
	}},
	{"issuer listing, malformed key", outcome{400, wire.CodeMalformed}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathIssuers+"/xyz/messages", "", nil)
	}},
	{"equivocations", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		// The API refuses a second message with a sequence: none here.
		eqs, err := tg.c.Equivocations(context.Background(), nil, 0)
		if err == nil && len(eqs) != 0 {
			t.Errorf("equivocations: %+v, want none", eqs)
		}
		return outcomeOf(t, 200, err)
	}},
	{"equivocations of an issuer", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		k := pubOf(s.dev.key)
		_, err := tg.c.Equivocations(context.Background(), &k, 10)
		return outcomeOf(t, 200, err)
	}},
	{"equivocations, malformed issuer", outcome{400, wire.CodeMalformed}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathEquivocations+"?issuer=xyz", "", nil)
	}},
	{"equivocations, limit out of range", outcome{400, wire.CodeBadRequest}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathEquivocations+"?limit=5000", "", nil)
	}},
	{"events and wait for confirmation", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var mu sync.Mutex
		sent := map[dag.ID]bool{}
		seen := make(chan dag.ID, 1)
		ended := make(chan error, 1)
		go func() {
			ended <- tg.c.Events(ctx, func(ev client.Event) error {
				if ev.Name != client.EventMessage {
					return nil
				}
				me, err := ev.Message()
				if err != nil {
					return err
				}
				mu.Lock()
				ours := sent[me.ID]
				mu.Unlock()
				if ours {
					seen <- me.ID
					return errStopEvents
				}
				return nil
			})
		}()
		// A message sent before the stream opened has no event on it:
		// send new ones until the stream shows one.
		var id dag.ID
	sending:
		for {
			m := s.dev.build("watched", nil)
			mu.Lock()
			sent[m.ID()] = true
			mu.Unlock()
			if _, err := tg.c.Submit(ctx, m.Bytes()); err != nil {
				t.Fatalf("submit: %v", err)
			}
			select {
			case err := <-ended:
				if !errors.Is(err, errStopEvents) {
					t.Fatalf("events: %v", err)
				}
				id = <-seen
				break sending
			case <-time.After(20 * time.Millisecond):
			}
		}
		mi, err := tg.c.WaitConfirmed(ctx, id)
		if err == nil && !mi.Confirmed {
			t.Error("not confirmed")
		}
		return outcomeOf(t, 200, err)
	}},
	{"wrong method", outcome{405, wire.CodeMethodNotAllowed}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "DELETE", tg.url+wire.PathMessages, "", nil)
	}},
	{"no such endpoint", outcome{404, wire.CodeNotFound}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+"/api/v1/nope", "", nil)
	}},
	{"healthz", outcome{Status: 200}, func(t *testing.T, tg *contractTarget, s *suiteState) outcome {
		return rawOutcome(t, "GET", tg.url+wire.PathHealth, "", nil)
	}},
}

var errStopEvents = errors.New("seen")

// TestContract runs the suite on the node and the fake, step by step, and
// requires the same status and code of both, and the contract's.
func TestContract(t *testing.T) {
	targets := []*contractTarget{realTarget(t), fakeTarget(t)}
	states := make([]*suiteState, len(targets))
	for i, tg := range targets {
		states[i] = &suiteState{dev: &device{t: t, tg: tg, key: key(61)}}
	}
	for _, st := range contractSteps {
		got := make([]outcome, len(targets))
		for i, tg := range targets {
			states[i].dev.t = t
			got[i] = st.run(t, tg, states[i])
		}
		for i, tg := range targets {
			if got[i] != st.want {
				t.Errorf("%s: %s answered %v, the contract says %v", st.name, tg.name, got[i], st.want)
			}
		}
		if got[0] != got[1] {
			t.Errorf("%s: the node answered %v, the fake %v", st.name, got[0], got[1])
		}
	}
}
