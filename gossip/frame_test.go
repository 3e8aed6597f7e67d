package gossip

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/weftnet/weft/dag"
)

// body strips the frame header, checking it.
func body(t *testing.T, frame []byte, typ byte) []byte {
	t.Helper()
	var hdr [headerSize]byte
	got, b, err := readFrame(bytes.NewReader(frame), &hdr, MaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	if got != typ {
		t.Fatalf("type %#x, want %#x", got, typ)
	}
	return b
}

func TestFramesRoundTrip(t *testing.T) {
	h := hello{Version: ProtocolVersion, Network: 42, Key: dag.PublicKey{1, 2, 3}}
	if got, err := decodeHello(body(t, encodeHello(h), frameHello)); err != nil || got != h {
		t.Fatalf("hello: %+v, %v", got, err)
	}

	raws := msgs('m', 0, 10, 300)
	frames := encodeMessages(raws)
	if len(frames) != 1 || frames[0].msgs != 10 {
		t.Fatalf("%d frames", len(frames))
	}
	got, err := decodeMessages(body(t, frames[0].b, frameMessages))
	if err != nil || len(got) != len(raws) {
		t.Fatalf("messages: %d, %v", len(got), err)
	}
	for i := range raws {
		if !bytes.Equal(got[i], raws[i]) {
			t.Fatalf("message %d differs", i)
		}
	}

	ids := make([]dag.ID, MaxRequestIDs+3)
	for i := range ids {
		binary.BigEndian.PutUint32(ids[i][:], uint32(i))
	}
	rf := encodeRequests(ids)
	if len(rf) != 2 {
		t.Fatalf("%d request frames for %d ids", len(rf), len(ids))
	}
	var back []dag.ID
	for _, f := range rf {
		part, err := decodeRequest(body(t, f.b, frameRequest))
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, part...)
	}
	if len(back) != len(ids) || back[MaxRequestIDs+2] != ids[MaxRequestIDs+2] {
		t.Fatal("request ids differ")
	}

	sr := syncRequest{Req: 7, From: 1 << 40, Limit: 500}
	if got, err := decodeSyncRequest(body(t, encodeSyncRequest(sr), frameSyncRequest)); err != nil || got != sr {
		t.Fatalf("sync request: %+v, %v", got, err)
	}

	for _, resp := range []syncResponse{
		{Req: 7, Next: 12, Done: true},
		{Req: 8, Next: 1 << 50, Raws: raws},
	} {
		got, err := decodeSyncResponse(body(t, encodeSyncResponse(resp).b, frameSyncResponse))
		if err != nil || got.Req != resp.Req || got.Next != resp.Next || got.Done != resp.Done || len(got.Raws) != len(resp.Raws) {
			t.Fatalf("sync response: %+v, %v", got, err)
		}
	}

	eps := entryPoints{Req: 9, EPs: []EntryPoint{{ID: dag.ID{1}, Timestamp: 0}, {ID: dag.ID{1, 1}, Timestamp: 1<<63 - 1}, {ID: dag.ID{2}, Timestamp: 5}}}
	if got, err := decodeEntryPoints(body(t, encodeEntryPoints(eps).b, frameEntryPoints)); err != nil || got.Req != eps.Req || !slices.Equal(got.EPs, eps.EPs) {
		t.Fatalf("entry points: %+v, %v", got, err)
	}

	if n, err := decodePing(body(t, encodePing(framePong, 99), framePong)); err != nil || n != 99 {
		t.Fatalf("pong: %d, %v", n, err)
	}
}

