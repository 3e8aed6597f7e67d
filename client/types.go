package client

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/weftnet/weft/dag"
)

// NodeInfo is a node's description of itself (GET /api/v1/info).
type NodeInfo struct {
	NodeID      dag.PublicKey
	Network     string
	NetworkID   dag.NetworkID
	Version     string
	Messages    uint64
	Solid       uint64
	Confirmed   uint64
	Unconfirmed uint64
	Pending     uint64
	Tips        uint64
	Validators  []dag.Validator
	// Threshold is the confirmation threshold as the node states it ("2/3").
	Threshold string
	// Peers are the node's peers, as the node describes them (docs/API.md
	// does not fix their form yet).
	Peers              []json.RawMessage
	MessagesPerSecond  float64
	ConfirmedPerSecond float64
}

type nodeInfoJSON struct {
	NodeID     string `json:"node_id"`
	Network    string `json:"network"`
	NetworkID  string `json:"network_id"`
	Version    string `json:"version"`
	Messages   uint64 `json:"messages"`
	Solid      uint64 `json:"solid"`
	Confirmed  uint64 `json:"confirmed"`
	Unconf     uint64 `json:"unconfirmed"`
	Pending    uint64 `json:"pending"`
	Tips       uint64 `json:"tips"`
	Validators []struct {
		Key    string `json:"key"`
		Weight uint64 `json:"weight"`
	} `json:"validators"`
	Threshold string            `json:"threshold"`
	Peers     []json.RawMessage `json:"peers"`
	MPS       float64           `json:"messages_per_second"`
	CPS       float64           `json:"confirmed_per_second"`
}

// UnmarshalJSON decodes the API's form of NodeInfo.
func (n *NodeInfo) UnmarshalJSON(b []byte) error {
	var w nodeInfoJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var (
		v   NodeInfo
		err error
	)
	if v.NodeID, err = parseKey("node_id", w.NodeID); err != nil {
		return err
	}
	if v.NetworkID, err = parseNetworkID(w.NetworkID); err != nil {
		return err
	}
	for _, val := range w.Validators {
		k, err := parseKey("validators.key", val.Key)
		if err != nil {
			return err
		}
		v.Validators = append(v.Validators, dag.Validator{Key: k, Weight: val.Weight})
	}
	v.Network, v.Version, v.Threshold, v.Peers = w.Network, w.Version, w.Threshold, w.Peers
	v.Messages, v.Solid, v.Confirmed, v.Unconfirmed, v.Pending, v.Tips = w.Messages, w.Solid, w.Confirmed, w.Unconf, w.Pending, w.Tips
	v.MessagesPerSecond, v.ConfirmedPerSecond = w.MPS, w.CPS
	*n = v
	return nil
}

// Tips is what a device needs to build a message (GET /api/v1/tips).
type Tips struct {
	// Parents are the two parents to approve. A node that names one parent
	// (a young network) has it twice here: the encoding allows equal parents.
	Parents [2]dag.ID
	// MinTimestamp is the newer parent's timestamp, unix nanoseconds: the
	// message's timestamp must not be below it.
	MinTimestamp int64
	// Difficulty is the leading zero bits a message of the asked payload
	// size needs.
	Difficulty int
	// Network is the network's name; NetworkID is derived from it.
	Network   string
	NetworkID dag.NetworkID
	// MaxPayload is the network's payload limit in bytes.
	MaxPayload int
}

type tipsJSON struct {
	Parents      []string `json:"parents"`
	MinTimestamp int64    `json:"min_timestamp"`
	Difficulty   int      `json:"difficulty"`
	Network      string   `json:"network"`
	NetworkID    string   `json:"network_id"`
	MaxPayload   int      `json:"max_payload"`
}

