// Package api serves a node's HTTP API (docs/API.md): messages in and out,
// the node's state, an event stream, Prometheus metrics, and the health
// and readiness probes. The JSON forms and the table of codes are those of
// package api/wire.
package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
	"github.com/weftnet/weft/proof"
)

// Options are the optional settings of a Server. The zero value is the
// default: no CORS headers.
type Options struct {
	// CORSOrigins lists the origins (such as "https://dash.example") whose
	// pages may call the API from a browser: their requests are answered
	// with Access-Control-Allow-Origin, and their preflight OPTIONS
	// requests with the methods of the path and the allowed headers. "*"
	// allows every origin. Empty: no CORS headers at all, and OPTIONS is
	// 405 like any method a path does not take.
	CORSOrigins []string
	// EventWriteTimeout drops an event stream whose client accepts no data
	// for this long: a client that stopped reading, once the connection's
	// buffers are full. Default DefaultEventWriteTimeout.
	EventWriteTimeout time.Duration
	// Tokens are the operators' API tokens (auth.go): the endpoints that
	// change state take one of them. None: those endpoints answer 403.
	Tokens []Token
	// ReadAuth closes the read endpoints too: every GET but the tips and
	// the probes needs a token.
	ReadAuth bool
}

// DefaultEventWriteTimeout is Options.EventWriteTimeout's default.
const DefaultEventWriteTimeout = 10 * time.Second

// Server is the HTTP API of one node. It is an http.Handler, safe for
// concurrent use.
type Server struct {
	node    *node.Node
	log     zerolog.Logger
	version string
	mux     *http.ServeMux
	route   http.Handler // mux behind wire.Route
	cors    cors
	auth    auth
	ending  chan struct{} // closed by EndStreams
	// eventWriteTimeout is Options.EventWriteTimeout, defaulted.
	eventWriteTimeout time.Duration
	endOnce           sync.Once
}

// EndStreams ends the event streams, so that a graceful shutdown of the
// HTTP server does not wait on them. Safe to call more than once.
func (s *Server) EndStreams() { s.endOnce.Do(func() { close(s.ending) }) }

// New returns the API of n with the default Options. version is reported
// by /api/v1/info.
func New(n *node.Node, version string, log zerolog.Logger) *Server {
	return NewWithOptions(n, version, log, Options{})
}

// NewWithOptions returns the API of n with opt.
func NewWithOptions(n *node.Node, version string, log zerolog.Logger, opt Options) *Server {
	s := &Server{node: n, log: log, version: version, mux: http.NewServeMux(), ending: make(chan struct{}),
		cors: newCORS(opt.CORSOrigins), auth: newAuth(opt.Tokens, opt.ReadAuth), eventWriteTimeout: opt.EventWriteTimeout}
	if s.eventWriteTimeout <= 0 {
		s.eventWriteTimeout = DefaultEventWriteTimeout
	}
	s.mux.HandleFunc("GET "+wire.PathInfo, s.info)
	s.mux.HandleFunc("GET "+wire.PathTips, s.tips)
	s.mux.HandleFunc("POST "+wire.PathMessages, s.submit)
	s.mux.HandleFunc("POST "+wire.PathBatch, s.submitBatch)
	s.mux.HandleFunc("GET "+wire.PathMessages, s.rangeMessages)
	s.mux.HandleFunc("GET "+wire.PathExport, s.export)
	s.mux.HandleFunc("GET "+wire.PathMessages+"/{id}", s.message)
	s.mux.HandleFunc("GET "+wire.PathMessages+"/{id}/raw", s.raw)
	s.mux.HandleFunc("GET "+wire.PathMessages+"/{id}/proof", s.proof)
	s.mux.HandleFunc("POST "+wire.PathProofs, s.proofFor)
	s.mux.HandleFunc("GET "+wire.PathIssuers+"/{key}/messages", s.issuerMessages)
	s.mux.HandleFunc("GET "+wire.PathIssuers+"/{key}/equivocations", s.equivocations)
	s.mux.HandleFunc("GET "+wire.PathEquivocations, s.equivocations)
	s.mux.HandleFunc("GET "+wire.PathEvents, s.events)
	s.mux.Handle("GET "+wire.PathMetrics, promhttp.HandlerFor(n.Registry(), promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET "+wire.PathHealth, s.health)
	s.mux.HandleFunc("GET "+wire.PathReady, s.ready)
	s.mux.HandleFunc("GET /{$}", s.dashboard)
	s.mux.HandleFunc("GET /peers", s.dashboard)
	s.mux.HandleFunc("GET /messages/{id}", s.dashboard)
	s.mux.HandleFunc("GET /devices/{key}", s.dashboard)
	s.routeDevices()
	s.routeRules()
	s.route = wire.Route(s.mux)
	return s
}

// ServeHTTP answers r: CORS first when configured, then, when
// Options.ReadAuth closes reads, the token of a read, then the endpoint, or
// 404 not_found and 405 method_not_allowed (with Allow) in the API's error
// body where no endpoint takes r (wire.Route).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cors.handle(w, r, s.allowed) || !s.reads(w, r) {
		return
	}
	s.route.ServeHTTP(w, r)
}

