// Package api serves a node's HTTP API (docs/API.md): messages in and out,
// the node's state, an event stream, and Prometheus metrics.
package api

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"

	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

// Limits on request bodies.
const (
	MaxBatchMessages = 4096
	MaxBatchBytes    = 8 << 20
)

// Server is the HTTP API of one node. It is an http.Handler, safe for
// concurrent use.
type Server struct {
	node    *node.Node
	log     zerolog.Logger
	version string
	mux     *http.ServeMux
	ending  chan struct{} // closed by EndStreams
	endOnce sync.Once
}

// EndStreams ends the event streams, so that a graceful shutdown of the
// HTTP server does not wait on them. Safe to call more than once.
func (s *Server) EndStreams() { s.endOnce.Do(func() { close(s.ending) }) }

// New returns the API of n. version is reported by /api/v1/info.
func New(n *node.Node, version string, log zerolog.Logger) *Server {
	s := &Server{node: n, log: log, version: version, mux: http.NewServeMux(), ending: make(chan struct{})}
	s.mux.HandleFunc("GET /api/v1/info", s.info)
	s.mux.HandleFunc("GET /api/v1/tips", s.tips)
	s.mux.HandleFunc("POST /api/v1/messages", s.submit)
	s.mux.HandleFunc("POST /api/v1/messages/batch", s.submitBatch)
	s.mux.HandleFunc("GET /api/v1/messages/{id}", s.message)
	s.mux.HandleFunc("GET /api/v1/messages/{id}/raw", s.raw)
	s.mux.HandleFunc("GET /api/v1/issuers/{key}/messages", s.issuerMessages)
	s.mux.HandleFunc("GET /api/v1/events", s.events)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(n.Registry(), promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /{$}", s.dashboard)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// status maps a code of docs/API.md to its HTTP status.
func status(code string) int {
	switch code {
	case "pending":
		return http.StatusAccepted
	case "malformed", "bad_request":
		return http.StatusBadRequest
	case "forbidden":
		return http.StatusForbidden
	case "not_found":
		return http.StatusNotFound
	case "duplicate", "stale_sequence":
		return http.StatusConflict
	case "too_large":
		return http.StatusRequestEntityTooLarge
	case "wrong_network", "bad_signature", "insufficient_pow", "invalid_timestamp", "invalid_parent", "unknown_parents":
		return http.StatusUnprocessableEntity
	case "rate_limited":
		return http.StatusTooManyRequests
	case "overloaded", "shutting_down":
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, st int, code, msg string) {
	if st == http.StatusTooManyRequests || st == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, st, map[string]apiError{"error": {Code: code, Message: msg}})
}

// fail answers with err's code and status.
func fail(w http.ResponseWriter, err error) {
	code := node.Code(err)
	writeError(w, status(code), code, err.Error())
}

func writeJSON(w http.ResponseWriter, st int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(st)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// readBody reads at most limit bytes; more is ErrTooLarge.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the body: %v", dag.ErrMalformed, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: body over %d bytes", dag.ErrTooLarge, limit)
	}
	return b, nil
}

func (s *Server) maxMessage() int64 { return int64(dag.MinSize + s.node.Params().MaxPayload) }

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r, s.maxMessage())
	if err != nil {
		fail(w, err)
		return
	}
	m, err := s.node.Params().Decode(b)
	if err != nil {
		fail(w, err)
		return
	}
	if r.URL.Query().Get("remote_pow") == "1" {
		if err := s.node.SubmitRemotePoW(r.Context(), m); err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("Location", "/api/v1/messages/"+m.ID().String())
		writeJSON(w, http.StatusCreated, map[string]any{"id": m.ID().String(), "nonce": m.Nonce})
		return
	}
	err = s.node.Submit(r.Context(), []*dag.Message{m})[0]
	if errors.Is(err, node.ErrPending) {
		w.Header().Set("Location", "/api/v1/messages/"+m.ID().String())
		writeJSON(w, http.StatusAccepted, map[string]any{"id": m.ID().String(), "pending": true})
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Location", "/api/v1/messages/"+m.ID().String())
	writeJSON(w, http.StatusCreated, map[string]string{"id": m.ID().String()})
}

type batchResult struct {
	ID     string    `json:"id,omitempty"`
	Status int       `json:"status"`
	Error  *apiError `json:"error,omitempty"`
}