// UnmarshalJSON decodes the API's form of Tips and checks it: one or two
// parents, a network id that is the hash of the network's name, and
// numbers in range.
func (t *Tips) UnmarshalJSON(b []byte) error {
	var w tipsJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var v Tips
	if len(w.Parents) < 1 || len(w.Parents) > 2 {
		return fmt.Errorf("parents: %d of them, want 1 or 2", len(w.Parents))
	}
	for i, p := range w.Parents {
		id, err := parseID("parents", p)
		if err != nil {
			return err
		}
		v.Parents[i] = id
	}
	if len(w.Parents) == 1 {
		v.Parents[1] = v.Parents[0]
	}
	var err error
	if v.NetworkID, err = parseNetworkID(w.NetworkID); err != nil {
		return err
	}
	if want := dag.NetworkIDFromName(w.Network); v.NetworkID != want {
		return fmt.Errorf("network_id %016x is not the id of network %q (%016x)", uint64(v.NetworkID), w.Network, uint64(want))
	}
	if w.MinTimestamp < 0 {
		return fmt.Errorf("min_timestamp %d is negative", w.MinTimestamp)
	}
	if w.Difficulty < 0 || w.Difficulty > maxDifficulty {
		return fmt.Errorf("difficulty %d out of range 0..%d", w.Difficulty, maxDifficulty)
	}
	if w.MaxPayload < 0 || w.MaxPayload > dag.MaxPayload {
		return fmt.Errorf("max_payload %d out of range 0..%d", w.MaxPayload, dag.MaxPayload)
	}
	v.MinTimestamp, v.Difficulty, v.Network, v.MaxPayload = w.MinTimestamp, w.Difficulty, w.Network, w.MaxPayload
	*t = v
	return nil
}

// MessageInfo is a message with what the node knows of it
// (GET /api/v1/messages/{id}). The message's own fields are those of
// dag.Message; Message rebuilds it.
//
// MessageInfo marshals to and from the API's JSON form.
type MessageInfo struct {
	ID        dag.ID
	Version   uint8
	NetworkID dag.NetworkID
	Parents   [2]dag.ID
	Issuer    dag.PublicKey
	Seq       uint64
	Timestamp int64 // unix nanoseconds
	Payload   []byte
	Signature [dag.SignatureSize]byte
	Nonce     uint64

	// Position is the message's place in the node's log (local to the node).
	Position uint64
	Solid    bool
	// Confirmed reports whether the message is confirmed; ConfirmedAt is
	// when, in unix nanoseconds (0 while unconfirmed).
	Confirmed   bool
	ConfirmedAt int64
	// ApprovalWeight is nil when the node no longer holds the message in
	// its memory window.
	ApprovalWeight *uint64
	// Children are the messages approving this one that the node knows. The
	// issuer listing does not carry them (nil).
	Children []dag.ID
}

type messageJSON struct {
	ID             string    `json:"id"`
	Version        uint8     `json:"version"`
	NetworkID      string    `json:"network_id"`
	Parents        []string  `json:"parents"`
	Issuer         string    `json:"issuer"`
	Seq            uint64    `json:"seq"`
	Timestamp      int64     `json:"timestamp"`
	Payload        []byte    `json:"payload"`
	Signature      string    `json:"signature"`
	Nonce          uint64    `json:"nonce"`
	Position       uint64    `json:"position"`
	Solid          bool      `json:"solid"`
	Confirmed      bool      `json:"confirmed"`
	ConfirmedAt    *int64    `json:"confirmed_at,omitempty"`
	ApprovalWeight *uint64   `json:"approval_weight,omitempty"`
	Children       *[]string `json:"children,omitempty"` // nil: absent
}

// Message rebuilds the message from its fields. Its ID is m.ID if the node
// told the truth; Client.Get and Client.IssuerMessages check that it is.
func (m *MessageInfo) Message() *dag.Message {
	return &dag.Message{
		Version:   m.Version,
		Network:   m.NetworkID,
		Parents:   m.Parents,
		Issuer:    m.Issuer,
		Seq:       m.Seq,
		Timestamp: m.Timestamp,
		Payload:   m.Payload,
		Signature: m.Signature,
		Nonce:     m.Nonce,
	}
}

