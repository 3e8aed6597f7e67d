// Package clienttest is a fake Weft node for tests of code that speaks to a
// node through package client: an in-memory implementation of the HTTP API
// of docs/API.md on an httptest.Server.
//
// It checks submitted messages as a node's API does (encoding, network,
// proof of work, signature, known parents, timestamps, sequence numbers)
// and answers with the API's codes, but it has no gossip, no validators and
// no durability: a message is confirmed when the test says so (Confirm), or
// at once with Config.AutoConfirm. Its tips are the two newest messages.
// It does not serve the issuer listing or /metrics.
package clienttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// Config configures a Server. Zero fields mean the defaults documented on
// each.
type Config struct {
	// Network is the network's name. Default "weft-testnet".
	Network string
	// PoWBase is the base difficulty; 0 turns proof of work off.
	PoWBase int
	// MaxPayload is the payload limit. Default dag.DefaultMaxPayload.
	MaxPayload int
	// AutoConfirm confirms every message as soon as it is accepted.
	AutoConfirm bool
	// RemotePoW lists the issuers the server does proof of work for.
	RemotePoW []dag.PublicKey
}

// Server is a fake node. Its methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the API, for client.New.
	URL string

	cfg    Config
	params dag.Params
	srv    *httptest.Server
	done   chan struct{}

	mu      sync.Mutex
	msgs    map[dag.ID]*entry
	order   []dag.ID // by position
	lastSeq map[dag.PublicKey]uint64
	subs    map[*subscriber]struct{}
	fail    []failure
}

type entry struct {
	m           *dag.Message
	pos         uint64
	confirmedAt int64 // 0: unconfirmed
	children    []dag.ID
}

type failure struct {
	path          string
	status        int
	code, message string
}

type subscriber struct {
	ch       chan [2]string // event name, data
	overflow chan struct{}  // closed when ch was full
}

// subBuffer is how many events a slow subscriber may lag behind.
const subBuffer = 256

// NewServer starts a fake node. Close it when done.
func NewServer(cfg Config) *Server {
	if cfg.Network == "" {
		cfg.Network = "weft-testnet"
	}
	if cfg.MaxPayload == 0 {
		cfg.MaxPayload = dag.DefaultMaxPayload
	}
	p := dag.Params{Network: dag.NetworkIDFromName(cfg.Network), MaxPayload: cfg.MaxPayload, PoWBase: cfg.PoWBase}
	s := &Server{
		cfg:     cfg,
		params:  p,
		done:    make(chan struct{}),
		msgs:    make(map[dag.ID]*entry),
		lastSeq: make(map[dag.PublicKey]uint64),
		subs:    make(map[*subscriber]struct{}),
	}
	g := dag.Genesis(p.Network)
	s.msgs[g.ID()] = &entry{m: g, confirmedAt: 1}
	s.order = append(s.order, g.ID())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/info", s.info)
	mux.HandleFunc("GET /api/v1/tips", s.tips)
	mux.HandleFunc("POST /api/v1/messages", s.submit)
	mux.HandleFunc("POST /api/v1/messages/batch", s.batch)
	mux.HandleFunc("GET /api/v1/messages/{id}", s.get)
	mux.HandleFunc("GET /api/v1/messages/{id}/raw", s.raw)
	mux.HandleFunc("GET /api/v1/events", s.events)
	s.srv = httptest.NewServer(s.failing(mux))
	s.URL = s.srv.URL
	return s
}

// Close stops the server, ending the event streams.
func (s *Server) Close() {
	close(s.done)
	s.srv.Close()
}

// Genesis returns the ID of the network's genesis message.
func (s *Server) Genesis() dag.ID { return dag.Genesis(s.params.Network).ID() }

// Params returns the network's parameters.
func (s *Server) Params() dag.Params { return s.params }

// Message returns the accepted message id.
func (s *Server) Message(id dag.ID) (*dag.Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.msgs[id]
	if !ok {
		return nil, false
	}
	return e.m, true
}

// Len returns the number of messages held, the genesis included.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}

// Confirm confirms message id and sends its "confirmed" event. It reports
// false if the server does not have the message; confirming twice is a
// no-op.
func (s *Server) Confirm(id dag.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.msgs[id]
	if !ok {
		return false
	}
	s.confirmLocked(id, e)
	return true
}

