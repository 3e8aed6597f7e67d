// Package clienttest is a fake Weft node for tests of code that speaks to a
// node through package client: an in-memory implementation of the HTTP API
// of docs/API.md on an httptest.Server.
//
// It speaks the contract of package api/wire, as the node's API does: the
// same JSON forms, codes and statuses, the same 404 and 405 answers. It
// checks submitted messages as a node's API does (encoding, network, proof
// of work, signature, known parents, timestamps, the clock skew, sequence
// numbers), but it has no gossip, no validators and no durability: a
// message is confirmed when the test says so (Confirm), or at once with
// Config.AutoConfirm. Its tips are the two newest messages. A message whose
// parents it does not have is held pending (202) at once, where a node
// first waits its submit timeout, and stored when they arrive. It does not
// serve /metrics, and it is always ready.
package clienttest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/weftnet/weft/api/wire"
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

	mu           sync.Mutex
	msgs         map[dag.ID]*entry
	order        []dag.ID // by position
	lastSeq      map[dag.PublicKey]uint64
	pending      map[dag.ID]*dag.Message // held for their parents
	invalid      map[dag.ID]bool         // failed Params.Check: their children are invalid_parent
	invalidOrder []dag.ID                // of invalid, oldest first, at most maxInvalid
	subs         map[*subscriber]struct{}
	fail         []failure
	confirmed    uint64 // confirmations so far: the next one's place, as the node's confirmation order
}

type entry struct {
	m           *dag.Message
	pos         uint64
	confirmedAt int64 // 0: unconfirmed
	children    []dag.ID
}

// maxClockSkew is how far ahead of the server's clock a message may be:
// the node's default (node.Config.MaxClockSkew).
const maxClockSkew = time.Minute

type failure struct {
	path          string
	status        int
	code, message string
}

type subscriber struct {
	ch       chan []byte   // encoded events
	overflow chan struct{} // closed when ch was full
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
		pending: make(map[dag.ID]*dag.Message),
		invalid: make(map[dag.ID]bool),
		subs:    make(map[*subscriber]struct{}),
	}
	g := dag.Genesis(p.Network)
	s.msgs[g.ID()] = &entry{m: g, confirmedAt: 1}
	s.order = append(s.order, g.ID())

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathInfo, s.info)
	mux.HandleFunc("GET "+wire.PathTips, s.tips)
	mux.HandleFunc("POST "+wire.PathMessages, s.submit)
	mux.HandleFunc("POST "+wire.PathBatch, s.batch)
	mux.HandleFunc("GET "+wire.PathMessages+"/{id}", s.get)
	mux.HandleFunc("GET "+wire.PathMessages+"/{id}/raw", s.raw)
	mux.HandleFunc("GET "+wire.PathIssuers+"/{key}/messages", s.issuerMessages)
	mux.HandleFunc("GET "+wire.PathIssuers+"/{key}/equivocations", s.equivocations)
	mux.HandleFunc("GET "+wire.PathEquivocations, s.equivocations)
	mux.HandleFunc("GET "+wire.PathEvents, s.events)
	mux.HandleFunc("GET "+wire.PathHealth, s.health)
	mux.HandleFunc("GET "+wire.PathReady, s.health)
	s.srv = httptest.NewServer(s.failing(wire.Route(mux)))
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
// message, before the server looks at it; 429 and 503 carry Retry-After as
// the node's do. Calls queue up: each failure is used once. A client
// retries 429 and 503: queue as many failures as its attempts, or make it
// with client.Retry{Attempts: 1}, to see one reach the caller.
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
	s.publishLocked(wire.AppendConfirmed(nil, &wire.ConfirmedEvent{ID: id, Position: e.pos, ConfirmedAt: e.confirmedAt,
		Confirmation: s.confirmed, Issuer: e.m.Issuer, Seq: e.m.Seq, Timestamp: e.m.Timestamp}))
	s.confirmed++
}

