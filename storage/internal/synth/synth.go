// Package synth makes records that look like a node's real traffic, for the
// storage benchmarks: random 32-byte IDs, parents among the recent
// positions, a population of issuers each with an increasing sequence
// number, increasing timestamps, and confirmations that trail the log.
// Raw is laid out as a message encoding whose parents, issuer, sequence and
// timestamp are the record's (the store requires that); its payload,
// signature and nonce are random bytes.
package synth

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// Config shapes the traffic. Zero fields take the defaults noted.
type Config struct {
	Seed      uint64 // default 1
	Issuers   int    // distinct issuers; default 1000
	RawSize   int    // bytes of Raw per record, at least dag.MinSize (195: that plus the payload); default 300
	Window    int    // parents are among the last Window positions; default 1000
	ConfLag   int    // positions are confirmed about this far behind the log; default 2000
	Start     uint64 // the first position
	StartNs   int64  // the first timestamp; default 1.7e18
	StepNs    int64  // mean gap between timestamps; default 16 µs
	NoConfirm bool   // make no confirmations
}

// Generator makes Writes in position order. Not safe for concurrent use.
type Generator struct {
	cfg     Config
	rng     *rand.Rand
	next    uint64
	ts      int64
	issuers [][32]byte
	seqs    []uint64
	recent  [][32]byte // IDs of the last Window positions, by pos % Window
	conf    uint64     // next position to confirm
}

// New returns a Generator that starts at cfg.Start.
func New(cfg Config) *Generator {
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Issuers == 0 {
		cfg.Issuers = 1000
	}
	if cfg.RawSize == 0 {
		cfg.RawSize = 300
	}
	cfg.RawSize = max(cfg.RawSize, dag.MinSize)
	if cfg.Window == 0 {
		cfg.Window = 1000
	}
	if cfg.ConfLag == 0 {
		cfg.ConfLag = 2000
	}
	if cfg.StartNs == 0 {
		cfg.StartNs = 1_700_000_000_000_000_000
	}
	if cfg.StepNs == 0 {
		cfg.StepNs = 16_000
	}
	g := &Generator{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Start)),
		next:    cfg.Start,
		ts:      cfg.StartNs,
		issuers: make([][32]byte, cfg.Issuers),
		seqs:    make([]uint64, cfg.Issuers),
		recent:  make([][32]byte, cfg.Window),
		conf:    cfg.Start,
	}
	for i := range g.issuers {
		g.fill(g.issuers[i][:])
	}
	return g
}

func (g *Generator) fill(b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, g.rng.Uint64())
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
}

// Next returns a Write of n new records, and confirmations of the positions
// that have fallen ConfLag behind, in a shuffled order.
func (g *Generator) Next(n int) *storage.Write {
	w := &storage.Write{Records: make([]storage.Record, n)}
	raw := make([]byte, n*g.cfg.RawSize)
	payload := make([]byte, g.cfg.RawSize-dag.MinSize)
	for i := range w.Records {
		r := &w.Records[i]
		r.Pos = g.next
		g.fill(r.ID[:])
		for j := range 2 {
			if g.next == 0 {
				r.ParentPos[j] = storage.NoPos
				continue
			}
			back := 1 + g.rng.Uint64N(min(g.next, uint64(g.cfg.Window)))
			r.ParentPos[j] = g.next - back
			r.Parents[j] = g.recent[r.ParentPos[j]%uint64(g.cfg.Window)]
		}
		is := g.rng.IntN(len(g.issuers))
		r.Issuer = g.issuers[is]
		g.seqs[is]++
		r.Seq = g.seqs[is]
		g.ts += g.cfg.StepNs/2 + g.rng.Int64N(g.cfg.StepNs)
		r.Timestamp = g.ts
		m := dag.Message{
			Version: dag.Version, Network: 1, Parents: [2]dag.ID{r.Parents[0], r.Parents[1]}, Issuer: r.Issuer,
			Seq: r.Seq, Timestamp: r.Timestamp, Payload: payload,
		}
		r.Raw = m.AppendEncoding(raw[i*g.cfg.RawSize : i*g.cfg.RawSize : (i+1)*g.cfg.RawSize])
		g.fill(r.Raw[dag.HeaderSize:]) // payload, signature, nonce
		g.recent[g.next%uint64(g.cfg.Window)] = r.ID
		g.next++
	}
	if !g.cfg.NoConfirm && g.next > uint64(g.cfg.ConfLag) {
		for ; g.conf < g.next-uint64(g.cfg.ConfLag); g.conf++ {
			w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: g.conf, At: g.ts})
		}
		g.rng.Shuffle(len(w.Confirmations), func(i, j int) {
			w.Confirmations[i], w.Confirmations[j] = w.Confirmations[j], w.Confirmations[i]
		})
	}
	return w
}
