package api

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

// TestAppendEvent checks that the node's events reach wire's encoding
// field for field: every field of these events has a value of its own, so
// a field written in another's place shows.
func TestAppendEvent(t *testing.T) {
	msg := node.Event{Kind: node.EventMessage, ID: dag.ID{1}, Issuer: dag.PublicKey{2}, Parents: [2]dag.ID{{3}, {4}},
		Pos: 5, Seq: 6, Timestamp: 7, ConfirmedAt: 8}
	conf := node.Event{Kind: node.EventConfirmed, ID: dag.ID{9}, Pos: 10, ConfirmedAt: 11, Seq: 12, Timestamp: 13,
		Issuer: dag.PublicKey{14}, ConfirmSeq: 15, Parents: [2]dag.ID{{16}, {17}}}
	evs := readEvents(t, appendEvent(appendEvent(nil, msg), conf))
	if len(evs) != 2 || evs[0].Name != wire.EventMessage || evs[1].Name != wire.EventConfirmed {
		t.Fatalf("events %q", evs)
	}
	m, err := wire.DecodeMessage(evs[0].Data)
	if want := (wire.MessageEvent{ID: msg.ID, Issuer: msg.Issuer, Seq: 6, Position: 5, Parents: msg.Parents, Timestamp: 7}); err != nil || m != want {
		t.Errorf("message event %+v, %v; want %+v", m, err, want)
	}
	c, err := wire.DecodeConfirmed(evs[1].Data)
	if want := (wire.ConfirmedEvent{ID: conf.ID, Position: 10, ConfirmedAt: 11, Seq: 12, Timestamp: 13, Issuer: conf.Issuer,
		Confirmation: 15}); err != nil || !reflect.DeepEqual(c, want) || evs[1].ID != "15" {
		t.Errorf("confirmed event %+v, %v; want %+v", c, err, want)
	}
	if got := appendEvent([]byte("x"), node.Event{}); string(got) != "x" {
		t.Errorf("an event of no kind wrote %q", got)
	}
}

func readEvents(t *testing.T, b []byte) []wire.Event {
	t.Helper()
	er := wire.NewEventReader(bytes.NewReader(b))
	var evs []wire.Event
	for {
		ev, err := er.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	e := node.Event{Kind: node.EventMessage, ID: dag.ID{1}, Issuer: dag.PublicKey{2}, Pos: 123456, Seq: 99, Timestamp: 1767225600000000000}
	c := node.Event{Kind: node.EventConfirmed, ID: dag.ID{1}, Pos: 123456, ConfirmedAt: 1767225600120000000}
	var buf []byte
	for b.Loop() {
		buf = appendEvent(appendEvent(buf[:0], e), c)
	}
}