// allowed returns the methods r's path takes, "" for no endpoint.
func (s *Server) allowed(r *http.Request) string { return wire.Allowed(s.mux, r) }

// writeError answers with code, its status from the wire table, and msg.
func writeError(w http.ResponseWriter, code, msg string) {
	wire.WriteError(w, wire.Status(code), code, msg)
}

// fail answers with err's code and status.
func fail(w http.ResponseWriter, err error) {
	writeError(w, node.Code(err), err.Error())
}

// errorOf is err as a batch result carries it.
func errorOf(err error) (int, *wire.Error) {
	code := node.Code(err)
	return wire.Status(code), &wire.Error{Code: code, Message: err.Error()}
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
	// The ID before the pipeline has the message: Submit may return (at its
	// timeout) while a verifier still reads it.
	ans := wire.Submitted{ID: m.ID().String()}
	if r.URL.Query().Get("remote_pow") == "1" {
		err = s.node.SubmitRemotePoW(r.Context(), m)
		nonce := m.Nonce
		ans.ID, ans.Nonce = m.ID().String(), &nonce // the final ID, with the nonce
	} else {
		err = s.node.Submit(r.Context(), []*dag.Message{m})[0]
	}
	switch {
	case err == nil:
		w.Header().Set("Location", wire.PathMessages+"/"+ans.ID)
		wire.WriteJSON(w, http.StatusCreated, ans)
	case node.Code(err) == wire.CodePending:
		ans.Pending = true
		w.Header().Set("Location", wire.PathMessages+"/"+ans.ID)
		wire.WriteJSON(w, http.StatusAccepted, ans)
	default:
		fail(w, err)
	}
}

func (s *Server) submitBatch(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r, wire.MaxBatchBytes)
	if err != nil {
		fail(w, err)
		return
	}
	raws, err := wire.SplitBatch(b, int(s.maxMessage()))
	if err != nil {
		fail(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, wire.BatchResults{Results: SubmitRaw(r.Context(), s.node, raws)})
}

// SubmitRaw decodes each of raws and submits those that decode to n
// together, and returns their results in order, as the batch endpoint
// answers them: 201 stored, 202 held for its parents, or the refusal's
// status and code. The MQTT bridge answers its submissions with it too.
func SubmitRaw(ctx context.Context, n *node.Node, raws [][]byte) []wire.BatchResult {
	results := make([]wire.BatchResult, len(raws))
	msgs := make([]*dag.Message, 0, len(raws))
	idx := make([]int, 0, len(raws))
	for i, raw := range raws {
		m, err := n.Params().Decode(raw)
		if err != nil {
			results[i].Status, results[i].Error = errorOf(err)
			continue
		}
		msgs = append(msgs, m)
		idx = append(idx, i)
		// The ID before the pipeline has the message, as in submit.
		results[i].ID = m.ID().String()
	}
	if len(msgs) == 0 {
		return results
	}
	for k, err := range n.Submit(ctx, msgs) {
		res := &results[idx[k]]
		switch {
		case err == nil:
			res.Status = http.StatusCreated
		case node.Code(err) == wire.CodePending:
			res.Status = http.StatusAccepted
		default:
			res.Status, res.Error = errorOf(err)
		}
	}
	return results
}