// MarshalJSON encodes m in the API's form: hex IDs and keys, base64 payload.
func (m MessageInfo) MarshalJSON() ([]byte, error) {
	w := messageJSON{
		ID:             m.ID.String(),
		Version:        m.Version,
		NetworkID:      formatNetworkID(m.NetworkID),
		Parents:        []string{m.Parents[0].String(), m.Parents[1].String()},
		Issuer:         m.Issuer.String(),
		Seq:            m.Seq,
		Timestamp:      m.Timestamp,
		Payload:        m.Payload,
		Signature:      hex.EncodeToString(m.Signature[:]),
		Nonce:          m.Nonce,
		Position:       m.Position,
		Solid:          m.Solid,
		Confirmed:      m.Confirmed,
		ApprovalWeight: m.ApprovalWeight,
	}
	if w.Payload == nil {
		w.Payload = []byte{}
	}
	if m.Confirmed {
		w.ConfirmedAt = &m.ConfirmedAt
	}
	if m.Children != nil {
		cs := make([]string, len(m.Children))
		for i, c := range m.Children {
			cs[i] = c.String()
		}
		w.Children = &cs
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the API's form of a message.
func (m *MessageInfo) UnmarshalJSON(b []byte) error {
	var w messageJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var (
		v   MessageInfo
		err error
	)
	if v.ID, err = parseID("id", w.ID); err != nil {
		return err
	}
	if v.NetworkID, err = parseNetworkID(w.NetworkID); err != nil {
		return err
	}
	if len(w.Parents) != 2 {
		return fmt.Errorf("parents: %d of them, want 2", len(w.Parents))
	}
	for i, p := range w.Parents {
		if v.Parents[i], err = parseID("parents", p); err != nil {
			return err
		}
	}
	if v.Issuer, err = parseKey("issuer", w.Issuer); err != nil {
		return err
	}
	if len(w.Signature) != 2*dag.SignatureSize {
		return fmt.Errorf("signature: %d hex characters, want %d", len(w.Signature), 2*dag.SignatureSize)
	}
	if _, err := hex.Decode(v.Signature[:], []byte(w.Signature)); err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	if len(w.Payload) > dag.MaxPayload {
		return fmt.Errorf("payload: %d bytes, more than any message carries", len(w.Payload))
	}
	if w.Timestamp < 0 {
		return fmt.Errorf("timestamp %d is negative", w.Timestamp)
	}
	if w.Children != nil {
		v.Children = make([]dag.ID, 0, len(*w.Children))
		for _, c := range *w.Children {
			id, err := parseID("children", c)
			if err != nil {
				return err
			}
			v.Children = append(v.Children, id)
		}
	}
	v.Version, v.Seq, v.Timestamp, v.Payload, v.Nonce = w.Version, w.Seq, w.Timestamp, w.Payload, w.Nonce
	v.Position, v.Solid, v.Confirmed, v.ApprovalWeight = w.Position, w.Solid, w.Confirmed, w.ApprovalWeight
	if w.ConfirmedAt != nil {
		v.ConfirmedAt = *w.ConfirmedAt
	}
	*m = v
	return nil
}

// IssuerPage is one page of an issuer's messages, in sequence order
// (GET /api/v1/issuers/{pubkey}/messages).
type IssuerPage struct {
	Messages []MessageInfo
	// NextAfterSeq continues the listing: pass it as afterSeq for the next
	// page. It is nil when there is nothing more.
	NextAfterSeq *uint64
}

type issuerPageJSON struct {
	Messages     []MessageInfo `json:"messages"`
	NextAfterSeq *uint64       `json:"next_after_seq"`
}

// BatchResult is the outcome of one message of a batch.
type BatchResult struct {
	// ID is the message's ID when it was accepted (Err == nil).
	ID dag.ID
	// Status is the HTTP status the message would have had alone (201 when
	// accepted).
	Status int
	// Err is nil when the message was accepted, otherwise an *APIError.
	Err error
}

type batchResultJSON struct {
	ID     string `json:"id"`
	Status int    `json:"status"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Event is one event of the node's event stream: its name (EventMessage,
// EventConfirmed, or a name newer than this client) and its data, JSON.
type Event struct {
	Name string
	Data json.RawMessage
}

// Names of the events of the API.
const (
	// EventMessage: a message became durable; decode with Event.Message.
	EventMessage = "message"
	// EventConfirmed: a message's confirmation became durable; decode with
	// Event.Confirmed.
	EventConfirmed = "confirmed"
	// EventOverflow: the node is dropping the client for being slow.
	// Client.Events reports it as ErrOverflow and never passes it on.
	EventOverflow = "overflow"
)

// MessageEvent is the data of a "message" event.
type MessageEvent struct {
	ID        dag.ID
	Issuer    dag.PublicKey
	Seq       uint64
	Position  uint64
	Parents   [2]dag.ID
	Timestamp int64
}

// ConfirmedEvent is the data of a "confirmed" event.
type ConfirmedEvent struct {
	ID          dag.ID
	Position    uint64
	ConfirmedAt int64
}

// Message decodes the data of a "message" event.
func (e Event) Message() (*MessageEvent, error) {
	var w struct {
		ID        string   `json:"id"`
		Issuer    string   `json:"issuer"`
		Seq       uint64   `json:"seq"`
		Position  uint64   `json:"position"`
		Parents   []string `json:"parents"`
		Timestamp int64    `json:"timestamp"`
	}
	if e.Name != EventMessage {
		return nil, fmt.Errorf("client: event %q is not a %q event", e.Name, EventMessage)
	}
	if err := json.Unmarshal(e.Data, &w); err != nil {
		return nil, fmt.Errorf("%w: message event: %v", ErrBadResponse, err)
	}
	var (
		v   MessageEvent
		err error
	)
	if v.ID, err = parseID("id", w.ID); err != nil {
		return nil, fmt.Errorf("%w: message event: %v", ErrBadResponse, err)
	}
	if v.Issuer, err = parseKey("issuer", w.Issuer); err != nil {
		return nil, fmt.Errorf("%w: message event: %v", ErrBadResponse, err)
	}
	if len(w.Parents) != 2 {
		return nil, fmt.Errorf("%w: message event: %d parents", ErrBadResponse, len(w.Parents))
	}
	for i, p := range w.Parents {
		if v.Parents[i], err = parseID("parents", p); err != nil {
			return nil, fmt.Errorf("%w: message event: %v", ErrBadResponse, err)
		}
	}
	v.Seq, v.Position, v.Timestamp = w.Seq, w.Position, w.Timestamp
	return &v, nil
}

// Confirmed decodes the data of a "confirmed" event.
func (e Event) Confirmed() (*ConfirmedEvent, error) {
	var w struct {
		ID          string `json:"id"`
		Position    uint64 `json:"position"`
		ConfirmedAt int64  `json:"confirmed_at"`
	}
	if e.Name != EventConfirmed {
		return nil, fmt.Errorf("client: event %q is not a %q event", e.Name, EventConfirmed)
	}
	if err := json.Unmarshal(e.Data, &w); err != nil {
		return nil, fmt.Errorf("%w: confirmed event: %v", ErrBadResponse, err)
	}
	id, err := parseID("id", w.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: confirmed event: %v", ErrBadResponse, err)
	}
	return &ConfirmedEvent{ID: id, Position: w.Position, ConfirmedAt: w.ConfirmedAt}, nil
}

// maxDifficulty bounds the difficulty a node may state (pow.MaxDifficulty).
const maxDifficulty = 64

func parseID(field, s string) (dag.ID, error) {
	id, err := dag.ParseID(s)
	if err != nil {
		return id, fmt.Errorf("%s: %q is not a %d-hex-character id", field, truncate(s), 2*dag.IDSize)
	}
	return id, nil
}

func parseKey(field, s string) (dag.PublicKey, error) {
	id, err := dag.ParseID(s)
	if err != nil {
		return dag.PublicKey{}, fmt.Errorf("%s: %q is not a %d-hex-character key", field, truncate(s), 2*dag.PublicKeySize)
	}
	return dag.PublicKey(id), nil
}

var errNetworkID = errors.New("network_id: not 16 hex characters")

func parseNetworkID(s string) (dag.NetworkID, error) {
	if len(s) != 16 {
		return 0, errNetworkID
	}
	n, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, errNetworkID
	}
	return dag.NetworkID(n), nil
}

func formatNetworkID(n dag.NetworkID) string { return fmt.Sprintf("%016x", uint64(n)) }

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
