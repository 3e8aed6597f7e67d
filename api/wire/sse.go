package wire

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/weftnet/weft/dag"
)

// Names of the events of GET /api/v1/events.
const (
	// EventMessage: a message became durable (MessageEvent).
	EventMessage = "message"
	// EventConfirmed: a message's confirmation became durable
	// (ConfirmedEvent).
	EventConfirmed = "confirmed"
	// EventRule: a rule whose action is "event" matched a confirmed
	// message (docs/RULES.md). Live only: it carries no SSE id, so that a
	// client's Last-Event-ID stays that of the last confirmed event.
	EventRule = "rule"
	// EventOverflow: the node is dropping the client for falling too far
	// behind; its data says so: {"reason": "behind", "message": "..."}.
	EventOverflow = "overflow"
)

// Fixed parts of the stream.
const (
	// StreamOpen is the comment that opens the stream.
	StreamOpen = ": weft events\n\n"
	// KeepAlive is the comment sent while the stream is idle.
	KeepAlive = ": keepalive\n\n"
	// Overflow is the last event of a stream the node cuts for falling
	// behind.
	Overflow = "event: overflow\ndata: {\"reason\":\"behind\",\"message\":\"the client fell further behind than the node keeps events; events were missed\"}\n\n"
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

// ConfirmedEvent is the data of a "confirmed" event. Confirmation is its
// place in the node's confirmation order, also the event's SSE id: a
// consumer resumes after it (Last-Event-ID or ?since=).
type ConfirmedEvent struct {
	ID           dag.ID
	Position     uint64
	ConfirmedAt  int64
	Confirmation uint64
	Issuer       dag.PublicKey
	Seq          uint64
	Timestamp    int64
	// Payload, when the stream asked for payloads (HasPayload).
	Payload    []byte
	HasPayload bool
}

// Payload encodings, as an event or a record of an export names them.
const (
	// PayloadJSON: the payload is valid JSON, and is written as its value.
	PayloadJSON = "json"
	// PayloadBase64: the payload is anything else, written as a base64
	// (standard, padded) string.
	PayloadBase64 = "base64"
)

// PayloadText puts into buf how an event or an export record gives
// payload p, and returns which encoding that is: PayloadJSON and p
// compacted onto one line when p is valid JSON, else PayloadBase64 and its
// base64.
func PayloadText(buf *bytes.Buffer, p []byte) string {
	buf.Reset()
	if len(p) > 0 && json.Compact(buf, p) == nil {
		return PayloadJSON
	}
	buf.Reset()
	buf.Grow(base64.StdEncoding.EncodedLen(len(p)))
	buf.Write(base64.StdEncoding.AppendEncode(buf.AvailableBuffer(), p))
	return PayloadBase64
}

// AppendPayload appends the JSON fields of payload p: "payload", its
// PayloadText (a JSON value, or a base64 string), then "payload_encoding",
// which says which.
func AppendPayload(b, p []byte) []byte {
	var buf bytes.Buffer
	enc := PayloadText(&buf, p)
	b = append(b, `"payload":`...)
	if enc == PayloadJSON {
		b = append(b, buf.Bytes()...)
	} else {
		b = append(b, '"')
		b = append(b, buf.Bytes()...)
		b = append(b, '"')
	}
	return append(append(append(b, `,"payload_encoding":"`...), enc...), '"')
}

// DecodePayload returns the payload that AppendPayload wrote as raw with
// encoding.
func DecodePayload(raw json.RawMessage, encoding string) ([]byte, error) {
	switch encoding {
	case PayloadJSON:
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%w: payload is not JSON", ErrEvent)
		}
		return []byte(raw), nil
	case PayloadBase64:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("%w: payload: %v", ErrEvent, err)
		}
		p, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: payload: %v", ErrEvent, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("%w: payload encoding %q", ErrEvent, encoding)
}

// AppendMessage appends e as a server-sent "message" event. The data is
// the JSON object docs/API.md describes, keys in alphabetical order,
// written directly: a busy node writes two events per message to every
// subscriber, and encoding/json's reflection took 7% of a loaded node's
// CPU.
func AppendMessage(b []byte, e *MessageEvent) []byte {
	b = append(b, "event: message\ndata: {\"id\":"...)
	b = appendHex(b, e.ID[:])
	b = append(b, `,"issuer":`...)
	b = appendHex(b, e.Issuer[:])
	b = append(b, `,"parents":[`...)
	b = appendHex(b, e.Parents[0][:])
	b = append(b, ',')
	b = appendHex(b, e.Parents[1][:])
	b = append(b, `],"position":`...)
	b = strconv.AppendUint(b, e.Position, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, e.Timestamp, 10)
	return append(b, "}\n\n"...)
}

