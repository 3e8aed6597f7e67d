package client

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzEvents checks that the event parser never panics and that how the
// stream is cut into reads never changes the events.
func FuzzEvents(f *testing.F) {
	for _, s := range []string{
		"event: message\ndata: {}\n\n",
		"data: a\r\ndata: b\r\n\r\n: c\r\r",
		"\xef\xbb\xbfevent:x\ndata\n\nid: 1\nretry: 2\n\n",
		"data: a\r",
		"event: confirmed\ndata: {\"id\": \"00\"}\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		whole, err1 := parseAll(strings.NewReader(s))
		bytewise, err2 := parseAll(&oneByteReader{s: s})
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(whole, bytewise) {
			t.Fatalf("%q: whole %q (%v), byte by byte %q (%v)", s, whole, err1, bytewise, err2)
		}
		for _, e := range whole {
			if e.Name == "" || len(e.Data) > len(s) {
				t.Fatalf("%q: event %q", s, e)
			}
			e.Message()
			e.Confirmed()
		}
	})
}

// FuzzMessageInfoJSON checks that what decodes as a message re-encodes to
// JSON that decodes to the same.
func FuzzMessageInfoJSON(f *testing.F) {
	f.Add(string(messageJSONFor(testMessage(testKey(1), 1, "x"), nil)))
	f.Add(string(messageJSONFor(testMessage(testKey(1), 2, ""), map[string]any{"confirmed": false, "children": nil})))
	f.Add(string(messageJSONFor(testMessage(testKey(1), 3, "y"), map[string]any{"children": []string{}, "approval_weight": nil})))
	f.Fuzz(func(t *testing.T, s string) {
		var m MessageInfo
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back MessageInfo
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !m.Confirmed {
			m.ConfirmedAt = 0 // not carried while unconfirmed
		}
		if len(m.Payload) == 0 {
			m.Payload, back.Payload = nil, nil
		}
		if !reflect.DeepEqual(m, back) {
			t.Fatalf("%s:\n%+v\n%+v", b, m, back)
		}
	})
}
