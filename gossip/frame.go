package gossip

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/weftnet/weft/dag"
)

// Wire constants. docs/GOSSIP.md lays every frame out byte by byte.
const (
	// ProtocolVersion is the gossip protocol version this code speaks; it
	// travels in Hello, and peers of another version are refused.
	ProtocolVersion = 1
	// ALPN is the TLS application protocol of every connection.
	ALPN = "weft/1"

	// MaxFrameSize is the largest frame body sent or accepted. A frame
	// announcing more closes the connection with CodeFrameTooLarge.
	MaxFrameSize = 1 << 20
	// MaxMessageSize is the largest single message gossip carries (the
	// message encoding allows about 66 KB).
	MaxMessageSize = 128 << 10
	// MaxRequestIDs is the most message IDs one Request frame carries.
	MaxRequestIDs = 4096
	// MaxSyncLimit is the most entries one SyncRequest may ask for.
	MaxSyncLimit = 1 << 16
	// EntryPointSize is the size of one entry point on the wire (its ID
	// and timestamp), and what it counts against a sync page's byte
	// budget (Handler.Sync).
	EntryPointSize = dag.IDSize + 8
)

// Frame types (the first byte of a frame).
const (
	frameHello        = 0x01
	frameMessages     = 0x02
	frameRequest      = 0x03
	frameSyncRequest  = 0x04
	frameSyncResponse = 0x05
	framePing         = 0x06
	framePong         = 0x07
	frameEntryPoints  = 0x08
)

const (
	headerSize       = 1 + 4            // type, body length
	helloSize        = 2 + 8 + 32       // version, network, key
	syncRequestSize  = 8 + 8 + 4        // request id, from, limit
	syncResponseHead = 8 + 8 + 1 + 4    // request id, next, flags, count
	entryPointsHead  = 8 + 4            // request id, count
	pingSize         = 8                // nonce
	batchEntryHead   = 4                // length of one raw message
	maxMessagesBody  = MaxFrameSize - 4 // room for raws in a Messages frame
	syncFlagDone     = 0x01
	// maxSyncPage is the byte budget of a sync page: its batch entries (4
	// bytes and the message each) plus EntryPointSize per entry point. A
	// page's EntryPoints and SyncResponse frames then take at most
	// headerSize+MaxFrameSize bytes together, as much as one frame, so a
	// send queue with room for a frame has room for a page.
	maxSyncPage = MaxFrameSize - headerSize - entryPointsHead - syncResponseHead
	// maxPageEntryPoints is the most entry points one page carries: its
	// whole budget (26,213).
	maxPageEntryPoints = maxSyncPage / EntryPointSize
)

// hello is the first frame each side sends.
type hello struct {
	Version uint16
	Network dag.NetworkID
	Key     dag.PublicKey
}

type syncRequest struct {
	Req   uint64
	From  uint64
	Limit uint32
}

type syncResponse struct {
	Req  uint64
	Next uint64
	Done bool
	Raws [][]byte
}

// entryPoints is an EntryPoints frame: the entry points of the page that
// answers request Req, sorted by ID.
type entryPoints struct {
	Req uint64
	EPs []EntryPoint
}

// readFrame reads one frame: its type and a freshly allocated body, which
// the caller owns (the raws decoded from it alias it). A length over max
// returns ErrFrameTooLarge before anything is allocated.
func readFrame(r io.Reader, hdr *[headerSize]byte, max int) (byte, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if uint64(n) > uint64(max) {
		return 0, nil, fmt.Errorf("%w: type %#x announces %d bytes, limit %d", ErrFrameTooLarge, hdr[0], n, max)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], body, nil
}

func appendHeader(b []byte, typ byte, n int) []byte {
	b = append(b, typ)
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

func encodeHello(h hello) []byte {
	b := make([]byte, 0, headerSize+helloSize)
	b = appendHeader(b, frameHello, helloSize)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = binary.BigEndian.AppendUint64(b, uint64(h.Network))
	return append(b, h.Key[:]...)
}

// decodeHello decodes a Hello body. The first two bytes are the version in
// every protocol version; a Hello of another version is returned with only
// Version set, so that the caller can refuse it as a version mismatch
// rather than as garbage.
func decodeHello(b []byte) (hello, error) {
	var h hello
	if len(b) < 2 {
		return h, fmt.Errorf("%w: hello of %d bytes", ErrMalformed, len(b))
	}
	h.Version = binary.BigEndian.Uint16(b)
	if h.Version != ProtocolVersion {
		return hello{Version: h.Version}, nil
	}
	if len(b) != helloSize {
		return hello{}, fmt.Errorf("%w: hello of %d bytes, want %d", ErrMalformed, len(b), helloSize)
	}
	h.Network = dag.NetworkID(binary.BigEndian.Uint64(b[2:]))
	copy(h.Key[:], b[10:])
	return h, nil
}

// batchSize is the encoded size of raws as batch entries.
func batchSize(raws [][]byte) int {
	n := 0
	for _, r := range raws {
		n += batchEntryHead + len(r)
	}
	return n
}

func appendBatch(b []byte, raws [][]byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(raws)))
	for _, r := range raws {
		b = binary.BigEndian.AppendUint32(b, uint32(len(r)))
		b = append(b, r...)
	}
	return b
}

