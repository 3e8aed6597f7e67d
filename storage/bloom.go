package storage

import (
	"hash/maphash"
	"math/bits"
)

// bloom is a blocked Bloom filter over the IDs of one run of the ID index,
// kept in memory only: it lets a lookup skip the runs that cannot hold an
// ID, so that asking for an absent ID (what a node does for every new
// message it hears of) costs a few hashes instead of one B+tree search per
// run. Each ID sets bloomK bits in one 64-byte block, so a probe touches one
// cache line; at bloomBitsPerKey bits an ID about 0.1% of the probes of
// absent IDs pass. (At 10 bits it was about 1%: with a few hundred runs
// over the retained epochs, each lookup of a new ID then searched a few
// runs' B+trees, at random leaves, which kept megabytes of every epoch's
// pages resident and cost a few percent of the CPU.)
//
// IDs are hashes already, but a peer can grind them; the block and bits are
// chosen by a keyed hash (maphash with the Store's random seed) so that no
// one can aim at the filter's blind spots.
//
// A bloom is built by one goroutine and read by many only once it is
// complete: the writer publishes it under Store.mu and never changes it
// after.
type bloom struct {
	seed   maphash.Seed
	blocks [][8]uint64
}

const (
	bloomBitsPerKey = 16
	bloomK          = 8
)

// newBloom returns an empty filter sized for n IDs.
func newBloom(seed maphash.Seed, n int) *bloom {
	nb := max(1, (n*bloomBitsPerKey+511)/512)
	return &bloom{seed: seed, blocks: make([][8]uint64, nb)}
}

// probe returns the block of id and the state from which its bits follow.
func (b *bloom) probe(id []byte) (*[8]uint64, uint64) {
	h := maphash.Bytes(b.seed, id)
	blk, _ := bits.Mul64(h, uint64(len(b.blocks)))
	return &b.blocks[blk], h
}

// next steps the bit generator and returns a bit index in 0..511.
func bloomNext(x uint64) (uint64, uint) {
	x = x*6364136223846793005 + 1442695040888963407
	return x, uint(x >> 55)
}

// add adds id (32 bytes) to the filter.
func (b *bloom) add(id []byte) {
	blk, x := b.probe(id)
	for range bloomK {
		var bit uint
		x, bit = bloomNext(x)
		blk[bit/64] |= 1 << (bit % 64)
	}
}

// mayHave reports whether id may have been added; false is certain.
func (b *bloom) mayHave(id []byte) bool {
	blk, x := b.probe(id)
	for range bloomK {
		var bit uint
		x, bit = bloomNext(x)
		if blk[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}
