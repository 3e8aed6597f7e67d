package storage_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// TestRecordChecked submits Writes whose second record disagrees with its
// Raw in one way each, and checks that each is refused whole with a
// *RecordError naming the record and the field, that nothing of it is
// stored, and that the writer goes on.
func TestRecordChecked(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	m := newModel()
	first := &storage.Write{Records: testRecords(0, 2)}
	mustSubmit(t, s, first)
	m.apply(first)
	for _, tc := range []struct {
		field string
		edit  func(r *storage.Record)
	}{
		{"Raw", func(r *storage.Record) { r.Raw = nil }},
		{"Raw", func(r *storage.Record) { r.Raw = r.Raw[:dag.MinSize-1] }},
		{"Parents", func(r *storage.Record) { r.Parents[0][0]++ }},
		{"Parents", func(r *storage.Record) { r.Parents[1][31]++ }},
		{"Parents", func(r *storage.Record) { r.Parents[0], r.Parents[1] = r.Parents[1], r.Parents[0] }},
		{"Issuer", func(r *storage.Record) { r.Issuer[31]++ }},
		{"Seq", func(r *storage.Record) { r.Seq++ }},
		{"Timestamp", func(r *storage.Record) { r.Timestamp-- }},
		{"Timestamp", func(r *storage.Record) { r.Timestamp = -r.Timestamp }},
	} {
		recs := testRecords(2, 3)
		tc.edit(&recs[1])
		err := submit(t, s, &storage.Write{Records: recs, Confirmations: []storage.Confirmation{{Pos: 0, At: 9}}})
		var re *storage.RecordError
		if !errors.As(err, &re) || !errors.Is(err, storage.ErrInvalidRecord) {
			t.Fatalf("%s: Submit: %v, want a *RecordError wrapping ErrInvalidRecord", tc.field, err)
		}
		if re.Pos != 3 || re.Field != tc.field {
			t.Fatalf("%s: RecordError{Pos: %d, Field: %q}, want position 3, field %q", tc.field, re.Pos, re.Field, tc.field)
		}
		// Nothing of the Write is stored: not its good records, not its
		// confirmation.
		m.check(t, s)
	}
	// The writer goes on: the same positions, consistent, are stored.
	w := &storage.Write{Records: testRecords(2, 3), Confirmations: []storage.Confirmation{{Pos: 0, At: 9}}}
	mustSubmit(t, s, w)
	m.apply(w)
	m.check(t, s)
}

// TestFieldsRoundTrip stores records with extreme values in every field and
// reads each field back through every read, before and after a reopen.
func TestFieldsRoundTrip(t *testing.T) {
	s, _ := open(t, storage.Config{NoSync: true})
	var recs []storage.Record
	add := func(r storage.Record, payload int) {
		r.Pos = uint64(len(recs))
		r.ID = hashOf("extreme", r.Pos)
		r.Raw = rawOf(&r, payload)
		recs = append(recs, r)
	}
	ones := func() (b [32]byte) {
		for i := range b {
			b[i] = 0xff
		}
		return b
	}
	add(storage.Record{ParentPos: [2]uint64{storage.NoPos, storage.NoPos}}, 0)
	add(storage.Record{
		Parents: [2][32]byte{ones(), hashOf("p", 1)}, ParentPos: [2]uint64{0, 0},
		Issuer: ones(), Seq: math.MaxUint64, Timestamp: math.MaxInt64,
	}, dag.MaxPayload) // a value of many pages
	add(storage.Record{
		Parents: [2][32]byte{hashOf("p", 2), ones()}, ParentPos: [2]uint64{1, storage.NoPos},
		Issuer: hashOf("issuer", 2), Timestamp: math.MinInt64,
	}, 1)
	add(storage.Record{
		Parents: [2][32]byte{hashOf("p", 3), hashOf("p", 4)}, ParentPos: [2]uint64{7, 1 << 40}, // not below Pos: stored as given
		Issuer: hashOf("issuer", 3), Seq: 1, Timestamp: -1,
	}, 100)
	m := newModel()
	w := &storage.Write{Records: recs, Confirmations: []storage.Confirmation{{Pos: 0, At: 0}, {Pos: 2, At: math.MinInt64 + 1}}}
	mustSubmit(t, s, w)
	m.apply(w)

	verify := func(s *storage.Store) {
		t.Helper()
		var ranged []storage.Entry
		if err := s.Range(0, func(e storage.Entry) error { ranged = append(ranged, e); return nil }); err != nil {
			t.Fatal(err)
		}
		equalEntries(t, "Range", ranged, []storage.Entry{m.entry(0), m.entry(1), m.entry(2), m.entry(3)})
		for _, want := range recs {
			for i, read := range []func() (storage.Entry, error){
				func() (storage.Entry, error) { return s.GetByPos(want.Pos) },
				func() (storage.Entry, error) { return s.Get(want.ID) },
				func() (storage.Entry, error) {
					es, err := s.ByIssuer(want.Issuer, storage.SeqPos{Seq: want.Seq, Pos: want.Pos}, 1)
					if err != nil || len(es) != 1 {
						return storage.Entry{}, errors.Join(err, errors.New("ByIssuer: no entry"))
					}
					return es[0], nil
				},
				func() (storage.Entry, error) {
					if want.Timestamp == math.MaxInt64 {
						return m.entry(want.Pos), nil // beyond ByTime's reach: until is exclusive
					}
					es, err := s.ByTime(storage.TimePos{Time: want.Timestamp, Pos: want.Pos}, math.MaxInt64, 1)
					if err != nil || len(es) != 1 {
						return storage.Entry{}, errors.Join(err, errors.New("ByTime: no entry"))
					}
					return es[0], nil
				},
			} {
				got, err := read()
				if err != nil || !equalEntry(got, m.entry(want.Pos)) {
					t.Fatalf("read %d: record %d read back as %s, %v; want %s", i, want.Pos, brief(got), err, brief(m.entry(want.Pos)))
				}
			}
		}
	}
	verify(s)
	verify(reopen(t, s, storage.Config{NoSync: true}))
}