// TestFitEntryPoints: what a Sync handler returns is sorted, each entry
// point once, and cut to the page's budget; a page's raws get what the
// entry points leave of it.
func TestFitEntryPoints(t *testing.T) {
	ep := func(i uint32, ts int64) EntryPoint {
		var id dag.ID
		binary.BigEndian.PutUint32(id[:], i)
		return EntryPoint{ID: id, Timestamp: ts}
	}
	got, ok := fitEntryPoints([]EntryPoint{ep(3, 30), ep(1, 10), ep(3, 31), ep(2, 20)})
	if !ok || !slices.Equal(got, []EntryPoint{ep(1, 10), ep(2, 20), ep(3, 30)}) {
		t.Fatalf("sorted, repeats dropped: %v, %v", got, ok)
	}
	if got, ok := fitEntryPoints([]EntryPoint{ep(1, 10), ep(2, -1)}); ok || !slices.Equal(got, []EntryPoint{ep(1, 10)}) {
		t.Fatalf("negative timestamp: %v, %v", got, ok)
	}
	most := maxPageEntryPoints
	many := make([]EntryPoint, most+10)
	for i := range many {
		many[i] = ep(uint32(i), 1)
	}
	got, ok = fitEntryPoints(many)
	if ok || len(got) != most {
		t.Fatalf("over the budget: %d kept, ok %v; want %d", len(got), ok, most)
	}
	if f := encodeEntryPoints(entryPoints{EPs: got}); len(f.b)-headerSize > MaxFrameSize {
		t.Fatalf("a full EntryPoints frame of %d bytes", len(f.b))
	}
	// The two frames of a page fill at most one frame's worth of queue.
	raws := msgs('p', 0, 200, 10_000)
	fit, ok := fitRaws(raws, 1000, maxSyncPage-10*EntryPointSize)
	if ok || len(fit) == 0 {
		t.Fatalf("%d raws fit, ok %v", len(fit), ok)
	}
	both := len(encodeEntryPoints(entryPoints{EPs: got[:10]}).b) + len(encodeSyncResponse(syncResponse{Raws: fit}).b)
	if both > headerSize+MaxFrameSize {
		t.Fatalf("a page's frames take %d bytes, more than a frame's %d", both, headerSize+MaxFrameSize)
	}
	if fit, ok := fitRaws(raws[:3], 2, maxSyncPage); ok || len(fit) != 2 {
		t.Fatalf("over the limit: %d raws, ok %v", len(fit), ok)
	}
}

// TestEntryPointsFrameOncePerRequest: the entry points that come ahead of
// a sync response go with it; those for a request nobody waits for are
// dropped, and a second frame for one request is a protocol error.
func TestEntryPointsFrameOncePerRequest(t *testing.T) {
	s := &session{waiters: make(map[uint64]*syncWait)}
	ch := s.await(5)
	e := entryPoints{Req: 5, EPs: []EntryPoint{{ID: dag.ID{1}, Timestamp: 3}}}
	if err := s.stash(entryPoints{Req: 6, EPs: e.EPs}); err != nil {
		t.Fatalf("for a request nobody waits for: %v", err)
	}
	if err := s.stash(e); err != nil {
		t.Fatal(err)
	}
	if err := s.stash(e); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a second frame: %v, want ErrMalformed", err)
	}
	s.deliver(syncResponse{Req: 6, Next: 1})
	s.deliver(syncResponse{Req: 5, Next: 8, Done: true})
	page := <-ch
	if !slices.Equal(page.EntryPoints, e.EPs) || page.Next != 8 || !page.Done {
		t.Fatalf("page %+v", page)
	}
	ch = s.await(7)
	s.deliver(syncResponse{Req: 7, Next: 9})
	if page := <-ch; page.EntryPoints != nil {
		t.Fatalf("a page without an EntryPoints frame has %v", page.EntryPoints)
	}
}

func TestEncodeMessagesSplitsFrames(t *testing.T) {
	big := msgs('b', 0, 20, MaxMessageSize) // 2.5 MiB: three frames
	frames := encodeMessages(big)
	total := 0
	for _, f := range frames {
		if len(f.b)-headerSize > MaxFrameSize {
			t.Fatalf("frame of %d bytes", len(f.b))
		}
		raws, err := decodeMessages(f.b[headerSize:])
		if err != nil {
			t.Fatal(err)
		}
		if len(raws) != f.msgs {
			t.Fatalf("frame counts %d, carries %d", f.msgs, len(raws))
		}
		total += len(raws)
	}
	if len(frames) != 3 || total != len(big) {
		t.Fatalf("%d frames carrying %d messages", len(frames), total)
	}
}