// Subscribers returns the number of open event streams.
func (s *Server) Subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// FailNext makes the next request for path (such as "/api/v1/messages"; ""
// for any path) fail with status and the API's error body with code and
// message, before the server looks at it. Calls queue up: each failure
// is used once.
func (s *Server) FailNext(path string, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = append(s.fail, failure{path, status, code, message})
}

func (s *Server) confirmLocked(id dag.ID, e *entry) {
	if e.confirmedAt != 0 {
		return
	}
	e.confirmedAt = max(time.Now().UnixNano(), e.m.Timestamp)
	s.publishLocked("confirmed", map[string]any{"id": id.String(), "position": e.pos, "confirmed_at": e.confirmedAt})
}

func (s *Server) publishLocked(name string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	for sub := range s.subs {
		select {
		case sub.ch <- [2]string{name, string(b)}:
		default:
			select {
			case <-sub.overflow:
			default:
				close(sub.overflow)
			}
		}
	}
}

func (s *Server) failing(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		var f *failure
		for i := range s.fail {
			if s.fail[i].path == "" || s.fail[i].path == r.URL.Path {
				c := s.fail[i]
				f = &c
				s.fail = slices.Delete(s.fail, i, i+1)
				break
			}
		}
		s.mu.Unlock()
		if f != nil {
			writeError(w, f.status, f.code, f.message)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type apiError struct {
	status        int
	code, message string
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.order)
	conf := 0
	for _, e := range s.msgs {
		if e.confirmedAt != 0 {
			conf++
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"node_id": hex.EncodeToString(make([]byte, 32)), "network": s.cfg.Network,
		"network_id": fmt.Sprintf("%016x", uint64(s.params.Network)), "version": "clienttest",
		"messages": n, "solid": n, "confirmed": conf, "unconfirmed": n - conf, "pending": 0, "tips": 2,
		"validators": []any{}, "threshold": "2/3", "peers": []any{},
		"messages_per_second": 0.0, "confirmed_per_second": 0.0,
	})
}

func (s *Server) tips(w http.ResponseWriter, r *http.Request) {
	size := 0
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "malformed", "size: not a non-negative integer")
			return
		}
		size = n
	}
	s.mu.Lock()
	p0 := s.order[max(len(s.order)-1, 0)]
	p1 := s.order[max(len(s.order)-2, 0)]
	minTS := max(s.msgs[p0].m.Timestamp, s.msgs[p1].m.Timestamp)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"parents": []string{p0.String(), p1.String()}, "min_timestamp": minTS,
		"difficulty": s.params.Difficulty(dag.MinSize + size), "network": s.cfg.Network,
		"network_id": fmt.Sprintf("%016x", uint64(s.params.Network)), "max_payload": s.params.MaxPayload,
	})
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(dag.MinSize+s.params.MaxPayload)))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	}
	remote := r.URL.Query().Get("remote_pow") == "1"
	m, e := s.accept(r.Context(), raw, remote)
	if e != nil {
		writeError(w, e.status, e.code, e.message)
		return
	}
	w.Header().Set("Location", "/api/v1/messages/"+m.ID().String())
	ans := map[string]any{"id": m.ID().String()}
	if remote {
		ans["nonce"] = m.Nonce
	}
	writeJSON(w, http.StatusCreated, ans)
}

func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
		return
	}
	var raws [][]byte
	for len(body) > 0 {
		if len(body) < 4 {
			writeError(w, http.StatusBadRequest, "malformed", "truncated length prefix")
			return
		}
		n := binary.BigEndian.Uint32(body)
		if uint64(len(body)-4) < uint64(n) {
			writeError(w, http.StatusBadRequest, "malformed", "truncated message")
			return
		}
		raws = append(raws, body[4:4+n])
		body = body[4+n:]
	}
	if len(raws) > 4096 {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "more than 4096 messages")
		return
	}
	results := make([]any, len(raws))
	for i, raw := range raws {
		m, e := s.accept(r.Context(), raw, false)
		if e != nil {
			results[i] = map[string]any{"status": e.status, "error": map[string]string{"code": e.code, "message": e.message}}
			continue
		}
		results[i] = map[string]any{"id": m.ID().String(), "status": http.StatusCreated}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}

