package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkTips measures GET /api/v1/tips through the API's handler (no
// network): the request a device makes before each message it builds.
func BenchmarkTips(b *testing.B) {
	srv, _ := testServerWrapped(b, nil, Options{}, nil)
	h := srv.Config.Handler
	req := httptest.NewRequest(http.MethodGet, "/api/v1/tips?size=100", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("tips: %d %s", rec.Code, rec.Body)
		}
	}
}
