package bench

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// TestGenerator checks the generator's messages: valid on their own
// (network, proof of work, signature), each parent an earlier message or
// the genesis, timestamps never below a parent's, each device's sequence
// numbers increasing, and every message but the last ones approved by a
// later one, so that a node confirms them all.
func TestGenerator(t *testing.T) {
	network := dag.NetworkIDFromName("weft-bench-test")
	params := dag.Params{Network: network, MaxPayload: dag.DefaultMaxPayload, PoWBase: 4}
	const devices = 37
	// A message's parents are chosen among those finished, about the
	// pipeline's depth back; the last ones have no child yet.
	lag := (runtime.GOMAXPROCS(0) + 3) * genChunk
	n := lag + 2000
	g := newGenerator(network, params.Difficulty(dag.MinSize+100), devices, 100, 7, 0)
	g.schedule(time.Unix(1_800_000_000, 0), 1000)
	genesis := dag.Genesis(network).ID()
	index := map[dag.ID]int{genesis: -1}
	ts := map[dag.ID]int64{genesis: 0}
	children := map[dag.ID]int{}
	lastSeq := map[dag.PublicKey]uint64{}
	var order []dag.ID
	err := g.build(context.Background(), n, func(m *genMsg) error {
		msg, err := params.Decode(m.enc)
		if err != nil {
			t.Fatalf("message %d: %v", m.i, err)
		}
		if err := params.Check(msg); err != nil {
			t.Fatalf("message %d: %v", m.i, err)
		}
		if msg.ID() != m.id {
			t.Fatalf("message %d: id %s, the encoding hashes to %s", m.i, m.id, msg.ID())
		}
		if m.i != len(order) {
			t.Fatalf("message %d handed over in position %d", m.i, len(order))
		}
		for _, p := range msg.Parents {
			j, ok := index[p]
			if !ok || j >= m.i {
				t.Fatalf("message %d: parent %s is not an earlier message", m.i, p)
			}
			if ts[p] > msg.Timestamp {
				t.Fatalf("message %d is older than its parent", m.i)
			}
			children[p]++
		}
		if last, ok := lastSeq[msg.Issuer]; ok && msg.Seq <= last {
			t.Fatalf("message %d: sequence %d after %d", m.i, msg.Seq, last)
		}
		if msg.Issuer != g.pubs[g.device(m.i)] || msg.Seq != m.seq {
			t.Fatalf("message %d: issuer or sequence not the generator's", m.i)
		}
		lastSeq[msg.Issuer] = msg.Seq
		index[m.id], ts[m.id] = m.i, msg.Timestamp
		order = append(order, m.id)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lastSeq) != devices {
		t.Fatalf("%d devices sent, want %d", len(lastSeq), devices)
	}
	// Every message is approved, except those too recent to have been
	// eligible as parents.
	for i, id := range order[:n-lag] {
		if children[id] == 0 {
			t.Fatalf("message %d has no child", i)
		}
	}
}

// TestGeneratorReproducible checks that a seed fixes the devices' keys and
// the shape of the DAG.
func TestGeneratorReproducible(t *testing.T) {
	network := dag.NetworkIDFromName("weft-bench-test")
	build := func(seed uint64) []dag.ID {
		g := newGenerator(network, 1, 5, 10, seed, 0)
		g.schedule(time.Unix(1_800_000_000, 0), 100)
		var ids []dag.ID
		if err := g.build(context.Background(), 700, func(m *genMsg) error {
			ids = append(ids, m.id)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	a, b, c := build(1), build(1), build(2)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("message %d differs between two builds with one seed", i)
		}
	}
	if a[0] == c[0] {
		t.Fatal("two seeds gave the same first message")
	}
}

func TestTape(t *testing.T) {
	dir := t.TempDir()
	w, err := createTape(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	msgs := []genMsg{{i: 3, seq: 9, id: dag.ID{1}, enc: []byte("first")}, {i: 7, seq: 10, id: dag.ID{2}, enc: make([]byte, 1219)}}
	for k := range msgs {
		if err := w.write(&msgs[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	r, err := openTape(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, want := range msgs {
		for range 2 { // peek twice: the same record
			rec, ok, err := r.peek()
			if err != nil || !ok {
				t.Fatalf("peek: %v %v", ok, err)
			}
			if rec.i != want.i || rec.seq != want.seq || rec.id != want.id || string(rec.enc) != string(want.enc) {
				t.Fatalf("read %+v, want %+v", rec, want)
			}
		}
		r.take()
	}
	if _, ok, err := r.peek(); ok || err != nil {
		t.Fatalf("past the end: %v %v", ok, err)
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{Scenario: Ingest}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Batch != DefaultBatch || cfg.Clients != DefaultGateways || cfg.Devices != DefaultDevices || cfg.PoWBase != DefaultPoWBase {
		t.Fatalf("defaults: %+v", cfg)
	}
	cfg, _ = Config{Scenario: Ingest, Batch: 1, Devices: 100}.withDefaults()
	if cfg.Clients != 100 {
		t.Fatalf("single messages from 100 devices: %d clients, want 100 (one per device at most)", cfg.Clients)
	}
	for _, bad := range []Config{{}, {Scenario: "x"}, {Scenario: Ingest, Rate: -1}, {Scenario: Ingest, Batch: 5000}, {Scenario: Devices, Devices: -3},
		{Scenario: Ingest, JSONPayload: true, Payload: MinJSONPayload - 1},
		{Scenario: Ingest, Retention: Retention{Retain: -time.Second}}, {Scenario: Ingest, Retention: Retention{EpochRecords: -1}},
		{Scenario: Ingest, Node: "http://127.0.0.1:1", Retention: Retention{Retain: time.Minute}}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestGeneratorJSON checks that with json set the generator's payloads
// are the readings of the messages' indexes, of the size asked.
func TestGeneratorJSON(t *testing.T) {
	network := dag.NetworkIDFromName("weft-bench-test")
	params := dag.Params{Network: network, MaxPayload: dag.DefaultMaxPayload, PoWBase: 4}
	g := newGenerator(network, 1, 5, 100, 7, 0)
	g.json = true
	g.schedule(time.Unix(1_800_000_000, 0), 1000)
	n := 0
	err := g.build(context.Background(), 300, func(m *genMsg) error {
		msg, err := params.Decode(m.enc)
		if err != nil {
			t.Fatalf("message %d: %v", m.i, err)
		}
		if want := Reading(uint64(m.i), 100); string(msg.Payload) != string(want) {
			t.Fatalf("message %d: payload %q, want %q", m.i, msg.Payload, want)
		}
		n++
		return nil
	})
	if err != nil || n != 300 {
		t.Fatalf("%d messages: %v", n, err)
	}
}
