package storage_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/storage"
)

// keysOf lists bucket's keys by ForEach from from.
func keysOf(t *testing.T, s *storage.Store, bucket string, from []byte, reverse bool, limit int) []string {
	t.Helper()
	var out []string
	err := s.StateView(func(tx *storage.StateTx) error {
		return tx.ForEach(bucket, from, reverse, func(k, v []byte) (bool, error) {
			if string(v) != "v"+string(k) {
				return false, fmt.Errorf("%s has value %s", k, v)
			}
			out = append(out, string(k))
			return len(out) < limit, nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestState(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	// A store with no state yet reads as empty.
	if got := keysOf(t, s, "things", nil, false, 100); got != nil {
		t.Fatalf("empty store lists %v", got)
	}
	err := s.StateUpdate(func(tx *storage.StateTx) error {
		for _, k := range []string{"b", "d", "f", "h"} {
			if err := tx.Put("things", []byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return tx.Put("others", []byte("b"), []byte("other"))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from    string
		reverse bool
		want    []string
	}{
		{"", false, []string{"b", "d", "f", "h"}},
		{"c", false, []string{"d", "f", "h"}},
		{"d", false, []string{"d", "f", "h"}},
		{"i", false, nil},
		{"", true, []string{"h", "f", "d", "b"}},
		{"e", true, []string{"d", "b"}},
		{"f", true, []string{"f", "d", "b"}},
		{"z", true, []string{"h", "f", "d", "b"}},
		{"a", true, nil},
	} {
		var from []byte
		if tc.from != "" {
			from = []byte(tc.from)
		}
		if got := keysOf(t, s, "things", from, tc.reverse, 100); !slices.Equal(got, tc.want) {
			t.Errorf("from %q reverse %v: %v, want %v", tc.from, tc.reverse, got, tc.want)
		}
	}
	if got := keysOf(t, s, "things", nil, false, 2); !slices.Equal(got, []string{"b", "d"}) {
		t.Errorf("stopping after 2: %v", got)
	}

	// A failing fn changes nothing; Delete removes; the state survives a
	// reopen.
	boom := errors.New("boom")
	err = s.StateUpdate(func(tx *storage.StateTx) error {
		if err := tx.Delete("things", []byte("b")); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("fn's error: %v", err)
	}
	if err := s.StateUpdate(func(tx *storage.StateTx) error { return tx.Delete("things", []byte("d")) }); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, storage.Config{NoSync: true})
	if got := keysOf(t, s, "things", nil, false, 100); !slices.Equal(got, []string{"b", "f", "h"}) {
		t.Fatalf("after a reopen: %v", got)
	}
	err = s.StateView(func(tx *storage.StateTx) error {
		v, err := tx.Get("others", []byte("b"))
		if err != nil || string(v) != "other" {
			return fmt.Errorf("others/b = %q, %v", v, err)
		}
		if v, err := tx.Get("others", []byte("x")); v != nil || err != nil {
			return fmt.Errorf("others/x = %q, %v", v, err)
		}
		// A view cannot write.
		if err := tx.Put("others", []byte("x"), []byte("y")); err == nil {
			return errors.New("Put in a view succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStateErrors(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	for _, name := range []string{"", strings.Repeat("x", storage.MaxStateName+1)} {
		err := s.StateUpdate(func(tx *storage.StateTx) error { return tx.Put(name, []byte("k"), nil) })
		if !errors.Is(err, storage.ErrStateName) {
			t.Errorf("bucket %q: %v", name, err)
		}
	}
	// A commit that fails is reported and keeps nothing.
	disk := errors.New("no space left on device")
	storage.SetCommitHook(s, func() error { return disk })
	err := s.StateUpdate(func(tx *storage.StateTx) error { return tx.Put("things", []byte("k"), []byte("v")) })
	if !errors.Is(err, storage.ErrFailed) || !errors.Is(err, disk) {
		t.Fatalf("failing commit: %v", err)
	}
	storage.SetCommitHook(s, nil)
	if got := keysOf(t, s, "things", nil, false, 10); got != nil {
		t.Fatalf("a failed commit kept %v", got)
	}
	s.Close()
	if err := s.StateUpdate(func(*storage.StateTx) error { return nil }); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if err := s.StateView(func(*storage.StateTx) error { return nil }); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("view after Close: %v", err)
	}
}