// AppendConfirmed appends e as a server-sent "confirmed" event with the
// SSE id e.Confirmation, written as AppendMessage writes its event.
func AppendConfirmed(b []byte, e *ConfirmedEvent) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, e.Confirmation, 10)
	b = append(b, "\nevent: confirmed\ndata: "...)
	b = AppendConfirmedJSON(b, e)
	return append(b, "\n\n"...)
}

// AppendConfirmedJSON appends the data of e's "confirmed" event: one line
// of JSON, keys in alphabetical order.
func AppendConfirmedJSON(b []byte, e *ConfirmedEvent) []byte {
	b = append(b, `{"confirmation":`...)
	b = strconv.AppendUint(b, e.Confirmation, 10)
	b = append(b, `,"confirmed_at":`...)
	b = strconv.AppendInt(b, e.ConfirmedAt, 10)
	b = append(b, `,"id":`...)
	b = appendHex(b, e.ID[:])
	b = append(b, `,"issuer":`...)
	b = appendHex(b, e.Issuer[:])
	if e.HasPayload {
		b = append(b, ',')
		b = AppendPayload(b, e.Payload)
	}
	b = append(b, `,"position":`...)
	b = strconv.AppendUint(b, e.Position, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, e.Timestamp, 10)
	return append(b, '}')
}

func appendHex(b, v []byte) []byte {
	b = append(b, '"')
	b = hex.AppendEncode(b, v)
	return append(b, '"')
}

// ErrEvent is wrapped by the errors of DecodeMessage and DecodeConfirmed:
// the data is not the event's JSON.
var ErrEvent = errors.New("wire: malformed event")

// DecodeMessage decodes the data of a "message" event.
func DecodeMessage(data []byte) (MessageEvent, error) {
	var w struct {
		ID        string   `json:"id"`
		Issuer    string   `json:"issuer"`
		Seq       uint64   `json:"seq"`
		Position  uint64   `json:"position"`
		Parents   []string `json:"parents"`
		Timestamp int64    `json:"timestamp"`
	}
	var v MessageEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return v, fmt.Errorf("%w: message event: %v", ErrEvent, err)
	}
	var err error
	if v.ID, err = ParseID("id", w.ID); err != nil {
		return v, fmt.Errorf("%w: message event: %w", ErrEvent, err)
	}
	if v.Issuer, err = ParseKey("issuer", w.Issuer); err != nil {
		return v, fmt.Errorf("%w: message event: %w", ErrEvent, err)
	}
	if len(w.Parents) != 2 {
		return v, fmt.Errorf("%w: message event: %d parents", ErrEvent, len(w.Parents))
	}
	for i, p := range w.Parents {
		if v.Parents[i], err = ParseID("parents", p); err != nil {
			return v, fmt.Errorf("%w: message event: %w", ErrEvent, err)
		}
	}
	v.Seq, v.Position, v.Timestamp = w.Seq, w.Position, w.Timestamp
	return v, nil
}

// DecodeConfirmed decodes the data of a "confirmed" event.
func DecodeConfirmed(data []byte) (ConfirmedEvent, error) {
	var w struct {
		ID              string          `json:"id"`
		Position        uint64          `json:"position"`
		ConfirmedAt     int64           `json:"confirmed_at"`
		Confirmation    uint64          `json:"confirmation"`
		Issuer          string          `json:"issuer"`
		Seq             uint64          `json:"seq"`
		Timestamp       int64           `json:"timestamp"`
		Payload         json.RawMessage `json:"payload"`
		PayloadEncoding string          `json:"payload_encoding"`
	}
	var v ConfirmedEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return v, fmt.Errorf("%w: confirmed event: %v", ErrEvent, err)
	}
	var err error
	if v.ID, err = ParseID("id", w.ID); err != nil {
		return v, fmt.Errorf("%w: confirmed event: %w", ErrEvent, err)
	}
	if v.Issuer, err = ParseKey("issuer", w.Issuer); err != nil {
		return v, fmt.Errorf("%w: confirmed event: %w", ErrEvent, err)
	}
	if w.Payload != nil || w.PayloadEncoding != "" {
		if v.Payload, err = DecodePayload(w.Payload, w.PayloadEncoding); err != nil {
			return v, fmt.Errorf("confirmed event: %w", err)
		}
		v.HasPayload = true
	}
	v.Position, v.ConfirmedAt, v.Confirmation, v.Seq, v.Timestamp = w.Position, w.ConfirmedAt, w.Confirmation, w.Seq, w.Timestamp
	return v, nil
}

// MaxEventSize bounds one event of the stream (its lines and its data): an
// EventReader fails with ErrEventTooLarge past it. The API's events are a
// few hundred bytes.
const MaxEventSize = 1 << 20

