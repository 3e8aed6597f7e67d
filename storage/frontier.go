package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
)

// EntryPoint is a message whose body the store no longer holds (or never
// held) but which counts as solid and confirmed: a parent of kept messages
// that was dropped with its epoch, or one a peer named when this node
// caught up from a pruned peer. The DAG core treats it as solid without its
// body (dag.Core.AddEntryPoint).
type EntryPoint struct {
	ID        [32]byte
	Pos       uint64 // its position here; NoPos if it was never stored here
	Timestamp int64  // the message's timestamp (unix nanoseconds)
}

// MaxEntryPoints bounds the entry points the store keeps. A frontier
// holds about as many as there were tips when its epoch was cut (a few
// hundred to a few thousand); past the bound the oldest are forgotten.
const MaxEntryPoints = 1 << 18

// frontier is what drops (and joins from pruned peers) leave behind: the
// first position kept and the entry points. It is immutable once
// published in Store.front.
type frontier struct {
	first uint64
	// dropped is the greatest timestamp of a dropped message; NoTime if
	// nothing was dropped.
	dropped int64
	eps     map[[32]byte]EntryPoint
	// learned holds, for entry points a peer named, the NextPos of the
	// moment they were added: they are kept until that position is dropped.
	learned map[[32]byte]uint64
}

// The frontier file: "weft-frontier" (13), version (1) = 1, first (8),
// dropped (8, the greatest timestamp dropped, as two's complement), count (4), then count entries of ID (32), position (8), timestamp (8),
// learned (8; NoPos for entry points of the store's own drops), then a
// CRC-32C of everything before (4). It is replaced whole: written to
// frontier.tmp, synced, renamed over frontier, and the directory synced.
var frontierMagic = []byte("weft-frontier")

const (
	frontierHead  = 13 + 1 + 8 + 8 + 4
	frontierEntry = 32 + 8 + 8 + 8
)

