package wire

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRoute(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /a/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.PathValue("id"))) })
	mux.HandleFunc("POST /b", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("PUT /b", func(w http.ResponseWriter, r *http.Request) {})
	h := Route(mux)
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/a/x", 200, "", ""},
		{"POST", "/a/x", 405, CodeMethodNotAllowed, "GET, HEAD"},
		{"GET", "/b", 405, CodeMethodNotAllowed, "POST, PUT"},
		{"GET", "/c", 404, CodeNotFound, ""},
		{"GET", "/a/x/y", 404, CodeNotFound, ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		var e ErrorBody
		if tc.code != "" && (json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Error.Code != tc.code) {
			t.Errorf("%s %s: body %q", tc.method, tc.path, w.Body)
		}
		if w.Code != tc.status || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q", tc.method, tc.path, w.Code, w.Header().Get("Allow"))
		}
		if tc.status == 200 && w.Body.String() != "x" {
			t.Errorf("%s %s: the path value did not reach the handler: %q", tc.method, tc.path, w.Body)
		}
	}
}