// decodeBatch decodes count-prefixed raws that must fill b exactly. The
// raws alias b.
func decodeBatch(b []byte) ([][]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: batch of %d bytes", ErrMalformed, len(b))
	}
	count := binary.BigEndian.Uint32(b)
	b = b[4:]
	if count == 0 {
		if len(b) != 0 {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
		}
		return nil, nil
	}
	// Each entry takes at least 5 bytes: check before allocating.
	if uint64(count)*(batchEntryHead+1) > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d messages cannot fit in %d bytes", ErrMalformed, count, len(b))
	}
	raws := make([][]byte, 0, count)
	for i := uint32(0); i < count; i++ {
		if len(b) < batchEntryHead {
			return nil, fmt.Errorf("%w: message %d truncated", ErrMalformed, i)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[batchEntryHead:]
		if n == 0 || n > MaxMessageSize {
			return nil, fmt.Errorf("%w: message %d has length %d (1..%d)", ErrMalformed, i, n, MaxMessageSize)
		}
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: message %d truncated", ErrMalformed, i)
		}
		raws = append(raws, b[:n:n])
		b = b[n:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return raws, nil
}

// checkRaws reports the first raw that gossip cannot carry.
func checkRaws(raws [][]byte) error {
	for i, r := range raws {
		if len(r) == 0 || len(r) > MaxMessageSize {
			return fmt.Errorf("%w: message %d has %d bytes (1..%d)", ErrTooLarge, i, len(r), MaxMessageSize)
		}
	}
	return nil
}

// outFrame is one encoded frame waiting in a send queue, with the number of
// messages it carries (for the counters). Its bytes are never modified once
// queued, so one frame may sit in several peers' queues.
type outFrame struct {
	b    []byte
	msgs int
}

// encodeMessages encodes raws (already checked with checkRaws) as Messages
// frames of at most MaxFrameSize each, in order.
func encodeMessages(raws [][]byte) []outFrame {
	var frames []outFrame
	for len(raws) > 0 {
		n, size := 0, 0
		for n < len(raws) && size+batchEntryHead+len(raws[n]) <= maxMessagesBody {
			size += batchEntryHead + len(raws[n])
			n++
		}
		if n == 0 {
			panic("gossip: a message larger than a frame reached encodeMessages")
		}
		body := 4 + size
		b := make([]byte, 0, headerSize+body)
		b = appendHeader(b, frameMessages, body)
		b = appendBatch(b, raws[:n])
		frames = append(frames, outFrame{b: b, msgs: n})
		raws = raws[n:]
	}
	return frames
}

func decodeMessages(b []byte) ([][]byte, error) {
	raws, err := decodeBatch(b)
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, fmt.Errorf("%w: empty messages frame", ErrMalformed)
	}
	return raws, nil
}

// encodeRequests encodes ids as Request frames of at most MaxRequestIDs.
func encodeRequests(ids []dag.ID) []outFrame {
	var frames []outFrame
	for len(ids) > 0 {
		n := min(len(ids), MaxRequestIDs)
		body := 4 + n*dag.IDSize
		b := make([]byte, 0, headerSize+body)
		b = appendHeader(b, frameRequest, body)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		for _, id := range ids[:n] {
			b = append(b, id[:]...)
		}
		frames = append(frames, outFrame{b: b})
		ids = ids[n:]
	}
	return frames
}

func decodeRequest(b []byte) ([]dag.ID, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: request of %d bytes", ErrMalformed, len(b))
	}
	count := binary.BigEndian.Uint32(b)
	if count == 0 || count > MaxRequestIDs {
		return nil, fmt.Errorf("%w: request for %d ids (1..%d)", ErrMalformed, count, MaxRequestIDs)
	}
	if len(b) != 4+int(count)*dag.IDSize {
		return nil, fmt.Errorf("%w: request for %d ids has %d bytes", ErrMalformed, count, len(b))
	}
	ids := make([]dag.ID, count)
	for i := range ids {
		copy(ids[i][:], b[4+i*dag.IDSize:])
	}
	return ids, nil
}

func encodeSyncRequest(r syncRequest) []byte {
	b := make([]byte, 0, headerSize+syncRequestSize)
	b = appendHeader(b, frameSyncRequest, syncRequestSize)
	b = binary.BigEndian.AppendUint64(b, r.Req)
	b = binary.BigEndian.AppendUint64(b, r.From)
	return binary.BigEndian.AppendUint32(b, r.Limit)
}

