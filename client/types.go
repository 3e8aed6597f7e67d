package client

import (
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/weftnet/weft/api/wire"
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
	// Peers are the node's peers, each a wire.Peer in its JSON form.
	Peers              []json.RawMessage
	MessagesPerSecond  float64
	ConfirmedPerSecond float64
	// Durable is how many messages the store holds; StorageError says why
	// the store cannot commit ("" while it can).
	Durable      uint64
	StorageError string
	// Confirmations is the length of the node's confirmation order: the
	// place its next confirmed event takes (FollowConfirmed).
	Confirmations uint64
}

// UnmarshalJSON decodes the API's form of NodeInfo (wire.Info).
func (n *NodeInfo) UnmarshalJSON(b []byte) error {
	var w wire.Info
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var (
		v   NodeInfo
		err error
	)
	if v.NodeID, err = wire.ParseKey("node_id", w.NodeID); err != nil {
		return err
	}
	if v.NetworkID, err = wire.ParseNetworkID(w.NetworkID); err != nil {
		return err
	}
	for _, val := range w.Validators {
		k, err := wire.ParseKey("validators.key", val.Key)
		if err != nil {
			return err
		}
		v.Validators = append(v.Validators, dag.Validator{Key: k, Weight: val.Weight})
	}
	if w.Peers != nil {
		v.Peers = make([]json.RawMessage, 0, len(w.Peers))
	}
	for _, p := range w.Peers {
		raw, err := json.Marshal(p)
		if err != nil {
			return err
		}
		v.Peers = append(v.Peers, raw)
	}
	v.Network, v.Version, v.Threshold = w.Network, w.Version, w.Threshold
	v.Messages, v.Solid, v.Confirmed, v.Unconfirmed, v.Pending, v.Tips = w.Messages, w.Solid, w.Confirmed, w.Unconfirmed, w.Pending, w.Tips
	v.MessagesPerSecond, v.ConfirmedPerSecond = w.MessagesPerSecond, w.ConfirmedPerSecond
	v.Durable, v.StorageError, v.Confirmations = w.Durable, w.StorageError, w.Confirmations
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

// UnmarshalJSON decodes the API's form of Tips and checks it: one or two
// parents, a network id that is the hash of the network's name, and
// numbers in range.
func (t *Tips) UnmarshalJSON(b []byte) error {
	var w wire.Tips
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	var v Tips
	if len(w.Parents) < 1 || len(w.Parents) > 2 {
		return fmt.Errorf("parents: %d of them, want 1 or 2", len(w.Parents))
	}
	for i, p := range w.Parents {
		id, err := wire.ParseID("parents", p)
		if err != nil {
			return err
		}
		v.Parents[i] = id
	}
	if len(w.Parents) == 1 {
		v.Parents[1] = v.Parents[0]
	}
	var err error
	if v.NetworkID, err = wire.ParseNetworkID(w.NetworkID); err != nil {
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

	// Position is the message's place in the node's log (local to the
	// node); 0 while Pending.
	Position uint64
	Solid    bool
	// Pending reports that the node holds the message for its parents: it
	// is not stored yet (and not Solid).
	Pending bool
	// Confirmed reports whether the message is confirmed; ConfirmedAt is
	// when, in unix nanoseconds (0 while unconfirmed).
	Confirmed   bool
	ConfirmedAt int64
	// Orphaned reports that the message stayed unconfirmed too long and
	// was given up: it will not be confirmed.
	Orphaned bool
	// ApprovalWeight is nil when the node no longer holds the message in
	// its memory window.
	ApprovalWeight *uint64
	// Children are the messages approving this one that the node knows. The
	// issuer listing does not carry them (nil).
	Children []dag.ID
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

// MarshalJSON encodes m in the API's form (wire.Message).
func (m MessageInfo) MarshalJSON() ([]byte, error) { return json.Marshal(m.wire()) }

// wire returns m in the API's form.
func (m *MessageInfo) wire() wire.Message {
	w := wire.NewMessage(m.Message())
	w.ID = m.ID.String() // what the node said, even where the fields disagree
	w.Solid, w.Pending, w.Confirmed, w.ApprovalWeight, w.Orphaned = m.Solid, m.Pending, m.Confirmed, m.ApprovalWeight, m.Orphaned
	if !m.Pending {
		pos := m.Position
		w.Position = &pos
	}
	if m.Confirmed {
		at := m.ConfirmedAt
		w.ConfirmedAt = &at
	}
	if m.Children != nil {
		w.SetChildren(m.Children)
	}
	return w
}

// UnmarshalJSON decodes the API's form of a message.
func (m *MessageInfo) UnmarshalJSON(b []byte) error {
	var w wire.Message
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	v, err := fromWire(&w)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// fromWire checks and converts a message of the API.
func fromWire(w *wire.Message) (MessageInfo, error) {
	var (
		v   MessageInfo
		err error
	)
	if v.ID, err = wire.ParseID("id", w.ID); err != nil {
		return v, err
	}
	if v.NetworkID, err = wire.ParseNetworkID(w.NetworkID); err != nil {
		return v, err
	}
	if len(w.Parents) != 2 {
		return v, fmt.Errorf("parents: %d of them, want 2", len(w.Parents))
	}
	for i, p := range w.Parents {
		if v.Parents[i], err = wire.ParseID("parents", p); err != nil {
			return v, err
		}
	}
	if v.Issuer, err = wire.ParseKey("issuer", w.Issuer); err != nil {
		return v, err
	}
	if len(w.Signature) != 2*dag.SignatureSize {
		return v, fmt.Errorf("signature: %d hex characters, want %d", len(w.Signature), 2*dag.SignatureSize)
	}
	if _, err := hex.Decode(v.Signature[:], []byte(w.Signature)); err != nil {
		return v, fmt.Errorf("signature: %v", err)
	}
	if len(w.Payload) > dag.MaxPayload {
		return v, fmt.Errorf("payload: %d bytes, more than any message carries", len(w.Payload))
	}
	if w.Timestamp < 0 {
		return v, fmt.Errorf("timestamp %d is negative", w.Timestamp)
	}
	if w.Children != nil {
		v.Children = make([]dag.ID, 0, len(*w.Children))
		for _, c := range *w.Children {
			id, err := wire.ParseID("children", c)
			if err != nil {
				return v, err
			}
			v.Children = append(v.Children, id)
		}
	}
	v.Version, v.Seq, v.Timestamp, v.Payload, v.Nonce = w.Version, w.Seq, w.Timestamp, w.Payload, w.Nonce
	v.Solid, v.Pending, v.Confirmed, v.ApprovalWeight, v.Orphaned = w.Solid, w.Pending, w.Confirmed, w.ApprovalWeight, w.Orphaned
	switch {
	case w.Position != nil && !w.Pending:
		v.Position = *w.Position
	case w.Position == nil && !w.Pending:
		return v, fmt.Errorf("position: absent from a message that is not pending")
	}
	if w.ConfirmedAt != nil {
		v.ConfirmedAt = *w.ConfirmedAt
	}
	return v, nil
}

// IssuerPage is one page of an issuer's messages, in sequence order
// (GET /api/v1/issuers/{pubkey}/messages).
type IssuerPage struct {
	Messages []MessageInfo
	// NextAfterSeq continues the listing: pass it as afterSeq for the next
	// page. It is nil when there is nothing more.
	NextAfterSeq *uint64
}

// BatchResult is the outcome of one message of a batch.
type BatchResult struct {
	// ID is the message's ID when it was accepted (Err == nil).
	ID dag.ID
	// Status is the HTTP status the message would have had alone (201 when
	// stored, 202 when pending).
	Status int
	// Pending reports that the node accepted the message and holds it
	// until its parents arrive (202): it is not durable yet.
	Pending bool
	// Err is nil when the message was accepted, otherwise an *APIError.
	Err error
}

// Event is one event of the node's event stream: its name (EventMessage,
// EventConfirmed, or a name newer than this client), its data, JSON, and
// its SSE id (a confirmed event's place in the node's confirmation order;
// "" for others).
type Event struct {
	Name string
	Data json.RawMessage
	ID   string
}

// Names of the events of the API.
const (
	// EventMessage: a message became durable; decode with Event.Message.
	EventMessage = wire.EventMessage
	// EventConfirmed: a message's confirmation became durable; decode with
	// Event.Confirmed.
	EventConfirmed = wire.EventConfirmed
	// EventRule: a rule whose action is "event" matched a confirmed
	// message; decode with Event.Rule. Only when FeedOptions.Kinds asks
	// for it; live only, it carries no ID.
	EventRule = wire.EventRule
	// EventOverflow: the node is dropping the client for being slow.
	// Client.Events reports it as ErrOverflow and never passes it on.
	EventOverflow = wire.EventOverflow
)

// RuleEvent is the data of a "rule" event.
type RuleEvent = wire.RuleEvent

// MessageEvent is the data of a "message" event.
type MessageEvent = wire.MessageEvent

// ConfirmedEvent is the data of a "confirmed" event.
type ConfirmedEvent = wire.ConfirmedEvent

// Message decodes the data of a "message" event.
func (e Event) Message() (*MessageEvent, error) {
	return decodeEvent(e, EventMessage, wire.DecodeMessage)
}

// Confirmed decodes the data of a "confirmed" event.
func (e Event) Confirmed() (*ConfirmedEvent, error) {
	return decodeEvent(e, EventConfirmed, wire.DecodeConfirmed)
}

// Rule decodes the data of a "rule" event.
func (e Event) Rule() (*RuleEvent, error) {
	return decodeEvent(e, EventRule, wire.DecodeRule)
}

// decodeEvent decodes the data of e, which must be a name event.
func decodeEvent[T any](e Event, name string, decode func([]byte) (T, error)) (*T, error) {
	if e.Name != name {
		return nil, fmt.Errorf("client: event %q is not a %q event", e.Name, name)
	}
	v, err := decode(e.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return &v, nil
}

// maxDifficulty bounds the difficulty a node may state (pow.MaxDifficulty).
const maxDifficulty = 64