func (s *Server) publishLocked(ev []byte) {
	for sub := range s.subs {
		select {
		case sub.ch <- ev:
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

// apiError is a refusal: its code, with the status of the wire table.
type apiError struct {
	code, message string
}

func refuse(code, message string) *apiError { return &apiError{code, message} }

func writeError(w http.ResponseWriter, status int, code, message string) {
	wire.WriteError(w, status, code, message)
}

// fail answers with e's code and its status.
func fail(w http.ResponseWriter, e *apiError) {
	wire.WriteError(w, wire.Status(e.code), e.code, e.message)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := uint64(len(s.order))
	var conf uint64
	for _, e := range s.msgs {
		if e.confirmedAt != 0 {
			conf++
		}
	}
	s.mu.Unlock()
	wire.WriteJSON(w, http.StatusOK, wire.Info{
		NodeID: dag.PublicKey{}.String(), Network: s.cfg.Network, NetworkID: wire.FormatNetworkID(s.params.Network),
		Version: "clienttest", Messages: n, Solid: n, Confirmed: conf, Unconfirmed: n - conf, Tips: min(n, 2),
		Validators: []wire.Validator{}, Threshold: "2/3", Peers: []wire.Peer{},
	})
}

func (s *Server) tips(w http.ResponseWriter, r *http.Request) {
	size, err := wire.ParseSize(r.URL.Query().Get("size"))
	if err != nil {
		fail(w, refuse(wire.CodeBadRequest, err.Error()))
		return
	}
	s.mu.Lock()
	p0 := s.order[max(len(s.order)-1, 0)]
	p1 := s.order[max(len(s.order)-2, 0)]
	minTS := max(s.msgs[p0].m.Timestamp, s.msgs[p1].m.Timestamp)
	s.mu.Unlock()
	wire.WriteJSON(w, http.StatusOK, wire.Tips{
		Parents: []string{p0.String(), p1.String()}, MinTimestamp: minTS,
		Difficulty: s.params.Difficulty(dag.MinSize + size), Network: s.cfg.Network,
		NetworkID: wire.FormatNetworkID(s.params.Network), MaxPayload: s.params.MaxPayload,
	})
}

// readBody reads at most limit bytes of the body.
func readBody(r *http.Request, limit int64) ([]byte, *apiError) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, refuse(wire.CodeMalformed, err.Error())
	}
	if int64(len(b)) > limit {
		return nil, refuse(wire.CodeTooLarge, fmt.Sprintf("body over %d bytes", limit))
	}
	return b, nil
}

func (s *Server) maxMessage() int { return dag.MinSize + s.params.MaxPayload }

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	raw, e := readBody(r, int64(s.maxMessage()))
	if e != nil {
		fail(w, e)
		return
	}
	remote := r.URL.Query().Get("remote_pow") == "1"
	m, e := s.accept(r.Context(), raw, remote)
	if e != nil && e.code == wire.CodePending {
		w.Header().Set("Location", wire.PathMessages+"/"+m.ID().String())
		wire.WriteJSON(w, http.StatusAccepted, wire.Submitted{ID: m.ID().String(), Pending: true})
		return
	}
	if e != nil {
		fail(w, e)
		return
	}
	w.Header().Set("Location", wire.PathMessages+"/"+m.ID().String())
	ans := wire.Submitted{ID: m.ID().String()}
	if remote {
		ans.Nonce = &m.Nonce
	}
	wire.WriteJSON(w, http.StatusCreated, ans)
}

func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	body, e := readBody(r, wire.MaxBatchBytes)
	if e != nil {
		fail(w, e)
		return
	}
	raws, err := wire.SplitBatch(body, s.maxMessage())
	if err != nil {
		fail(w, refuse(codeOf(err), err.Error()))
		return
	}
	results := make([]wire.BatchResult, len(raws))
	for i, raw := range raws {
		m, e := s.accept(r.Context(), raw, false)
		switch {
		case e == nil:
			results[i] = wire.BatchResult{ID: m.ID().String(), Status: http.StatusCreated}
		case e.code == wire.CodePending:
			results[i] = wire.BatchResult{ID: m.ID().String(), Status: http.StatusAccepted}
		default:
			results[i] = wire.BatchResult{Status: wire.Status(e.code), Error: &wire.Error{Code: e.code, Message: e.message}}
			if m != nil {
				results[i].ID = m.ID().String()
			}
		}
	}
	wire.WriteJSON(w, http.StatusOK, wire.BatchResults{Results: results})
}

// codeOf is the code of an error of package dag.
func codeOf(err error) string {
	switch {
	case errors.Is(err, dag.ErrTooLarge):
		return wire.CodeTooLarge
	case errors.Is(err, dag.ErrNetwork):
		return wire.CodeWrongNetwork
	case errors.Is(err, dag.ErrPoW):
		return wire.CodeInsufficientPoW
	case errors.Is(err, dag.ErrSignature):
		return wire.CodeBadSignature
	case errors.Is(err, dag.ErrTimestamp):
		return wire.CodeInvalidTimestamp
	}
	return wire.CodeMalformed
}

