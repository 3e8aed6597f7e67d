package storage

import (
	"bytes"
	"errors"
	"testing"

	"github.com/weftnet/weft/dag"
)

// Every decoder of bytes read from disk is fuzzed: it must return a value
// or ErrCorrupt, never panic, and what it accepts must encode back to the
// same bytes (there is one encoding of each value).

func FuzzDecodeEntry(f *testing.F) {
	m := dag.Message{Version: dag.Version, Seq: 3, Timestamp: -5, Payload: []byte("payload")}
	m.Issuer[31], m.Parents[1][4] = 2, 3
	r := Record{Pos: 7, ParentPos: [2]uint64{5, NoPos}, Raw: m.Bytes()}
	r.ID[0] = 1
	f.Add(appendEntry(nil, &r))
	m = dag.Message{Version: dag.Version}
	r.Raw = m.Bytes()
	f.Add(appendEntry(nil, &r))
	f.Add(appendEntry(nil, &r)[:minEntrySize-1])
	f.Add([]byte{formatVersion})
	f.Fuzz(func(t *testing.T, v []byte) {
		var r Record
		err := decodeEntry(9, v, &r)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			if _, err := entryID(9, v); err == nil {
				t.Fatal("entryID accepts what decodeEntry refuses")
			}
			return
		}
		if r.Pos != 9 {
			t.Fatalf("Pos %d", r.Pos)
		}
		// What decodes is a record the writer would store: its fields are
		// those of its Raw.
		if err := checkRecord(&r); err != nil {
			t.Fatalf("decoded record fails the writer's check: %v", err)
		}
		if got := appendEntry(nil, &r); !bytes.Equal(got, v) {
			t.Fatalf("re-encoding gives %x, want %x", got, v)
		}
		if id, err := entryID(9, v); err != nil || id != r.ID {
			t.Fatalf("entryID = %x, %v; want %x", id, err, r.ID)
		}
		if len(v) > 0 {
			v[len(v)-1]++ // Raw must not alias v, which bbolt owns
			if len(r.Raw) > 0 && r.Raw[len(r.Raw)-1] == v[len(v)-1] {
				t.Fatal("Raw aliases the stored value")
			}
		}
	})
}

