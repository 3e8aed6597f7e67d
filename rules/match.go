package rules

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The payload encodings of a Document.
const (
	EncodingJSON   = "json"   // the payload is JSON, carried as itself
	EncodingBase64 = "base64" // the payload is not JSON: a string of its standard base64
)

// Match is the document of one match: what a webhook posts, an event
// carries and the outbox keeps.
type Match struct {
	Rule string `json:"rule"`
	// Delivery identifies the match: "RULE:CONFIRMATION". It is the same
	// on every attempt, so that a receiver can drop duplicates.
	Delivery string   `json:"delivery"`
	Message  Document `json:"message"`
}

// Document is the confirmed message of a match.
type Document struct {
	ID           string    `json:"id"`     // hex
	Issuer       string    `json:"issuer"` // hex public key
	Device       string    `json:"device"` // the registry's name, "" if none
	Tags         []string  `json:"tags"`
	Seq          uint64    `json:"seq"`
	Timestamp    time.Time `json:"timestamp"` // RFC 3339 with nanoseconds, UTC
	Confirmation uint64    `json:"confirmation"`
	Position     uint64    `json:"position"`
	ConfirmedAt  time.Time `json:"confirmed_at"`
	// Payload is the payload itself when PayloadEncoding is "json", else a
	// string of its base64.
	Payload         json.RawMessage `json:"payload"`
	PayloadEncoding string          `json:"payload_encoding"`
}

// deliveryID returns the delivery id of a rule's match at a confirmation.
func deliveryID(rule string, confirmation uint64) string {
	return rule + ":" + strconv.FormatUint(confirmation, 10)
}

func newMatch(rule string, d *Document) *Match {
	return &Match{Rule: rule, Delivery: deliveryID(rule, d.Confirmation), Message: *d}
}

// encodeJSON encodes a record. The records are plain data: they always
// encode.
func encodeJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("rules: a record does not encode: %v", err))
	}
	return b
}

// maxRecord bounds what the decoders read: a match document of the largest
// payload, base64, with room for the rest.
const maxRecord = 1 << 18

var errCorrupt = errors.New("rules: corrupt record")

// DecodeMatch parses a match document as Match encodes it (a webhook body
// or an outbox record), checking it: it is hostile until then.
func DecodeMatch(b []byte) (*Match, error) {
	var m Match
	if err := decodeStrict(b, &m); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Match) check() error {
	if !namePattern.MatchString(m.Rule) {
		return fmt.Errorf("%w: rule name %.80q", errCorrupt, m.Rule)
	}
	if m.Delivery != deliveryID(m.Rule, m.Message.Confirmation) {
		return fmt.Errorf("%w: delivery %.80q for rule %q at confirmation %d", errCorrupt, m.Delivery, m.Rule, m.Message.Confirmation)
	}
	switch m.Message.PayloadEncoding {
	case EncodingJSON:
	case EncodingBase64:
		var s string
		if json.Unmarshal(m.Message.Payload, &s) != nil {
			return fmt.Errorf("%w: a base64 payload that is not a string", errCorrupt)
		}
	default:
		return fmt.Errorf("%w: payload encoding %.40q", errCorrupt, m.Message.PayloadEncoding)
	}
	if len(m.Message.Payload) == 0 {
		return fmt.Errorf("%w: no payload", errCorrupt)
	}
	return nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields,
// trailing data and records larger than maxRecord.
func decodeStrict(b []byte, v any) error {
	if len(b) > maxRecord {
		return fmt.Errorf("%w: %d bytes, more than %d", errCorrupt, len(b), maxRecord)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", errCorrupt)
	}
	return nil
}

// DeadLetter is a match given up after Config.MaxAttempts failed attempts.
type DeadLetter struct {
	Match     Match     `json:"match"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"last_error"`
	FailedAt  time.Time `json:"failed_at"` // the last attempt
}

// maxErrorLen bounds the error a dead letter keeps.
const maxErrorLen = 512

func decodeDeadLetter(b []byte) (*DeadLetter, error) {
	var d DeadLetter
	if err := decodeStrict(b, &d); err != nil {
		return nil, err
	}
	if err := d.Match.check(); err != nil {
		return nil, err
	}
	if d.Attempts < 1 || len(d.LastError) > maxErrorLen {
		return nil, fmt.Errorf("%w: dead letter of %d attempts, error of %d bytes", errCorrupt, d.Attempts, len(d.LastError))
	}
	return &d, nil
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// A cursor is the next confirmation a rule evaluates, 8 bytes big-endian.
func encodeCursor(c uint64) []byte { return binary.BigEndian.AppendUint64(nil, c) }

func decodeCursor(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: cursor of %d bytes", errCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// An outbox or dead-letter key is the match's confirmation, 8 bytes
// big-endian, so that the keys sort in confirmation order.
var (
	confKey    = encodeCursor
	decodeConf = decodeCursor
)