// brief describes e without the whole of Raw.
func brief(e storage.Entry) string {
	r := e.Record
	return fmt.Sprintf("{Pos %d ID %x Parents %x %x ParentPos %d Issuer %x Seq %d Timestamp %d Raw %d bytes %x... Confirmed %v at %d}",
		r.Pos, r.ID[:4], r.Parents[0][:4], r.Parents[1][:4], r.ParentPos, r.Issuer[:4], r.Seq, r.Timestamp, len(r.Raw), r.Raw[:min(len(r.Raw), 8)], e.Confirmed, e.ConfirmedAt)
}

// v1Value is a log value of format 1, the format before this one: a
// 161-byte header repeating Raw's parents, issuer, sequence and timestamp.
func v1Value(r *storage.Record) []byte {
	b := []byte{1}
	b = append(b, r.ID[:]...)
	b = append(b, r.Parents[0][:]...)
	b = append(b, r.Parents[1][:]...)
	b = binary.BigEndian.AppendUint64(b, r.ParentPos[0])
	b = binary.BigEndian.AppendUint64(b, r.ParentPos[1])
	b = append(b, r.Issuer[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Timestamp))
	return append(b, r.Raw...)
}

// TestOldFormat opens a store written in format 1, as the previous release
// wrote it, and one of a format from the future: Open must refuse both with
// a *FormatError that says which is which, and change nothing in the file.
func TestOldFormat(t *testing.T) {
	for _, tc := range []struct {
		version byte
		old     bool
		says    string
	}{
		{1, true, "old format 1"},
		{2, true, "old format 2"},
		{3, true, "old format 3"},
		{5, false, "newer than format 4"},
	} {
		// Formats up to 3 kept the store in one file; from 4 on it is a
		// directory of epoch files.
		path := filepath.Join(t.TempDir(), "weft.db")
		file := path
		if tc.version > 3 {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			file = filepath.Join(path, "epoch-0000000000000000.db")
		}
		db, err := bolt.Open(file, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			for _, name := range []string{"meta", "log", "conf", "children", "time", "ids", "issuers"} {
				if _, err := tx.CreateBucket([]byte(name)); err != nil {
					return err
				}
			}
			meta := tx.Bucket([]byte("meta"))
			for k, v := range map[string][]byte{"format": {tc.version}, "next": be64(3), "confirmed": be64(0), "runs": {}} {
				if err := meta.Put([]byte(k), v); err != nil {
					return err
				}
			}
			for _, r := range testRecords(0, 3) {
				if err := tx.Bucket([]byte("log")).Put(be64(r.Pos), v1Value(&r)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		before, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // refused again: the first attempt changed nothing
			s, err := storage.Open(path, storage.Config{})
			if err == nil {
				s.Close()
				t.Fatalf("format %d: Open succeeded", tc.version)
			}
			var fe *storage.FormatError
			if !errors.As(err, &fe) || !errors.Is(err, storage.ErrFormat) || errors.Is(err, storage.ErrCorrupt) {
				t.Fatalf("format %d: Open: %v, want a *FormatError wrapping ErrFormat", tc.version, err)
			}
			if fe.Found != int(tc.version) || fe.Want != 4 || fe.Old() != tc.old {
				t.Fatalf("format %d: %+v, Old() = %v", tc.version, *fe, fe.Old())
			}
			if !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), path) {
				t.Fatalf("format %d: the message %q does not say %q and name the file", tc.version, err, tc.says)
			}
		}
		after, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatalf("format %d: the refused Open changed the file", tc.version)
		}
	}
}

// TestConfirmationBlocks checks confirmations, which are kept in blocks of
// 64 positions, against the model after every Write: Writes of up to 150
// records, confirmations near the watermark and anywhere below the end, in
// any order and repeated, so that the watermark crosses blocks alone and
// many at once.
func TestConfirmationBlocks(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	s, _ := open(t, storage.Config{NoSync: true})
	m := newModel()
	var pos uint64
	for i := range 60 {
		w := &storage.Write{Records: testRecords(pos, rng.Uint64N(150))}
		pos += uint64(len(w.Records))
		for range rng.IntN(100) {
			if pos == 0 {
				break
			}
			p := rng.Uint64N(pos)
			if rng.IntN(2) == 0 { // near the watermark
				p = min(m.confirmedPrefix()+rng.Uint64N(70), pos-1)
			}
			at := int64(rng.Uint64())
			if rng.IntN(10) == 0 {
				at = storage.OrphanedAt
			}
			w.Confirmations = append(w.Confirmations, storage.Confirmation{Pos: p, At: at})
		}
		mustSubmit(t, s, w)
		m.apply(w)
		if got, want := s.ConfirmedPrefix(), m.confirmedPrefix(); got != want {
			t.Fatalf("Write %d: ConfirmedPrefix = %d, want %d", i, got, want)
		}
	}
	m.check(t, s)
	s = reopen(t, s, storage.Config{NoSync: true})
	m.check(t, s)
}
