package storage

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestRunEntriesSorted: the entries a flush writes are in strictly
// ascending key order for every index, however the memtable's issuers'
// sequence numbers and timestamps run, and they are the memtable's.
func TestRunEntriesSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	m := newMemtable(100, 0)
	var issuers [20][32]byte
	for i := range issuers {
		issuers[i][i%32] = byte(rng.Uint32())
		issuers[i][0] = byte(i * 7)
	}
	for pos := uint64(100); pos < 3100; pos++ {
		var id [32]byte
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		is := &issuers[rng.IntN(len(issuers))]
		m.add(&id, is, rng.Uint64N(50), rng.Int64N(100)-50, pos)
	}
	for _, ix := range runIndexes {
		size := ix.keySize + ix.valSize
		es := m.runEntries(ix)
		if len(es) != 3000*size {
			t.Fatalf("%s: %d bytes of entries, want %d", ix.bucket, len(es), 3000*size)
		}
		for i := size; i < len(es); i += size {
			if bytes.Compare(es[i-size:i-size+ix.keySize], es[i:i+ix.keySize]) >= 0 {
				t.Fatalf("%s: entry %d is not above the one before", ix.bucket, i/size)
			}
		}
	}
	// The memtable keeps each issuer's entries in position order: the
	// flush sorted copies.
	for _, es := range m.issuers {
		for i := 1; i < len(es); i++ {
			if es[i].pos <= es[i-1].pos {
				t.Fatal("the flush reordered the memtable")
			}
		}
	}
}
