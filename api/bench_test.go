package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api"
	"github.com/weftnet/weft/bench"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/msggen"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/rules"
)

// benchPoWBase keeps building the messages cheap; the node checks the
// proof of work the same way at any difficulty (one hash).
const benchPoWBase = 4

// benchPayload is the size of the benchmark's payloads: JSON readings
// (bench.Reading) padded to it.
const benchPayload = 100

func benchNode(b *testing.B, network string, rs []rules.Rule) (*httptest.Server, *node.Node) {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 1
	cfg := node.Config{DataDir: b.TempDir(), Identity: ed25519.NewKeyFromSeed(seed), Network: network, PoWBase: benchPoWBase, Rules: rs}
	// The messages are stamped when they are built, before the node starts:
	// without this, the later ones would be lazy by the time they arrive.
	cfg.Core.LazyAge = time.Hour
	n, err := node.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	srv := httptest.NewServer(api.New(n, "bench", zerolog.Nop()))
	b.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
	})
	return srv, n
}

// waitAllConfirmed waits until the node has confirmed everything.
func waitAllConfirmed(b *testing.B, n *node.Node, want uint64) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		in := n.Info()
		if in.Confirmed >= want && in.Unconfirmed == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("not all confirmed: %+v", in)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkIngest measures messages per second through the HTTP API, from
// the first request until every message is durable (fsync on) and
// confirmed, with signature and proof-of-work checks. Batches come from 8
// concurrent gateways; single messages from 256 concurrent devices, each
// waiting for its answer (durable) before sending the next. Payloads are
// JSON readings, and the node runs no rules (rules=0) or the ten of
// bench.Rules (rules=10), so that benchstat compares the two:
//
//	benchstat -col /rules old.txt
//
// With rules, the node's rule engine evaluates every confirmed message as
// it goes, and its webhooks post to a local receiver answering 204.
// After the timed part the benchmark checks that every rule evaluated
// every confirmation and matched what the readings make it match, and
// reports rules-lag-ms: how long after the last confirmation the rules'
// cursors all reached it (the commit of the confirmations to the store,
// which the rules read, and the rules' work after the timer, which the
// throughput leaves out).
func BenchmarkIngest(b *testing.B) {
	for _, mode := range []struct {
		name    string
		batch   int
		clients int
	}{{"batch=1024", 1024, 8}, {"single", 1, 256}} {
		b.Run(mode.name, func(b *testing.B) {
			for _, nrules := range []int{0, 10} {
				b.Run(fmt.Sprintf("rules=%d", nrules), func(b *testing.B) {
					benchIngest(b, mode.batch, mode.clients, nrules)
				})
			}
		})
	}
}

