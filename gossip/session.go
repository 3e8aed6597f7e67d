package gossip

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/weftnet/weft/dag"
)

const (
	readBufSize  = 256 << 10
	writeBufSize = 256 << 10
	// maxHelloFrame bounds the first frame, read before the peer is known
	// to speak the protocol.
	maxHelloFrame = 256
	// maxReason bounds the reason text sent with a close code.
	maxReason = 256
)

// session is one live connection to a peer, after the Hello exchange: one
// bidirectional stream, a reading goroutine and a writing goroutine, both
// owned by run, which waits for them.
type session struct {
	t        *Transport
	key      dag.PublicKey
	p        *peer // set by attach
	conn     *quic.Conn
	stream   *quic.Stream
	outbound bool
	remote   string
	since    time.Time
	q        *sendQueue

	// ctx ends when the session must end; its cause is why.
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{} // closed once run has torn everything down

	mu      sync.Mutex
	waiters map[uint64]*syncWait // nil once the session ended
}

// syncWait is a Sync waiting for its response, with the entry points that
// came for it ahead of the response.
type syncWait struct {
	ch  chan SyncPage
	eps []EntryPoint
	got bool // an EntryPoints frame came for it
}

// serveConn runs a connection that passed the TLS handshake: the stream,
// the Hello exchange, then the session until it ends. want is the key a
// dialled peer must have (zero for inbound connections, whose key the
// listener has admitted). It returns the peer's key, whether the session
// was established (Hello exchanged and attached), and why it ended.
func (t *Transport) serveConn(ctx context.Context, conn *quic.Conn, outbound bool, want dag.PublicKey) (dag.PublicKey, bool, error) {
	key, err := PeerKey(conn.ConnectionState().TLS)
	if err == nil && outbound && key != want {
		err = fmt.Errorf("%w: dialled %s, got %s", ErrWrongKey, want, key) // the TLS check makes this unreachable
	}
	if err != nil {
		return key, false, t.abort(ctx, conn, want, closeErr(CodeProtocol, err))
	}
	st, br, err := t.openAndHello(ctx, conn, key, outbound)
	if !outbound {
		endHandshake(conn)
	}
	if err != nil {
		return key, false, t.abort(ctx, conn, key, err)
	}
	s := &session{
		t:        t,
		key:      key,
		conn:     conn,
		stream:   st,
		outbound: outbound,
		remote:   conn.RemoteAddr().String(),
		since:    time.Now(),
		q:        newSendQueue(t.cfg.SendQueue, t.cfg.SendQueueBytes),
		done:     make(chan struct{}),
		waiters:  make(map[uint64]*syncWait),
	}
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	if err := t.attach(ctx, s); err != nil {
		s.cancel(err)
		return key, false, t.abort(ctx, conn, key, err)
	}
	t.log.Info().Str("peer", key.String()).Str("addr", s.remote).Bool("outbound", outbound).Msg("gossip: peer connected")
	t.cfg.Handler.Connected(key)
	return key, true, s.run(ctx, br)
}

// openAndHello opens (dialler) or accepts (listener) the connection's
// stream and exchanges Hellos on it, within helloTimeout, or for an
// inbound connection, whose handshake slot (handshake.go) is held until
// then, within HandshakeTimeout.
func (t *Transport) openAndHello(ctx context.Context, conn *quic.Conn, key dag.PublicKey, outbound bool) (*quic.Stream, *bufio.Reader, error) {
	wait := t.helloTimeout
	if !outbound {
		wait = min(wait, t.cfg.HandshakeTimeout)
	}
	hctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var st *quic.Stream
	var err error
	if outbound {
		st, err = conn.OpenStreamSync(hctx)
	} else {
		st, err = conn.AcceptStream(hctx)
	}
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(st, readBufSize)
	// The stream's reads and writes do not watch hctx: its end (timeout or
	// shutdown) sets a past deadline on the stream instead.
	stop := context.AfterFunc(hctx, func() { st.SetDeadline(time.Now()) })
	err = t.exchangeHello(st, br, key, outbound)
	if !stop() && err == nil {
		err = hctx.Err()
	}
	if err != nil {
		return nil, nil, err
	}
	return st, br, nil
}