func (s *Server) tips(w http.ResponseWriter, r *http.Request) {
	size, err := wire.ParseSize(r.URL.Query().Get("size"))
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	t := s.node.Tips(size)
	p := s.node.Params()
	wire.WriteJSON(w, http.StatusOK, wire.Tips{
		Parents:      []string{t.Parents[0].String(), t.Parents[1].String()},
		MinTimestamp: t.MinTimestamp,
		Difficulty:   t.Difficulty,
		PoWBase:      p.PoWBase,
		Network:      s.node.Info().Network,
		NetworkID:    wire.FormatNetworkID(p.Network),
		MaxPayload:   p.MaxPayload,
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	in := s.node.Info()
	peers := []wire.Peer{}
	for _, p := range s.node.Peers() {
		peers = append(peers, wire.Peer{
			Key: p.Key.String(), Addr: p.Addr, Connected: p.Connected,
			MessagesIn: p.MessagesIn, MessagesOut: p.MessagesOut, Invalid: p.Invalid,
			Dropped: p.DroppedMessages, RequestsIn: p.RequestsIn, RequestsOut: p.RequestsOut,
			RTTms:        float64(p.RTT.Microseconds()) / 1000,
			QueuedFrames: uint64(p.QueuedFrames), QueuedBytes: uint64(p.QueuedBytes),
			SyncsIn: p.SyncsIn, SyncsOut: p.SyncsOut, EntryPointsIn: p.EntryPointsIn,
		})
		if p.Connected {
			peers[len(peers)-1].ConnectedSince = p.Since.UnixNano()
		}
		if p.LastError != nil {
			peers[len(peers)-1].LastError = p.LastError.Error()
		}
	}
	use := s.node.Usage()
	rejected := use.Rejected
	if rejected == nil {
		rejected = map[string]uint64{}
	}
	vals := make([]wire.Validator, len(in.Validators))
	for i, v := range in.Validators {
		vals[i] = wire.Validator{Key: v.Key.String(), Weight: v.Weight}
	}
	wire.WriteJSON(w, http.StatusOK, wire.Info{
		NodeID: in.NodeID.String(), Network: in.Network, NetworkID: wire.FormatNetworkID(in.NetworkID),
		Version: s.version, Messages: in.Messages, Solid: in.Messages, Confirmed: in.Confirmed,
		Unconfirmed: uint64(in.Unconfirmed), Pending: uint64(in.Pending), Tips: offeredTips(in),
		Validators: vals, Threshold: "2/3", Peers: peers,
		MessagesPerSecond: in.MessagesRate, ConfirmedPerSecond: in.ConfirmedRate,
		Durable: in.Durable, StorageError: in.StorageError, Confirmations: s.node.ConfirmCount(),
		Rejected: rejected, MemoryBytes: uint64(max(use.MemoryBytes, 0)), DiskBytes: uint64(max(use.DiskBytes, 0)),
		CaughtUp: in.CaughtUp,
	})
}

// offeredTips is the number of messages /api/v1/tips draws parents from.
// The node counts its tip pool; while the pool is empty (a validator's own
// messages never join it, so a validator alone on its network has an empty
// pool), it offers its newest message, one tip, and counts none.
func offeredTips(in node.Info) uint64 { return uint64(max(in.Tips, 1)) }

// messageJSON is a message as the API shows it.
func messageJSON(mi *node.MessageInfo, children bool) wire.Message {
	out := wire.NewMessage(mi.Msg)
	out.Confirmed, out.Orphaned = mi.Confirmed, mi.Orphaned
	if mi.Pending { // held for its parents, not stored
		out.Pending = true
	} else {
		pos := mi.Pos
		out.Position, out.Solid = &pos, true
	}
	if mi.Confirmed {
		at := mi.ConfirmedAt
		out.ConfirmedAt = &at
	}
	if mi.HasWeight {
		wt := mi.Weight
		out.ApprovalWeight = &wt
		for _, v := range mi.Approvers {
			out.Approvers = append(out.Approvers, v.String())
		}
	}
	if children {
		out.SetChildren(mi.Children)
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
	wire.WriteJSON(w, http.StatusOK, messageJSON(mi, true))
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
	w.Header().Set("Content-Type", wire.ContentMessage)
	w.Write(b)
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	id, ok := parseID(w, r.PathValue("id"))
	if !ok {
		return
	}
	doc, err := s.node.Proof(id)
	answerProof(w, doc, err)
}

// proofFor answers POST /api/v1/proofs: the proof for the message whose
// encoding is the body, which the node need not hold any more.
func (s *Server) proofFor(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r, s.maxMessage())
	if err != nil {
		fail(w, err)
		return
	}
	doc, err := s.node.ProofFor(b)
	answerProof(w, doc, err)
}

// answerProof answers with a proof document, or the error; no_proof
// carries Retry-After, the node's estimate of when checkpoints may cover
// the message.
func answerProof(w http.ResponseWriter, doc *proof.Document, err error) {
	var np *node.NoProofError
	if errors.As(err, &np) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(np.RetryAfter.Seconds()))))
	}
	if err != nil {
		fail(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, doc)
}

