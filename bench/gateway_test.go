package bench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/client/clienttest"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/loopback"
	"github.com/weftnet/weft/node"
)

// TestJudge checks what a gateway does with each answer, as docs/API.md's
// table says a device does.
func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
		want   verdict
	}{
		{201, "", acked},
		{409, client.CodeDuplicate, acked},
		{202, "pending", resend},
		{429, client.CodeRateLimited, resend},
		{503, client.CodeOverloaded, resend},
		{503, client.CodeStorageUnavailable, resend},
		{503, client.CodeShuttingDown, resend},
		{500, client.CodeInternal, resend},
		{502, "", resend},
		{422, client.CodeUnknownParents, rebuild},
		{422, client.CodeInvalidParent, rebuild},
		{409, client.CodeStaleSequence, rebuild},
		{422, client.CodeBadSignature, giveUp},
		{422, client.CodeInvalidTimestamp, giveUp},
		{400, client.CodeMalformed, giveUp},
		{403, client.CodeForbidden, giveUp},
		{413, client.CodeTooLarge, giveUp},
	} {
		if got := judge(tc.status, tc.code); got != tc.want {
			t.Errorf("judge(%d, %q) = %d, want %d", tc.status, tc.code, got, tc.want)
		}
	}
}

// TestBackoff checks the bounds of the gateways' waits: full jitter under
// BaseDelay x 2^(n-1), capped at MaxDelay, and spread over the bound.
func TestBackoff(t *testing.T) {
	f := &Fleet{Node: "http://127.0.0.1:1", BaseDelay: 10 * time.Millisecond, MaxDelay: 300 * time.Millisecond}
	if err := f.withDefaults(); err != nil {
		t.Fatal(err)
	}
	g := f.newGateway(0, nil, time.Now())
	for n := 1; n <= 40; n++ {
		bound := min(f.MaxDelay, f.BaseDelay<<min(n-1, 30))
		var top time.Duration
		for range 200 {
			d := g.backoff(n)
			if d < 0 || d > bound {
				t.Fatalf("backoff(%d) = %v, want 0..%v", n, d, bound)
			}
			top = max(top, d)
		}
		if top < bound/2 {
			t.Errorf("backoff(%d): 200 draws all under %v, half the bound %v", n, top, bound)
		}
	}
}

// TestFleetConfig checks that a Fleet refuses what it cannot run.
func TestFleetConfig(t *testing.T) {
	for _, f := range []*Fleet{
		{},
		{Node: "http://x", Gateways: 5, Devices: 4},
		{Node: "http://x", Batch: client.MaxBatchMessages + 1},
		{Node: "http://x", Payload: -1},
		{Node: "http://x", Payload: 10, JSONPayload: true},
		{Node: "http://x", Rate: -1},
		{Node: "http://x", BaseDelay: time.Second, MaxDelay: time.Millisecond},
	} {
		if err := f.Run(context.Background()); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: Run = %v, want ErrConfig", f, err)
		}
	}
}

