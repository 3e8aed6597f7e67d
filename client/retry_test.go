package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// fakeClock is a Retry's clock and sleeper: Sleep records the wait and
// moves the time on by it, at once.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

func (f *fakeClock) Waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

// flaky serves fails answers from fail (in turn, the last one repeating
// while more are asked for, up to failures of them), then the API's info.
type flaky struct {
	mu       sync.Mutex
	failures int
	fail     func(w http.ResponseWriter, n int)
	attempts int
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.attempts++
	n := f.attempts
	f.mu.Unlock()
	if n <= f.failures {
		f.fail(w, n)
		return
	}
	key := dag.PublicKey{1}
	wire.WriteJSON(w, http.StatusOK, wire.Info{NodeID: key.String(), Network: "n", NetworkID: wire.FormatNetworkID(dag.NetworkIDFromName("n"))})
}

func (f *flaky) Attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts
}

func answer(status int, retryAfter string) func(http.ResponseWriter, int) {
	return func(w http.ResponseWriter, _ int) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error": {"code": "x", "message": "try later"}}`)
	}
}

func retryClient(t *testing.T, h http.Handler, r Retry) (*Client, *fakeClock) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	clk := newFakeClock()
	r.Now, r.Sleep = clk.Now, clk.Sleep
	if r.Rand == nil {
		r.Rand = func() float64 { return 0.5 }
	}
	return New(srv.URL, WithRetry(r)), clk
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	now := newFakeClock().Now()
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
	}{
		{"503 seconds", http.StatusServiceUnavailable, "2"},
		{"429 seconds", http.StatusTooManyRequests, "2"},
		{"503 date", http.StatusServiceUnavailable, now.Add(2 * time.Second).Format(http.TimeFormat)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{failures: 2, fail: answer(tc.status, tc.retryAfter)}
			c, clk := retryClient(t, f, Retry{})
			if _, err := c.Info(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The jitter (0.5 of 100 ms, then of 200 ms) is below what the
			// node asked for: the waits are the node's. The date is read
			// against the injected clock, which the first wait moves on.
			want := []time.Duration{2 * time.Second, 2 * time.Second}
			if tc.name == "503 date" {
				want = []time.Duration{2 * time.Second, 100 * time.Millisecond}
			}
			if f.Attempts() != 3 || !reflect.DeepEqual(clk.Waits(), want) {
				t.Fatalf("%d attempts, waits %v, want 3 and %v", f.Attempts(), clk.Waits(), want)
			}
		})
	}
}

func TestRetryBackoffIsCappedAndBounded(t *testing.T) {
	f := &flaky{failures: 100, fail: answer(http.StatusServiceUnavailable, "")}
	c, clk := retryClient(t, f, Retry{Attempts: 6, BaseDelay: 100 * time.Millisecond, MaxDelay: 500 * time.Millisecond,
		Rand: func() float64 { return 0.999 }})
	_, err := c.Info(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		t.Fatalf("the last error is not returned: %v", err)
	}
	// Full jitter of 100, 200, 400 ms, then of the 500 ms cap.
	want := []time.Duration{99900 * time.Microsecond, 199800 * time.Microsecond, 399600 * time.Microsecond,
		499500 * time.Microsecond, 499500 * time.Microsecond}
	if f.Attempts() != 6 || !reflect.DeepEqual(clk.Waits(), want) {
		t.Fatalf("%d attempts, waits %v, want 6 and %v", f.Attempts(), clk.Waits(), want)
	}

	// The jitter is drawn from the whole range: 0 waits nothing.
	f = &flaky{failures: 2, fail: answer(http.StatusTooManyRequests, "")}
	c, clk = retryClient(t, f, Retry{Rand: func() float64 { return 0 }})
	if _, err := c.Info(context.Background()); err != nil || !reflect.DeepEqual(clk.Waits(), []time.Duration{0, 0}) {
		t.Fatalf("%v, waits %v", err, clk.Waits())
	}
}

