package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/storage"
)

// The registry's records in the store's state buckets (docs/STORAGE.md,
// "Node-local state"). Integers are big-endian; times are int64 unix
// nanoseconds; a string is its length and its bytes. Every decoder checks
// every field as the registry checks what the API hands it, and what it
// accepts encodes back to the same bytes; anything else is
// storage.ErrCorrupt.

// recordVersion is the first byte of every registry record.
const recordVersion = 1

// opCodes are the change log's operations, by their byte in a record.
var opCodes = []string{OpAdd, OpTag, OpUntag, OpRename, OpOwner, OpRevoke, OpAllow, OpRemove}

// maxDetail bounds a change's detail: the longest is a full set of tags.
const maxDetail = MaxDeviceTags * (MaxTagLen + 1)

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// encodeDevice: version (1), state (1), created (8), updated (8), name
// (1 + n), owner (1 + n), tag count (1), each tag (1 + n), sorted.
func encodeDevice(d *Device) []byte {
	b := []byte{recordVersion, byte(d.State)}
	b = binary.BigEndian.AppendUint64(b, uint64(d.Created.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(d.Updated.UnixNano()))
	b = appendString8(b, d.Name)
	b = appendString8(b, d.Owner)
	b = append(b, byte(len(d.Tags)))
	for _, t := range d.Tags {
		b = appendString8(b, t)
	}
	return b
}

// encodeChange: version (1), at (8), op (1), key (32), who (1 + n),
// detail (2 + n).
func encodeChange(c *DeviceChange) []byte {
	b := binary.BigEndian.AppendUint64([]byte{recordVersion}, uint64(c.At.UnixNano()))
	b = append(b, byte(slices.Index(opCodes, c.Op)+1))
	b = append(b, c.Key[:]...)
	b = appendString8(b, c.Who)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Detail)))
	return append(b, c.Detail...)
}

func appendString8(b []byte, s string) []byte { return append(append(b, byte(len(s))), s...) }

// reader takes fields off a record, remembering the first fault.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errors.New("truncated")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) time() time.Time {
	if v := r.take(8); v != nil {
		return time.Unix(0, int64(binary.BigEndian.Uint64(v)))
	}
	return time.Time{}
}

func (r *reader) string8() string { return string(r.take(int(r.byte()))) }

func (r *reader) string16() string {
	v := r.take(2)
	if v == nil {
		return ""
	}
	return string(r.take(int(binary.BigEndian.Uint16(v))))
}

// done reports the first fault, or trailing bytes.
func (r *reader) done() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b))
	}
	return r.err
}

func corrupt(what string, k []byte, err error) error {
	return fmt.Errorf("%w: %s %x: %v", storage.ErrCorrupt, what, k, err)
}

// decodeDevice decodes the record v of key k.
func decodeDevice(k, v []byte) (*Device, error) {
	if len(k) != len(dag.PublicKey{}) {
		return nil, corrupt("device key", k, fmt.Errorf("%d bytes", len(k)))
	}
	r := reader{b: v}
	if ver := r.byte(); r.err == nil && ver != recordVersion {
		return nil, corrupt("device", k, fmt.Errorf("version %d", ver))
	}
	d := &Device{Key: dag.PublicKey(k), State: DeviceState(r.byte())}
	d.Created, d.Updated = r.time(), r.time()
	d.Name, d.Owner = r.string8(), r.string8()
	n := int(r.byte())
	if n > MaxDeviceTags {
		return nil, corrupt("device", k, fmt.Errorf("%d tags", n))
	}
	for range n {
		d.Tags = append(d.Tags, r.string8())
	}
	if err := r.done(); err != nil {
		return nil, corrupt("device", k, err)
	}
	tags := d.Tags
	if err := d.check(); err != nil {
		return nil, corrupt("device", k, err)
	}
	if !slices.Equal(tags, d.Tags) {
		return nil, corrupt("device", k, errors.New("tags not sorted and distinct"))
	}
	return d, nil
}

// decodeChange decodes the change log's record v of key k.
func decodeChange(k, v []byte) (DeviceChange, error) {
	if len(k) != 8 || binary.BigEndian.Uint64(k) == 0 {
		return DeviceChange{}, corrupt("change key", k, errors.New("want a sequence number from 1"))
	}
	r := reader{b: v}
	if ver := r.byte(); r.err == nil && ver != recordVersion {
		return DeviceChange{}, corrupt("change", k, fmt.Errorf("version %d", ver))
	}
	c := DeviceChange{Seq: binary.BigEndian.Uint64(k), At: r.time()}
	op := int(r.byte())
	if r.err == nil && (op < 1 || op > len(opCodes)) {
		return DeviceChange{}, corrupt("change", k, fmt.Errorf("operation %d", op))
	}
	if r.err == nil {
		c.Op = opCodes[op-1]
	}
	if key := r.take(32); key != nil {
		c.Key = dag.PublicKey(key)
	}
	c.Who, c.Detail = r.string8(), r.string16()
	err := r.done()
	if err == nil {
		err = checkText("who", c.Who, maxWho)
	}
	if err == nil {
		err = checkText("detail", c.Detail, maxDetail)
	}
	if err != nil {
		return DeviceChange{}, corrupt("change", k, err)
	}
	return c, nil
}
