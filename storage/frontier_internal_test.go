package storage

import (
	"encoding/binary"
	"testing"
)

// TestFrontierBound fills a frontier past MaxEntryPoints: bound keeps the
// newest by position, those a peer named (NoPos) first.
func TestFrontierBound(t *testing.T) {
	f := &frontier{eps: map[[32]byte]EntryPoint{}, learned: map[[32]byte]uint64{}}
	over := 10
	for i := range MaxEntryPoints + over {
		var id [32]byte
		binary.BigEndian.PutUint64(id[:], uint64(i))
		pos := uint64(i)
		if i == 0 {
			pos = NoPos // named by a peer: kept over the oldest positions
			f.learned[id] = 5
		}
		f.eps[id] = EntryPoint{ID: id, Pos: pos}
	}
	f.bound()
	if len(f.eps) != MaxEntryPoints {
		t.Fatalf("%d entry points after bound, want %d", len(f.eps), MaxEntryPoints)
	}
	for i := range MaxEntryPoints + over {
		var id [32]byte
		binary.BigEndian.PutUint64(id[:], uint64(i))
		_, kept := f.eps[id]
		if want := i == 0 || i > over; kept != want {
			t.Fatalf("entry point %d kept %v, want %v", i, kept, want)
		}
	}
	if _, ok := f.learned[[32]byte{}]; !ok {
		t.Fatal("the peer-named entry point lost its learned position")
	}
	if len(f.encode()) != frontierHead+MaxEntryPoints*frontierEntry+4 {
		t.Fatal("encoding of a full frontier has the wrong size")
	}
}
