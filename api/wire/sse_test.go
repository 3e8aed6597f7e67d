package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/weftnet/weft/dag"
)

var eventSeed = flag.Uint64("event-seed", 0, "seed of TestAppendEvents (0: random)")

// TestAppendEvents checks the hand-written event encoding against
// encoding/json, byte for byte (keys sorted, as encoding/json writes a
// map), over random events and the extremes of every number, and decodes
// each back.
func TestAppendEvents(t *testing.T) {
	seed := *eventSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t.Logf("seed %d (-event-seed to repeat)", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	fill := func(b []byte) {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	}
	enc := func(head string, v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return append(append([]byte(head), b...), "\n\n"...)
	}
	nums := []uint64{0, 1, math.MaxInt64, math.MaxUint64}
	for i := range 2000 {
		var m MessageEvent
		fill(m.ID[:])
		fill(m.Issuer[:])
		fill(m.Parents[0][:])
		fill(m.Parents[1][:])
		m.Position, m.Seq, m.Timestamp = r.Uint64(), r.Uint64(), int64(r.Uint64())
		c := ConfirmedEvent{ID: m.ID, Position: r.Uint64(), ConfirmedAt: int64(r.Uint64()), Confirmation: r.Uint64(),
			Issuer: m.Issuer, Seq: r.Uint64(), Timestamp: int64(r.Uint64())}
		if i < len(nums) {
			n := nums[i]
			m.Position, m.Seq, m.Timestamp = n, n, int64(n)
			c.Position, c.ConfirmedAt, c.Confirmation, c.Seq, c.Timestamp = n, -int64(n>>1), n, n, int64(n)
		}
		wantData := map[string]any{"id": c.ID.String(), "position": c.Position, "confirmed_at": c.ConfirmedAt,
			"confirmation": c.Confirmation, "issuer": c.Issuer.String(), "seq": c.Seq, "timestamp": c.Timestamp}
		switch i % 3 {
		case 1: // a JSON payload, written compact
			c.HasPayload, c.Payload = true, []byte(fmt.Sprintf("{\"t\": %d,\n \"s\": \"a\\nb\"}", i))
			wantData["payload"], wantData["payload_encoding"] = json.RawMessage(fmt.Sprintf(`{"t":%d,"s":"a\nb"}`, i)), "json"
		case 2: // anything else, in base64
			c.HasPayload, c.Payload = true, make([]byte, r.IntN(40))
			fill(c.Payload)
			c.Payload = append(c.Payload, 0xff) // never valid JSON
			wantData["payload"], wantData["payload_encoding"] = base64.StdEncoding.EncodeToString(c.Payload), "base64"
		}
		wantM := enc("event: message\ndata: ", map[string]any{"id": m.ID.String(), "issuer": m.Issuer.String(),
			"seq": m.Seq, "position": m.Position, "parents": []string{m.Parents[0].String(), m.Parents[1].String()},
			"timestamp": m.Timestamp})
		wantC := enc(fmt.Sprintf("id: %d\nevent: confirmed\ndata: ", c.Confirmation), wantData)
		got := AppendConfirmed(AppendMessage(nil, &m), &c)
		if !bytes.Equal(got, append(wantM, wantC...)) {
			t.Fatalf("events %+v %+v:\ngot  %s\nwant %s%s", m, c, got, wantM, wantC)
		}
		evs, err := readAll(bytes.NewReader(got))
		if !errors.Is(err, io.EOF) || len(evs) != 2 {
			t.Fatalf("reading back: %q, %v", evs, err)
		}
		if back, err := DecodeMessage(evs[0].Data); err != nil || back != m || evs[0].Name != EventMessage {
			t.Fatalf("message event back: %+v, %v", back, err)
		}
		back, err := DecodeConfirmed(evs[1].Data)
		if wantData["payload_encoding"] == "json" {
			c.Payload = []byte(wantData["payload"].(json.RawMessage)) // compacted
		}
		if err != nil || !reflect.DeepEqual(back, c) || evs[1].Name != EventConfirmed || evs[1].ID != fmt.Sprint(c.Confirmation) {
			t.Fatalf("confirmed event back: %+v, %v; want %+v", back, err, c)
		}
	}
}

func BenchmarkAppendEvents(b *testing.B) {
	m := MessageEvent{ID: dag.ID{1}, Issuer: dag.PublicKey{2}, Position: 123456, Seq: 99, Timestamp: 1767225600000000000}
	c := ConfirmedEvent{ID: dag.ID{1}, Position: 123456, ConfirmedAt: 1767225600120000000}
	var buf []byte
	for b.Loop() {
		buf = AppendConfirmed(AppendMessage(buf[:0], &m), &c)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	for _, data := range []string{`{"id": "00"}`, `{"id": `, `[]`} {
		if _, err := DecodeConfirmed([]byte(data)); !errors.Is(err, ErrEvent) {
			t.Errorf("confirmed %s: %v", data, err)
		}
		if _, err := DecodeMessage([]byte(data)); !errors.Is(err, ErrEvent) {
			t.Errorf("message %s: %v", data, err)
		}
	}
	id := dag.ID{1}.String()
	if _, err := DecodeMessage([]byte(fmt.Sprintf(`{"id": %q, "issuer": %q, "parents": [%q]}`, id, id, id))); !errors.Is(err, ErrEvent) {
		t.Errorf("one parent: %v", err)
	}
}

// readAll reads every event of stream.
func readAll(r io.Reader) ([]Event, error) {
	er := NewEventReader(r)
	var evs []Event
	for {
		ev, err := er.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func ev(name, data string) Event { return Event{Name: name, Data: []byte(data)} }

func TestEventParsing(t *testing.T) {
	for _, tc := range []struct {
		name, stream string
		want         []Event
	}{
		{"api example", "event: message\ndata: {\"id\": \"a\"}\n\nevent: confirmed\ndata: {\"id\": \"b\"}\n\n",
			[]Event{ev("message", `{"id": "a"}`), ev("confirmed", `{"id": "b"}`)}},
		{"multi-line data", "event: confirmed\ndata: {\"id\":\ndata:  \"b\"}\ndata\n\n",
			[]Event{ev("confirmed", "{\"id\":\n \"b\"}\n")}},
		{"comments", ": hello\n\n:keep-alive\nevent: x\n: between\ndata: 1\n\n: bye\n\n",
			[]Event{ev("x", "1")}},
		{"default name", "data: 1\n\n", []Event{ev("message", "1")}},
		{"no space after colon", "event:x\ndata:1\n\n", []Event{ev("x", "1")}},
		{"only one space stripped", "data:  1\n\n", []Event{ev("message", " 1")}},
		{"empty data", "event: x\ndata:\n\n", []Event{ev("x", "")}},
		{"event without data is dropped", "event: x\n\ndata: 2\n\n", []Event{ev("message", "2")}},
		{"id kept, retry ignored", "id: 7\nretry: 100\nevent: x\nunknown: y\ndata: 1\n\n", []Event{{Name: "x", Data: []byte("1"), ID: "7"}}},
		{"an id is the event's own", "id: 7\ndata: 1\n\ndata: 2\n\n", []Event{{Name: EventMessage, Data: []byte("1"), ID: "7"}, ev(EventMessage, "2")}},
		{"an id with NUL is ignored", "id: 7\x008\ndata: 1\n\n", []Event{ev(EventMessage, "1")}},
		{"crlf", "event: x\r\ndata: 1\r\n\r\nevent: y\r\ndata: 2\r\n\r\n", []Event{ev("x", "1"), ev("y", "2")}},
		{"cr", "event: x\rdata: 1\r\revent: y\rdata: 2\r\r", []Event{ev("x", "1"), ev("y", "2")}},
		{"byte order mark", "\xef\xbb\xbfevent: x\ndata: 1\n\n", []Event{ev("x", "1")}},
		{"last event incomplete", "event: x\ndata: 1\n\nevent: y\ndata: 2\n", []Event{ev("x", "1")}},
		{"last line unterminated", "event: x\ndata: 1\n\ndata: 2", []Event{ev("x", "1")}},
		{"colon in value", "data: a:b\n\n", []Event{ev("message", "a:b")}},
		{"the node's fixed parts", StreamOpen + KeepAlive + Overflow, []Event{ev(EventOverflow, `{"reason":"behind","message":"the client fell further behind than the node keeps events; events were missed"}`)}},
		{"empty", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(strings.NewReader(tc.stream))
			if !errors.Is(err, io.EOF) {
				t.Fatalf("error %v, want io.EOF", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestEventParsingByteByByte feeds the stream one byte per read, so that
// every line end, "\r\n" included, is split across reads.
func TestEventParsingByteByByte(t *testing.T) {
	stream := "event: x\r\ndata: 1\r\n\r\nevent: y\rdata: 2\r\r\ndata: 3\n\n"
	got, err := readAll(&oneByteReader{s: stream})
	want := []Event{ev("x", "1"), ev("y", "2"), ev("message", "3")}
	if !errors.Is(err, io.EOF) || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, %v\nwant %q", got, err, want)
	}
}

type oneByteReader struct{ s string }

func (r *oneByteReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.s[0]
	r.s = r.s[1:]
	return 1, nil
}

func TestEventTooLarge(t *testing.T) {
	line := "data: " + strings.Repeat("x", 1000) + "\n"
	for name, stream := range map[string]string{
		"many lines": strings.Repeat(line, MaxEventSize/1000+1) + "\n",
		"one line":   "data: " + strings.Repeat("x", MaxEventSize+1) + "\n\n",
	} {
		if _, err := readAll(strings.NewReader(stream)); !errors.Is(err, ErrEventTooLarge) {
			t.Errorf("%s: %v, want ErrEventTooLarge", name, err)
		}
	}
	// Comments and events under the bound add up to more, but never in one event.
	stream := strings.Repeat(": "+strings.Repeat("k", 1000)+"\n", MaxEventSize/1000+1) +
		strings.Repeat(line+"\n", MaxEventSize/1000+1)
	evs, err := readAll(strings.NewReader(stream))
	if !errors.Is(err, io.EOF) || len(evs) != MaxEventSize/1000+1 {
		t.Fatalf("%d events, %v", len(evs), err)
	}
}

// FuzzEvents checks that the event parser never panics and that how the
// stream is cut into reads never changes the events.
func FuzzEvents(f *testing.F) {
	for _, s := range []string{
		"event: message\ndata: {}\n\n",
		"data: a\r\ndata: b\r\n\r\n: c\r\r",
		"\xef\xbb\xbfevent:x\ndata\n\nid: 1\nretry: 2\n\n",
		"data: a\r",
		"event: confirmed\ndata: {\"id\": \"00\"}\n\n",
		string(AppendRule(nil, &RuleEvent{Rule: "r", ID: dag.ID{1}.String(), Issuer: dag.PublicKey{2}.String()})),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		whole, err1 := readAll(strings.NewReader(s))
		bytewise, err2 := readAll(&oneByteReader{s: s})
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(whole, bytewise) {
			t.Fatalf("%q: whole %q (%v), byte by byte %q (%v)", s, whole, err1, bytewise, err2)
		}
		for _, e := range whole {
			if e.Name == "" || len(e.Data) > len(s) {
				t.Fatalf("%q: event %q", s, e)
			}
			DecodeMessage(e.Data)
			DecodeConfirmed(e.Data)
			DecodeRule(e.Data)
		}
	})
}

// TestRuleEvent: a rule event carries no SSE id, and decodes to what was
// written; one without a rule or with a bad id is refused.
func TestRuleEvent(t *testing.T) {
	in := RuleEvent{Rule: "cold-chain", Confirmation: 7, ConfirmedAt: 8, ID: dag.ID{1}.String(),
		Issuer: dag.PublicKey{2}.String(), Position: 9, Seq: 10, Timestamp: 11}
	evs, err := readAll(strings.NewReader(string(AppendRule(nil, &in))))
	if !errors.Is(err, io.EOF) || len(evs) != 1 || evs[0].Name != EventRule || evs[0].ID != "" {
		t.Fatalf("%+v %v", evs, err)
	}
	out, err := DecodeRule(evs[0].Data)
	if err != nil || out != in {
		t.Fatalf("decoded %+v %v, want %+v", out, err, in)
	}
	for _, bad := range []string{`{"rule":"","id":"` + in.ID + `","issuer":"` + in.Issuer + `"}`, `{"rule":"r","id":"zz","issuer":"` + in.Issuer + `"}`, `[]`} {
		if _, err := DecodeRule([]byte(bad)); !errors.Is(err, ErrEvent) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
