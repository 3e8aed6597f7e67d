package proof

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDocumentJSONRoundTrip(t *testing.T) {
	f := newFixture(t, rng(t), 6)
	b, err := json.Marshal(f.doc)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadDocument(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f.doc) {
		t.Fatalf("round trip changed the document:\n%+v\n%+v", got, f.doc)
	}
	if _, err := Verify(got, f.trust); err != nil {
		t.Fatal(err)
	}
}

func TestReadDocumentRefuses(t *testing.T) {
	f := newFixture(t, rng(t), 1)
	good, _ := json.Marshal(f.doc)
	for name, s := range map[string]string{
		"not json":    "proof",
		"version 2":   strings.Replace(string(good), `"version":1`, `"version":2`, 1),
		"bad hex":     strings.Replace(string(good), `"message":"01`, `"message":"zz`, 1),
		"short id":    strings.Replace(string(good), `"id":"`, `"id":"00`, 1),
		"long path":   strings.Replace(string(good), `"path":[`, `"path":[`+strings.Repeat(`"`+strings.Repeat("00", 32)+`",`, 33), 1),
		"huge":        `{"version":1,"message":"` + strings.Repeat("0", MaxDocumentSize) + `"}`,
		"wrong types": `{"version":"1"}`,
	} {
		if _, err := ReadDocument(strings.NewReader(s)); !errors.Is(err, ErrDocument) {
			t.Errorf("%s: %v, want ErrDocument", name, err)
		}
	}
}

func FuzzReadDocument(f *testing.F) {
	fx := newFixture(f, rng(f), 2)
	good, _ := json.Marshal(fx.doc)
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ReadDocument(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrDocument) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// Whatever decodes verifies or fails with a typed reason, never panics.
		if _, err := Verify(d, fx.trust); err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped verify error %v", err)
			}
		}
	})
}