func decodeSyncRequest(b []byte) (syncRequest, error) {
	if len(b) != syncRequestSize {
		return syncRequest{}, fmt.Errorf("%w: sync request of %d bytes, want %d", ErrMalformed, len(b), syncRequestSize)
	}
	r := syncRequest{
		Req:   binary.BigEndian.Uint64(b),
		From:  binary.BigEndian.Uint64(b[8:]),
		Limit: binary.BigEndian.Uint32(b[16:]),
	}
	if r.Limit == 0 || r.Limit > MaxSyncLimit {
		return syncRequest{}, fmt.Errorf("%w: sync limit %d (1..%d)", ErrMalformed, r.Limit, MaxSyncLimit)
	}
	return r, nil
}

// encodeSyncResponse encodes a response whose raws fit maxSyncBody.
func encodeSyncResponse(r syncResponse) outFrame {
	body := syncResponseHead + batchSize(r.Raws)
	b := make([]byte, 0, headerSize+body)
	b = appendHeader(b, frameSyncResponse, body)
	b = binary.BigEndian.AppendUint64(b, r.Req)
	b = binary.BigEndian.AppendUint64(b, r.Next)
	var flags byte
	if r.Done {
		flags |= syncFlagDone
	}
	b = append(b, flags)
	b = appendBatch(b, r.Raws)
	return outFrame{b: b, msgs: len(r.Raws)}
}

func decodeSyncResponse(b []byte) (syncResponse, error) {
	if len(b) < syncResponseHead {
		return syncResponse{}, fmt.Errorf("%w: sync response of %d bytes", ErrMalformed, len(b))
	}
	r := syncResponse{
		Req:  binary.BigEndian.Uint64(b),
		Next: binary.BigEndian.Uint64(b[8:]),
	}
	flags := b[16]
	if flags&^syncFlagDone != 0 {
		return syncResponse{}, fmt.Errorf("%w: sync response flags %#x", ErrMalformed, flags)
	}
	r.Done = flags&syncFlagDone != 0
	raws, err := decodeBatch(b[17:])
	if err != nil {
		return syncResponse{}, err
	}
	r.Raws = raws
	return r, nil
}

// encodeEntryPoints encodes an EntryPoints frame. Its entry points must be
// 1 to maxPageEntryPoints, sorted by ID without repeats, with
// timestamps that are not negative (fitEntryPoints makes them so).
func encodeEntryPoints(e entryPoints) outFrame {
	body := entryPointsHead + len(e.EPs)*EntryPointSize
	b := make([]byte, 0, headerSize+body)
	b = appendHeader(b, frameEntryPoints, body)
	b = binary.BigEndian.AppendUint64(b, e.Req)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.EPs)))
	for _, ep := range e.EPs {
		b = append(b, ep.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(ep.Timestamp))
	}
	return outFrame{b: b}
}

// decodeEntryPoints decodes an EntryPoints body: 1 to maxPageEntryPoints
// entry points, IDs in strictly increasing bytewise order (so each set has one encoding,
// and none repeats), timestamps with the top bit clear, nothing after.
func decodeEntryPoints(b []byte) (entryPoints, error) {
	if len(b) < entryPointsHead {
		return entryPoints{}, fmt.Errorf("%w: entry points of %d bytes", ErrMalformed, len(b))
	}
	e := entryPoints{Req: binary.BigEndian.Uint64(b)}
	count := binary.BigEndian.Uint32(b[8:])
	b = b[entryPointsHead:]
	if count == 0 || count > maxPageEntryPoints {
		return entryPoints{}, fmt.Errorf("%w: %d entry points (1..%d)", ErrMalformed, count, maxPageEntryPoints)
	}
	if uint64(count)*EntryPointSize != uint64(len(b)) {
		return entryPoints{}, fmt.Errorf("%w: %d entry points in %d bytes", ErrMalformed, count, len(b))
	}
	e.EPs = make([]EntryPoint, count)
	for i := range e.EPs {
		ep := &e.EPs[i]
		copy(ep.ID[:], b)
		ts := binary.BigEndian.Uint64(b[dag.IDSize:])
		if ts>>63 != 0 {
			return entryPoints{}, fmt.Errorf("%w: entry point %d has timestamp %#x (top bit set)", ErrMalformed, i, ts)
		}
		ep.Timestamp = int64(ts)
		if i > 0 && bytes.Compare(e.EPs[i-1].ID[:], ep.ID[:]) >= 0 {
			return entryPoints{}, fmt.Errorf("%w: entry point %d is not above the one before", ErrMalformed, i)
		}
		b = b[EntryPointSize:]
	}
	return e, nil
}

func encodePing(typ byte, nonce uint64) []byte {
	b := make([]byte, 0, headerSize+pingSize)
	b = appendHeader(b, typ, pingSize)
	return binary.BigEndian.AppendUint64(b, nonce)
}

// decodePing decodes a Ping or Pong body: the nonce.
func decodePing(b []byte) (uint64, error) {
	if len(b) != pingSize {
		return 0, fmt.Errorf("%w: ping of %d bytes, want %d", ErrMalformed, len(b), pingSize)
	}
	return binary.BigEndian.Uint64(b), nil
}
