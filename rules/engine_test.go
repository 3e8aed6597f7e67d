package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
)

// testSeed returns WEFT_RULES_SEED, or a fresh seed, and logs it.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := rand.Uint64()
	if s := os.Getenv("WEFT_RULES_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	t.Logf("seed %d (WEFT_RULES_SEED=%d replays it)", seed, seed)
	return seed
}

// fastConfig returns a config whose retries are quick.
func fastConfig(src Source, st Store, seed uint64) Config {
	return Config{
		Source: src, Store: st, Log: zerolog.Nop(),
		BackoffBase: 2 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		MaxAttempts: 100_000, RequestTimeout: 2 * time.Second, PollInterval: 20 * time.Millisecond,
		Rand: rand.New(rand.NewPCG(seed, 2)),
	}
}

// running runs an engine until the test ends, and returns what Run
// returned, once it has.
func running(t *testing.T, e *Engine) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- e.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

const (
	hotCond  = `payload.temp_c > 8.0`
	evenCond = `int(payload.n) % 2 == 0`
)

func evens(n int) []uint64 {
	var out []uint64
	for i := 0; i < n; i += 2 {
		out = append(out, uint64(i))
	}
	return out
}

// TestWebhookFlakyReceiver: a receiver that refuses about half its
// requests and is down for 3 s gets every match of two rules, first in
// confirmation order per rule, every request signed.
func TestWebhookFlakyReceiver(t *testing.T) {
	seed := testSeed(t)
	const n = 300
	want := map[string][]uint64{"hot": wantHot(n), "even": evens(n)}
	rcv := newReceiver(t, seed, 0.5, len(want["hot"])+len(want["even"]))
	outage := make(chan struct{})
	var once sync.Once
	rcv.onAccept = func(accepted int) {
		if accepted == 40 {
			once.Do(func() { close(outage) })
		}
	}
	src := &memSource{}
	e, err := New(fastConfig(src, &MemStore{}, seed), []Rule{webhookRule("hot", hotCond, rcv.url()), webhookRule("even", evenCond, rcv.url())})
	if err != nil {
		t.Fatal(err)
	}
	settled := make(chan struct{})
	var left atomic.Int64
	left.Store(int64(rcv.want))
	e.onSettle = func(string, bool) {
		if left.Add(-1) == 0 {
			close(settled)
		}
	}
	stop := running(t, e)

	fed := make(chan struct{})
	go func() { // confirmations keep coming, also while the receiver is down
		defer close(fed)
		ps := payloads(n)
		for i := 0; i < n; i += 10 {
			src.add(1, ps[i:i+10]...)
			e.Notify()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case <-outage:
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver never accepted 40 requests")
	}
	rcv.down()
	downAt := time.Now()
	time.Sleep(3 * time.Second)
	rcv.up()
	t.Logf("receiver down for %s", time.Since(downAt).Round(time.Millisecond))
	<-fed
	rcv.wait(30 * time.Second)
	select {
	case <-settled:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine did not settle what the receiver accepted")
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	rcv.check(want)
	var failed uint64
	for _, st := range e.Stats() {
		failed += st.FailedAttempts
		if st.Pending != 0 || st.DeadLetters != 0 || st.Cursor != n {
			t.Errorf("%s: %+v", st.Name, st)
		}
	}
	rcv.mu.Lock()
	t.Logf("%d requests, %d accepted (%d again), %d failed attempts seen by the engine", rcv.requests, rcv.accepted, rcv.dups, failed)
	refused := rcv.requests - rcv.accepted
	rcv.mu.Unlock()
	if failed <= uint64(refused) {
		t.Errorf("%d failed attempts, no more than the %d refusals: the outage cost none", failed, refused)
	}
}

// TestCrashLosesNoMatch: an engine whose store dies after a random number
// of writes (a crash: nothing after it is kept) is dropped, and an engine
// started on what the store kept delivers every match, webhook and event.
func TestCrashLosesNoMatch(t *testing.T) {
	seed := testSeed(t)
	rnd := rand.New(rand.NewPCG(seed, 3))
	const n = 200
	want := map[string][]uint64{"hot": wantHot(2 * n)}
	rcv := newReceiver(t, seed, 0.3, len(want["hot"]))
	src := &memSource{}
	mem := &MemStore{}
	writes := 3 + rnd.IntN(60)
	t.Logf("the store dies at write %d", writes+1)
	crashing := newCrashStore(mem, writes)

	var mu sync.Mutex
	var events []uint64
	rules := []Rule{webhookRule("hot", hotCond, rcv.url()), {Name: "evt", Condition: evenCond, Action: Action{Kind: KindEvent}}}
	cfg := fastConfig(src, crashing, seed)
	cfg.ScanBatch = 16 // several scanner commits before the end
	cfg.OnEvent = func(m *Match) {
		mu.Lock()
		events = append(events, m.Message.Confirmation)
		mu.Unlock()
	}
	e1, err := New(cfg, rules)
	if err != nil {
		t.Fatal(err)
	}
	src.add(1, payloads(n)...)
	err = e1.Run(context.Background()) // returns when the store dies
	if !errors.Is(err, errCrash) {
		t.Fatalf("Run returned %v, want the store's failure", err)
	}
	rcv.mu.Lock()
	t.Logf("before the crash: %d deliveries, %d events", len(rcv.seen), len(events))
	rcv.mu.Unlock()

	cfg.Store = mem
	e2, err := New(cfg, rules)
	if err != nil {
		t.Fatal(err)
	}
	running(t, e2)
	src.add(1, payloads(2 * n)[n:]...)
	e2.Notify()
	rcv.wait(30 * time.Second)
	rcv.check(want)

	// Events are at least once: every even confirmation, each run of them
	// in order from where the store's cursor stood.
	mu.Lock()
	got := make(map[uint64]bool)
	for _, c := range events {
		got[c] = true
	}
	mu.Unlock()
	for _, c := range evens(n) { // the first n at least: the scanner may not have reached the rest
		if !got[c] {
			t.Fatalf("event of confirmation %d never published", c)
		}
	}
}

// TestDeadLetters: a match that fails MaxAttempts times leaves the outbox
// for the dead letters, with the last error; past MaxDeadLetters the oldest
// is dropped.
func TestDeadLetters(t *testing.T) {
	var mu sync.Mutex
	requests := make(map[string]int)
	srv := httptest.NewServer(http500(&mu, requests))
	defer srv.Close()
	src := &memSource{}
	cfg := fastConfig(src, &MemStore{}, 1)
	cfg.MaxAttempts, cfg.MaxDeadLetters = 3, 3
	e, err := New(cfg, []Rule{webhookRule("hot", hotCond, srv.URL)})
	if err != nil {
		t.Fatal(err)
	}
	settled := make(chan bool, 10)
	e.onSettle = func(_ string, dead bool) { settled <- dead }
	stop := running(t, e)
	src.add(1, payloads(12)...) // hot: 8, 9, 10, 11
	e.Notify()
	for range 4 {
		select {
		case dead := <-settled:
			if !dead {
				t.Fatal("a match delivered to a receiver that refuses all")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no dead letter")
		}
	}
	stop()
	dls, err := e.DeadLetters("hot")
	if err != nil {
		t.Fatal(err)
	}
	var confs []uint64
	for _, d := range dls {
		confs = append(confs, d.Match.Message.Confirmation)
		if d.Attempts != 3 || !strings.Contains(d.LastError, "500") || !strings.Contains(d.LastError, "boom") || d.FailedAt.IsZero() || d.Match.Rule != "hot" {
			t.Errorf("dead letter %+v", d)
		}
	}
	if !slices.Equal(confs, []uint64{9, 10, 11}) { // 8, the oldest, dropped
		t.Errorf("dead letters of %v, want 9, 10, 11", confs)
	}
	st := e.Stats()[0]
	if st.DeadLetters != 3 || st.DeadLettersDropped != 1 || st.Pending != 0 || st.FailedAttempts != 12 || st.Delivered != 0 {
		t.Errorf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range requests {
		if n != 3 {
			t.Errorf("%s: %d requests, want 3", id, n)
		}
	}
	if len(requests) != 4 {
		t.Errorf("%d deliveries attempted, want 4", len(requests))
	}
	if _, err := e.DeadLetters("nope"); !errors.Is(err, ErrNoRule) {
		t.Errorf("dead letters of an unknown rule: %v", err)
	}
}

func http500(mu *sync.Mutex, requests map[string]int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.Header.Get(HeaderDelivery)]++
		mu.Unlock()
		http.Error(w, "boom", http.StatusInternalServerError)
	})
}

// TestOutboxBound: a rule whose receiver does not keep up stops at a full
// outbox, without losing its place, and catches up once deliveries make
// room.
func TestOutboxBound(t *testing.T) {
	seed := testSeed(t)
	const n = 120
	rcv := newReceiver(t, seed, 0, len(wantHot(n)))
	src := &memSource{}
	st := &MemStore{}
	cfg := fastConfig(src, st, seed)
	one, _ := Test(webhookRule("hot", hotCond, rcv.url()), []Message{testMessage(n-1, 1, payloads(n)[n-1])}, nil) // the largest
	size := len(encodeJSON(&one.Matches[0]))
	cfg.OutboxBytes = 5 * size
	e, err := New(cfg, []Rule{webhookRule("hot", hotCond, rcv.url())})
	if err != nil {
		t.Fatal(err)
	}
	src.add(1, payloads(n)...)
	// Scanner steps alone: nothing delivers.
	drainSteps(t, e)
	s := e.Stats()[0]
	hot := wantHot(n)
	if s.Pending != 5 || s.PendingBytes > cfg.OutboxBytes || s.Cursor != hot[5] {
		t.Fatalf("a full outbox: %d matches of %d bytes (bound %d), cursor %d; want 5, cursor %d", s.Pending, s.PendingBytes, cfg.OutboxBytes, s.Cursor, hot[5])
	}
	running(t, e)
	rcv.wait(30 * time.Second)
	rcv.check(map[string][]uint64{"hot": hot})
}

// TestAddRemove: a rule added to a running engine delivers from then on;
// a removed one leaves nothing in the store.
func TestAddRemove(t *testing.T) {
	seed := testSeed(t)
	rcv := newReceiver(t, seed, 0, 3)
	src := &memSource{}
	src.add(1, payloads(12)...)
	st := &MemStore{}
	e, err := New(fastConfig(src, st, seed), []Rule{logRule("logged", "true")})
	if err != nil {
		t.Fatal(err)
	}
	stop := running(t, e)
	if err := e.Add(webhookRule("hot", hotCond, rcv.url())); err != nil {
		t.Fatal(err)
	}
	if err := e.Add(webhookRule("hot", hotCond, rcv.url())); !errors.Is(err, ErrInvalid) {
		t.Errorf("a second rule of the same name: %v", err)
	}
	src.add(1, `{"temp_c": 9}`, `{"temp_c": 1}`, `{"temp_c": 10}`, `{"temp_c": 11}`)
	e.Notify()
	rcv.wait(30 * time.Second)
	rcv.check(map[string][]uint64{"hot": {12, 14, 15}})
	if err := e.Remove("hot"); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove("hot"); !errors.Is(err, ErrNoRule) {
		t.Errorf("removing twice: %v", err)
	}
	stop()
	if v, _ := st.Get(bucketCursors, []byte("hot")); v != nil {
		t.Error("the removed rule's cursor is still stored")
	}
	if v, _ := st.Get(bucketCursors, []byte("logged")); v == nil {
		t.Error("the remaining rule's cursor is gone")
	}
	if names := statNames(e); len(names) != 1 || names[0] != "logged" {
		t.Errorf("rules %v after the removal", names)
	}
}

func statNames(e *Engine) []string {
	var out []string
	for _, s := range e.Stats() {
		out = append(out, s.Name)
	}
	return out
}

// TestLogAndEvalErrors: the log action writes one line per match; a
// message the condition fails on is counted and skipped.
func TestLogAndEvalErrors(t *testing.T) {
	var buf bytes.Buffer
	src := &memSource{}
	cfg := fastConfig(src, &MemStore{}, 1)
	cfg.Log = zerolog.New(&buf)
	e, err := New(cfg, []Rule{logRule("cold", `payload.temp_c > 8.0`)})
	if err != nil {
		t.Fatal(err)
	}
	src.add(1, `{"temp_c": 9.5}`, `{"humidity": 3}`, "not json", `{"temp_c": 2}`)
	if progressed, err := e.step(); !progressed || err != nil {
		t.Fatal(progressed, err)
	}
	s := e.Stats()[0]
	if s.Matches != 1 || s.EvalErrors != 2 || s.Cursor != 4 || !strings.Contains(s.LastEvalError, "no such key") {
		t.Errorf("stats %+v", s)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"rule":"cold"`) || !strings.Contains(lines[0], `"delivery":"cold:0"`) ||
		!strings.Contains(lines[0], `"payload":{"temp_c": 9.5}`) {
		t.Errorf("log %q", buf.String())
	}
	if _, err := New(cfg, []Rule{{Name: "e", Condition: "true", Action: Action{Kind: KindEvent}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an event rule without OnEvent: %v", err)
	}
	if _, err := New(cfg, []Rule{{Name: "m", Condition: "true", Action: Action{Kind: "mqtt"}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an unknown kind: %v", err)
	}
}

// TestKinds: a kind added through Config.Kinds gets the matches, in order,
// retried after an error.
func TestKinds(t *testing.T) {
	src := &memSource{}
	cfg := fastConfig(src, &MemStore{}, 1)
	got := make(chan *Delivery, 10)
	cfg.Kinds = map[string]NewDeliverer{"mqtt": func(a Action) (Deliverer, error) { return &flaky{got: got}, nil }}
	e, err := New(cfg, []Rule{{Name: "m", Condition: hotCond, Action: Action{Kind: "mqtt"}}})
	if err != nil {
		t.Fatal(err)
	}
	running(t, e)
	src.add(1, payloads(12)...)
	e.Notify()
	for i, want := range []uint64{8, 8, 9, 9, 10, 10, 11, 11} { // each fails once first
		select {
		case d := <-got:
			if d.Confirmation != want || d.Attempt != 1+i%2 {
				t.Fatalf("delivery %d: %s attempt %d, want confirmation %d", i, d.ID, d.Attempt, want)
			}
			if m, err := DecodeMatch(d.Body); err != nil || m.Delivery != d.ID {
				t.Fatalf("body of %s: %v", d.ID, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery")
		}
	}
}

// flaky fails every first attempt.
type flaky struct{ got chan<- *Delivery }

func (f *flaky) Deliver(ctx context.Context, d *Delivery) error {
	c := *d
	f.got <- &c
	if d.Attempt == 1 {
		return errors.New("not yet")
	}
	return nil
}

// TestSourceFailure: a confirmation order that cannot be read stops Run
// with the error.
func TestSourceFailure(t *testing.T) {
	src := &failingSource{}
	e, err := New(fastConfig(src, &MemStore{}, 1), []Rule{logRule("r", "true")})
	if err != nil {
		t.Fatal(err)
	}
	src.count.Store(10)
	if err := e.Run(context.Background()); !errors.Is(err, errCrash) {
		t.Errorf("Run returned %v", err)
	}
}

// failingSource has confirmations it cannot read.
type failingSource struct{ count atomic.Uint64 }

func (s *failingSource) ConfirmCount() uint64 { return s.count.Load() }
func (*failingSource) ConfirmedSince(uint64, int) ([]Message, error) {
	return nil, errCrash
}

// TestDefaults: the zero Config takes the documented defaults, and the
// backoff doubles from BackoffBase to BackoffMax, each wait in the upper
// half of its step.
func TestDefaults(t *testing.T) {
	cfg := Config{Source: &memSource{}, Store: &MemStore{}}
	if err := cfg.fill(); err != nil {
		t.Fatal(err)
	}
	if cfg.MaxAttempts != 10 || cfg.BackoffBase != time.Second || cfg.BackoffMax != 5*time.Minute ||
		cfg.RequestTimeout != 10*time.Second || cfg.OutboxBytes != 4<<20 || cfg.MaxDeadLetters != 1000 {
		t.Errorf("defaults %+v", cfg)
	}
	if err := (&Config{}).fill(); err == nil {
		t.Error("a config without a source and a store")
	}
	seed := testSeed(t)
	cfg.Rand = rand.New(rand.NewPCG(seed, 4))
	e := &Engine{cfg: cfg}
	for attempt, step := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 100: 5 * time.Minute} {
		for range 100 {
			if d := e.backoff(attempt); d < step/2 || d > step {
				t.Fatalf("attempt %d: waits %s, want %s to %s", attempt, d, step/2, step)
			}
		}
	}
}

// TestTagsBounded: a condition sees at most MaxTags tags of at most
// MaxTagLen bytes.
func TestTagsBounded(t *testing.T) {
	var tags []string
	for i := range MaxTags + 10 {
		tags = append(tags, fmt.Sprintf("t%d", i))
	}
	tags[0] = strings.Repeat("x", MaxTagLen+1)
	res, err := Test(logRule("r", fmt.Sprintf(`size(tags) == %d && !("t%d" in tags) && "t1" in tags`, MaxTags, MaxTags+1)),
		[]Message{testMessage(0, 1, "{}")}, registry(map[byte]Device{1: {Tags: tags}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matches) != 1 || len(res.Matches[0].Message.Tags) != MaxTags {
		t.Fatalf("%+v", res)
	}
}

// countingStore counts writes.
type countingStore struct {
	MemStore
	writes atomic.Int64
}

func (s *countingStore) Write(ops []Op) error {
	s.writes.Add(1)
	return s.MemStore.Write(ops)
}

// TestCursorInterval: cursors that passed no webhook match are written at
// most every CursorInterval, and all of them when Run returns.
func TestCursorInterval(t *testing.T) {
	src := &memSource{}
	st := &countingStore{}
	cfg := fastConfig(src, st, 1)
	cfg.ScanBatch, cfg.CursorInterval = 10, time.Hour
	e, err := New(cfg, []Rule{logRule("never", "false"), logRule("seq", "seq > 0u")})
	if err != nil {
		t.Fatal(err)
	}
	src.add(1, payloads(100)...)
	before := st.writes.Load()
	for {
		moved, err := e.step()
		if err != nil {
			t.Fatal(err)
		}
		if !moved {
			break
		}
	}
	if n := st.writes.Load() - before; n != 1 {
		t.Errorf("%d writes for 10 steps within the interval, want 1", n)
	}
	stored := func() uint64 {
		v, _ := st.Get(bucketCursors, []byte("never"))
		c, err := decodeCursor(v)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := stored(); c != 10 {
		t.Errorf("stored cursor %d, want 10 (the first step's)", c)
	}
	stop := running(t, e)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if c := stored(); c != 100 {
		t.Errorf("stored cursor %d after Run, want 100", c)
	}
}

// TestReplace: a replaced rule goes on from its cursor with its new
// condition, and the matches its outbox held go to the new URL; an action
// that would strand them is refused.
func TestReplace(t *testing.T) {
	seed := testSeed(t)
	var mu sync.Mutex
	refused := make(map[string]int)
	down := httptest.NewServer(http500(&mu, refused))
	defer down.Close()
	rcv := newReceiver(t, seed, 0, 5) // the four waiting, then 13
	src := &memSource{}
	st := &MemStore{}
	e, err := New(fastConfig(src, st, seed), []Rule{webhookRule("hot", hotCond, down.URL)})
	if err != nil {
		t.Fatal(err)
	}
	src.add(1, payloads(12)...) // hot: 8, 9, 10, 11, held by the refusing receiver
	drainSteps(t, e)
	if s := e.Stats()[0]; s.Pending != 4 || s.Cursor != 12 {
		t.Fatalf("before the replacement: %+v", s)
	}
	if err := e.Replace(logRule("hot", "true")); !errors.Is(err, ErrInvalid) {
		t.Errorf("replacing a rule with 4 matches waiting by a log rule: %v", err)
	}
	if err := e.Replace(webhookRule("nope", hotCond, rcv.url())); !errors.Is(err, ErrNoRule) {
		t.Errorf("replacing a rule that is not there: %v", err)
	}
	if err := e.Replace(webhookRule("hot", `payload.temp_c < 1.0`, rcv.url())); err != nil {
		t.Fatal(err)
	}
	running(t, e)
	src.add(1, `{"temp_c": 9}`, `{"temp_c": 0.5}`) // 12 is not matched now, 13 is
	e.Notify()
	rcv.wait(30 * time.Second)
	rcv.check(map[string][]uint64{"hot": {8, 9, 10, 11, 13}})
	if s := e.Stats()[0]; s.Matches != 5 || s.Cursor != 14 {
		t.Errorf("after the replacement: %+v (the counts go on)", s)
	}
}

// TestSkip: messages of skipped issuers are passed over, not evaluated,
// also a run of them longer than a scan batch.
func TestSkip(t *testing.T) {
	seed := testSeed(t)
	src := &memSource{}
	cfg := fastConfig(src, &MemStore{}, seed)
	cfg.Skip = func(k dag.PublicKey) bool { return k[0] == 2 }
	var mu sync.Mutex
	var got []uint64
	cfg.OnEvent = func(m *Match) {
		mu.Lock()
		got = append(got, m.Message.Confirmation)
		mu.Unlock()
	}
	e, err := New(cfg, []Rule{{Name: "all", Condition: "payload.n >= 0", Action: Action{Kind: KindEvent}}})
	if err != nil {
		t.Fatal(err)
	}
	running(t, e)
	src.add(1, `{"n":0}`)
	src.add(2, payloads(600)...) // skipped: more than two scan batches
	src.add(1, `{"n":1}`)
	e.Notify()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []uint64{0, 601}) {
		t.Fatalf("matches %v, want 0 and 601 (600 skipped between)", got)
	}
	if s := e.Stats()[0]; s.Matches != 2 || s.EvalErrors != 0 || s.Cursor != 602 {
		t.Errorf("stats %+v", s)
	}
}

// drainSteps runs scanner steps, with nothing delivering, until one makes
// no progress.
func drainSteps(t *testing.T, e *Engine) {
	t.Helper()
	for {
		progressed, err := e.step()
		if err != nil {
			t.Fatal(err)
		}
		if !progressed {
			return
		}
	}
}

// TestDropStale: the state of a rule the engine no longer has (its cursor
// and its outbox of waiting matches) is deleted; the rules it has keep
// theirs.
func TestDropStale(t *testing.T) {
	seed := testSeed(t)
	src := &memSource{}
	st := &MemStore{}
	cfg := fastConfig(src, st, seed)
	e, err := New(cfg, []Rule{webhookRule("gone", hotCond, "http://127.0.0.1:9/x"), logRule("kept", "true")})
	if err != nil {
		t.Fatal(err)
	}
	src.add(1, payloads(12)...)
	drainSteps(t, e)
	if s := e.Stats()[0]; s.Name != "gone" || s.Pending != 4 {
		t.Fatalf("before: %+v", s)
	}
	e2, err := New(cfg, []Rule{logRule("kept", "true")})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := e2.DropStale()
	if err != nil || !slices.Equal(stale, []string{"gone"}) {
		t.Fatalf("DropStale: %v %v", stale, err)
	}
	if v, _ := st.Get(bucketCursors, []byte("gone")); v != nil {
		t.Error("the stale rule's cursor is still stored")
	}
	n := 0
	st.ForEach(outboxBucket("gone"), func(_, _ []byte) error { n++; return nil })
	if v, _ := st.Get(bucketCursors, []byte("kept")); v == nil || n != 0 {
		t.Errorf("after: the kept rule's cursor %x, %d matches left in the stale outbox", v, n)
	}
	if stale, err := e2.DropStale(); err != nil || len(stale) != 0 {
		t.Errorf("again: %v %v", stale, err)
	}
}