// abort closes a connection that did not become a session, telling the
// peer why, records the reason for the peer and returns it.
func (t *Transport) abort(ctx context.Context, conn *quic.Conn, key dag.PublicKey, err error) error {
	if ctx.Err() != nil {
		err = closeErr(CodeShutdown, ErrShutdown)
	} else if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		err = closeErr(CodeHelloTimeout, fmt.Errorf("%w: %v", ErrHelloTimeout, err))
	} else if errors.Is(err, ErrFrameTooLarge) {
		err = closeErr(CodeFrameTooLarge, err)
	}
	err = classify(err)
	closeConn(conn, err)
	t.recordErr(key, err)
	return err
}

// closeConn closes conn with the code of a local CloseError (CodeShutdown
// for anything else; a connection the peer closed is closed already).
func closeConn(conn *quic.Conn, err error) {
	code, reason := CodeShutdown, ""
	var ce *CloseError
	if errors.As(err, &ce) && !ce.Remote {
		code, reason = ce.Code, ce.Reason
	}
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	conn.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

// exchangeHello sends our Hello and checks the peer's. Its reasons name the dialler and the listener rather than "we" and "the
// peer", since they travel to the other side.
func (t *Transport) exchangeHello(st *quic.Stream, br *bufio.Reader, key dag.PublicKey, outbound bool) error {
	if _, err := st.Write(encodeHello(hello{Version: ProtocolVersion, Network: t.cfg.Network, Key: t.self})); err != nil {
		return err
	}
	var hdr [headerSize]byte
	typ, body, err := readFrame(br, &hdr, maxHelloFrame)
	if err != nil {
		return err
	}
	if typ != frameHello {
		return closeErr(CodeProtocol, fmt.Errorf("%w: first frame has type %#x, want hello", ErrMalformed, typ))
	}
	h, err := decodeHello(body)
	dialler, listener := sides(outbound, uint64(ProtocolVersion), uint64(h.Version))
	netD, netL := sides(outbound, uint64(t.cfg.Network), uint64(h.Network))
	switch {
	case err != nil:
		return closeErr(CodeProtocol, err)
	case h.Version != ProtocolVersion:
		return closeErr(CodeVersionMismatch, fmt.Errorf("%w: the dialler speaks version %d, the listener %d", ErrVersionMismatch, dialler, listener))
	case h.Network != t.cfg.Network:
		return closeErr(CodeNetworkMismatch, fmt.Errorf("%w: the dialler is on network %#016x, the listener on %#016x", ErrNetworkMismatch, netD, netL))
	case h.Key != key:
		return closeErr(CodeKeyMismatch, fmt.Errorf("%w: hello says %s, certificate %s", ErrKeyMismatch, h.Key, key))
	}
	return nil
}

// sides orders our value and the peer's as (dialler's, listener's).
func sides(outbound bool, ours, theirs uint64) (uint64, uint64) {
	if outbound {
		return ours, theirs
	}
	return theirs, ours
}

// run serves the session until it ends (its ctx is cancelled: by an error
// of either goroutine, by Disconnect, by newer connections, or by the
// transport shutting down), then closes the connection with the reason,
// waits for both goroutines, detaches the session and returns the reason.
func (s *session) run(parent context.Context, br *bufio.Reader) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.cancel(s.readLoop(br)) })
	wg.Go(func() { s.cancel(s.writeLoop()) })
	<-s.ctx.Done()
	err := context.Cause(s.ctx)
	var ce *CloseError
	if !errors.As(err, &ce) && parent.Err() != nil {
		err = closeErr(CodeShutdown, ErrShutdown)
	}
	closeConn(s.conn, err)
	wg.Wait()
	s.mu.Lock()
	s.waiters = nil
	s.mu.Unlock()
	s.t.detach(s, err)
	close(s.done)
	return err
}

func (s *session) readLoop(br *bufio.Reader) error {
	var hdr [headerSize]byte
	for {
		typ, body, err := readFrame(br, &hdr, MaxFrameSize)
		if err != nil {
			if errors.Is(err, ErrFrameTooLarge) {
				return closeErr(CodeFrameTooLarge, err)
			}
			return classify(err)
		}
		if err := s.handle(typ, body); err != nil {
			return closeErr(CodeProtocol, err)
		}
	}
}

