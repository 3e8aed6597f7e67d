package wire

import "net/http"

// Route serves mux's endpoints and answers what none of them takes as the
// API does: 405 method_not_allowed with Allow when the path takes other
// methods, 404 not_found otherwise, both with the error body. (A ServeMux
// answers these itself in plain text; a catch-all "/" pattern would turn
// every 405 into a 404.) mux must not be changed once served.
func Route(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		if allow := Allowed(mux, r); allow != "" {
			w.Header().Set("Allow", allow)
			WriteError(w, http.StatusMethodNotAllowed, CodeMethodNotAllowed,
				r.Method+" is not a method of "+r.URL.Path+"; it takes "+allow)
			return
		}
		WriteError(w, http.StatusNotFound, CodeNotFound, "no such endpoint")
	})
}

// Allowed returns the methods mux takes for r's path, as the ServeMux
// lists them in Allow ("GET, HEAD"), or "" when no pattern has the path.
func Allowed(mux *http.ServeMux, r *http.Request) string {
	probe := r.Clone(r.Context())
	probe.Method = "-" // no pattern takes it: the mux answers 405 for a known path
	h, pattern := mux.Handler(probe)
	if pattern != "" {
		return ""
	}
	rec := &headerRecorder{h: http.Header{}}
	h.ServeHTTP(rec, probe)
	if rec.status != http.StatusMethodNotAllowed {
		return ""
	}
	return rec.h.Get("Allow")
}

// headerRecorder keeps the header and status the mux's own 404 and 405
// handlers write, and discards their plain-text body.
type headerRecorder struct {
	h      http.Header
	status int
}

func (r *headerRecorder) Header() http.Header         { return r.h }
func (r *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *headerRecorder) WriteHeader(st int)          { r.status = st }
