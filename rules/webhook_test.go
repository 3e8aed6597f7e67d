package rules

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSignVector is the vector of docs: HMAC-SHA256 computed outside Go.
func TestSignVector(t *testing.T) {
	got := Sign([]byte("0123456789abcdef"), "1796212800", []byte(`{"rule":"cold"}`))
	if want := "sha256=149e20dd7506c33e74313c4f66090deaa9f329031f704c38bcb8c6017f0a037b"; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	secret, body := []byte("0123456789abcdef"), []byte(`{"rule":"cold"}`)
	now := time.Unix(1796212800, 0)
	sig := Sign(secret, "1796212800", body)
	for _, c := range []struct {
		name       string
		secret     []byte
		ts, sig    string
		body       string
		now        time.Time
		wantPasses bool
	}{
		{"good", secret, "1796212800", sig, string(body), now, true},
		{"within tolerance", secret, "1796212800", sig, string(body), now.Add(4 * time.Minute), true},
		{"replayed later", secret, "1796212800", sig, string(body), now.Add(6 * time.Minute), false},
		{"from the future", secret, "1796212800", sig, string(body), now.Add(-6 * time.Minute), false},
		{"other body", secret, "1796212800", sig, `{"rule":"hot"}`, now, false},
		{"other timestamp", secret, "1796212801", sig, string(body), now, false},
		{"other secret", []byte("fedcba9876543210"), "1796212800", sig, string(body), now, false},
		{"bad timestamp", secret, "soon", sig, string(body), now, false},
		{"no prefix", secret, "1796212800", sig[len("sha256="):], string(body), now, false},
	} {
		err := Verify(c.secret, c.ts, c.sig, []byte(c.body), c.now, 5*time.Minute)
		if (err == nil) != c.wantPasses || (err != nil && !errors.Is(err, ErrSignature)) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestWebhookFailures: a redirect is not followed, and an attempt that
// outlasts the request timeout fails.
func TestWebhookFailures(t *testing.T) {
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	redirect := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)

	for _, c := range []struct{ url, want string }{{redirect.URL, "307"}, {slow.URL, "deadline exceeded"}} {
		src := &memSource{}
		cfg := fastConfig(src, &MemStore{}, 1)
		cfg.MaxAttempts, cfg.RequestTimeout = 1, 100*time.Millisecond
		e, err := New(cfg, []Rule{webhookRule("w", "true", c.url)})
		if err != nil {
			t.Fatal(err)
		}
		settled := make(chan bool, 1)
		e.onSettle = func(_ string, dead bool) { settled <- dead }
		stop := running(t, e)
		src.add(1, "x")
		e.Notify()
		select {
		case dead := <-settled:
			if !dead {
				t.Errorf("%s: delivered", c.url)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: not settled", c.url)
		}
		stop()
		dls, err := e.DeadLetters("w")
		if err != nil || len(dls) != 1 || !strings.Contains(dls[0].LastError, c.want) {
			t.Errorf("%s: dead letters %+v, %v; want the error %q", c.url, dls, err, c.want)
		}
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}