// SplitBatch splits a batch body (each message preceded by its length,
// 4 bytes big-endian) into the messages' encodings, which alias b.
func SplitBatch(b []byte, maxMessage int) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: batch: %d stray bytes", dag.ErrMalformed, len(b))
		}
		n := binary.BigEndian.Uint32(b)
		if int64(n) > int64(maxMessage) {
			return nil, fmt.Errorf("%w: batch: a message of %d bytes", dag.ErrTooLarge, n)
		}
		if uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%w: batch: a message runs past the end", dag.ErrMalformed)
		}
		out = append(out, b[4:4+n:4+n])
		b = b[4+n:]
		if len(out) > MaxBatchMessages {
			return nil, fmt.Errorf("%w: batch of more than %d messages", dag.ErrTooLarge, MaxBatchMessages)
		}
	}
	return out, nil
}

func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r, MaxBatchBytes)
	if err != nil {
		fail(w, err)
		return
	}
	raws, err := SplitBatch(b, int(s.maxMessage()))
	if err != nil {
		fail(w, err)
		return
	}
	results := make([]batchResult, len(raws))
	msgs := make([]*dag.Message, 0, len(raws))
	idx := make([]int, 0, len(raws))
	for i, raw := range raws {
		m, err := s.node.Params().Decode(raw)
		if err != nil {
			code := node.Code(err)
			results[i] = batchResult{Status: status(code), Error: &apiError{code, err.Error()}}
			continue
		}
		msgs = append(msgs, m)
		idx = append(idx, i)
	}
	errs := s.node.Submit(r.Context(), msgs)
	for k, err := range errs {
		i := idx[k]
		results[i].ID = msgs[k].ID().String()
		if errors.Is(err, node.ErrPending) {
			results[i].Status = http.StatusAccepted
		} else if err != nil {
			code := node.Code(err)
			results[i].Status, results[i].Error = status(code), &apiError{code, err.Error()}
		} else {
			results[i].Status = http.StatusCreated
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

func (s *Server) tips(w http.ResponseWriter, r *http.Request) {
	size := 0
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > dag.MaxPayload {
			writeError(w, http.StatusBadRequest, "bad_request", "size must be 0.."+strconv.Itoa(dag.MaxPayload))
			return
		}
		size = n
	}
	t := s.node.Tips(size)
	p := s.node.Params()
	writeJSON(w, http.StatusOK, map[string]any{
		"parents":       []string{t.Parents[0].String(), t.Parents[1].String()},
		"min_timestamp": t.MinTimestamp,
		"difficulty":    t.Difficulty,
		"network":       s.node.Info().Network,
		"network_id":    fmt.Sprintf("%016x", uint64(p.Network)),
		"max_payload":   p.MaxPayload,
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	in := s.node.Info()
	peers := []map[string]any{}
	for _, p := range s.node.Peers() {
		peers = append(peers, map[string]any{
			"key": p.Key.String(), "addr": p.Addr, "connected": p.Connected,
			"messages_in": p.MessagesIn, "messages_out": p.MessagesOut, "invalid": p.Invalid,
			"dropped": p.DroppedMessages, "requests_in": p.RequestsIn, "requests_out": p.RequestsOut,
			"rtt_ms": float64(p.RTT.Microseconds()) / 1000,
		})
	}
	vals := make([]map[string]any, len(in.Validators))
	for i, v := range in.Validators {
		vals[i] = map[string]any{"key": v.Key.String(), "weight": v.Weight}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"node_id": in.NodeID.String(), "network": in.Network, "network_id": fmt.Sprintf("%016x", uint64(in.NetworkID)),
		"version": s.version, "messages": in.Messages, "solid": in.Messages, "confirmed": in.Confirmed,
		"unconfirmed": in.Unconfirmed, "pending": in.Pending, "tips": in.Tips, "validators": vals,
		"threshold": "2/3", "peers": peers,
		"messages_per_second": in.MessagesRate, "confirmed_per_second": in.ConfirmedRate,
	})
}

// messageJSON is a message as the API shows it.
func messageJSON(mi *node.MessageInfo, children bool) map[string]any {
	m := mi.Msg
	out := map[string]any{
		"id": m.ID().String(), "version": m.Version, "network_id": fmt.Sprintf("%016x", uint64(m.Network)),
		"parents": []string{m.Parents[0].String(), m.Parents[1].String()}, "issuer": m.Issuer.String(),
		"seq": m.Seq, "timestamp": m.Timestamp, "payload": base64.StdEncoding.EncodeToString(m.Payload),
		"signature": hex.EncodeToString(m.Signature[:]), "nonce": m.Nonce, "position": mi.Pos,
		"solid": true, "confirmed": mi.Confirmed,
	}
	if mi.Confirmed {
		out["confirmed_at"] = mi.ConfirmedAt
	}
	if mi.Orphaned {
		out["orphaned"] = true
	}
	if mi.Pending { // held for its parents, not stored
		out["solid"], out["pending"] = false, true
		delete(out, "position")
	}
	if mi.HasWeight {
		out["approval_weight"] = mi.Weight
	}
	if children {
		cs := make([]string, len(mi.Children))
		for i, c := range mi.Children {
			cs[i] = c.String()
		}
		out["children"] = cs
	}
	return out
}

func parseID(w http.ResponseWriter, s string) (dag.ID, bool) {
	id, err := dag.ParseID(s)
	if err != nil {
		fail(w, err)
		return id, false
	}
	return id, true
}

func (s *Server) message(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(w, r.PathValue("id"))
	if !ok {
		return
	}
	mi, err := s.node.Message(r.Context(), id)
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, messageJSON(mi, true))
}

func (s *Server) raw(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(w, r.PathValue("id"))
	if !ok {
		return
	}
	b, err := s.node.Raw(id)
	if err != nil {
		fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(b)
}

func (s *Server) issuerMessages(w http.ResponseWriter, r *http.Request) {
	kid, ok := parseID(w, r.PathValue("key"))
	if !ok {
		return
	}
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "bad_request", "limit must be 1..1000")
			return
		}
		limit = n
	}
	var after uint64
	hasAfter := false
	if v := q.Get("after_seq"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "after_seq must be an unsigned integer")
			return
		}
		after, hasAfter = n, true
	}
	mis, err := s.node.IssuerMessages(dag.PublicKey(kid), after, hasAfter, limit+1)
	if err != nil {
		fail(w, err)
		return
	}
	out := map[string]any{}
	if len(mis) > limit {
		mis = mis[:limit]
		out["next_after_seq"] = mis[limit-1].Msg.Seq
	}
	list := make([]map[string]any, len(mis))
	for i, mi := range mis {
		list[i] = messageJSON(mi, false)
	}
	out["messages"] = list
	writeJSON(w, http.StatusOK, out)
}