// handle acts on one frame from the peer. An error closes the connection.
func (s *session) handle(typ byte, body []byte) error {
	h := s.t.cfg.Handler
	switch typ {
	case frameMessages:
		raws, err := decodeMessages(body)
		if err != nil {
			return err
		}
		s.p.msgsIn.Add(uint64(len(raws)))
		h.Messages(s.key, raws)
	case frameRequest:
		ids, err := decodeRequest(body)
		if err != nil {
			return err
		}
		s.p.reqIn.Add(uint64(len(ids)))
		if raws := s.t.carriable(h.Request(s.key, ids)); len(raws) > 0 {
			s.pushData(encodeMessages(raws)...)
		}
	case frameSyncRequest:
		r, err := decodeSyncRequest(body)
		if err != nil {
			return err
		}
		s.p.syncIn.Add(1)
		page := h.Sync(s.key, r.From, int(r.Limit), maxSyncPage)
		s.pushData(s.syncFrames(r, page)...)
	case frameEntryPoints:
		e, err := decodeEntryPoints(body)
		if err != nil {
			return err
		}
		s.p.epIn.Add(uint64(len(e.EPs)))
		return s.stash(e)
	case frameSyncResponse:
		r, err := decodeSyncResponse(body)
		if err != nil {
			return err
		}
		s.p.msgsIn.Add(uint64(len(r.Raws)))
		s.deliver(r)
	case framePing:
		nonce, err := decodePing(body)
		if err != nil {
			return err
		}
		s.q.push(true, outFrame{b: encodePing(framePong, nonce)})
	case framePong:
		nonce, err := decodePing(body)
		if err != nil {
			return err
		}
		// The nonce is our clock when we sent the Ping; a peer could echo
		// anything, so only plausible values count.
		if rtt := s.t.now() - nonce; rtt < uint64(time.Hour) {
			s.p.rtt.Store(int64(rtt))
		}
	case frameHello:
		return fmt.Errorf("%w: a second hello", ErrMalformed)
	default:
		// Unknown frame types are skipped, so that a later version can add
		// frames its peers may ignore.
	}
	return nil
}

// syncFrames encodes a Sync handler's page as the answer to r: an
// EntryPoints frame if the page names entry points, then the
// SyncResponse, to be queued together. The entry points are sorted by ID
// and a repeat dropped, as the wire wants; a page over the request's limit
// or the byte budget is cut to fit and logged: the handler broke its
// contract.
func (s *session) syncFrames(r syncRequest, page SyncPage) []outFrame {
	eps, epsOK := fitEntryPoints(page.EntryPoints)
	raws, rawsOK := fitRaws(page.Raws, int(r.Limit), maxSyncPage-len(eps)*EntryPointSize)
	if !epsOK || !rawsOK {
		s.t.log.Error().Str("peer", s.key.String()).
			Int("raws", len(page.Raws)).Int("raws_kept", len(raws)).
			Int("entry_points", len(page.EntryPoints)).Int("entry_points_kept", len(eps)).
			Msg("gossip: Handler.Sync returned more than the limit or the byte budget, a message of impossible size, or a negative timestamp")
	}
	frames := make([]outFrame, 0, 2)
	if len(eps) > 0 {
		frames = append(frames, encodeEntryPoints(entryPoints{Req: r.Req, EPs: eps}))
		s.p.epOut.Add(uint64(len(eps)))
	}
	return append(frames, encodeSyncResponse(syncResponse{Req: r.Req, Next: page.Next, Done: page.Done, Raws: raws}))
}

