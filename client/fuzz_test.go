package client

import (
	"encoding/json"
	"reflect"
	"testing"
)

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
