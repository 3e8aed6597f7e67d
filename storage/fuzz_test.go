package storage

import (
	"bytes"
	"errors"
	"testing"
)

// Every decoder of bytes read from disk is fuzzed: it must return a value
// or ErrCorrupt, never panic, and what it accepts must encode back to the
// same bytes (there is one encoding of each value).

func FuzzDecodeEntry(f *testing.F) {
	r := Record{Pos: 7, Seq: 3, Timestamp: -5, ParentPos: [2]uint64{5, NoPos}, Raw: []byte("raw")}
	r.ID[0], r.Issuer[31], r.Parents[1][4] = 1, 2, 3
	f.Add(appendEntry(nil, &r))
	r.Raw = nil
	f.Add(appendEntry(nil, &r))
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

// FuzzDecodeKeys feeds one byte string to the decoders of every fixed-size
// key and value: children, issuer and time keys, and 8-byte values.
func FuzzDecodeKeys(f *testing.F) {
	var issuer [32]byte
	issuer[3] = 9
	f.Add(appendChildKey(nil, 1, 2))
	f.Add(appendIssuerKey(nil, &issuer, 3, 4))
	f.Add(appendTimeKey(nil, -6, 7))
	f.Add(appendPosKey(nil, 8))
	f.Add([]byte{})
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
		p, c, err := decodeChildKey(k)
		check("children key", err, func() []byte { return appendChildKey(nil, p, c) })
		is, seq, pos, err := decodeIssuerKey(k)
		check("issuer key", err, func() []byte { return appendIssuerKey(nil, &is, seq, pos) })
		ts, tpos, err := decodeTimeKey(k)
		check("time key", err, func() []byte { return appendTimeKey(nil, ts, tpos) })
		u, err := decodeU64("value", k)
		check("u64", err, func() []byte { return appendPosKey(nil, u) })
		var e Entry
		err = decodeConf(1, k, &e)
		if k == nil && (err != nil || e.Confirmed) {
			t.Fatal("no confirmation value must mean not confirmed")
		}
		check("confirmation", err, func() []byte {
			if k == nil {
				return nil
			}
			return appendPosKey(nil, uint64(e.ConfirmedAt))
		})
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
