package api

import (
	"net/http"
	"slices"
	"strings"
)

// Headers of the CORS answers.
const (
	corsAllowHeaders  = "Content-Type, Accept, Cache-Control, Authorization"
	corsExposeHeaders = "Location, Retry-After, WWW-Authenticate"
	corsMaxAge        = "600"
)

// cors answers cross-origin requests for the origins of Options.CORSOrigins.
type cors struct {
	any     bool            // "*" is listed
	origins map[string]bool // exact origins
}

func newCORS(origins []string) cors {
	c := cors{origins: map[string]bool{}}
	for _, o := range origins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		if o == "*" {
			c.any = true
		} else if o != "" {
			c.origins[o] = true
		}
	}
	return c
}

func (c cors) on() bool { return c.any || len(c.origins) > 0 }

func (c cors) allows(origin string) bool { return origin != "" && (c.any || c.origins[origin]) }

// handle sets the CORS headers of r's answer and answers a preflight
// request itself, reporting whether it did. allowed returns the methods r's
// path takes ("" for no endpoint). Requests from origins not listed get no
// CORS headers, and their preflight is answered as any OPTIONS request is.
func (c cors) handle(w http.ResponseWriter, r *http.Request, allowed func(*http.Request) string) bool {
	if !c.on() {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if !c.allows(origin) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		return false
	}
	methods := allowed(r)
	if methods == "" {
		return false // no such endpoint: 404
	}
	if !slices.Contains(strings.Split(strings.ReplaceAll(methods, " ", ""), ","), http.MethodOptions) {
		methods += ", " + http.MethodOptions
	}
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