// NoTime is DroppedUntil's answer while nothing has been dropped.
const NoTime = math.MinInt64

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func (f *frontier) encode() []byte {
	b := make([]byte, 0, frontierHead+len(f.eps)*frontierEntry+4)
	b = append(b, frontierMagic...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, f.first)
	b = binary.BigEndian.AppendUint64(b, uint64(f.dropped))
	b = binary.BigEndian.AppendUint32(b, uint32(len(f.eps)))
	ids := make([][32]byte, 0, len(f.eps))
	for id := range f.eps {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	for _, id := range ids {
		ep := f.eps[id]
		learned, ok := f.learned[id]
		if !ok {
			learned = NoPos
		}
		b = append(b, id[:]...)
		b = binary.BigEndian.AppendUint64(b, ep.Pos)
		b = binary.BigEndian.AppendUint64(b, uint64(ep.Timestamp))
		b = binary.BigEndian.AppendUint64(b, learned)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func decodeFrontier(b []byte) (*frontier, error) {
	head := frontierHead
	if len(b) < head+4 || !bytes.Equal(b[:len(frontierMagic)], frontierMagic) || b[len(frontierMagic)] != 1 {
		return nil, fmt.Errorf("%w: frontier file of %d bytes without its header", ErrCorrupt, len(b))
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, fmt.Errorf("%w: frontier file checksum", ErrCorrupt)
	}
	p := len(frontierMagic) + 1
	f := &frontier{first: binary.BigEndian.Uint64(b[p:]), dropped: int64(binary.BigEndian.Uint64(b[p+8:])), eps: map[[32]byte]EntryPoint{}, learned: map[[32]byte]uint64{}}
	n := binary.BigEndian.Uint32(b[p+16:])
	if n > MaxEntryPoints || len(body) != head+int(n)*frontierEntry {
		return nil, fmt.Errorf("%w: frontier file of %d bytes for %d entry points", ErrCorrupt, len(b), n)
	}
	var prev []byte
	for e := b[head:len(body)]; len(e) > 0; e = e[frontierEntry:] {
		var ep EntryPoint
		if prev != nil && bytes.Compare(prev, e[:32]) >= 0 {
			return nil, fmt.Errorf("%w: frontier file's entry points out of order", ErrCorrupt)
		}
		prev = e[:32]
		copy(ep.ID[:], e)
		ep.Pos = binary.BigEndian.Uint64(e[32:])
		ep.Timestamp = int64(binary.BigEndian.Uint64(e[40:]))
		if _, dup := f.eps[ep.ID]; dup {
			return nil, fmt.Errorf("%w: frontier file names %x twice", ErrCorrupt, ep.ID)
		}
		if ep.Pos != NoPos && ep.Pos >= f.first {
			return nil, fmt.Errorf("%w: entry point at position %d, not below the frontier %d", ErrCorrupt, ep.Pos, f.first)
		}
		f.eps[ep.ID] = ep
		if l := binary.BigEndian.Uint64(e[48:]); l != NoPos {
			f.learned[ep.ID] = l
		}
	}
	return f, nil
}

// readFrontier reads dir's frontier file; a directory without one has
// dropped nothing (first 0, no entry points). A frontier.tmp left by a
// crash is removed: the write it belonged to never happened.
func readFrontier(dir string) (*frontier, error) {
	if err := os.Remove(filepath.Join(dir, frontierFile+".tmp")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, frontierFile))
	if errors.Is(err, fs.ErrNotExist) {
		return &frontier{dropped: NoTime, eps: map[[32]byte]EntryPoint{}, learned: map[[32]byte]uint64{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeFrontier(b)
}

// writeFrontier replaces dir's frontier file with f, durably: once it
// returns nil, a crash leaves f; before, the frontier before.
func writeFrontier(dir string, f *frontier, noSync bool) error {
	tmp := filepath.Join(dir, frontierFile+".tmp")
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = fh.Write(f.encode())
	if err == nil && !noSync {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, frontierFile))
	}
	if err == nil && !noSync {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("storage: writing the frontier: %w", err)
	}
	return nil
}

// bound forgets the oldest entry points (by position, then those a peer
// named) past MaxEntryPoints.
func (f *frontier) bound() {
	if len(f.eps) <= MaxEntryPoints {
		return
	}
	all := make([]EntryPoint, 0, len(f.eps))
	for _, ep := range f.eps {
		all = append(all, ep)
	}
	slices.SortFunc(all, func(a, b EntryPoint) int {
		if a.Pos != b.Pos {
			if a.Pos < b.Pos {
				return 1
			}
			return -1
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	for _, ep := range all[MaxEntryPoints:] {
		delete(f.eps, ep.ID)
		delete(f.learned, ep.ID)
	}
}

// Frontier returns the first position the store still holds (0 until an
// epoch has been dropped) and the entry points: the dropped or never-held
// messages that kept ones name as parents.
func (s *Store) Frontier() (first uint64, eps []EntryPoint) {
	s.mu.RLock()
	f := s.front
	s.mu.RUnlock()
	eps = make([]EntryPoint, 0, len(f.eps))
	for _, ep := range f.eps {
		eps = append(eps, ep)
	}
	slices.SortFunc(eps, func(a, b EntryPoint) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return f.first, eps
}

// DroppedUntil returns the greatest timestamp of the messages dropped so
// far, NoTime while nothing was: every message timestamped after it that
// the store ever held, it still holds.
func (s *Store) DroppedUntil() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.front.dropped
}

// FirstPos returns the first position the store holds: 0 until an epoch
// has been dropped.
func (s *Store) FirstPos() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.front.first
}

// EntryPointOf reports whether id is an entry point, and which.
func (s *Store) EntryPointOf(id [32]byte) (EntryPoint, bool) {
	s.mu.RLock()
	ep, ok := s.front.eps[id]
	s.mu.RUnlock()
	return ep, ok
}

// AddEntryPoints records entry points that a peer named (a node catching up
// from a pruned peer), durably, before the messages that name them are
// submitted. Their positions are stored as NoPos. They are kept until the
// epoch that holds the store's NextPos of this moment is dropped.
func (s *Store) AddEntryPoints(eps []EntryPoint) error {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.mu.RLock()
	old := s.front
	s.mu.RUnlock()
	f := old.clone()
	learned := s.NextPos()
	added := 0
	for _, ep := range eps {
		if _, ok := f.eps[ep.ID]; ok {
			continue
		}
		f.eps[ep.ID] = EntryPoint{ID: ep.ID, Pos: NoPos, Timestamp: ep.Timestamp}
		f.learned[ep.ID] = learned
		added++
	}
	if added == 0 {
		return nil
	}
	f.bound()
	if err := writeFrontier(s.path, f, s.cfg.NoSync); err != nil {
		return err
	}
	s.mu.Lock()
	s.front = f
	s.mu.Unlock()
	return nil
}

func (f *frontier) clone() *frontier {
	c := &frontier{first: f.first, dropped: f.dropped, eps: make(map[[32]byte]EntryPoint, len(f.eps)), learned: make(map[[32]byte]uint64, len(f.learned))}
	for k, v := range f.eps {
		c.eps[k] = v
	}
	for k, v := range f.learned {
		c.learned[k] = v
	}
	return c
}
