package api

import (
	"maps"
	"net/http"
	"net/url"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

// rangeMessages answers GET /api/v1/messages: every device's messages in a
// time range, a page at a time (docs/API.md).
func (s *Server) rangeMessages(w http.ResponseWriter, r *http.Request) {
	s.timePage(w, r, nil)
}

// issuerRange answers GET /api/v1/issuers/{key}/messages with a time range:
// one device's messages in it, a page at a time.
func (s *Server) issuerRange(w http.ResponseWriter, r *http.Request, key dag.PublicKey) {
	s.timePage(w, r, &key)
}

// timePage answers a page of a time-range query, of issuer's messages or
// (nil) of every issuer's. The body carries the next page's cursor, and so
// does a Link header (rel="next").
func (s *Server) timePage(w http.ResponseWriter, r *http.Request, issuer *dag.PublicKey) {
	scope := ""
	if issuer != nil {
		scope = issuer.String()
	}
	q := r.URL.Query()
	tq, err := wire.ParseTimeQuery(q, scope)
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	mis, next, err := s.node.TimeMessages(nodeRange(tq.TimeRange, issuer), node.Place(tq.Start), tq.Limit)
	if err != nil {
		fail(w, err)
		return
	}
	out := wire.TimePage{Messages: make([]wire.Message, len(mis)), History: s.history()}
	for i, mi := range mis {
		out.Messages[i] = messageJSON(mi, false)
	}
	if next != nil {
		out.NextCursor = wire.EncodeCursor(tq.TimeRange, wire.Place(*next))
		w.Header().Set("Link", nextLink(r.URL, q, out.NextCursor))
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

// nodeRange is the node's form of r, a range of issuer's messages (every
// issuer's if nil).
func nodeRange(r wire.TimeRange, issuer *dag.PublicKey) node.TimeRange {
	return node.TimeRange{Issuer: issuer, From: r.From, To: r.To, Confirmed: r.Confirmed}
}

// nextLink is the Link header of the page after u's: u's query q with
// cursor in place of its own.
func nextLink(u *url.URL, q url.Values, cursor string) string {
	nq := maps.Clone(q)
	nq.Set("cursor", cursor)
	return "<" + u.Path + "?" + nq.Encode() + `>; rel="next"`
}
