package proof

import (
	"bytes"
	"errors"
	"testing"

	"github.com/weftnet/weft/dag"
)

func TestCheckpointRoundTrip(t *testing.T) {
	for _, c := range []Checkpoint{
		{Index: 1, From: 0, Count: 1, Root: Hash{9}},
		{Index: 2, Prev: dag.ID{1, 2, 3}, From: 1_767_225_600_000_000_000, Count: 1 << 31, Root: Hash{0xff}},
	} {
		b := c.Encode()
		if len(b) != CheckpointSize || !IsCheckpoint(b) {
			t.Fatalf("%+v: %d bytes, IsCheckpoint %v", c, len(b), IsCheckpoint(b))
		}
		got, err := DecodeCheckpoint(b)
		if err != nil || got != c {
			t.Fatalf("decode %+v: %+v, %v", c, got, err)
		}
	}
}

func TestDecodeCheckpointRefuses(t *testing.T) {
	good := Checkpoint{Index: 2, Prev: dag.ID{1}, From: 5, Count: 3, Root: Hash{7}}.Encode()
	set := func(off int, v ...byte) []byte {
		b := bytes.Clone(good)
		copy(b[off:], v)
		return b
	}
	for name, b := range map[string][]byte{
		"empty":             nil,
		"short":             good[:CheckpointSize-1],
		"trailing":          append(bytes.Clone(good), 0),
		"magic":             set(0, 'W', 'C', 'P', 2),
		"index 0":           set(4, 0, 0, 0, 0, 0, 0, 0, 0),
		"index 1 with prev": set(4, 0, 0, 0, 0, 0, 0, 0, 1),
		"index 2 no prev":   set(12, make([]byte, 32)...),
		"negative from":     set(44, 0x80),
		"count 0":           set(52, 0, 0, 0, 0),
	} {
		if _, err := DecodeCheckpoint(b); !errors.Is(err, ErrCheckpoint) {
			t.Errorf("%s: %v, want ErrCheckpoint", name, err)
		}
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add(Checkpoint{Index: 1, Count: 1}.Encode())
	f.Add(Checkpoint{Index: 3, Prev: dag.ID{1}, From: 10, Count: 9, Root: Hash{2}}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCheckpoint(b)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(c.Encode(), b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, c, c.Encode())
		}
	})
}
