package node

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/weftnet/weft/storage"
)

// The decoders of the registry's stored records return a record or
// storage.ErrCorrupt, never panic, and what they accept encodes back to
// the same bytes.

func FuzzDecodeDevice(f *testing.F) {
	d := Device{Key: pub(1), Name: "fridge", Tags: []string{"cold-chain", "site:a"}, Owner: "ward 3",
		State: DeviceRevoked, Created: time.Unix(0, 5), Updated: time.Unix(0, -7)}
	f.Add(d.Key[:], encodeDevice(&d))
	f.Add(d.Key[:], encodeDevice(&Device{State: DeviceAllowed}))
	f.Add(d.Key[:4], encodeDevice(&d))
	f.Add(d.Key[:], encodeDevice(&d)[:20])
	f.Add(d.Key[:], []byte{recordVersion})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		d, err := decodeDevice(k, v)
		if err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if got := encodeDevice(d); !bytes.Equal(got, v) {
			t.Fatalf("re-encoding gives %x, want %x", got, v)
		}
		c := *d
		if err := c.check(); err != nil {
			t.Fatalf("decoded device fails the registry's check: %v", err)
		}
	})
}

func FuzzDecodeChange(f *testing.F) {
	c := DeviceChange{Seq: 3, At: time.Unix(0, 9), Who: "ops", Op: OpTag, Key: pub(2), Detail: "cold-chain,site:a"}
	f.Add(seqKey(3), encodeChange(&c))
	f.Add(seqKey(0), encodeChange(&c))
	f.Add(seqKey(1), encodeChange(&DeviceChange{Op: OpRemove}))
	f.Add(seqKey(1), encodeChange(&c)[:30])
	f.Fuzz(func(t *testing.T, k, v []byte) {
		c, err := decodeChange(k, v)
		if err != nil {
			if !errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(seqKey(c.Seq), k) {
			t.Fatalf("seq %d from key %x", c.Seq, k)
		}
		if got := encodeChange(&c); !bytes.Equal(got, v) {
			t.Fatalf("re-encoding gives %x, want %x", got, v)
		}
	})
}
