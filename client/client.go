package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/pow"
)

// Limits of the batch endpoint (docs/API.md). SubmitBatch refuses a larger
// batch with ErrBatchTooLarge before sending it.
const (
	// MaxBatchMessages is the most messages one batch may carry.
	MaxBatchMessages = 4096
	// MaxBatchBytes is the most bytes a batch body may have, length
	// prefixes included.
	MaxBatchBytes = 8 << 20
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
	defaultPageLimit = 100
	maxPageLimit     = 1000
)

// defaultPollInterval is how often WaitConfirmed asks for the message, in
// case it missed the event.
const defaultPollInterval = 250 * time.Millisecond

// Client speaks to one node's HTTP API (docs/API.md). Every method takes a
// context that bounds the whole call, including reading the answer. A Client
// is safe for concurrent use by multiple goroutines; it holds no state
// beyond its configuration and the HTTP client's connection pool.
//
// Every answer outside 2xx is returned as an *APIError. Answers are read
// through bounded readers and checked: IDs the node returns are checked
// against the bytes where the client can compute them, so a node cannot
// pass off one message for another.
type Client struct {
	base         string // without a trailing slash
	http         *http.Client
	pollInterval time.Duration
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

// New returns a Client for the node whose API is at baseURL, such as
// "http://127.0.0.1:8080" (the "/api/v1" paths are appended). By default it
// uses its own http.Client with the default transport and no timeout.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		base:         strings.TrimRight(baseURL, "/"),
		http:         &http.Client{},
		pollInterval: defaultPollInterval,
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
	if err := c.getJSON(ctx, "/api/v1/info", nil, maxSmallJSON, &v); err != nil {
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
	if err := c.getJSON(ctx, "/api/v1/tips", q, maxSmallJSON, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Submit sends one message in its canonical encoding, signed and solved,
// and returns its ID once the node has made it durable. The node's refusal
// is an *APIError (CodeDuplicate if the node already has it).
func (c *Client) Submit(ctx context.Context, raw []byte) (dag.ID, error) {
	var ans struct {
		ID string `json:"id"`
	}
	if err := c.post(ctx, "/api/v1/messages", nil, "application/octet-stream", raw, maxSmallJSON, &ans); err != nil {
		return dag.ID{}, err
	}
	id, err := parseID("id", ans.ID)
	if err != nil {
		return dag.ID{}, fmt.Errorf("%w: submit: %v", ErrBadResponse, err)
	}
	if want := dag.ID(pow.Hash(raw)); id != want {
		return dag.ID{}, fmt.Errorf("%w: submit: node says id %s, the message's is %s", ErrBadResponse, id, want)
	}
	return id, nil
}

// SubmitRemotePoW sends one signed message whose proof of work the node is
// to do (the nonce may be anything), and returns the message's final ID and
// the nonce the node found. The node does this only for issuer keys its
// operator lists: for others it answers CodeForbidden.
func (c *Client) SubmitRemotePoW(ctx context.Context, raw []byte) (dag.ID, uint64, error) {
	var ans struct {
		ID    string  `json:"id"`
		Nonce *uint64 `json:"nonce"`
	}
	q := url.Values{"remote_pow": {"1"}}
	if err := c.post(ctx, "/api/v1/messages", q, "application/octet-stream", raw, maxSmallJSON, &ans); err != nil {
		return dag.ID{}, 0, err
	}
	id, err := parseID("id", ans.ID)
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
	var ans struct {
		Results []batchResultJSON `json:"results"`
	}
	if err := c.post(ctx, "/api/v1/messages/batch", nil, "application/x-weft-batch", body, maxBatchJSON, &ans); err != nil {
		return nil, err
	}
	if len(ans.Results) != len(raws) {
		return nil, fmt.Errorf("%w: batch of %d messages, %d results", ErrBadResponse, len(raws), len(ans.Results))
	}
	res := make([]BatchResult, len(raws))
	for i, r := range ans.Results {
		res[i].Status = r.Status
		if r.Status >= 200 && r.Status < 300 && r.Error == nil {
			id, err := parseID("id", r.ID)
			if err != nil {
				return nil, fmt.Errorf("%w: batch result %d: %v", ErrBadResponse, i, err)
			}
			if want := dag.ID(pow.Hash(raws[i])); id != want {
				return nil, fmt.Errorf("%w: batch result %d: node says id %s, the message's is %s", ErrBadResponse, i, id, want)
			}
			res[i].ID = id
			continue
		}
		e := &APIError{Status: r.Status}
		if r.Error != nil {
			e.Code, e.Message = printable(r.Error.Code), printable(r.Error.Message)
		}
		if e.Status == 0 {
			return nil, fmt.Errorf("%w: batch result %d: no status", ErrBadResponse, i)
		}
		res[i].Err = e
	}
	return res, nil
}

// EncodeBatch returns the body of a batch request: each message preceded by
// its length as a 4-byte big-endian integer. It refuses more than
// MaxBatchMessages messages or a body over MaxBatchBytes with
// ErrBatchTooLarge.
func EncodeBatch(raws [][]byte) ([]byte, error) {
	if len(raws) > MaxBatchMessages {
		return nil, fmt.Errorf("%w: %d messages, at most %d", ErrBatchTooLarge, len(raws), MaxBatchMessages)
	}
	n := 0
	for _, r := range raws {
		n += 4 + len(r)
	}
	if n > MaxBatchBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBatchTooLarge, n, MaxBatchBytes)
	}
	body := make([]byte, 0, n)
	for _, r := range raws {
		body = binary.BigEndian.AppendUint32(body, uint32(len(r)))
		body = append(body, r...)
	}
	return body, nil
}

// Get returns the message id and what the node knows of it; CodeNotFound if
// the node does not have it. It checks that the fields hash to id.
func (c *Client) Get(ctx context.Context, id dag.ID) (*MessageInfo, error) {
	var v MessageInfo
	if err := c.getJSON(ctx, "/api/v1/messages/"+id.String(), nil, maxGetJSON, &v); err != nil {
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
	resp, err := c.do(ctx, http.MethodGet, "/api/v1/messages/"+id.String()+"/raw", nil, "", nil)
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
	var w issuerPageJSON
	if err := c.getJSON(ctx, "/api/v1/issuers/"+key.String()+"/messages", q, int64(n)*maxPageEntry+4096, &w); err != nil {
		return nil, err
	}
	if len(w.Messages) > n {
		return nil, fmt.Errorf("%w: asked for at most %d messages, got %d", ErrBadResponse, n, len(w.Messages))
	}
	for i := range w.Messages {
		m := &w.Messages[i]
		if m.Issuer != key {
			return nil, fmt.Errorf("%w: message %s of the listing of %s is issued by %s", ErrBadResponse, m.ID, key, m.Issuer)
		}
		if err := checkFields(m); err != nil {
			return nil, err
		}
	}
	if w.Messages == nil {
		w.Messages = []MessageInfo{}
	}
	return &IssuerPage{Messages: w.Messages, NextAfterSeq: w.NextAfterSeq}, nil
}

// getJSON GETs path and decodes the JSON answer, at most limit bytes, into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, limit int64, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, q, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeJSON(resp.Body, limit, path, v)
}

// post POSTs body to path and decodes the JSON answer into v.
func (c *Client) post(ctx context.Context, path string, q url.Values, contentType string, body []byte, limit int64, v any) error {
	resp, err := c.do(ctx, http.MethodPost, path, q, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decodeJSON(resp.Body, limit, path, v)
}

// do sends a request and returns the response if its status is 2xx; the
// caller closes its body. Any other status is returned as an *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte) (*http.Response, error) {
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
		return nil, fmt.Errorf("client: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "weft-client")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, newAPIError(resp.StatusCode, resp.Header, b)
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