func FuzzDecodeRuns(f *testing.F) {
	f.Add(encodeRuns([]run{{0, 16, 1}, {16, 24, 0}, {24, 32, 0}}))
	f.Add(encodeRuns(nil))
	f.Add(appendRun(nil, run{5, 5, 0}))
	f.Fuzz(func(t *testing.T, v []byte) {
		runs, err := decodeRuns(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if got := encodeRuns(runs); !bytes.Equal(got, v) {
			t.Fatalf("re-encoding gives %x, want %x", got, v)
		}
		for i, r := range runs {
			if r.lo >= r.hi || i > 0 && runs[i-1].hi != r.lo {
				t.Fatalf("accepted a bad run list %v", runs)
			}
		}
		// Whatever list is accepted, merge planning must not go wrong.
		for fanIn := 2; fanIn < 5; fanIn++ {
			if out, ok := planMerge(runs, fanIn); ok {
				if _, _, err := mergeSources(runs, out); err != nil {
					t.Fatalf("planned merge %v does not match %v: %v", out, runs, err)
				}
			}
		}
		if len(v) >= runSize {
			r, err := decodeRun(v[:runSize])
			if err != nil || !bytes.Equal(appendRun(nil, r), v[:runSize]) {
				t.Fatalf("decodeRun of the first run: %v, %v", r, err)
			}
			_, _, _ = mergeSources(runs, r) // must not panic
		}
	})
}

// FuzzDecodeKeys feeds one byte string to the decoders of every key and
// small value: issuer, time and issuer-time keys, 8-byte values, children lists and
// blocks of confirmations.
func FuzzDecodeKeys(f *testing.F) {
	var issuer [32]byte
	issuer[3] = 9
	f.Add(appendChild(appendChild(nil, 2), 3))
	f.Add(appendIssuerKey(nil, &issuer, 3, 4))
	f.Add(appendTimeKey(nil, -6, 7))
	f.Add(appendIssuerTimeKey(nil, &issuer, -6, 7))
	f.Add(appendPosKey(nil, 8))
	f.Add([]byte{})
	var c blockConfs
	c.put(2*confBlock, 5)
	c.put(2*confBlock+1, OrphanedAt)
	c.put(2*confBlock+2, -3)
	c.put(2*confBlock+63, 0)
	f.Add(c.appendTo(nil))
	f.Fuzz(func(t *testing.T, k []byte) {
		check := func(what string, err error, enc func() []byte) {
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: error %v is not ErrCorrupt", what, err)
				}
				return
			}
			if got := enc(); !bytes.Equal(got, k) {
				t.Fatalf("%s: re-encoding gives %x, want %x", what, got, k)
			}
		}
		kids, err := decodeChildren(1, k)
		check("children", err, func() []byte {
			var b []byte
			for i, c := range kids {
				if c <= 1 || i > 0 && c <= kids[i-1] {
					t.Fatalf("accepted children %v of 1", kids)
				}
				b = appendChild(b, c)
			}
			return b
		})
		is, seq, pos, err := decodeIssuerKey(k)
		check("issuer key", err, func() []byte { return appendIssuerKey(nil, &is, seq, pos) })
		ts, tpos, err := decodeTimeKey(k)
		check("time key", err, func() []byte { return appendTimeKey(nil, ts, tpos) })
		its, itime, itpos, err := decodeIssuerTimeKey(k)
		check("issuer-time key", err, func() []byte { return appendIssuerTimeKey(nil, &its, itime, itpos) })
		u, err := decodeU64("value", k)
		check("u64", err, func() []byte { return appendPosKey(nil, u) })
		var c blockConfs
		err = decodeConfBlock(2, k, &c)
		if k == nil && (err != nil || c != blockConfs{}) {
			t.Fatal("no block must mean no confirmations")
		}
		check("confirmations", err, func() []byte {
			if k == nil {
				return nil
			}
			return c.appendTo(nil)
		})
		if err != nil {
			return
		}
		for i := range uint64(confBlock) {
			pos := 2*confBlock + i
			at, ok := c.get(pos)
			var e Entry
			e.Pos = pos
			setConf(&e, &c)
			if e.Confirmed != (ok && at != OrphanedAt) || e.Orphaned != (ok && at == OrphanedAt) || e.Confirmed && e.ConfirmedAt != at {
				t.Fatalf("position %d: %v at %d reads as %+v", pos, ok, at, e)
			}
			n := uint64(0) // the run of confirmed positions from pos, counted one by one
			for ; i+n < confBlock; n++ {
				if _, ok := c.get(pos + n); !ok {
					break
				}
			}
			if got := c.run(pos); got != n {
				t.Fatalf("run from %d = %d, want %d", pos, got, n)
			}
			// Only the first confirmation of a position is kept.
			d := c
			if d.put(pos, 7) == ok {
				t.Fatalf("put at %d, confirmed %v: reports the opposite", pos, ok)
			}
			if got, _ := d.get(pos); ok && got != at || !ok && got != 7 {
				t.Fatalf("put at %d, confirmed %v at %d: now %d", pos, ok, at, got)
			}
		}
	})
}

// TestTimeKeyOrder checks that time keys sort as their timestamps do,
// negative ones included.
func TestTimeKeyOrder(t *testing.T) {
	ts := []int64{-1 << 63, -5, -1, 0, 1, 5, 1<<63 - 1}
	for i := 1; i < len(ts); i++ {
		a, b := appendTimeKey(nil, ts[i-1], 9), appendTimeKey(nil, ts[i], 0)
		if bytes.Compare(a, b) >= 0 {
			t.Fatalf("time key of %d does not sort before that of %d", ts[i-1], ts[i])
		}
	}
}

func FuzzDecodeFrontier(f *testing.F) {
	fr := &frontier{first: 900, dropped: -3, eps: map[[32]byte]EntryPoint{}, learned: map[[32]byte]uint64{}}
	f.Add(fr.encode())
	fr.eps[[32]byte{1}] = EntryPoint{ID: [32]byte{1}, Pos: 899, Timestamp: 5}
	fr.eps[[32]byte{2}] = EntryPoint{ID: [32]byte{2}, Pos: NoPos, Timestamp: 6}
	fr.learned[[32]byte{2}] = 950
	f.Add(fr.encode())
	f.Add([]byte("weft-frontier"))
	f.Fuzz(func(t *testing.T, v []byte) {
		fr, err := decodeFrontier(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(fr.encode(), v) {
			t.Fatalf("decoded %x, encodes to %x", v, fr.encode())
		}
	})
}

func FuzzDecodeRedo(f *testing.F) {
	f.Add(encodeRedo([]confirm{{pos: 3, at: 9}, {pos: 70, at: -1}}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, v []byte) {
		cs, err := decodeRedo(v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(encodeRedo(cs), v) {
			t.Fatalf("decoded %x, encodes to %x", v, encodeRedo(cs))
		}
	})
}
