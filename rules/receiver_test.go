package rules

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

const testSecret = "a secret of the receiver"

// receiver is a webhook receiver that checks what it gets as a receiver in
// another language would, from the documented scheme, not from the
// package's own Sign. It refuses a random share of requests, and can be
// taken down and brought back up on the same address.
type receiver struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	srv      *httptest.Server
	rnd      *rand.Rand
	failRate float64
	requests int
	accepted int
	first    map[string][]uint64 // by rule: the confirmations first accepted, in order
	seen     map[string]bool     // delivery ids accepted
	dups     int                 // accepted again
	bad      []string            // what failed a check
	want     int                 // distinct deliveries to wait for
	done     chan struct{}       // closed when want are in
	onAccept func(accepted int)  // called without mu
}

func newReceiver(t *testing.T, seed uint64, failRate float64, want int) *receiver {
	r := &receiver{t: t, rnd: rand.New(rand.NewPCG(seed, 1)), failRate: failRate, want: want,
		first: make(map[string][]uint64), seen: make(map[string]bool), done: make(chan struct{})}
	r.srv = httptest.NewServer(r)
	r.addr = r.srv.Listener.Addr().String()
	t.Cleanup(r.down)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

// down closes the server: connections are refused until up.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// up serves again on the same address.
func (r *receiver) up() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Errorf("receiver: listening again on %s: %v", r.addr, err)
		return
	}
	srv := httptest.NewUnstartedServer(r)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		return
	}
	var m struct {
		Rule     string `json:"rule"`
		Delivery string `json:"delivery"`
		Message  struct {
			Confirmation uint64 `json:"confirmation"`
		} `json:"message"`
	}
	check := func() string {
		ts := req.Header.Get("X-Weft-Timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			return "timestamp " + ts
		}
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(ts + "." + string(body)))
		if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(req.Header.Get("X-Weft-Signature")), []byte(want)) {
			return "signature " + req.Header.Get("X-Weft-Signature")
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return "body: " + err.Error()
		}
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			return req.Method + " " + req.Header.Get("Content-Type")
		}
		if req.Header.Get("X-Weft-Rule") != m.Rule || req.Header.Get("X-Weft-Delivery") != m.Delivery ||
			m.Delivery != fmt.Sprintf("%s:%d", m.Rule, m.Message.Confirmation) {
			return fmt.Sprintf("headers %s %s for %s", req.Header.Get("X-Weft-Rule"), req.Header.Get("X-Weft-Delivery"), m.Delivery)
		}
		return ""
	}
	problem := check()
	r.mu.Lock()
	r.requests++
	if problem != "" {
		r.bad = append(r.bad, problem)
		r.mu.Unlock()
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	if r.rnd.Float64() < r.failRate {
		r.mu.Unlock()
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	r.accepted++
	if r.seen[m.Delivery] {
		r.dups++
	} else {
		r.seen[m.Delivery] = true
		r.first[m.Rule] = append(r.first[m.Rule], m.Message.Confirmation)
		if len(r.seen) == r.want {
			close(r.done)
		}
	}
	n, onAccept := r.accepted, r.onAccept
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	if onAccept != nil {
		onAccept(n)
	}
}

// wait waits until every delivery wanted is in.
func (r *receiver) wait(timeout time.Duration) {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(timeout):
		r.mu.Lock()
		defer r.mu.Unlock()
		r.t.Fatalf("receiver: %d of %d deliveries after %s (%d requests)", len(r.seen), r.want, timeout, r.requests)
	}
}

// check requires that each rule's matches came in, first received in
// confirmation order, and that every request passed the checks.
func (r *receiver) check(want map[string][]uint64) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Errorf("receiver refused %d requests, the first: %s", len(r.bad), r.bad[0])
	}
	for rule, w := range want {
		if got := r.first[rule]; !slices.Equal(got, w) {
			r.t.Errorf("rule %s: received %v, want %v", rule, got, w)
		}
	}
}

func webhookRule(name, cond, url string) Rule {
	return Rule{Name: name, Condition: cond, Action: Action{Kind: KindWebhook, URL: url, Secret: testSecret}}
}
