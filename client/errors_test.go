package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// allCodes is every error code of the API's table (wire.Codes) with its
// status: every outcome but pending, which is no error.
var allCodes = func() (out []struct {
	status int
	code   string
}) {
	for _, c := range wire.Codes() {
		if c.Code != wire.CodePending {
			out = append(out, struct {
				status int
				code   string
			}{c.Status, c.Code})
		}
	}
	return out
}()

// serve starts an httptest server with h and returns a Client for it that
// does not retry.
func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return New(srv.URL+"/", noRetry) // a trailing slash must not matter
}

// noRetry makes a Client answer every error at once.
var noRetry = WithRetry(Retry{Attempts: 1})

func TestEveryCodeIsAnAPIError(t *testing.T) {
	for _, tc := range allCodes {
		t.Run(tc.code, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if tc.code == CodeRateLimited {
					w.Header().Set("Retry-After", "3")
				}
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `{"error": {"code": %q, "message": "because %s"}}`, tc.code, tc.code)
			})
			ctx := context.Background()
			calls := map[string]func() error{
				"Info":   func() error { _, err := c.Info(ctx); return err },
				"Tips":   func() error { _, err := c.Tips(ctx, 10); return err },
				"Submit": func() error { _, err := c.Submit(ctx, []byte("x")); return err },
				"Remote": func() error { _, _, err := c.SubmitRemotePoW(ctx, []byte("x")); return err },
				"Batch":  func() error { _, err := c.SubmitBatch(ctx, [][]byte{[]byte("x")}); return err },
				"Get":    func() error { _, err := c.Get(ctx, dag.ID{1}); return err },
				"Raw":    func() error { _, err := c.Raw(ctx, dag.ID{1}); return err },
				"Issuer": func() error { _, err := c.IssuerMessages(ctx, dag.PublicKey{1}, nil, 0); return err },
				"Events": func() error { return c.Events(ctx, func(Event) error { return nil }) },
			}
			for name, call := range calls {
				err := call()
				var ae *APIError
				if !errors.As(err, &ae) {
					t.Fatalf("%s: error %v is not an *APIError", name, err)
				}
				if ae.Status != tc.status || ae.Code != tc.code || ae.Message != "because "+tc.code {
					t.Errorf("%s: got %+v", name, ae)
				}
				if !IsCode(err, tc.code) || IsCode(err, "other") {
					t.Errorf("%s: IsCode wrong", name)
				}
				if !IsCode(fmt.Errorf("wrapped: %w", err), tc.code) {
					t.Errorf("%s: IsCode does not see through wrapping", name)
				}
				if tc.code == CodeRateLimited && ae.RetryAfter != 3*time.Second {
					t.Errorf("%s: RetryAfter %v", name, ae.RetryAfter)
				}
			}
		})
	}
}

func TestAPIErrorFallback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   APIError
	}{
		{"text", 502, "upstream gone\n", APIError{Status: 502, Message: "upstream gone"}},
		{"html", 404, "<html><body>Not here</body></html>", APIError{Status: 404, Message: "Not Found"}},
		{"empty", 503, "", APIError{Status: 503, Message: "Service Unavailable"}},
		{"json without code", 400, `{"error": {"message": "x"}}`, APIError{Status: 400, Message: `{"error": {"message": "x"}}`}},
		{"other json", 400, `[1,2]`, APIError{Status: 400, Message: "[1,2]"}},
		{"control characters", 400, `{"error": {"code": "bad\u001b[31m", "message": "a\u0007b\nc"}}`, APIError{Status: 400, Code: "bad[31m", Message: "ab c"}},
		{"long", 500, strings.Repeat("é", 1000), APIError{Status: 500, Message: strings.Repeat("é", maxErrorMessage/2)}},
		{"newer code", 418, `{"error": {"code": "teapot", "message": "short and stout"}}`, APIError{Status: 418, Code: "teapot", Message: "short and stout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			})
			_, err := c.Info(context.Background())
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if *ae != tc.want {
				t.Errorf("got %+v, want %+v", *ae, tc.want)
			}
			if ae.Error() == "" {
				t.Error("empty Error()")
			}
		})
	}
}

func TestAPIErrorHugeBodyIsBounded(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		chunk := strings.Repeat("x", 64<<10)
		for range 64 { // 4 MiB
			if _, err := fmt.Fprint(w, chunk); err != nil {
				return
			}
		}
	})
	_, err := c.Info(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 500 || len(ae.Message) != maxErrorMessage {
		t.Fatalf("got %v", err)
	}
}

func TestRetryAfterDate(t *testing.T) {
	h := http.Header{}
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	h.Set("Retry-After", now.Add(10*time.Second).Format(http.TimeFormat))
	e := newAPIError(503, h, nil, now)
	if e.RetryAfter != 10*time.Second {
		t.Fatalf("RetryAfter %v", e.RetryAfter)
	}
	if e := newAPIError(503, h, nil, now.Add(time.Minute)); e.RetryAfter != 0 {
		t.Fatalf("RetryAfter %v for a date past", e.RetryAfter)
	}
	h.Set("Retry-After", "soon")
	if e := newAPIError(503, h, nil, now); e.RetryAfter != 0 {
		t.Fatalf("RetryAfter %v for garbage", e.RetryAfter)
	}
}