func TestRetryStopsAtMaxElapsed(t *testing.T) {
	f := &flaky{failures: 100, fail: answer(http.StatusTooManyRequests, "4")}
	c, clk := retryClient(t, f, Retry{Attempts: 100, MaxElapsed: 10 * time.Second})
	_, err := c.Info(context.Background())
	if !IsCode(err, "x") {
		t.Fatalf("error %v", err)
	}
	// 4 s, 8 s; a third wait would start the next attempt at 12 s.
	if f.Attempts() != 3 || !reflect.DeepEqual(clk.Waits(), []time.Duration{4 * time.Second, 4 * time.Second}) {
		t.Fatalf("%d attempts, waits %v", f.Attempts(), clk.Waits())
	}

	// A Retry-After beyond the budget ends the call at once.
	f = &flaky{failures: 100, fail: answer(http.StatusServiceUnavailable, "3600")}
	c, clk = retryClient(t, f, Retry{})
	if _, err := c.Info(context.Background()); !IsCode(err, "x") || f.Attempts() != 1 || len(clk.Waits()) != 0 {
		t.Fatalf("%v: %d attempts, waits %v", err, f.Attempts(), clk.Waits())
	}
}

func TestRetryOnlyWhatMayPass(t *testing.T) {
	for _, st := range []int{400, 404, 409, 413, 422, 500, 502} {
		f := &flaky{failures: 100, fail: answer(st, "1")}
		c, clk := retryClient(t, f, Retry{})
		if _, err := c.Info(context.Background()); err == nil || f.Attempts() != 1 || len(clk.Waits()) != 0 {
			t.Errorf("status %d: %v, %d attempts", st, err, f.Attempts())
		}
	}
	// A context that ends while waiting ends the call with the last error.
	f := &flaky{failures: 100, fail: answer(503, "1")}
	ctx, cancel := context.WithCancel(context.Background())
	c, _ := retryClient(t, f, Retry{})
	c.retry.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	if _, err := c.Info(ctx); !IsCode(err, "x") || f.Attempts() != 1 {
		t.Fatalf("%v, %d attempts", err, f.Attempts())
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter, _ int) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func TestRetryTransportErrors(t *testing.T) {
	f := &flaky{failures: 2, fail: hangUp}
	c, clk := retryClient(t, f, Retry{})
	if _, err := c.Info(context.Background()); err != nil || f.Attempts() != 3 || len(clk.Waits()) != 2 {
		t.Fatalf("%v: %d attempts, waits %v", err, f.Attempts(), clk.Waits())
	}
	f = &flaky{failures: 100, fail: hangUp}
	c, _ = retryClient(t, f, Retry{Attempts: 3})
	if _, err := c.Info(context.Background()); err == nil || f.Attempts() != 3 {
		t.Fatalf("%v: %d attempts", err, f.Attempts())
	}
}

// TestRetriedSubmitStoredEarlier: the node stores a submission but the
// answer is lost; the retry meets duplicate, which means the first attempt
// landed.
func TestRetriedSubmitStoredEarlier(t *testing.T) {
	raw := []byte("a message's bytes")
	id := dag.ID(pow.Hash(raw))
	var mu sync.Mutex
	stored := 0
	c, _ := retryClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if stored++; stored == 1 {
			hangUp(w, 0)
			return
		}
		wire.WriteError(w, http.StatusConflict, wire.CodeDuplicate, "already in the ledger")
	}), Retry{})
	s, err := c.SubmitOutcome(context.Background(), raw)
	if err != nil || s.ID != id || s.Pending {
		t.Fatalf("%+v, %v", s, err)
	}
	// A duplicate on the first attempt is the caller's to know.
	c, _ = retryClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, http.StatusConflict, wire.CodeDuplicate, "already in the ledger")
	}), Retry{})
	if _, err := c.Submit(context.Background(), raw); !IsCode(err, CodeDuplicate) {
		t.Fatalf("first-attempt duplicate: %v", err)
	}
}

func TestRetryDefaults(t *testing.T) {
	r := New("http://127.0.0.1:1").retry
	if r.Attempts != 5 || r.MaxElapsed != 10*time.Second || r.BaseDelay != 100*time.Millisecond || r.MaxDelay != 2*time.Second ||
		r.Sleep == nil || r.Rand == nil || r.Now == nil {
		t.Fatalf("defaults %+v", r)
	}
}
