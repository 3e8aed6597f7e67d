package wire

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/weftnet/weft/dag"
)

// The paths of the API.
const (
	PathInfo     = "/api/v1/info"
	PathTips     = "/api/v1/tips"
	PathMessages = "/api/v1/messages" // POST one; GET PathMessages+"/{id}" and +"/{id}/raw"
	PathBatch    = "/api/v1/messages/batch"
	PathProofs   = "/api/v1/proofs"  // POST a message's bytes; GET PathMessages+"/{id}/proof"
	PathIssuers  = "/api/v1/issuers" // GET PathIssuers+"/{key}/messages" and +"/{key}/equivocations"
	// PathEquivocations lists the equivocations the node has seen.
	PathEquivocations = "/api/v1/equivocations"
	PathEvents        = "/api/v1/events"
	PathMetrics       = "/metrics"
	PathHealth        = "/healthz"
	PathReady         = "/readyz"
)

// Content types of the request bodies.
const (
	ContentMessage = "application/octet-stream"
	ContentBatch   = "application/x-weft-batch"
)

// Limits of the issuer listing (GET /api/v1/issuers/{key}/messages).
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// ErrorBody is the body of every answer outside 2xx:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error is a stable code (a Code of the table, or one newer than the
// reader) and a message for people, which may change.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Info is GET /api/v1/info.
type Info struct {
	NodeID             string      `json:"node_id"`
	Network            string      `json:"network"`
	NetworkID          string      `json:"network_id"`
	Version            string      `json:"version"`
	Messages           uint64      `json:"messages"`
	Solid              uint64      `json:"solid"`
	Confirmed          uint64      `json:"confirmed"`
	Unconfirmed        uint64      `json:"unconfirmed"`
	Pending            uint64      `json:"pending"`
	Tips               uint64      `json:"tips"`
	Validators         []Validator `json:"validators"`
	Threshold          string      `json:"threshold"`
	Peers              []Peer      `json:"peers"`
	MessagesPerSecond  float64     `json:"messages_per_second"`
	ConfirmedPerSecond float64     `json:"confirmed_per_second"`
	// Durable is how many messages the store holds; StorageError says why
	// the store cannot commit, absent while it can.
	Durable      uint64 `json:"durable"`
	StorageError string `json:"storage_error,omitempty"`
	// Confirmations is the length of the node's confirmation order: the
	// id the next confirmed event of GET /api/v1/events gets.
	Confirmations uint64 `json:"confirmations"`
	// Rejected counts the messages refused since the node started, by
	// error code (only codes that occurred).
	Rejected map[string]uint64 `json:"rejected"`
	// MemoryBytes is the node process's resident memory (0 where the
	// system does not say); DiskBytes what its store's files take.
	MemoryBytes uint64 `json:"memory_bytes"`
	DiskBytes   uint64 `json:"disk_bytes"`
	// CaughtUp: the node caught up with a peer since it started (false
	// without gossip).
	CaughtUp bool `json:"caught_up"`
}

// Validator is one validator of Info.
type Validator struct {
	Key    string `json:"key"`
	Weight uint64 `json:"weight"`
}

// Peer is one gossip peer of Info.
type Peer struct {
	Key         string  `json:"key"`
	Addr        string  `json:"addr"`
	Connected   bool    `json:"connected"`
	MessagesIn  uint64  `json:"messages_in"`
	MessagesOut uint64  `json:"messages_out"`
	Invalid     uint64  `json:"invalid"`
	Dropped     uint64  `json:"dropped"`
	RequestsIn  uint64  `json:"requests_in"`
	RequestsOut uint64  `json:"requests_out"`
	RTTms       float64 `json:"rtt_ms"`
	// ConnectedSince is when the current connection came up (unix ns),
	// absent while not connected; LastError why the last one ended.
	ConnectedSince int64  `json:"connected_since,omitempty"`
	LastError      string `json:"last_error,omitempty"`
	// QueuedFrames and QueuedBytes are what waits in the peer's send
	// queue; SyncsIn, SyncsOut and EntryPointsIn its catch-up.
	QueuedFrames  uint64 `json:"queued_frames"`
	QueuedBytes   uint64 `json:"queued_bytes"`
	SyncsIn       uint64 `json:"syncs_in"`
	SyncsOut      uint64 `json:"syncs_out"`
	EntryPointsIn uint64 `json:"entry_points_in"`
}

// Tips is GET /api/v1/tips?size=N.
type Tips struct {
	Parents      []string `json:"parents"`
	MinTimestamp int64    `json:"min_timestamp"`
	Difficulty   int      `json:"difficulty"`
	PoWBase      int      `json:"pow_base"`
	Network      string   `json:"network"`
	NetworkID    string   `json:"network_id"`
	MaxPayload   int      `json:"max_payload"`
}

// Submitted is the answer of POST /api/v1/messages: 201 with ID (and Nonce
// with ?remote_pow=1), or 202 with Pending true.
type Submitted struct {
	ID      string  `json:"id"`
	Nonce   *uint64 `json:"nonce,omitempty"`
	Pending bool    `json:"pending,omitempty"`
}

// BatchResults is the answer of POST /api/v1/messages/batch: one result per
// message, in order.
type BatchResults struct {
	Results []BatchResult `json:"results"`
}

// BatchResult is the outcome of one message of a batch: Status 201
// (stored) or 202 (pending) without Error, or an error status with Error.
// ID is set whenever the message decoded.
type BatchResult struct {
	ID     string `json:"id,omitempty"`
	Status int    `json:"status"`
	Error  *Error `json:"error,omitempty"`
}

