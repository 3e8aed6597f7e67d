package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/storage"
)

// do sends a request and returns the answer with its body read.
func do(t *testing.T, method, url string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	return doBody(t, method, url, header, nil)
}

// doBody is do with a request body (nil: none).
func doBody(t *testing.T, method, url string, header map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// errorBody decodes the API's error body, failing the test if b is not one.
func errorBody(t *testing.T, b []byte) wire.Error {
	t.Helper()
	var e wire.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("not the API's error body: %q (%v)", b, err)
	}
	return e.Error
}

func TestMethodNotAllowed(t *testing.T) {
	srv, _ := testServer(t, nil)
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/api/v1/info", "GET, HEAD"},
		{"DELETE", "/api/v1/messages", "GET, HEAD, POST"},
		{"PUT", "/api/v1/messages/00", "GET, HEAD"},
		{"POST", "/", "GET, HEAD"},
		{"OPTIONS", "/api/v1/tips", "GET, HEAD"},
		{"POST", "/healthz", "GET, HEAD"},
	} {
		resp, b := do(t, tc.method, srv.URL+tc.path, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow ||
			errorBody(t, b).Code != wire.CodeMethodNotAllowed || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d Allow %q %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), b)
		}
	}
	for _, path := range []string{"/nope", "/api/v1/nope", "/api/v1/messages/a/b/c"} {
		resp, b := do(t, "GET", srv.URL+path, nil)
		if resp.StatusCode != http.StatusNotFound || errorBody(t, b).Code != wire.CodeNotFound || resp.Header.Get("Allow") != "" {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
	// A known path with its own method is served as before.
	if resp, _ := do(t, "GET", srv.URL+"/api/v1/info", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /api/v1/info: %d", resp.StatusCode)
	}
}

func TestHealthz(t *testing.T) {
	srv, _ := testServer(t, nil)
	resp, b := do(t, "GET", srv.URL+"/healthz", nil)
	var h wire.Health
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &h) != nil || h.Status != "ok" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

// corsServer runs a node behind an API with CORS for origins.
func corsServer(t *testing.T, origins ...string) *httptest.Server {
	t.Helper()
	srv, _ := testServerWith(t, nil, Options{CORSOrigins: origins})
	return srv
}

func TestCORS(t *testing.T) {
	const good, bad = "https://dash.example", "https://evil.example"
	srv := corsServer(t, good)
	preflight := func(origin, path string) *http.Response {
		resp, _ := do(t, "OPTIONS", srv.URL+path, map[string]string{"Origin": origin,
			"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
		return resp
	}
	resp := preflight(good, "/api/v1/messages")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != good ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET, HEAD, POST, OPTIONS" ||
		resp.Header.Get("Access-Control-Allow-Headers") != corsAllowHeaders ||
		resp.Header.Get("Access-Control-Max-Age") != "600" || resp.Header.Get("Vary") != "Origin" {
		t.Errorf("preflight from %s: %d %v", good, resp.StatusCode, resp.Header)
	}
	if resp := preflight(good, "/api/v1/tips"); resp.Header.Get("Access-Control-Allow-Methods") != "GET, HEAD, OPTIONS" {
		t.Errorf("preflight of a GET path: %v", resp.Header)
	}
	if resp := preflight(bad, "/api/v1/messages"); resp.StatusCode != http.StatusMethodNotAllowed ||
		resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from %s: %d %v", bad, resp.StatusCode, resp.Header)
	}
	if resp := preflight(good, "/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("preflight of no endpoint: %d", resp.StatusCode)
	}
	resp, _ = do(t, "GET", srv.URL+"/api/v1/info", map[string]string{"Origin": good})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != good ||
		resp.Header.Get("Access-Control-Expose-Headers") != corsExposeHeaders {
		t.Errorf("GET from %s: %d %v", good, resp.StatusCode, resp.Header)
	}
	resp, _ = do(t, "GET", srv.URL+"/api/v1/info", map[string]string{"Origin": bad})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from %s: %d %v", bad, resp.StatusCode, resp.Header)
	}

	// Without origins, no CORS header at all, and OPTIONS is a method like another.
	plain, _ := testServer(t, nil)
	resp, _ = do(t, "OPTIONS", plain.URL+"/api/v1/messages", map[string]string{"Origin": good, "Access-Control-Request-Method": "POST"})
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Vary") != "" {
		t.Errorf("no CORS configured: %d %v", resp.StatusCode, resp.Header)
	}

	any := corsServer(t, "*")
	resp, _ = do(t, "GET", any.URL+"/api/v1/info", map[string]string{"Origin": bad})
	if resp.Header.Get("Access-Control-Allow-Origin") != bad {
		t.Errorf("with *: %v", resp.Header)
	}
}

// TestInfoTipsAgreeWithTips: a validator alone on its network has an empty
// tip pool (its own messages never join it), yet /tips hands out its newest
// message; info's tips counts what /tips draws from, so it is never 0, and
// when it is 1 the two parents are that one tip.
func TestInfoTipsAgreeWithTips(t *testing.T) {
	srv, _ := testServer(t, nil)
	for range 20 {
		var in wire.Info
		_, b := do(t, "GET", srv.URL+"/api/v1/info", nil)
		if err := json.Unmarshal(b, &in); err != nil {
			t.Fatal(err)
		}
		var tips wire.Tips
		_, b = do(t, "GET", srv.URL+"/api/v1/tips", nil)
		if err := json.Unmarshal(b, &tips); err != nil {
			t.Fatal(err)
		}
		if in.Tips == 0 || (in.Tips == 1 && tips.Parents[0] != tips.Parents[1]) {
			t.Fatalf("info says %d tips; /tips gives %v", in.Tips, tips.Parents)
		}
	}
}

// TestReadyz: 200 while the node runs, 503 not_ready with the reason once
// its pipeline stopped, while the process still serves (/healthz).
func TestReadyz(t *testing.T) {
	cfg := node.Config{DataDir: t.TempDir(), Identity: key(1), Network: "api-test", PoWBase: testPoWBase,
		Store: storage.Config{NoSync: true}}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(n, "test", zerolog.Nop()))
	defer srv.Close()
	resp, b := do(t, "GET", srv.URL+"/readyz", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || errorBody(t, b).Code != wire.CodeNotReady {
		t.Fatalf("before Run: %d %s", resp.StatusCode, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	for n.Ready() != nil { // no event says the pipeline started: ask until it has
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	resp, b = do(t, "GET", srv.URL+"/readyz", nil)
	var h wire.Health
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &h) != nil || h.Status != "ok" {
		t.Fatalf("running: %d %s", resp.StatusCode, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	resp, b = do(t, "GET", srv.URL+"/readyz", nil)
	if e := errorBody(t, b); resp.StatusCode != http.StatusServiceUnavailable || e.Code != wire.CodeNotReady ||
		e.Message != n.Ready().Error() || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("stopped: %d %s", resp.StatusCode, b)
	}
	if resp, _ := do(t, "GET", srv.URL+"/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz of a stopped node: %d", resp.StatusCode)
	}
}
