package api

import (
	_ "embed"
	"net/http"
)

//go:embed dashboard.html
var dashboardHTML []byte

// dashboard serves the node's dashboard (docs/DASHBOARD.md): one page,
// self-contained (no external resources, no build step), that draws its
// views from the API at /, /peers, /messages/{id} and /devices/{key}.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(dashboardHTML)
}