// TestFleetSurvivesRestart runs a fleet against a node that is stopped and
// started again on its data directory and address in the middle of the
// run, and rate-limits every device below what it offers. The gateways
// must go on after the restart, never equivocate, and every message they
// report acknowledged must be in the restarted node.
func TestFleetSurvivesRestart(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	addrs, err := loopback.FreeAddrs("tcp", 1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.Config{DataDir: t.TempDir(), Identity: ed25519.NewKeyFromSeed(deriveSeed("node", seed, 0)),
		Network: "weft-gateway-test", PoWBase: 4, RatePerIssuer: 5, RateBurst: 2, Log: zerolog.Nop()}
	url, stop, err := serveNode(cfg, "test", addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stop() }()

	var log AckLog
	grew := make(chan struct{}, 1)
	f := &Fleet{Node: url, Gateways: 2, Devices: 24, Batch: 16, Rate: 200, Seed: seed,
		BaseDelay: 10 * time.Millisecond, MaxDelay: 200 * time.Millisecond, PendingFor: 2 * time.Second,
		OnAck: func(a Ack) {
			log.Add(a)
			select {
			case grew <- struct{}{}:
			default:
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- f.Run(ctx) }()
	waitAcks := func(n int, after time.Time) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			acks := log.Acks()
			if len(acks) >= n && acks[len(acks)-1].At.After(after) {
				return
			}
			select {
			case <-grew:
			case <-timeout:
				t.Fatalf("%d acknowledged in 30 s, want %d (stats %+v)", len(acks), n, f.Stats())
			}
		}
	}
	waitAcks(100, time.Time{})
	if err := stop(); err != nil {
		t.Fatalf("stopping the node: %v", err)
	}
	before := f.Stats()
	time.Sleep(300 * time.Millisecond) // the gateways meet a node that is not there
	restarted := time.Now()
	if url, stop, err = serveNode(cfg, "test", addrs[0]); err != nil {
		t.Fatalf("restarting the node: %v", err)
	}
	waitAcks(log.Len()+100, restarted)
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}

	st := f.Stats()
	t.Logf("stats: %+v", st)
	if st.Unanswered <= before.Unanswered {
		t.Errorf("no request went unanswered while the node was down: %d before, %d after", before.Unanswered, st.Unanswered)
	}
	if st.Answers[client.CodeRateLimited] == 0 || st.Resends == 0 {
		t.Errorf("the node's rate limit gave no resends: %+v", st)
	}
	if len(st.Failed) > 0 {
		t.Errorf("messages given up: %v", st.Failed)
	}
	acks := log.Acks()
	if st.Acked != uint64(len(acks)) {
		t.Errorf("stats count %d acknowledged, OnAck %d", st.Acked, len(acks))
	}
	last := map[int]uint64{}
	for _, a := range acks {
		if s, ok := last[a.Device]; ok && a.Seq <= s {
			t.Fatalf("device %d: acknowledged seq %d after %d", a.Device, a.Seq, s)
		}
		last[a.Device] = a.Seq
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	chk, err := CheckAcks(cctx, client.New(url, client.WithHTTPClient(&http.Client{})), acks, 50, seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(chk.Lost) > 0 || chk.Equivocations > 0 {
		t.Errorf("of %d acknowledged, %d lost (%+v); %d equivocations", len(acks), len(chk.Lost), chk.Lost[:min(len(chk.Lost), 3)], chk.Equivocations)
	}
	if chk.ByID != 50 {
		t.Errorf("%d read by id, want 50", chk.ByID)
	}

	// The check finds a message that is not there.
	fake := acks[len(acks)-1]
	fake.ID[0] ^= 1
	chk, err = CheckAcks(cctx, client.New(url, client.WithHTTPClient(&http.Client{})), append(acks, fake), 0, seed)
	if err != nil {
		t.Fatal(err)
	}
	if len(chk.Lost) != 1 || chk.Lost[0].ID != fake.ID {
		t.Errorf("an acknowledgement of a message the node never had: lost %+v, want it alone", chk.Lost)
	}
}

// TestGatewayTakeAtRate checks a gateway's schedule at a rate: readings
// come due at k / rate, a gateway holds at most one reading per device,
// and the readings that fall due while every device waits are skipped.
func TestGatewayTakeAtRate(t *testing.T) {
	f := &Fleet{Node: "http://127.0.0.1:1", Gateways: 1, Devices: 4, Batch: 10, Rate: 1000}
	if err := f.withDefaults(); err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_000_000, 0)
	g := f.newGateway(0, nil, start)
	if b := g.take(start); len(b) != 1 {
		t.Fatalf("at the start: %d readings, want 1 (reading 0 is due at 0)", len(b))
	}
	if b := g.take(start.Add(time.Millisecond / 2)); len(b) != 0 {
		t.Fatalf("half a period later: %d readings, want 0", len(b))
	}
	// A second later 1,001 readings are due and three devices free: three
	// go, the rest are skipped rather than kept.
	b := g.take(start.Add(time.Second))
	if len(b) != 3 || f.Stats().Skipped != 997 {
		t.Fatalf("a second later: %d readings, %d skipped; want 3 and 997", len(b), f.Stats().Skipped)
	}
	if b := g.take(start.Add(time.Second)); len(b) != 0 {
		t.Fatalf("every device busy: %d readings", len(b))
	}
	g.release(b[0].dev)
	if b := g.take(start.Add(time.Second + time.Millisecond)); len(b) != 1 || b[0].m != nil {
		t.Fatalf("one device freed, one more reading due: %d readings, want one to build", len(b))
	}
}

// TestGatewayAnswer checks what a gateway does with one message after
// each kind of answer: the same bytes again (not before Retry-After), a
// 202 that outlasts PendingFor built anew, a wrong message given up and
// its device freed.
func TestGatewayAnswer(t *testing.T) {
	f := &Fleet{Node: "http://127.0.0.1:1", Gateways: 1, Devices: 1, PendingFor: time.Hour}
	if err := f.withDefaults(); err != nil {
		t.Fatal(err)
	}
	g := f.newGateway(0, nil, time.Now())
	m := g.take(time.Now())[0]
	m.m, m.raw, m.sends = &dag.Message{Seq: 1}, []byte{1}, 1
	g.answer(m, 429, client.CodeRateLimited, 3*time.Second)
	if len(g.out) != 1 || g.out[0].m == nil || time.Until(m.due) < 2*time.Second {
		t.Fatalf("after 429 with Retry-After 3 s: outstanding %d, due in %v; want the same bytes in 3 s", len(g.out), time.Until(m.due))
	}
	g.out = nil
	g.answer(m, 202, "pending", 0)
	if len(g.out) != 1 || m.m == nil || m.pendingSince.IsZero() {
		t.Fatal("a first 202 did not keep the bytes to send again")
	}
	g.out = nil
	m.pendingSince = time.Now().Add(-2 * time.Hour)
	g.answer(m, 202, "pending", 0)
	if len(g.out) != 1 || m.m != nil || f.Stats().Rebuilds != 1 {
		t.Fatalf("a 202 past PendingFor: bytes kept %v, rebuilds %d; want a message to build anew", m.m != nil, f.Stats().Rebuilds)
	}
	g.out = nil
	m.m, m.sends = &dag.Message{Seq: 2}, 1
	g.answer(m, 422, client.CodeBadSignature, 0)
	if len(g.out) != 0 || len(g.free) != 1 || f.Stats().Failed[client.CodeBadSignature] != 1 {
		t.Fatalf("after bad_signature: outstanding %d, free devices %d, failed %v", len(g.out), len(g.free), f.Stats().Failed)
	}
}

// TestGatewayParents checks the shape a gateway's messages take: a batch's
// new messages chained, each on one of the node's two tips and the one
// built before it, the first on the last acknowledged message; after a
// batch with a refusal, every one on a tip and that acknowledged message.
func TestGatewayParents(t *testing.T) {
	srv := clienttest.NewServer(clienttest.Config{PoWBase: 1})
	defer srv.Close()
	f := &Fleet{Node: srv.URL, Gateways: 1, Devices: 8, Batch: 8, Payload: 16}
	if err := f.withDefaults(); err != nil {
		t.Fatal(err)
	}
	g := f.newGateway(0, client.New(srv.URL, noRetry), time.Now())
	ctx := context.Background()
	last := gwParent{id: dag.ID{7}, ts: time.Now().UnixNano()}
	g.lastAck = last
	for _, unchained := range []bool{false, true} {
		g.unchain = unchained
		batch := g.take(time.Now())
		if len(batch) != 8 || !g.build(ctx, batch) {
			t.Fatalf("unchained %v: %d messages, or no tips", unchained, len(batch))
		}
		genesis := srv.Genesis()
		for i, m := range batch {
			want := last.id
			if i > 0 && !unchained {
				want = batch[i-1].id
			}
			if p := m.m.Parents; p[0] != genesis || p[1] != want {
				t.Errorf("unchained %v, message %d: parents %v, want the tip %v and %v", unchained, i, p, genesis, want)
			}
			if m.m.Timestamp < last.ts || m.m.Seq != m.dev.nextSeq-1 || !m.m.VerifySignature() {
				t.Errorf("unchained %v, message %d: timestamp %d (parent's %d), seq %d, verifies %v",
					unchained, i, m.m.Timestamp, last.ts, m.m.Seq, m.m.VerifySignature())
			}
		}
		for _, m := range batch {
			g.release(m.dev)
		}
	}
}