// events streams server-sent events until the client leaves, the node
// stops, or the client falls behind (event: overflow).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "internal", "streaming unsupported")
		return
	}
	sub := s.node.Subscribe(1 << 16) // one busy step can publish thousands
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": weft events\n\n")
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	var buf []byte
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ending:
			return
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		case e, ok := <-sub.C:
			if !ok {
				if sub.Overflowed() {
					fmt.Fprint(w, "event: overflow\ndata: {}\n\n")
					fl.Flush()
				}
				return
			}
			buf = appendEvent(buf[:0], e)
			// Take what else is ready before flushing.
		more:
			for k := 0; k < 256; k++ {
				select {
				case e, ok := <-sub.C:
					if !ok {
						break more
					}
					buf = appendEvent(buf, e)
				default:
					break more
				}
			}
			w.Write(buf)
			fl.Flush()
		}
	}
}

// appendEvent appends e as a server-sent event. The data is the JSON object
// docs/API.md describes, keys in alphabetical order, written directly: a
// busy node writes two events per message to every subscriber, and
// encoding/json's reflection took 7% of a loaded node's CPU.
func appendEvent(b []byte, e node.Event) []byte {
	hexq := func(b []byte, v []byte) []byte {
		b = append(b, '"')
		b = hex.AppendEncode(b, v)
		return append(b, '"')
	}
	switch e.Kind {
	case node.EventMessage:
		b = append(b, "event: message\ndata: {\"id\":"...)
		b = hexq(b, e.ID[:])
		b = append(b, `,"issuer":`...)
		b = hexq(b, e.Issuer[:])
		b = append(b, `,"parents":[`...)
		b = hexq(b, e.Parents[0][:])
		b = append(b, ',')
		b = hexq(b, e.Parents[1][:])
		b = append(b, `],"position":`...)
		b = strconv.AppendUint(b, e.Pos, 10)
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, e.Seq, 10)
		b = append(b, `,"timestamp":`...)
		b = strconv.AppendInt(b, e.Timestamp, 10)
	case node.EventConfirmed:
		b = append(b, "event: confirmed\ndata: {\"confirmed_at\":"...)
		b = strconv.AppendInt(b, e.ConfirmedAt, 10)
		b = append(b, `,"id":`...)
		b = hexq(b, e.ID[:])
		b = append(b, `,"position":`...)
		b = strconv.AppendUint(b, e.Pos, 10)
	default:
		return b
	}
	return append(b, "}\n\n"...)
}