// fitEntryPoints returns a handler's entry points sorted by ID, each once,
// and at most what the page's budget holds; ok is false if it left out
// more than repeats (one with a negative timestamp, or past the budget).
func fitEntryPoints(eps []EntryPoint) (fit []EntryPoint, ok bool) {
	if len(eps) == 0 {
		return nil, true
	}
	fit = slices.Clone(eps)
	slices.SortStableFunc(fit, func(a, b EntryPoint) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	fit = slices.CompactFunc(fit, func(a, b EntryPoint) bool { return a.ID == b.ID })
	n := len(fit)
	fit = slices.DeleteFunc(fit, func(ep EntryPoint) bool { return ep.Timestamp < 0 })
	ok = len(fit) == n
	if len(fit) > maxPageEntryPoints {
		fit, ok = fit[:maxPageEntryPoints], false
	}
	return fit, ok
}

// fitRaws cuts a handler's raws to the limit and to budget bytes of batch
// entries; ok is false if it cut anything.
func fitRaws(raws [][]byte, limit, budget int) (fit [][]byte, ok bool) {
	size, n := 0, 0
	for n < len(raws) && n < limit {
		r := raws[n]
		if len(r) == 0 || len(r) > MaxMessageSize || size+batchEntryHead+len(r) > budget {
			break
		}
		size += batchEntryHead + len(r)
		n++
	}
	return raws[:n], n == len(raws)
}

// writeLoop drains the send queue onto the stream, many frames per flush,
// and sends a Ping every PingInterval. A write that makes no progress for
// WriteTimeout ends the session (CodeStalled).
func (s *session) writeLoop() error {
	bw := bufio.NewWriterSize(&deadlineWriter{st: s.stream, timeout: s.t.cfg.WriteTimeout}, writeBufSize)
	tick := time.NewTicker(s.t.cfg.PingInterval)
	defer tick.Stop()
	s.ping()
	var batch []outFrame
	for {
		select {
		case <-s.ctx.Done():
			return nil
		case <-tick.C:
			s.ping()
			continue
		case <-s.q.ready:
		}
		batch = s.q.take(batch[:0])
		msgs := 0
		for _, f := range batch {
			if _, err := bw.Write(f.b); err != nil {
				return s.writeErr(err)
			}
			msgs += f.msgs
		}
		if err := bw.Flush(); err != nil {
			return s.writeErr(err)
		}
		s.p.msgsOut.Add(uint64(msgs))
		clear(batch)
	}
}

func (s *session) writeErr(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return closeErr(CodeStalled, fmt.Errorf("%w: no data accepted for %v", ErrStalled, s.t.cfg.WriteTimeout))
	}
	return classify(err)
}

func (s *session) ping() {
	s.q.push(true, outFrame{b: encodePing(framePing, s.t.now())})
}

// pushData queues frames on the data lane, counting a drop.
func (s *session) pushData(frames ...outFrame) bool {
	if s.q.push(false, frames...) {
		return true
	}
	msgs := 0
	for _, f := range frames {
		msgs += f.msgs
	}
	s.p.droppedFrames.Add(uint64(len(frames)))
	s.p.droppedMsgs.Add(uint64(msgs))
	return false
}

// await registers a Sync waiting for response id; nil if the session ended.
func (s *session) await(id uint64) chan SyncPage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiters == nil {
		return nil
	}
	w := &syncWait{ch: make(chan SyncPage, 1)}
	s.waiters[id] = w
	return w.ch
}

func (s *session) forget(id uint64) {
	s.mu.Lock()
	delete(s.waiters, id)
	s.mu.Unlock()
}

// stash keeps the entry points that came for a Sync until its response
// does. Those for a request nobody waits for (late, or never asked) are
// dropped, as its response will be; a second EntryPoints frame for one
// request is a protocol error.
func (s *session) stash(e entryPoints) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[e.Req]
	if w == nil {
		return nil
	}
	if w.got {
		return fmt.Errorf("%w: a second entry points frame for request %d", ErrMalformed, e.Req)
	}
	w.eps, w.got = e.EPs, true
	return nil
}

// deliver hands a sync response, with the entry points that came ahead of
// it, to its waiter; one nobody waits for (late, or never asked) is
// dropped.
func (s *session) deliver(r syncResponse) {
	s.mu.Lock()
	w := s.waiters[r.Req]
	delete(s.waiters, r.Req)
	s.mu.Unlock()
	if w != nil {
		w.ch <- SyncPage{Raws: r.Raws, EntryPoints: w.eps, Next: r.Next, Done: r.Done}
	}
}

// deadlineWriter gives each write to the stream WriteTimeout to complete.
type deadlineWriter struct {
	st      *quic.Stream
	timeout time.Duration
}

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.st.SetWriteDeadline(time.Now().Add(w.timeout))
	return w.st.Write(b)
}