func TestDecodersRejectHostileInput(t *testing.T) {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	cases := []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"hello short", func(b []byte) error { _, err := decodeHello(b); return err }, []byte{0}},
		{"hello v1 long", func(b []byte) error { _, err := decodeHello(b); return err }, cat([]byte{0, 1}, make([]byte, helloSize-1))},
		{"hello v1 short", func(b []byte) error { _, err := decodeHello(b); return err }, []byte{0, 1, 0, 0}},
		{"messages empty", func(b []byte) error { _, err := decodeMessages(b); return err }, u32(0)},
		{"messages huge count", func(b []byte) error { _, err := decodeMessages(b); return err }, cat(u32(1<<31), u32(1), []byte{1})},
		{"messages zero length", func(b []byte) error { _, err := decodeMessages(b); return err }, cat(u32(1), u32(0))},
		{"messages over max", func(b []byte) error { _, err := decodeMessages(b); return err }, cat(u32(1), u32(MaxMessageSize+1), make([]byte, MaxMessageSize+1))},
		{"messages truncated", func(b []byte) error { _, err := decodeMessages(b); return err }, cat(u32(1), u32(10), []byte{1, 2})},
		{"messages trailing", func(b []byte) error { _, err := decodeMessages(b); return err }, cat(u32(1), u32(1), []byte{1, 2})},
		{"messages no count", func(b []byte) error { _, err := decodeMessages(b); return err }, []byte{1}},
		{"request zero", func(b []byte) error { _, err := decodeRequest(b); return err }, u32(0)},
		{"request too many", func(b []byte) error { _, err := decodeRequest(b); return err }, u32(MaxRequestIDs + 1)},
		{"request short", func(b []byte) error { _, err := decodeRequest(b); return err }, cat(u32(2), make([]byte, 32))},
		{"sync request length", func(b []byte) error { _, err := decodeSyncRequest(b); return err }, make([]byte, syncRequestSize-1)},
		{"sync request limit 0", func(b []byte) error { _, err := decodeSyncRequest(b); return err }, make([]byte, syncRequestSize)},
		{"sync request limit big", func(b []byte) error { _, err := decodeSyncRequest(b); return err }, cat(make([]byte, 16), u32(MaxSyncLimit+1))},
		{"sync response flags", func(b []byte) error { _, err := decodeSyncResponse(b); return err }, cat(make([]byte, 16), []byte{2}, u32(0))},
		{"sync response short", func(b []byte) error { _, err := decodeSyncResponse(b); return err }, make([]byte, 10)},
		{"sync response trailing", func(b []byte) error { _, err := decodeSyncResponse(b); return err }, cat(make([]byte, 17), u32(0), []byte{9})},
		{"entry points short", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, make([]byte, entryPointsHead-1)},
		{"entry points none", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, make([]byte, entryPointsHead)},
		{"entry points huge count", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, cat(make([]byte, 8), u32(1<<31), make([]byte, EntryPointSize))},
		{"entry points over a page", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, cat(make([]byte, 8), u32(maxPageEntryPoints+1), make([]byte, (maxPageEntryPoints+1)*EntryPointSize))},
		{"entry points truncated", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, cat(make([]byte, 8), u32(2), make([]byte, EntryPointSize+1))},
		{"entry points trailing", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, cat(make([]byte, 8), u32(1), make([]byte, EntryPointSize+1))},
		{"entry points repeat", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, cat(make([]byte, 8), u32(2), make([]byte, 2*EntryPointSize))},
		{"entry points unsorted", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, cat(make([]byte, 8), u32(2), []byte{2}, make([]byte, EntryPointSize-1), []byte{1}, make([]byte, EntryPointSize-1))},
		{"entry points negative time", func(b []byte) error { _, err := decodeEntryPoints(b); return err }, cat(make([]byte, 8), u32(1), make([]byte, dag.IDSize), []byte{0x80}, make([]byte, 7))},
		{"ping length", func(b []byte) error { _, err := decodePing(b); return err }, make([]byte, 9)},
	}
	for _, c := range cases {
		if err := c.decode(c.in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", c.name, err)
		}
	}
}

func TestReadFrameLimits(t *testing.T) {
	var hdr [headerSize]byte
	over := appendHeader(nil, frameMessages, MaxFrameSize+1)
	if _, _, err := readFrame(bytes.NewReader(over), &hdr, MaxFrameSize); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	trunc := append(appendHeader(nil, framePing, 8), 1, 2, 3)
	if _, _, err := readFrame(bytes.NewReader(trunc), &hdr, MaxFrameSize); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated body: %v", err)
	}
	if _, _, err := readFrame(bytes.NewReader([]byte{1, 0}), &hdr, MaxFrameSize); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated header: %v", err)
	}
	if _, _, err := readFrame(bytes.NewReader(nil), &hdr, MaxFrameSize); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
}

func TestHelloOfAnotherVersion(t *testing.T) {
	h, err := decodeHello([]byte{0, 2, 0xde, 0xad})
	if err != nil || h.Version != 2 {
		t.Fatalf("%+v, %v", h, err)
	}
}