func (s *Server) issuerMessages(w http.ResponseWriter, r *http.Request) {
	kid, ok := parseID(w, r.PathValue("key"))
	if !ok {
		return
	}
	if wire.IsTimeQuery(r.URL.Query()) {
		s.issuerRange(w, r, dag.PublicKey(kid))
		return
	}
	pg, err := wire.ParsePage(r.URL.Query())
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	limit := pg.Limit
	mis, err := s.node.IssuerMessages(dag.PublicKey(kid), pg.AfterSeq, pg.HasAfter, limit+1)
	if err != nil {
		fail(w, err)
		return
	}
	var out wire.IssuerPage
	if out.History = s.history(); out.CompleteAfter != nil {
		seq, ok, err := s.node.FirstSeq(dag.PublicKey(kid))
		if err != nil {
			fail(w, err)
			return
		}
		if ok {
			out.FirstSeq = &seq
		}
	}
	if len(mis) > limit {
		mis = mis[:limit]
		next := mis[limit-1].Msg.Seq
		out.NextAfterSeq = &next
	}
	out.Messages = make([]wire.Message, len(mis))
	for i, mi := range mis {
		out.Messages[i] = messageJSON(mi, false)
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

// history is the History of the node's listings.
func (s *Server) history() wire.History {
	h := s.node.History()
	if !h.HasDropped {
		return wire.History{}
	}
	return wire.History{CompleteAfter: &h.CompleteAfter}
}

// equivocations lists the node's equivocations, newest first: an issuer's
// when the path names one, or with ?issuer=KEY; at most ?limit= (default
// 100, at most 1000).
func (s *Server) equivocations(w http.ResponseWriter, r *http.Request) {
	var issuer *dag.PublicKey
	key := r.PathValue("key")
	if key == "" {
		key = r.URL.Query().Get("issuer")
	}
	if key != "" {
		kid, ok := parseID(w, key)
		if !ok {
			return
		}
		k := dag.PublicKey(kid)
		issuer = &k
	}
	pg, err := wire.ParsePage(r.URL.Query())
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	out := wire.Equivocations{Equivocations: []wire.Equivocation{}}
	for _, e := range s.node.Equivocations(issuer, pg.Limit) {
		out.Equivocations = append(out.Equivocations, wire.Equivocation{Issuer: e.Issuer.String(), Seq: e.Seq,
			First: e.First.String(), Second: e.Second.String(), SeenAt: e.SeenAt.UnixNano()})
	}
	wire.WriteJSON(w, http.StatusOK, out)
}

// health answers while the process serves.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	wire.WriteJSON(w, http.StatusOK, wire.Health{Status: "ok"})
}

// ready answers 200 when the node is ready (node.Ready), 503 not_ready
// with the reason otherwise.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if err := s.node.Ready(); err != nil {
		writeError(w, wire.CodeNotReady, err.Error())
		return
	}
	wire.WriteJSON(w, http.StatusOK, wire.Health{Status: "ok"})
}
