package api

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

var eventSeed = flag.Uint64("event-seed", 0, "seed of TestAppendEvent (0: random)")

// TestAppendEvent checks that the node's events reach wire's encoding
// field for field: each random event decodes back to what it was.
func TestAppendEvent(t *testing.T) {
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
	for i := range 500 {
		var e node.Event
		e.Kind = node.EventMessage + node.EventKind(i%2)
		fill(e.ID[:])
		fill(e.Issuer[:])
		fill(e.Parents[0][:])
		fill(e.Parents[1][:])
		e.Pos, e.Seq = r.Uint64(), r.Uint64()
		e.Timestamp, e.ConfirmedAt = int64(r.Uint64()), int64(r.Uint64())
		evs := readEvents(t, appendEvent(nil, e))
		if len(evs) != 1 {
			t.Fatalf("event %+v: %d events", e, len(evs))
		}
		switch e.Kind {
		case node.EventMessage:
			m, err := wire.DecodeMessage(evs[0].Data)
			want := wire.MessageEvent{ID: e.ID, Issuer: e.Issuer, Seq: e.Seq, Position: e.Pos, Parents: e.Parents, Timestamp: e.Timestamp}
			if err != nil || m != want || evs[0].Name != wire.EventMessage {
				t.Fatalf("event %+v: %s %+v, %v", e, evs[0].Name, m, err)
			}
		case node.EventConfirmed:
			c, err := wire.DecodeConfirmed(evs[0].Data)
			want := wire.ConfirmedEvent{ID: e.ID, Position: e.Pos, ConfirmedAt: e.ConfirmedAt}
			if err != nil || c != want || evs[0].Name != wire.EventConfirmed {
				t.Fatalf("event %+v: %s %+v, %v", e, evs[0].Name, c, err)
			}
		}
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