// accept checks raw as a node's API does and stores it.
func (s *Server) accept(ctx context.Context, raw []byte, remote bool) (*dag.Message, *apiError) {
	raw = bytes.Clone(raw)
	m, err := s.params.Decode(raw)
	if errors.Is(err, dag.ErrTooLarge) {
		return nil, &apiError{http.StatusRequestEntityTooLarge, "too_large", err.Error()}
	} else if err != nil {
		return nil, &apiError{http.StatusBadRequest, "malformed", err.Error()}
	}
	if remote {
		if !slices.Contains(s.cfg.RemotePoW, m.Issuer) {
			return nil, &apiError{http.StatusForbidden, "forbidden", "remote proof of work is not offered to this key"}
		}
		if _, err := pow.Solve(ctx, raw, s.params.Difficulty(len(raw)), 1); err != nil {
			return nil, &apiError{http.StatusServiceUnavailable, "overloaded", err.Error()}
		}
		if m, err = s.params.Decode(raw); err != nil {
			panic(err)
		}
	}
	if err := s.params.Check(m); err != nil {
		code := "bad_signature"
		switch {
		case errors.Is(err, dag.ErrNetwork):
			code = "wrong_network"
		case errors.Is(err, dag.ErrPoW):
			code = "insufficient_pow"
		}
		return nil, &apiError{http.StatusUnprocessableEntity, code, err.Error()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := m.ID()
	if _, ok := s.msgs[id]; ok {
		return nil, &apiError{http.StatusConflict, "duplicate", "the message is already in the ledger"}
	}
	for _, p := range m.Parents {
		pe, ok := s.msgs[p]
		if !ok {
			return nil, &apiError{http.StatusUnprocessableEntity, "unknown_parents", "parent " + p.String() + " is unknown"}
		}
		if m.Timestamp < pe.m.Timestamp {
			return nil, &apiError{http.StatusUnprocessableEntity, "invalid_timestamp", "older than parent " + p.String()}
		}
	}
	if last, ok := s.lastSeq[m.Issuer]; ok && m.Seq <= last {
		return nil, &apiError{http.StatusConflict, "stale_sequence", fmt.Sprintf("seq %d, the issuer is at %d", m.Seq, last)}
	}
	s.lastSeq[m.Issuer] = m.Seq
	e := &entry{m: m, pos: uint64(len(s.order))}
	s.msgs[id] = e
	s.order = append(s.order, id)
	for i, p := range m.Parents {
		if i == 1 && p == m.Parents[0] {
			break
		}
		s.msgs[p].children = append(s.msgs[p].children, id)
	}
	s.publishLocked("message", map[string]any{
		"id": id.String(), "issuer": m.Issuer.String(), "seq": m.Seq, "position": e.pos,
		"parents": []string{m.Parents[0].String(), m.Parents[1].String()}, "timestamp": m.Timestamp,
	})
	if s.cfg.AutoConfirm {
		s.confirmLocked(id, e)
	}
	return m, nil
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*entry, bool) {
	id, err := dag.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "malformed", err.Error())
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.msgs[id]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no message "+id.String())
		return nil, false
	}
	c := *e
	c.children = slices.Clone(e.children)
	return &c, true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	m := e.m
	children := make([]string, len(e.children))
	for i, c := range e.children {
		children[i] = c.String()
	}
	v := map[string]any{
		"id": m.ID().String(), "version": m.Version, "network_id": fmt.Sprintf("%016x", uint64(m.Network)),
		"parents": []string{m.Parents[0].String(), m.Parents[1].String()}, "issuer": m.Issuer.String(),
		"seq": m.Seq, "timestamp": m.Timestamp, "payload": m.Payload, "signature": hex.EncodeToString(m.Signature[:]),
		"nonce": m.Nonce, "position": e.pos, "solid": true, "confirmed": e.confirmedAt != 0,
		"approval_weight": 0, "children": children,
	}
	if e.confirmedAt != 0 {
		v["confirmed_at"] = e.confirmedAt
		v["approval_weight"] = 1
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) raw(w http.ResponseWriter, r *http.Request) {
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(e.m.Bytes())
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "bad_request", "no streaming")
		return
	}
	sub := &subscriber{ch: make(chan [2]string, subBuffer), overflow: make(chan struct{})}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, ": weft clienttest\n\n")
	fl.Flush()
	for {
		select {
		case ev := <-sub.ch:
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev[0], ev[1])
			fl.Flush()
		case <-sub.overflow:
			io.WriteString(w, "event: overflow\ndata: {}\n\n")
			fl.Flush()
			return
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}
