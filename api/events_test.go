package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

var eventSeed = flag.Uint64("event-seed", 0, "seed of TestAppendEvent (0: random)")

// TestAppendEvent checks the hand-written event encoding against
// encoding/json, byte for byte (keys sorted, as encoding/json writes a
// map), over random events and the extremes of every number.
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
	want := func(e node.Event) []byte {
		var v any
		var head string
		switch e.Kind {
		case node.EventMessage:
			head = "event: message\ndata: "
			v = map[string]any{"id": e.ID.String(), "issuer": e.Issuer.String(), "seq": e.Seq, "position": e.Pos,
				"parents": []string{e.Parents[0].String(), e.Parents[1].String()}, "timestamp": e.Timestamp}
		case node.EventConfirmed:
			head = "event: confirmed\ndata: "
			v = map[string]any{"id": e.ID.String(), "position": e.Pos, "confirmed_at": e.ConfirmedAt}
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return append(append([]byte(head), b...), "\n\n"...)
	}
	nums := []uint64{0, 1, math.MaxInt64, math.MaxUint64}
	for i := range 2000 {
		var e node.Event
		e.Kind = node.EventMessage + node.EventKind(i%2)
		fill(e.ID[:])
		fill(e.Issuer[:])
		fill(e.Parents[0][:])
		fill(e.Parents[1][:])
		e.Pos, e.Seq = r.Uint64(), r.Uint64()
		e.Timestamp, e.ConfirmedAt = int64(r.Uint64()), int64(r.Uint64())
		if i < 4*len(nums) {
			n := nums[i%len(nums)]
			e.Pos, e.Seq, e.Timestamp, e.ConfirmedAt = n, n, int64(n), -int64(n>>1)
		}
		got := appendEvent(nil, e)
		if w := want(e); !bytes.Equal(got, w) {
			t.Fatalf("event %+v:\ngot  %s\nwant %s", e, got, w)
		}
	}
	// Events append: two in one buffer are the two encodings in order.
	a := node.Event{Kind: node.EventConfirmed, ID: dag.ID{1}, Pos: 2, ConfirmedAt: 3}
	b := node.Event{Kind: node.EventMessage, ID: dag.ID{4}, Pos: 5}
	if got := appendEvent(appendEvent(nil, a), b); !bytes.Equal(got, append(want(a), want(b)...)) {
		t.Errorf("appending two events: %s", got)
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