// accept checks raw as a node's API does and stores it. A message that
// decoded is returned with its refusal, so that a batch result names it.
func (s *Server) accept(ctx context.Context, raw []byte, remote bool) (*dag.Message, *apiError) {
	raw = bytes.Clone(raw)
	m, err := s.params.Decode(raw)
	if err != nil {
		return nil, refuse(codeOf(err), err.Error())
	}
	if remote {
		if !slices.Contains(s.cfg.RemotePoW, m.Issuer) {
			return nil, refuse(wire.CodeForbidden, "remote proof of work is not offered to this key")
		}
		if m, err = s.solve(ctx, raw); err != nil {
			return nil, refuse(wire.CodeOverloaded, err.Error())
		}
	}
	if err := s.params.Check(m); err != nil {
		s.markInvalid(m.ID())
		return m, refuse(codeOf(err), err.Error())
	}
	if ahead := time.Duration(m.Timestamp - time.Now().UnixNano()); ahead > maxClockSkew {
		return m, refuse(wire.CodeInvalidTimestamp, fmt.Sprintf("%v ahead of the clock", ahead.Round(time.Millisecond)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[m.ID()]; ok {
		return m, refuse(wire.CodePending, "held for its parents")
	}
	if e := s.admitLocked(m); e != nil {
		return m, e
	}
	if !s.parentsKnownLocked(m) {
		s.pending[m.ID()] = m
		s.lastSeq[m.Issuer] = m.Seq
		return m, refuse(wire.CodePending, "held for its parents")
	}
	s.storeLocked(m)
	s.releaseLocked()
	return m, nil
}

// parentsKnownLocked reports whether m's parents are stored.
func (s *Server) parentsKnownLocked(m *dag.Message) bool {
	for _, p := range m.Parents {
		if _, ok := s.msgs[p]; !ok {
			return false
		}
	}
	return true
}

// releaseLocked stores the pending messages whose parents arrived, and
// theirs, in turn.
func (s *Server) releaseLocked() {
	for again := true; again; {
		again = false
		for id, m := range s.pending {
			if s.parentsKnownLocked(m) {
				delete(s.pending, id)
				s.storeLocked(m)
				again = true
			}
		}
	}
}

// maxInvalid bounds the invalid messages remembered.
const maxInvalid = 4096

// markInvalid remembers that id failed the stateless checks, as a node's
// core does, forgetting the oldest past maxInvalid.
func (s *Server) markInvalid(id dag.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.invalid[id] {
		return
	}
	if len(s.invalidOrder) >= maxInvalid {
		delete(s.invalid, s.invalidOrder[0])
		s.invalidOrder = s.invalidOrder[1:]
	}
	s.invalid[id] = true
	s.invalidOrder = append(s.invalidOrder, id)
}

// solve does the proof of work of raw, in place, and decodes the result.
func (s *Server) solve(ctx context.Context, raw []byte) (*dag.Message, error) {
	if _, err := pow.Solve(ctx, raw, s.params.Difficulty(len(raw)), 1); err != nil {
		return nil, err
	}
	return s.params.Decode(raw)
}

// admitLocked checks what depends on the ledger: duplicates, parents, the
// issuer's sequence.
func (s *Server) admitLocked(m *dag.Message) *apiError {
	if _, ok := s.msgs[m.ID()]; ok {
		return refuse(wire.CodeDuplicate, "the message is already in the ledger")
	}
	for _, p := range m.Parents {
		if s.invalid[p] {
			return refuse(wire.CodeInvalidParent, "parent "+p.String()+" is invalid")
		}
		pe, ok := s.msgs[p]
		if !ok {
			continue // held pending, if the rest passes
		}
		if m.Timestamp < pe.m.Timestamp {
			return refuse(wire.CodeInvalidTimestamp, "older than parent "+p.String())
		}
	}
	if last, ok := s.lastSeq[m.Issuer]; ok && m.Seq <= last {
		return refuse(wire.CodeStaleSequence, fmt.Sprintf("seq %d, the issuer is at %d", m.Seq, last))
	}
	return nil
}

// storeLocked adds an admitted message and publishes its event.
func (s *Server) storeLocked(m *dag.Message) {
	id := m.ID()
	s.lastSeq[m.Issuer] = max(s.lastSeq[m.Issuer], m.Seq) // a pending one may be released late
	e := &entry{m: m, pos: uint64(len(s.order))}
	s.msgs[id] = e
	s.order = append(s.order, id)
	for i, p := range m.Parents {
		if i == 1 && p == m.Parents[0] {
			break
		}
		s.msgs[p].children = append(s.msgs[p].children, id)
	}
	s.publishLocked(wire.AppendMessage(nil, &wire.MessageEvent{ID: id, Issuer: m.Issuer, Seq: m.Seq, Position: e.pos,
		Parents: m.Parents, Timestamp: m.Timestamp}))
	if s.cfg.AutoConfirm {
		s.confirmLocked(id, e)
	}
}

func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (*entry, bool) {
	id, err := dag.ParseID(r.PathValue("id"))
	if err != nil {
		fail(w, refuse(wire.CodeMalformed, err.Error()))
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.msgs[id]
	if !ok {
		fail(w, refuse(wire.CodeNotFound, "no message "+id.String()))
		return nil, false
	}
	c := *e
	c.children = slices.Clone(e.children)
	return &c, true
}

// message is e in the API's form.
func (e *entry) message(children bool) wire.Message {
	v := wire.NewMessage(e.m)
	pos := e.pos
	v.Position, v.Solid, v.Confirmed = &pos, true, e.confirmedAt != 0
	weight := uint64(0)
	if e.confirmedAt != 0 {
		at := e.confirmedAt
		v.ConfirmedAt, weight = &at, 1
	}
	v.ApprovalWeight = &weight
	if children {
		v.SetChildren(e.children)
	}
	return v
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if id, err := dag.ParseID(r.PathValue("id")); err == nil {
		s.mu.Lock()
		m, ok := s.pending[id]
		s.mu.Unlock()
		if ok {
			v := wire.NewMessage(m)
			v.Pending = true
			wire.WriteJSON(w, http.StatusOK, v)
			return
		}
	}
	if e, ok := s.lookup(w, r); ok {
		wire.WriteJSON(w, http.StatusOK, e.message(true))
	}
}

func (s *Server) raw(w http.ResponseWriter, r *http.Request) {
	e, ok := s.lookup(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", wire.ContentMessage)
	w.Write(e.m.Bytes())
}

// issuerMessages lists an issuer's messages in sequence order, as the
// node does, by a scan of everything held.
func (s *Server) issuerMessages(w http.ResponseWriter, r *http.Request) {
	key, err := dag.ParseID(r.PathValue("key"))
	if err != nil {
		fail(w, refuse(wire.CodeMalformed, err.Error()))
		return
	}
	pg, err := wire.ParsePage(r.URL.Query())
	if err != nil {
		fail(w, refuse(wire.CodeBadRequest, err.Error()))
		return
	}
	limit, after, hasAfter := pg.Limit, pg.AfterSeq, pg.HasAfter
	s.mu.Lock()
	var mine []*entry
	for _, id := range s.order {
		if e := s.msgs[id]; e.m.Issuer == dag.PublicKey(key) && (!hasAfter || e.m.Seq > after) {
			mine = append(mine, e)
		}
	}
	slices.SortStableFunc(mine, func(a, b *entry) int { return cmp.Compare(a.m.Seq, b.m.Seq) })
	page := wire.IssuerPage{Messages: []wire.Message{}}
	for i, e := range mine {
		if i == limit {
			next := mine[limit-1].m.Seq
			page.NextAfterSeq = &next
			break
		}
		page.Messages = append(page.Messages, e.message(false))
	}
	s.mu.Unlock()
	wire.WriteJSON(w, http.StatusOK, page)
}

// health answers /healthz and /readyz: the fake is always ready.
// equivocations answers an empty list: the fake takes messages from its
// API alone, which refuses a second message with an issuer's sequence, so
// it never holds an equivocation. Its parameters are checked as the node's.
func (s *Server) equivocations(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		key = r.URL.Query().Get("issuer")
	}
	if key != "" {
		if _, err := dag.ParseID(key); err != nil {
			fail(w, refuse(wire.CodeMalformed, err.Error()))
			return
		}
	}
	if _, err := wire.ParsePage(r.URL.Query()); err != nil {
		fail(w, refuse(wire.CodeBadRequest, err.Error()))
		return
	}
	wire.WriteJSON(w, http.StatusOK, wire.Equivocations{Equivocations: []wire.Equivocation{}})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	wire.WriteJSON(w, http.StatusOK, wire.Health{Status: "ok"})
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		fail(w, refuse(wire.CodeInternal, "streaming unsupported"))
		return
	}
	sub := &subscriber{ch: make(chan []byte, subBuffer), overflow: make(chan struct{})}
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
	io.WriteString(w, wire.StreamOpen)
	fl.Flush()
	for {
		select {
		case ev := <-sub.ch:
			w.Write(ev)
			fl.Flush()
		case <-sub.overflow:
			io.WriteString(w, wire.Overflow)
			fl.Flush()
			return
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}