func benchIngest(b *testing.B, batch, clients, nrules int) {
	network := fmt.Sprintf("bench-batch%d", batch)
	msgs, err := msggen.DAGWith(dag.Params{Network: dag.NetworkIDFromName(network), MaxPayload: dag.DefaultMaxPayload, PoWBase: benchPoWBase}, b.N, 1,
		func(i int) []byte { return bench.Reading(uint64(i), benchPayload) })
	if err != nil {
		b.Fatal(err)
	}
	var rs []rules.Rule
	var hook *hookReceiver
	if nrules > 0 {
		hook = newHookReceiver(b)
		if rs, err = bench.Rules(hook.url); err != nil {
			b.Fatal(err)
		}
		if len(rs) != nrules {
			b.Fatalf("bench.Rules has %d rules, not %d", len(rs), nrules)
		}
	}
	srv, n := benchNode(b, network, rs)
	base := n.Info().Confirmed
	var bodies [][]byte
	for i := 0; i < len(msgs); i += batch {
		var body []byte
		for _, m := range msgs[i:min(i+batch, len(msgs))] {
			if batch > 1 {
				body = binary.BigEndian.AppendUint32(body, uint32(m.Size()))
			}
			body = append(body, m.Bytes()...)
		}
		bodies = append(bodies, body)
	}
	path, ctype := "/api/v1/messages/batch", "application/x-weft-batch"
	if batch == 1 {
		path, ctype = "/api/v1/messages", "application/octet-stream"
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	work := make(chan []byte, len(bodies))
	for _, body := range bodies {
		work <- body
	}
	close(work)
	var rss runtime.MemStats
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range work {
				resp, err := hc.Post(srv.URL+path, ctype, bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 201 {
					b.Errorf("status %d: %s", resp.StatusCode, out)
					return
				}
				if batch > 1 && bytes.Contains(out, []byte(`"error"`)) {
					b.Errorf("a message was refused: %.300s", out)
					return
				}
			}
		}()
	}
	wg.Wait()
	durable := b.Elapsed()
	waitAllConfirmed(b, n, base+uint64(b.N))
	b.StopTimer()
	confirmed := time.Now()
	runtime.ReadMemStats(&rss)
	b.ReportMetric(float64(b.N)/durable.Seconds(), "durable/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "confirmed/s")
	b.ReportMetric(float64(rss.HeapInuse)/(1<<20), "heap-MiB")
	if nrules > 0 {
		// The core's count leads the store's, which the rules read, by a
		// commit.
		total := n.Info().Confirmed
		waitRules(b, n, total)
		b.ReportMetric(float64(time.Since(confirmed).Microseconds())/1000, "rules-lag-ms")
		checkRules(b, n, hook, b.N, total)
	}
}

// waitRules waits until the store holds total confirmations and every
// rule's cursor reached them.
func waitRules(b *testing.B, n *node.Node, total uint64) {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		behind := ""
		if c := n.ConfirmCount(); c < total {
			behind = fmt.Sprintf("the store has %d confirmations of %d", c, total)
		}
		for _, ri := range n.Rules() {
			if behind == "" && ri.Stats.Cursor < total {
				behind = fmt.Sprintf("rule %s at %d of %d", ri.Rule.Name, ri.Stats.Cursor, total)
				break
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the rules did not catch up: %s", behind)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// What each of bench.Rules matches on msgs readings of bench.Reading, in
// a node without a device registry (no tags, no device names).
var ruleExpect = map[string]string{
	"temp-high": "some", "temp-low": "some", "humid": "some", "hot-and-humid": "some",
	"audit-sample":      "every 1000th", // int(payload.i) % 1000 == 0
	"cold-chain-breach": "none", "door-open": "none", "meter-backwards": "none",
	"oversize": "none", "confirmed-late": "none",
}

// checkRules fails the benchmark unless the rules evaluated every one of
// the total confirmations and matched what the msgs readings make them
// match, failing only on the node's own messages (their payloads are not
// JSON), and unless every webhook match reached the receiver.
func checkRules(b *testing.B, n *node.Node, hook *hookReceiver, msgs int, total uint64) {
	own := total - uint64(msgs) // the node's own messages, and the genesis
	var webhooks uint64
	for _, ri := range n.Rules() {
		st := ri.Stats
		if st.Cursor < total {
			b.Fatalf("rule %s: cursor %d, %d confirmations", st.Name, st.Cursor, total)
		}
		if st.EvalErrors > own {
			b.Fatalf("rule %s failed on %d messages; the node issued only %d without a JSON payload (last: %s)", st.Name, st.EvalErrors, own, st.LastEvalError)
		}
		switch want := ruleExpect[st.Name]; want {
		case "some":
			// 0.05% of readings for the rarest: hundreds past 100k.
			if msgs >= 100_000 && st.Matches == 0 {
				b.Fatalf("rule %s matched none of %d readings", st.Name, msgs)
			}
		case "none":
			if st.Matches != 0 {
				b.Fatalf("rule %s matched %d readings, none expected", st.Name, st.Matches)
			}
		case "every 1000th":
			if w := uint64(msgs+999) / 1000; st.Matches != w {
				b.Fatalf("rule %s matched %d readings, want %d (%d errors, the last %q)", st.Name, st.Matches, w, st.EvalErrors, st.LastEvalError)
			}
		default:
			b.Fatalf("rule %s: nothing is expected of it here: add it to ruleExpect", st.Name)
		}
		if st.Kind == rules.KindWebhook {
			webhooks += st.Matches
		}
	}
	// The webhooks are delivered one at a time per rule; at the end of a
	// run the last ones may still be on their way.
	deadline := time.Now().Add(time.Minute)
	for hook.count() < webhooks {
		if time.Now().After(deadline) {
			b.Fatalf("the receiver had %d webhooks of %d matches", hook.count(), webhooks)
		}
		time.Sleep(time.Millisecond)
	}
}

// hookReceiver is a webhook receiver that answers 204 and counts.
type hookReceiver struct {
	url string
	mu  sync.Mutex
	n   uint64
}

func newHookReceiver(b *testing.B) *hookReceiver {
	h := &hookReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		h.n++
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	h.url = srv.URL + "/weft"
	return h
}

func (h *hookReceiver) count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