func TestSendQueueBounds(t *testing.T) {
	q := newSendQueue(3, 1000)
	f := func(n int) outFrame { return outFrame{b: make([]byte, n), msgs: 1} }
	if !q.push(false, f(100), f(100)) {
		t.Fatal("two frames did not fit")
	}
	if q.push(false, f(100), f(100)) {
		t.Fatal("a batch passing the frame bound was queued")
	}
	if !q.push(false, f(100)) {
		t.Fatal("the third frame did not fit")
	}
	if !q.push(true, f(10)) {
		t.Fatal("control lane full")
	}
	got := q.take(nil)
	if len(got) != 4 || len(got[0].b) != 10 {
		t.Fatalf("took %d frames, control first: %v", len(got), len(got[0].b))
	}
	if q.push(false, f(1001)) {
		t.Fatal("a frame over the byte bound was queued")
	}
	if !q.push(false, f(1000)) {
		t.Fatal("an exact fit was refused")
	}
}

func TestCertificate(t *testing.T) {
	priv, key := identity(4)
	c1, err := NewCertificate(priv)
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := NewCertificate(priv)
	if !bytes.Equal(c1.Certificate[0], c2.Certificate[0]) {
		t.Fatal("certificate is not deterministic")
	}
	got, err := keyFromRaw(c1.Certificate)
	if err != nil || got != key {
		t.Fatalf("key %s, %v; want %s", got, err, key)
	}
	if got, err := PeerKey(tls.ConnectionState{PeerCertificates: []*x509.Certificate{c1.Leaf}}); err != nil || got != key {
		t.Fatalf("PeerKey: %s, %v", got, err)
	}
	if _, err := PeerKey(tls.ConnectionState{}); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("no certificate: %v", err)
	}
	// A certificate whose signature is not by its own key.
	bad := bytes.Clone(c1.Certificate[0])
	bad[len(bad)-1] ^= 1
	if _, err := keyFromRaw([][]byte{bad}); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("tampered certificate: %v", err)
	}
	if _, err := keyFromRaw([][]byte{c1.Certificate[0], c1.Certificate[0]}); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("two certificates: %v", err)
	}
	if _, err := NewCertificate(ed25519.PrivateKey{1}); !errors.Is(err, ErrConfig) {
		t.Fatalf("short key: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	id, self := identity(1)
	_, other := identity(2)
	h := newFakeHandler()
	bad := []Config{
		{Handler: h},
		{Identity: id},
		{Identity: id, Handler: h, Peers: []Peer{{Key: self, Addr: "127.0.0.1:1"}}},
		{Identity: id, Handler: h, Peers: []Peer{{Key: other, Addr: "127.0.0.1:1"}, {Key: other, Addr: "127.0.0.1:2"}}},
		{Identity: id, Handler: h, Peers: []Peer{{Key: other}}},
		{Identity: id, Handler: h, Peers: []Peer{{Key: other, Addr: "nocolon"}}},
		{Identity: id, Handler: h, SendQueueBytes: 1000},
		{Identity: id, Handler: h, WriteTimeout: -1},
		{Identity: id, Handler: h, MaxHandshakes: -1},
		{Identity: id, Handler: h, HandshakeTimeout: -1},
	}
	for i, c := range bad {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("config %d: %v, want ErrConfig", i, err)
		}
	}
	c, err := Config{Identity: id, Handler: h}.withDefaults()
	if err != nil || c.SendQueue != DefaultSendQueue || c.PingInterval != DefaultPingInterval || c.RequestTimeout != DefaultRequestTimeout ||
		c.MaxHandshakes != DefaultMaxHandshakes || c.HandshakeTimeout != DefaultHandshakeTimeout {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

func TestCloseErrorUnwraps(t *testing.T) {
	e := &CloseError{Code: CodeNetworkMismatch, Remote: true, Reason: "gossip: network mismatch: x"}
	if !errors.Is(e, ErrNetworkMismatch) || errors.Is(e, ErrVersionMismatch) {
		t.Fatal("sentinel")
	}
	if got := e.Error(); got != "gossip: closed by peer (code 0x4): network mismatch: x" {
		t.Fatalf("message %q", got)
	}
	local := closeErr(CodeProtocol, errors.Join(ErrMalformed, io.ErrUnexpectedEOF))
	if !errors.Is(local, io.ErrUnexpectedEOF) || !errors.Is(local, ErrMalformed) {
		t.Fatal("cause")
	}
	if got := (&CloseError{Code: 0x99}).Error(); got != "gossip: closed locally (code 0x99): unknown close code 0x99" {
		t.Fatalf("unknown code: %q", got)
	}
}
