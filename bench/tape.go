package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/weftnet/weft/dag"
)

// A tape holds pre-built messages on disk, one file per sender, in the
// order the sender submits them. Keeping them on disk rather than in memory
// keeps the load generator's memory small, so that the resident memory
// measured for an in-process node is the node's, even for runs of millions
// of messages. A record is the message's index (8 bytes), its sequence
// number (8), its ID (32), its length (4, big-endian) and its encoding.
const tapeHeader = 8 + 8 + dag.IDSize + 4

type tapeWriter struct {
	f *os.File
	w *bufio.Writer
	n int
}

func createTape(dir, name string) (*tapeWriter, error) {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("bench: tape: %w", err)
	}
	return &tapeWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (t *tapeWriter) write(m *genMsg) error {
	var h [tapeHeader]byte
	binary.BigEndian.PutUint64(h[:8], uint64(m.i))
	binary.BigEndian.PutUint64(h[8:16], m.seq)
	copy(h[16:], m.id[:])
	binary.BigEndian.PutUint32(h[16+dag.IDSize:], uint32(len(m.enc)))
	t.w.Write(h[:])
	_, err := t.w.Write(m.enc)
	t.n++
	return err
}

// finish flushes the tape, waits until it is on the disk, and closes it
// for writing. Left to the kernel's writeback, the tapes of a long run
// (gigabytes) reach the disk some 30 seconds later, in the middle of the
// load, where the measured node's fsyncs queue behind them.
func (t *tapeWriter) finish() error {
	err := t.w.Flush()
	if err == nil {
		err = t.f.Sync()
	}
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	return err
}

type tapeRec struct {
	i   int
	seq uint64
	id  dag.ID
	enc []byte // valid until the next read
}

type tapeReader struct {
	f    *os.File
	r    *bufio.Reader
	rec  tapeRec
	held bool // rec is read and not yet taken
	done bool
	buf  []byte
}

func openTape(dir, name string) (*tapeReader, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("bench: tape: %w", err)
	}
	return &tapeReader{f: f, r: bufio.NewReaderSize(f, 256<<10)}, nil
}

// peek returns the next record without taking it; false at the end.
func (t *tapeReader) peek() (*tapeRec, bool, error) {
	if t.held {
		return &t.rec, true, nil
	}
	if t.done {
		return nil, false, nil
	}
	var h [tapeHeader]byte
	if _, err := io.ReadFull(t.r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			t.done = true
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("bench: tape: %w", err)
	}
	n := binary.BigEndian.Uint32(h[16+dag.IDSize:])
	if n > dag.MinSize+dag.MaxPayload {
		return nil, false, fmt.Errorf("bench: tape: a record of %d bytes", n)
	}
	if cap(t.buf) < int(n) {
		t.buf = make([]byte, n)
	}
	t.buf = t.buf[:n]
	if _, err := io.ReadFull(t.r, t.buf); err != nil {
		return nil, false, fmt.Errorf("bench: tape: %w", err)
	}
	t.rec = tapeRec{i: int(binary.BigEndian.Uint64(h[:8])), seq: binary.BigEndian.Uint64(h[8:16]), enc: t.buf}
	copy(t.rec.id[:], h[16:])
	t.held = true
	return &t.rec, true, nil
}

// take consumes the record peek returned.
func (t *tapeReader) take() { t.held = false }

func (t *tapeReader) Close() error { return t.f.Close() }
