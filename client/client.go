package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// Limits of the batch endpoint (docs/API.md). SubmitBatch refuses a larger
// batch with ErrBatchTooLarge before sending it.
const (
	// MaxBatchMessages is the most messages one batch may carry.
	MaxBatchMessages = wire.MaxBatchMessages
	// MaxBatchBytes is the most bytes a batch body may have, length
	// prefixes included.
	MaxBatchBytes = wire.MaxBatchBytes
)

// Bounds on what the client reads of an answer. A node that sends more is
// broken, and the client answers ErrBadResponse rather than read on.
const (
	maxErrorBody = 64 << 10
	maxSmallJSON = 1 << 20 // info, tips, submit answers
	maxGetJSON   = 4 << 20 // a message (a large payload, many children)
	maxRawBody   = dag.MinSize + dag.MaxPayload
	// maxBatchJSON: one result per message, each well under 512 bytes.
	maxBatchJSON = MaxBatchMessages*512 + 4096
	// maxPageEntry bounds one message of an issuer listing: the payload in
	// base64 and the rest of the fields.
	maxPageEntry = dag.MaxPayload*4/3 + 4096
	// defaultPageLimit and maxPageLimit are the API's listing limits.
	defaultPageLimit = wire.DefaultPageLimit
	maxPageLimit     = wire.MaxPageLimit
)

// defaultPollInterval is how often WaitConfirmed asks for the message, in
// case it missed the event.
const defaultPollInterval = 250 * time.Millisecond

// Client speaks to one node's HTTP API (docs/API.md). Every method takes a
// context that bounds the whole call, including reading the answer. A Client
// is safe for concurrent use by multiple goroutines; it holds no state
// beyond its configuration and the HTTP client's connection pool.
//
// A call that meets 429, 503 or a transport error is sent again as its
// Retry says (WithRetry; by default up to 5 attempts within 10 s), and
// returns the last error when it gives up. Every answer outside 2xx is
// returned as an *APIError. Answers are read
// through bounded readers and checked: IDs the node returns are checked
// against the bytes where the client can compute them, so a node cannot
// pass off one message for another.
type Client struct {
	base         string // without a trailing slash
	http         *http.Client
	pollInterval time.Duration
	retry        Retry
	token        string // WithToken
}

// Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc. hc should
// have no Timeout: Events and WaitConfirmed hold a request open for as long
// as their context lasts. Bound calls with their contexts instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithToken makes the Client send token as an operator's API token
// ("Authorization: Bearer TOKEN") with every request: the node's
// state-changing endpoints need one (docs/API.md, "Operator
// authentication").
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// New returns a Client for the node whose API is at baseURL, such as
// "http://127.0.0.1:8080" (the "/api/v1" paths are appended). By default it
// uses its own http.Client with the default transport and no timeout.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		base:         strings.TrimRight(baseURL, "/"),
		http:         &http.Client{},
		pollInterval: defaultPollInterval,
		retry:        Retry{}.withDefaults(),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL returns the base URL the Client was made with, without a
// trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Info returns the node's description of itself.
func (c *Client) Info(ctx context.Context) (*NodeInfo, error) {
	var v NodeInfo
	if err := c.getJSON(ctx, wire.PathInfo, nil, maxSmallJSON, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Tips asks the node for what a message with a payload of payloadSize bytes
// needs: parents, the lowest timestamp, the difficulty and the network.
// Device.Build uses it; call it yourself to build messages another way.
func (c *Client) Tips(ctx context.Context, payloadSize int) (*Tips, error) {
	if payloadSize < 0 || payloadSize > dag.MaxPayload {
		return nil, fmt.Errorf("client: payload size %d out of range 0..%d", payloadSize, dag.MaxPayload)
	}
	q := url.Values{"size": {strconv.Itoa(payloadSize)}}
	var v Tips
	if err := c.getJSON(ctx, wire.PathTips, q, maxSmallJSON, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Submission is the node's acceptance of a submitted message.
type Submission struct {
	// ID is the message's ID, checked against its bytes.
	ID dag.ID
	// Pending reports that the node holds the message until its parents
	// arrive (202 Accepted): it is not durable yet, and may still be
	// dropped if they never come. Otherwise the message is durable (201).
	Pending bool
}

// Submit sends one message in its canonical encoding, signed and solved,
// and returns its ID once the node has made it durable. When the node
// holds it for parents it does not have yet (202), Submit returns the ID
// and an error wrapping ErrPending: the message is not durable, and the
// caller should send the same bytes again later (SubmitOutcome tells the
// two apart without an error). The node's refusal is an *APIError
// (CodeDuplicate if the node already has it, unless an earlier attempt of
// this call stored it).
func (c *Client) Submit(ctx context.Context, raw []byte) (dag.ID, error) {
	s, err := c.SubmitOutcome(ctx, raw)
	if err == nil && s.Pending {
		return s.ID, fmt.Errorf("%w: %s", ErrPending, s.ID)
	}
	return s.ID, err
}

// SubmitOutcome is Submit, telling a durable message from a pending one. A
// submission sent again (after 429, 503 or a transport error) that the node
// answers duplicate was stored by an earlier attempt: it is reported as
// durable.
func (c *Client) SubmitOutcome(ctx context.Context, raw []byte) (Submission, error) {
	var ans wire.Submitted
	attempts, err := c.post(ctx, wire.PathMessages, nil, wire.ContentMessage, raw, maxSmallJSON, &ans)
	if err != nil {
		if attempts > 1 && IsCode(err, CodeDuplicate) {
			return Submission{ID: dag.ID(pow.Hash(raw))}, nil
		}
		return Submission{}, err
	}
	id, err := wire.ParseID("id", ans.ID)
	if err != nil {
		return Submission{}, fmt.Errorf("%w: submit: %v", ErrBadResponse, err)
	}
	if want := dag.ID(pow.Hash(raw)); id != want {
		return Submission{}, fmt.Errorf("%w: submit: node says id %s, the message's is %s", ErrBadResponse, id, want)
	}
	return Submission{ID: id, Pending: ans.Pending}, nil
}

// SubmitRemotePoW sends one signed message whose proof of work the node is
// to do (the nonce may be anything), and returns the message's final ID and
// the nonce the node found, once the message is durable; with an error
// wrapping ErrPending when the node holds it for its parents, as Submit.
// The node does this only for issuer keys its operator lists: for others
// it answers CodeForbidden.
func (c *Client) SubmitRemotePoW(ctx context.Context, raw []byte) (dag.ID, uint64, error) {
	var ans wire.Submitted
	q := url.Values{"remote_pow": {"1"}}
	if _, err := c.post(ctx, wire.PathMessages, q, wire.ContentMessage, raw, maxSmallJSON, &ans); err != nil {
		return dag.ID{}, 0, err
	}
	id, err := wire.ParseID("id", ans.ID)
	if err != nil {
		return dag.ID{}, 0, fmt.Errorf("%w: submit: %v", ErrBadResponse, err)
	}
	if ans.Nonce == nil || len(raw) < pow.NonceSize {
		return dag.ID{}, 0, fmt.Errorf("%w: submit with remote proof of work: no nonce in the answer", ErrBadResponse)
	}
	solved := bytes.Clone(raw)
	binary.BigEndian.PutUint64(solved[len(solved)-pow.NonceSize:], *ans.Nonce)
	if want := dag.ID(pow.Hash(solved)); id != want {
		return dag.ID{}, 0, fmt.Errorf("%w: submit: node says id %s, the message with its nonce has %s", ErrBadResponse, id, want)
	}
	if ans.Pending {
		return id, *ans.Nonce, fmt.Errorf("%w: %s", ErrPending, id)
	}
	return id, *ans.Nonce, nil
}

// SubmitBatch sends several messages in one request (for gateways) and
// returns one result per message, in order. A message the node refuses does
// not fail the others: its result carries the *APIError. The error return
// is for the request as a whole (a body the node could not split, a
// transport failure). An empty batch returns no results and sends nothing.
func (c *Client) SubmitBatch(ctx context.Context, raws [][]byte) ([]BatchResult, error) {
	if len(raws) == 0 {
		return []BatchResult{}, nil
	}
	body, err := EncodeBatch(raws)
	if err != nil {
		return nil, err
	}
	var ans wire.BatchResults
	if _, err := c.post(ctx, wire.PathBatch, nil, wire.ContentBatch, body, maxBatchJSON, &ans); err != nil {
		return nil, err
	}
	if len(ans.Results) != len(raws) {
		return nil, fmt.Errorf("%w: batch of %d messages, %d results", ErrBadResponse, len(raws), len(ans.Results))
	}
	res := make([]BatchResult, len(raws))
	for i, r := range ans.Results {
		br, err := batchResult(r, raws[i])
		if err != nil {
			return nil, fmt.Errorf("%w: batch result %d: %v", ErrBadResponse, i, err)
		}
		res[i] = br
	}
	return res, nil
}

// batchResult checks and converts the result of message raw.
func batchResult(r wire.BatchResult, raw []byte) (BatchResult, error) {
	if r.Status >= 200 && r.Status < 300 && r.Error == nil {
		id, err := wire.ParseID("id", r.ID)
		if err != nil {
			return BatchResult{}, err
		}
		if want := dag.ID(pow.Hash(raw)); id != want {
			return BatchResult{}, fmt.Errorf("node says id %s, the message's is %s", id, want)
		}
		return BatchResult{ID: id, Status: r.Status, Pending: r.Status == http.StatusAccepted}, nil
	}
	if r.Status == 0 {
		return BatchResult{}, errors.New("no status")
	}
	e := &APIError{Status: r.Status}
	if r.Error != nil {
		e.Code, e.Message = printable(r.Error.Code), printable(r.Error.Message)
	}
	return BatchResult{Status: r.Status, Err: e}, nil
}

// EncodeBatch returns the body of a batch request: each message preceded by
// its length as a 4-byte big-endian integer. It refuses more than
// MaxBatchMessages messages or a body over MaxBatchBytes with
// ErrBatchTooLarge.
func EncodeBatch(raws [][]byte) ([]byte, error) { return wire.EncodeBatch(raws) }

// Get returns the message id and what the node knows of it; CodeNotFound if
// the node does not have it. It checks that the fields hash to id.
func (c *Client) Get(ctx context.Context, id dag.ID) (*MessageInfo, error) {
	var v MessageInfo
	if err := c.getJSON(ctx, wire.PathMessages+"/"+id.String(), nil, maxGetJSON, &v); err != nil {
		return nil, err
	}
	if v.ID != id {
		return nil, fmt.Errorf("%w: asked for message %s, got %s", ErrBadResponse, id, v.ID)
	}
	if err := checkFields(&v); err != nil {
		return nil, err
	}
	return &v, nil
}

// checkFields checks that m's fields hash to its ID.
func checkFields(m *MessageInfo) error {
	if got := m.Message().ID(); got != m.ID {
		return fmt.Errorf("%w: message %s: its fields hash to %s", ErrBadResponse, m.ID, got)
	}
	return nil
}

// Raw returns the canonical encoding of message id; CodeNotFound if the
// node does not have it. It checks that the bytes hash to id.
func (c *Client) Raw(ctx context.Context, id dag.ID) ([]byte, error) {
	resp, _, err := c.do(ctx, http.MethodGet, wire.PathMessages+"/"+id.String()+"/raw", nil, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readAll(resp.Body, maxRawBody)
	if err != nil {
		return nil, err
	}
	if got := dag.ID(pow.Hash(b)); got != id {
		return nil, fmt.Errorf("%w: asked for message %s, got bytes of %s", ErrBadResponse, id, got)
	}
	return b, nil
}

// IssuerMessages returns one page of the messages of issuer key, in
// sequence order: those with a sequence number above *afterSeq (nil: from
// the start), at most limit of them (0: the node's default, 100; at most
// 1000). Continue with page.NextAfterSeq until it is nil. It checks that
// every message hashes to its ID and is the issuer's.
func (c *Client) IssuerMessages(ctx context.Context, key dag.PublicKey, afterSeq *uint64, limit int) (*IssuerPage, error) {
	if limit < 0 || limit > maxPageLimit {
		return nil, fmt.Errorf("client: limit %d out of range 0..%d", limit, maxPageLimit)
	}
	q := url.Values{}
	if afterSeq != nil {
		q.Set("after_seq", strconv.FormatUint(*afterSeq, 10))
	}
	n := defaultPageLimit
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
		n = limit
	}
	var w wire.IssuerPage
	if err := c.getJSON(ctx, wire.PathIssuers+"/"+key.String()+"/messages", q, int64(n)*maxPageEntry+4096, &w); err != nil {
		return nil, err
	}
	if len(w.Messages) > n {
		return nil, fmt.Errorf("%w: asked for at most %d messages, got %d", ErrBadResponse, n, len(w.Messages))
	}
	page := &IssuerPage{Messages: make([]MessageInfo, len(w.Messages)), NextAfterSeq: w.NextAfterSeq}
	for i := range w.Messages {
		m, err := fromWire(&w.Messages[i])
		if err != nil {
			return nil, fmt.Errorf("%w: issuer listing: %v", ErrBadResponse, err)
		}
		page.Messages[i] = m
		if m.Issuer != key {
			return nil, fmt.Errorf("%w: message %s of the listing of %s is issued by %s", ErrBadResponse, m.ID, key, m.Issuer)
		}
		if err := checkFields(&m); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// getJSON GETs path and decodes the JSON answer, at most limit bytes, into v.
// Equivocation is two different messages of one issuer with one sequence
// number, both valid and both stored by the node (docs/API.md).
type Equivocation struct {
	Issuer        dag.PublicKey
	Seq           uint64
	First, Second dag.ID
	SeenAt        time.Time
}

// Equivocations returns up to limit (1..1000; 0 for the node's default of
// 100) of the equivocations the node has seen since it started, newest
// first; only issuer's when issuer is not nil.
func (c *Client) Equivocations(ctx context.Context, issuer *dag.PublicKey, limit int) ([]Equivocation, error) {
	if limit < 0 || limit > maxPageLimit {
		return nil, fmt.Errorf("client: limit %d out of range 0..%d", limit, maxPageLimit)
	}
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := wire.PathEquivocations
	if issuer != nil {
		path = wire.PathIssuers + "/" + issuer.String() + "/equivocations"
	}
	var w wire.Equivocations
	if err := c.getJSON(ctx, path, q, int64(max(limit, defaultPageLimit))*512+4096, &w); err != nil {
		return nil, err
	}
	out := make([]Equivocation, len(w.Equivocations))
	for i, e := range w.Equivocations {
		var err error
		if out[i].Issuer, err = wire.ParseKey("issuer", e.Issuer); err != nil {
			return nil, fmt.Errorf("%w: equivocations: %v", ErrBadResponse, err)
		}
		if out[i].First, err = wire.ParseID("first", e.First); err != nil {
			return nil, fmt.Errorf("%w: equivocations: %v", ErrBadResponse, err)
		}
		if out[i].Second, err = wire.ParseID("second", e.Second); err != nil {
			return nil, fmt.Errorf("%w: equivocations: %v", ErrBadResponse, err)
		}
		if issuer != nil && out[i].Issuer != *issuer {
			return nil, fmt.Errorf("%w: equivocations of %s list one of %s", ErrBadResponse, *issuer, out[i].Issuer)
		}
		out[i].Seq, out[i].SeenAt = e.Seq, time.Unix(0, e.SeenAt)
	}
	return out, nil
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, limit int64, v any) error {
	resp, _, err := c.do(ctx, http.MethodGet, path, q, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeJSON(resp.Body, limit, path, v)
}

// post POSTs body to path and decodes the JSON answer into v. It returns
// the attempts made.
func (c *Client) post(ctx context.Context, path string, q url.Values, contentType string, body []byte, limit int64, v any) (int, error) {
	resp, n, err := c.do(ctx, http.MethodPost, path, q, contentType, body)
	if err != nil {
		return n, err
	}
	defer resp.Body.Close()
	return n, decodeJSON(resp.Body, limit, path, v)
}

// errRequest marks an error in building a request: sending it again cannot
// help.
var errRequest = errors.New("client: bad request")

// do sends a request, again as c.retry says while it fails in a way that
// may pass, and returns the response if its status is 2xx (the caller
// closes its body) and the attempts made. Any other status is returned as
// an *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte) (*http.Response, int, error) {
	start := c.retry.Now()
	for n := 1; ; n++ {
		resp, err := c.once(ctx, method, path, q, contentType, body)
		if err == nil || !retryable(ctx, err) {
			return resp, n, err
		}
		d, ok := c.retry.wait(n, start, err)
		if !ok {
			return nil, n, err
		}
		if c.retry.Sleep(ctx, d) != nil {
			return nil, n, err
		}
	}
}

// once sends a request once.
func (c *Client) once(ctx context.Context, method, path string, q url.Values, contentType string, body []byte) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errRequest, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "weft-client")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, newAPIError(resp.StatusCode, resp.Header, b, c.retry.Now())
	}
	return resp, nil
}

// readAll reads r to its end, failing with ErrBadResponse past limit bytes.
func readAll(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: answer longer than %d bytes", ErrBadResponse, limit)
	}
	return b, nil
}

// decodeJSON reads at most limit bytes of r and decodes them into v.
func decodeJSON(r io.Reader, limit int64, path string, v any) error {
	b, err := readAll(r, limit)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadResponse, path, err)
	}
	return nil
}
