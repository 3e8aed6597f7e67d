package main

import (
	"net/http"
	"testing"
)

// TestCORSOrigin: --cors-origin reaches the API: an allowed origin's
// preflight and requests get CORS headers, another origin none.
func TestCORSOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	p := startNode(t, t.TempDir(), "--pow-base", "0", "--cors-origin", "https://dash.example")
	for _, tc := range []struct {
		method, origin, want string
	}{
		{"OPTIONS", "https://dash.example", "https://dash.example"},
		{"GET", "https://dash.example", "https://dash.example"},
		{"GET", "https://other.example", ""},
	} {
		req, _ := http.NewRequest(tc.method, p.url+"/api/v1/info", nil)
		req.Header.Set("Origin", tc.origin)
		if tc.method == "OPTIONS" {
			req.Header.Set("Access-Control-Request-Method", "GET")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.want {
			t.Errorf("%s from %s: Access-Control-Allow-Origin %q, want %q (status %d)", tc.method, tc.origin, got, tc.want, resp.StatusCode)
		}
	}
}
