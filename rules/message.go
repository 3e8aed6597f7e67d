package rules

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/weftnet/weft/dag"
)

// Message is a confirmed message as rules see it: the message and its place
// in the node's confirmation order.
type Message struct {
	// Confirmation is the message's place in the node's confirmation order
	// (0, 1, 2...): the key of every cursor.
	Confirmation uint64
	Position     uint64    // the message's place in the node's store
	ConfirmedAt  time.Time // when the node confirmed it
	// Msg is the message. The engine computes its ID (Msg.ID, which caches
	// it) on its own goroutine when a condition or a match needs it: a
	// Source hands each call's messages to the engine alone, as a node's
	// does (it decodes them from the store for each call).
	Msg *dag.Message
}

// Device is what the node's registry knows of an issuer.
type Device struct {
	Name string // "" when the issuer is not registered
	Tags []string
}

// Lookup returns what the registry knows of an issuer. It is called from
// the engine's goroutine, at most once per message, and must not block.
type Lookup func(issuer dag.PublicKey) Device

// vars is the CEL activation of one message, shared by every rule that
// evaluates it. Each variable is computed on first access: a payload no
// condition reads is never parsed, and one that several read is parsed
// once. It is used by one goroutine at a time.
type vars struct {
	m      *Message
	lookup Lookup

	payload     ref.Val // nil until parsed
	payloadJSON bool    // the payload is JSON; valid once payload is set
	dev         *Device // nil until looked up
	doc         *Document
}

func newVars(m *Message, lookup Lookup) *vars { return &vars{m: m, lookup: lookup} }

// ResolveName returns the value of a variable of the environment.
func (v *vars) ResolveName(name string) (any, bool) {
	m := v.m
	switch name {
	case "id":
		return types.String(m.Msg.ID().String()), true
	case "issuer":
		return types.String(m.Msg.Issuer.String()), true
	case "seq":
		return types.Uint(m.Msg.Seq), true
	case "timestamp":
		return types.Timestamp{Time: time.Unix(0, m.Msg.Timestamp).UTC()}, true
	case "confirmed_at":
		return types.Timestamp{Time: m.ConfirmedAt.UTC()}, true
	case "position":
		return types.Uint(m.Position), true
	case "confirmation":
		return types.Uint(m.Confirmation), true
	case "tags":
		return types.NewStringList(types.DefaultTypeAdapter, v.device().Tags), true
	case "device":
		return types.String(v.device().Name), true
	case "payload":
		return v.parsed(), true
	case "payload_raw":
		return types.Bytes(m.Msg.Payload), true
	}
	return nil, false
}

// Parent returns nil: the activation has no parent.
func (v *vars) Parent() interpreter.Activation { return nil }

func (v *vars) device() *Device {
	if v.dev == nil {
		v.dev = new(Device)
		if v.lookup != nil {
			*v.dev = v.lookup(v.m.Msg.Issuer)
			v.dev.Tags = boundTags(v.dev.Tags)
		}
	}
	return v.dev
}

// boundTags returns tags without those past MaxTags or longer than
// MaxTagLen, copying only when it leaves one out.
func boundTags(tags []string) []string {
	ok := len(tags) <= MaxTags
	for _, t := range tags {
		ok = ok && len(t) <= MaxTagLen
	}
	if ok {
		return tags
	}
	out := make([]string, 0, min(len(tags), MaxTags))
	for _, t := range tags {
		if len(t) <= MaxTagLen && len(out) < MaxTags {
			out = append(out, t)
		}
	}
	return out
}

// parsed returns the payload parsed as JSON, or null when it is not JSON.
func (v *vars) parsed() ref.Val {
	if v.payload == nil {
		var x any
		if err := json.Unmarshal(v.m.Msg.Payload, &x); err != nil {
			v.payload = types.NullValue
		} else {
			v.payload = types.DefaultTypeAdapter.NativeToValue(x)
			v.payloadJSON = true
		}
	}
	return v.payload
}

// document returns the message as a match document carries it, built once
// per message.
func (v *vars) document() *Document {
	if v.doc == nil {
		m := v.m
		d := v.device()
		v.doc = &Document{
			ID:           m.Msg.ID().String(),
			Issuer:       m.Msg.Issuer.String(),
			Device:       d.Name,
			Tags:         d.Tags,
			Seq:          m.Msg.Seq,
			Timestamp:    time.Unix(0, m.Msg.Timestamp).UTC(),
			Confirmation: m.Confirmation,
			Position:     m.Position,
			ConfirmedAt:  m.ConfirmedAt.UTC(),
		}
		if v.doc.Tags == nil {
			v.doc.Tags = []string{}
		}
		v.doc.Payload, v.doc.PayloadEncoding = encodePayload(m.Msg.Payload)
	}
	return v.doc
}

// encodePayload returns a payload as a document carries it: itself when it
// is JSON, else a JSON string of its base64.
func encodePayload(p []byte) (json.RawMessage, string) {
	if json.Valid(p) {
		return json.RawMessage(p), EncodingJSON
	}
	b, _ := json.Marshal(base64.StdEncoding.EncodeToString(p)) // a string always marshals
	return b, EncodingBase64
}