// Message is GET /api/v1/messages/{id} and one entry of the issuer listing.
// Optional fields are pointers: nil is absent. A message the node holds
// for its parents is Pending, not Solid, and has no Position.
type Message struct {
	ID             string   `json:"id"`
	Version        uint8    `json:"version"`
	NetworkID      string   `json:"network_id"`
	Parents        []string `json:"parents"`
	Issuer         string   `json:"issuer"`
	Seq            uint64   `json:"seq"`
	Timestamp      int64    `json:"timestamp"`
	Payload        []byte   `json:"payload"` // base64 in JSON
	Signature      string   `json:"signature"`
	Nonce          uint64   `json:"nonce"`
	Position       *uint64  `json:"position,omitempty"` // absent while pending
	Solid          bool     `json:"solid"`
	Pending        bool     `json:"pending,omitempty"` // held for its parents, not stored
	Confirmed      bool     `json:"confirmed"`
	ConfirmedAt    *int64   `json:"confirmed_at,omitempty"`
	Orphaned       bool     `json:"orphaned,omitempty"`
	ApprovalWeight *uint64  `json:"approval_weight,omitempty"`
	// Approvers are the validators whose approval the node counted, until
	// the message was confirmed; present with ApprovalWeight.
	Approvers []string  `json:"approvers,omitempty"`
	Children  *[]string `json:"children,omitempty"` // absent in the issuer listing
}

// NewMessage returns m's fields in the API's form, without the node's
// state (Position, Solid, Confirmed...), which the caller fills in.
func NewMessage(m *dag.Message) Message {
	p := m.Payload
	if p == nil {
		p = []byte{}
	}
	return Message{
		ID: m.ID().String(), Version: m.Version, NetworkID: FormatNetworkID(m.Network),
		Parents: []string{m.Parents[0].String(), m.Parents[1].String()}, Issuer: m.Issuer.String(),
		Seq: m.Seq, Timestamp: m.Timestamp, Payload: p, Signature: hex.EncodeToString(m.Signature[:]),
		Nonce: m.Nonce,
	}
}

// SetChildren sets m's children to ids (present, if empty).
func (m *Message) SetChildren(ids []dag.ID) {
	cs := make([]string, len(ids))
	for i, c := range ids {
		cs[i] = c.String()
	}
	m.Children = &cs
}

// IssuerPage is GET /api/v1/issuers/{key}/messages. NextAfterSeq is absent
// when there is nothing more.
type IssuerPage struct {
	Messages     []Message `json:"messages"`
	NextAfterSeq *uint64   `json:"next_after_seq,omitempty"`
	History
	// FirstSeq is the sequence number of the device's oldest message the
	// node holds; present once the node has dropped history (and holds a
	// message of the device).
	FirstSeq *uint64 `json:"first_seq,omitempty"`
}

// History is where a listing's history begins, once the node's retention
// has dropped some: every message timestamped after CompleteAfter (Unix
// nanoseconds) that the node stored, it still holds; older ones may have
// been dropped. Absent while nothing was dropped.
type History struct {
	CompleteAfter *int64 `json:"complete_after,omitempty"`
}

// Equivocation is two different messages of one issuer with one sequence
// number, both valid and both stored; SeenAt is when the node found the
// second, Unix nanoseconds.
type Equivocation struct {
	Issuer string `json:"issuer"`
	Seq    uint64 `json:"seq"`
	First  string `json:"first"`
	Second string `json:"second"`
	SeenAt int64  `json:"seen_at"`
}

// Equivocations is GET /api/v1/equivocations and
// GET /api/v1/issuers/{key}/equivocations: newest first.
type Equivocations struct {
	Equivocations []Equivocation `json:"equivocations"`
}

// Health is GET /healthz: {"status": "ok"}.
type Health struct {
	Status string `json:"status"`
}

// FormatNetworkID writes a network id as the API does: 16 hex characters.
func FormatNetworkID(n dag.NetworkID) string {
	return fmt.Sprintf("%016x", uint64(n))
}

// ErrField is wrapped by the errors of ParseID, ParseKey and
// ParseNetworkID: a field of an answer or request is not in the API's form.
var ErrField = errors.New("wire: malformed field")

// ParseNetworkID reads 16 hex characters.
func ParseNetworkID(s string) (dag.NetworkID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w: network_id: not 16 hex characters", ErrField)
	}
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: network_id: not 16 hex characters", ErrField)
	}
	return dag.NetworkID(n), nil
}

// ParseID reads a 64-hex-character id; field names it in the error.
func ParseID(field, s string) (dag.ID, error) {
	id, err := dag.ParseID(s)
	if err != nil {
		return id, fmt.Errorf("%w: %s: %q is not a %d-hex-character id", ErrField, field, truncate(s), 2*dag.IDSize)
	}
	return id, nil
}

// ParseKey reads a 64-hex-character public key; field names it in the error.
func ParseKey(field, s string) (dag.PublicKey, error) {
	id, err := dag.ParseID(s)
	if err != nil {
		return dag.PublicKey{}, fmt.Errorf("%w: %s: %q is not a %d-hex-character key", ErrField, field, truncate(s), 2*dag.PublicKeySize)
	}
	return dag.PublicKey(id), nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// writeBody writes v as JSON and a newline. An encoding error is a bug of
// the caller's type; a write error is the peer's leaving, which the server
// cannot report to it.
func writeBody(w io.Writer, v any) { _ = json.NewEncoder(w).Encode(v) }