// ErrEventTooLarge: an event of the stream exceeds MaxEventSize.
var ErrEventTooLarge = errors.New("wire: event too large")

// Event is one server-sent event: its name ("message" when the stream
// names none), its data, and its id field ("" when it has none; unlike a
// browser's lastEventId, an event without an id does not inherit one).
type Event struct {
	Name string
	Data []byte
	ID   string
}

// EventReader parses a server-sent-events stream (the WHATWG HTML
// standard): comments and the "retry" field are ignored, data
// lines are joined with newlines, lines end with "\r\n", "\n" or "\r", and
// an event without data is not delivered. It is not safe for concurrent
// use.
type EventReader struct {
	sc      *bufio.Scanner
	skipLF  bool // the last line ended with '\r': a '\n' right after belongs to it
	started bool // the byte order mark, if any, has been skipped
}

// NewEventReader returns a reader of the stream r.
func NewEventReader(r io.Reader) *EventReader {
	er := &EventReader{sc: bufio.NewScanner(r)}
	er.sc.Buffer(make([]byte, 0, 4096), MaxEventSize)
	er.sc.Split(er.splitLine)
	return er
}

// splitLine splits at "\r\n", "\n" or "\r", the three line ends of the
// standard, without waiting for more input after a '\r'.
func (er *EventReader) splitLine(data []byte, atEOF bool) (int, []byte, error) {
	off := 0
	if er.skipLF && len(data) > 0 && data[0] == '\n' {
		off = 1 // the rest of the last line's "\r\n"
	}
	rest := data[off:]
	if i := bytes.IndexAny(rest, "\r\n"); i >= 0 {
		er.skipLF = rest[i] == '\r'
		return off + i + 1, rest[:i], nil
	}
	if atEOF && len(data) > 0 {
		er.skipLF = false
		if len(rest) == 0 {
			return len(data), nil, nil
		}
		return len(data), rest, nil
	}
	return 0, nil, nil
}

// Next returns the next complete event; its Data is its own. At the end of
// the stream it returns io.EOF, discarding an event not ended by a blank
// line; past MaxEventSize, an error wrapping ErrEventTooLarge; otherwise
// the reader's error.
func (er *EventReader) Next() (Event, error) {
	var (
		name, id string
		data     []byte
		size     int
		seen     bool // some data line was seen
	)
	for er.sc.Scan() {
		line := er.sc.Bytes()
		if !er.started {
			er.started = true
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) == 0 {
			if !seen {
				name, id, size = "", "", 0
				continue
			}
			if name == "" {
				name = EventMessage
			}
			if data == nil {
				data = []byte{}
			}
			return Event{Name: name, Data: data, ID: id}, nil
		}
		if line[0] == ':' {
			continue // a comment, such as a keep-alive
		}
		if size += len(line); size > MaxEventSize {
			return Event{}, fmt.Errorf("%w: more than %d bytes", ErrEventTooLarge, MaxEventSize)
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			name = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 { // the standard ignores an id with NUL
				id = string(value)
			}
		case "data":
			if seen {
				data = append(data, '\n')
			}
			data = append(data, value...)
			seen = true
		}
	}
	if err := er.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Event{}, fmt.Errorf("%w: a line of more than %d bytes", ErrEventTooLarge, MaxEventSize)
		}
		return Event{}, err
	}
	return Event{}, io.EOF
}

// RuleEvent is the data of a "rule" event: the rule and the confirmed
// message it matched.
type RuleEvent struct {
	Rule         string `json:"rule"`
	Confirmation uint64 `json:"confirmation"`
	ConfirmedAt  int64  `json:"confirmed_at"`
	ID           string `json:"id"`
	Issuer       string `json:"issuer"`
	Position     uint64 `json:"position"`
	Seq          uint64 `json:"seq"`
	Timestamp    int64  `json:"timestamp"`
}

// AppendRule appends e as a server-sent "rule" event, without an SSE id.
func AppendRule(b []byte, e *RuleEvent) []byte {
	data, _ := json.Marshal(e) // plain data: it always encodes
	b = append(b, "event: rule\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// DecodeRule decodes the data of a "rule" event.
func DecodeRule(data []byte) (RuleEvent, error) {
	var v RuleEvent
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%w: rule event: %v", ErrEvent, err)
	}
	if _, err := ParseID("id", v.ID); err != nil {
		return v, fmt.Errorf("%w: rule event: %w", ErrEvent, err)
	}
	if _, err := ParseKey("issuer", v.Issuer); err != nil {
		return v, fmt.Errorf("%w: rule event: %w", ErrEvent, err)
	}
	if v.Rule == "" {
		return v, fmt.Errorf("%w: rule event: no rule", ErrEvent)
	}
	return v, nil
}
