package gossip

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
)

// Handler is what the node gives the transport: it receives what peers send
// and answers what they ask. The transport never judges a message; it
// hands the bytes over and the node decides.
//
// Every method is called from the reading goroutine of one connection, so
// calls for different peers run concurrently, and calls for one connection
// run one at a time, in the order the peer sent the frames. (A pair of
// nodes shares one connection, rarely two: see "Connections per pair" in
// doc.go; then calls for one peer may overlap.) While a method runs, nothing more is read from that
// connection: a method that blocks applies backpressure to that peer alone
// (QUIC flow control stops it from sending), and stalls no other peer. Run
// waits for every call in flight to return before it returns.
type Handler interface {
	// Connected reports that a connection to peer is up and ready for Send,
	// RequestIDs and Sync (the usual reaction: start a catch-up Sync in a
	// goroutine of the node's own). It may be called again for a peer that
	// is already connected, when its connection is replaced or restored. It
	// must not block.
	Connected(peer dag.PublicKey)
	// Messages delivers a batch of raw message encodings from a peer, in
	// the order it sent them: what it broadcast or sent, and the
	// answers to our RequestIDs. The raws are unverified bytes, each 1 to
	// MaxMessageSize long; the handler owns them (they are never reused).
	Messages(from dag.PublicKey, raws [][]byte)
	// Request asks for the messages with the given IDs (1 to MaxRequestIDs
	// of them). Return the encodings of those the node has, in any order,
	// omitting the unknown ones; they go back to the peer as Messages
	// (copied before the transport's next call).
	Request(from dag.PublicKey, ids []dag.ID) (raws [][]byte)
	// Sync asks for a page of the node's stored messages from log
	// position pos on, in log order: at most limit of them (1 to
	// MaxSyncLimit) and at most maxBytes bytes, counting 4 bytes of
	// overhead per message and EntryPointSize per entry point, but at
	// least one message if any remains. A node whose log no longer holds
	// pos (it dropped old messages) answers from the first position it
	// holds. The page's EntryPoints are the messages its Raws name as
	// parents that the node does not hold (it dropped them, or never held
	// them) and that the asker cannot get otherwise: their IDs and
	// timestamps, in any order (a repeat is sent once). Next is the
	// position to ask from for the following page; Done reports that the
	// page reaches the end of the log. A position beyond the end returns
	// no raws, Next pos and Done. A reply over the bounds is cut to fit
	// and logged as a bug, which leaves the asker with a gap (Next no
	// longer matches) or with messages whose parents it lacks.
	Sync(from dag.PublicKey, pos uint64, limit, maxBytes int) SyncPage
}

// EntryPoint is a message that a peer's sync page names as a parent but
// whose body the peer no longer holds: a solid, confirmed message below
// the retention frontier of the peer's store. The asker takes it as solid
// and confirmed without its body, so that the page's messages can become
// solid; docs/GOSSIP.md (EntryPoints) says what that trusts.
type EntryPoint struct {
	ID dag.ID
	// Timestamp is the message's timestamp (unix nanoseconds): what the
	// validity rule compares its children's timestamps with. It is never
	// negative.
	Timestamp int64
}

// SyncPage is a page of a peer's log, as Handler.Sync returns it and
// Transport.Sync delivers it: the messages (raw encodings, unverified),
// the entry points they need, where to ask from next, and whether the
// page reached the end of the log.
type SyncPage struct {
	Raws        [][]byte
	EntryPoints []EntryPoint
	Next        uint64
	Done        bool
}

// PeerStats describes one peer: a configured peer (always listed) or a
// node connected in under Config.Open (listed while connected). Counters
// run from New and survive reconnects.
type PeerStats struct {
	Key dag.PublicKey
	// Addr is the configured address, or the remote address of an
	// unconfigured peer's connection.
	Addr       string
	Configured bool
	Connected  bool
	// Connections is the number of live connections: 1, or 2 after a
	// simultaneous dial. The newest is the current one, which Outbound and
	// Since describe and which carries what we send.
	Connections int
	// Outbound reports that the current connection was dialled by us.
	Outbound bool
	// Since is when the current connection came up (zero if not connected).
	Since time.Time
	// MessagesIn counts messages received (Messages frames and sync
	// responses); MessagesOut, messages written to the connection.
	MessagesIn, MessagesOut uint64
	// DroppedFrames and DroppedMessages count what was not queued for the
	// peer because its send queue was full.
	DroppedFrames, DroppedMessages uint64
	// RequestsIn and RequestsOut count message IDs requested by and of the
	// peer; SyncsIn and SyncsOut count sync requests.
	RequestsIn, RequestsOut uint64
	SyncsIn, SyncsOut       uint64
	// EntryPointsIn and EntryPointsOut count the entry points received
	// with sync pages and sent with them.
	EntryPointsIn, EntryPointsOut uint64
	// RTT is the last measured round-trip time (Ping to Pong), 0 if none.
	RTT time.Duration
	// QueuedFrames and QueuedBytes are what waits in the current
	// connection's send queue.
	QueuedFrames, QueuedBytes int
	// LastError is why the last connection or connection attempt ended
	// (nil if none did): a *CloseError, or an error wrapping ErrRefused,
	// ErrWrongKey, a timeout, ...
	LastError error
}

// maxConns is how many connections one peer may have at once: two, for
// two nodes that dialled each other at the same moment (see "Connections
// per pair" in doc.go).
const maxConns = 2

// peer is the state of one peer key. Its counters are atomic; sessions and
// lastErr are guarded by Transport.mu.
type peer struct {
	key        dag.PublicKey
	addr       string
	configured bool

	sessions []*session // live connections, oldest first
	lastErr  error

	msgsIn, msgsOut            atomic.Uint64
	droppedFrames, droppedMsgs atomic.Uint64
	reqIn, reqOut              atomic.Uint64
	syncIn, syncOut            atomic.Uint64
	epIn, epOut                atomic.Uint64
	rtt                        atomic.Int64
}

// Transport moves messages between this node and its peers over QUIC. Make
// one with New, run it with Run; every other method is safe to call from
// any goroutine at any time, before, during and after Run (before Run and
// after it no peer is connected).
type Transport struct {
	cfg      Config
	log      zerolog.Logger
	refusals zerolog.Logger // sampled: refusals can come from anyone
	self     dag.PublicKey
	cert     tls.Certificate
	resetKey quic.StatelessResetKey
	epoch    time.Time
	udp      *net.UDPConn
	listen   bool
	reqID    atomic.Uint64
	// helloTimeout bounds a dial's handshake plus Hello, and caps an
	// inbound Hello (a field, so tests can shorten it).
	helloTimeout time.Duration
	// verifyAddr is the listener's VerifySourceAddress (alwaysRetry; a
	// field, so a benchmark can measure what the Retry costs).
	verifyAddr func(net.Addr) bool
	hs         handshakes

	mu      sync.RWMutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run returns
	peers   map[dag.PublicKey]*peer
	bans    map[dag.PublicKey]time.Time
}

// New checks cfg, fills its defaults, and binds the UDP socket (Listen, or
// an ephemeral port to dial from), so that Addr is known before Run. The
// caller must then call Run, or Close to release the socket.
func New(cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cert, err := NewCertificate(cfg.Identity)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:          cfg,
		log:          cfg.Log,
		refusals:     cfg.Log.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute}),
		cert:         cert,
		epoch:        time.Now(),
		listen:       cfg.Listen != "",
		helloTimeout: helloTimeout,
		verifyAddr:   alwaysRetry,
		hs:           handshakes{max: int64(cfg.MaxHandshakes)},
		done:         make(chan struct{}),
		peers:        make(map[dag.PublicKey]*peer),
		bans:         make(map[dag.PublicKey]time.Time),
	}
	copy(t.self[:], cfg.Identity.Public().(ed25519.PublicKey))
	// The same identity gives the same stateless reset key across restarts,
	// so a peer still holding a connection to our previous run learns at
	// once that it is gone.
	t.resetKey = sha256.Sum256(append([]byte("weft gossip stateless reset "), cfg.Identity.Seed()...))
	for _, p := range cfg.Peers {
		t.peers[p.Key] = &peer{key: p.Key, addr: p.Addr, configured: true}
	}
	addr := cfg.Listen
	if addr == "" {
		addr = ":0"
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: Listen %q: %v", ErrConfig, addr, err)
	}
	t.udp, err = net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("gossip: listen: %w", err)
	}
	return t, nil
}

// Key returns this node's key.
func (t *Transport) Key() dag.PublicKey { return t.self }

// Addr returns the local UDP address: where peers reach this node when
// Config.Listen is set (with the port the system chose for ":0").
func (t *Transport) Addr() net.Addr { return t.udp.LocalAddr() }

// Run accepts connections (if Config.Listen is set), dials every configured
// peer and keeps them connected, until ctx ends or Close is called. Then it
// closes every connection (CodeShutdown), waits for every goroutine it
// started, including Handler calls in flight, releases the socket and
// returns nil. It returns an error if the listener cannot start or fails.
// A Transport runs once: a second Run, or Run after Close, returns
// ErrClosed.
func (t *Transport) Run(ctx context.Context) error {
	t.mu.Lock()
	if t.started || t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.started = true
	ctx, cancel := context.WithCancel(ctx)
	t.cancel = cancel
	t.mu.Unlock()
	defer close(t.done)
	defer cancel()

	qt := &quic.Transport{
		Conn:              t.udp,
		StatelessResetKey: &t.resetKey,
		// Junk at the port: see doc.go.
		VerifySourceAddress: t.verifyAddr,
		ConnContext:         t.connContext,
	}
	defer func() {
		qt.Close()
		t.udp.Close()
	}()
	var ln *quic.Listener
	if t.listen {
		var err error
		ln, err = qt.Listen(t.serverTLS(), t.quicConfig(true))
		if err != nil {
			return fmt.Errorf("gossip: listen: %w", err)
		}
		t.log.Info().Str("addr", t.Addr().String()).Str("key", t.self.String()).Msg("gossip: listening")
	}

	var wg sync.WaitGroup
	var acceptErr error
	if ln != nil {
		wg.Go(func() {
			acceptErr = t.acceptLoop(ctx, ln, &wg)
			if acceptErr != nil {
				cancel()
			}
		})
	}
	for _, pc := range t.cfg.Peers {
		p := t.peers[pc.Key]
		wg.Go(func() { t.dialLoop(ctx, qt, p) })
	}
	<-ctx.Done()
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	wg.Wait()
	return acceptErr
}

// Close stops Run, if it is running, and waits for it to return; if Run was
// never called it releases the socket. It is idempotent and returns nil.
func (t *Transport) Close() error {
	t.mu.Lock()
	if !t.started {
		if !t.closed {
			t.closed = true
			t.udp.Close()
		}
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	cancel := t.cancel
	t.mu.Unlock()
	cancel()
	<-t.done
	return nil
}

func (t *Transport) quicConfig(server bool) *quic.Config {
	c := &quic.Config{
		HandshakeIdleTimeout:  5 * time.Second,
		MaxIdleTimeout:        max(3*t.cfg.PingInterval, 5*time.Second),
		MaxIncomingStreams:    -1, // the dialler opens the one stream
		MaxIncomingUniStreams: -1,
	}
	if server {
		c.MaxIncomingStreams = 1
		c.HandshakeIdleTimeout = t.cfg.HandshakeTimeout
	}
	return c
}

// acceptLoop accepts connections until ctx ends, serving each in a
// goroutine counted in wg. It returns an error only if the listener fails.
func (t *Transport) acceptLoop(ctx context.Context, ln *quic.Listener, wg *sync.WaitGroup) error {
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			t.log.Error().Err(err).Msg("gossip: accept failed")
			return fmt.Errorf("gossip: accept: %w", err)
		}
		wg.Go(func() {
			key, established, err := t.serveConn(ctx, conn, false, dag.PublicKey{})
			t.logEnd(key, false, established, err)
		})
	}
}

// dialLoop keeps the configured peer p connected until ctx ends: while a
// connection to p is up (in either direction) it waits for it to end;
// otherwise it dials, with exponential backoff and jitter between failed
// attempts, and honours a Disconnect backoff.
func (t *Transport) dialLoop(ctx context.Context, qt *quic.Transport, p *peer) {
	// Of two nodes that dial each other, the one with the larger key yields:
	// it waits a little before its first dial and before redialling a
	// connection that ended, so that the other's dial usually comes first
	// and the pair shares one connection.
	var yield time.Duration
	if bytes.Compare(t.self[:], p.key[:]) > 0 {
		yield = dialYield
	}
	sleep(ctx, yield/2+jitter(yield))
	backoff := MinBackoff
	for ctx.Err() == nil {
		if s := t.sessionOf(p.key); s != nil {
			select {
			case <-s.done:
			case <-ctx.Done():
				return
			}
			backoff = MinBackoff
			sleep(ctx, jitter(MinBackoff)+yield)
			continue
		}
		if wait := t.banned(p.key); wait > 0 {
			sleep(ctx, wait)
			continue
		}
		established, err := t.dial(ctx, qt, p)
		if ctx.Err() != nil {
			return
		}
		if established && !errors.Is(err, ErrDisconnected) {
			backoff = MinBackoff
		}
		d := jitter(backoff)
		t.logEnd(p.key, true, established, err)
		t.log.Debug().Str("peer", p.key.String()).Dur("retry_in", d).Msg("gossip: will redial")
		if !established || errors.Is(err, ErrDisconnected) {
			backoff = min(2*backoff, MaxBackoff)
		}
		sleep(ctx, d)
	}
}

// dial makes one connection to p and serves it until it ends.
func (t *Transport) dial(ctx context.Context, qt *quic.Transport, p *peer) (established bool, err error) {
	addr, err := net.ResolveUDPAddr("udp", p.addr)
	if err != nil {
		err = fmt.Errorf("gossip: resolve %s: %w", p.addr, err)
		t.recordErr(p.key, err)
		return false, err
	}
	dctx, cancel := context.WithTimeout(ctx, t.helloTimeout)
	conn, err := qt.Dial(dctx, addr, t.clientTLS(p.key), t.quicConfig(false))
	cancel()
	if err != nil {
		err = classify(err)
		t.recordErr(p.key, err)
		return false, err
	}
	_, established, err = t.serveConn(ctx, conn, true, p.key)
	return established, err
}

// logEnd logs why a connection or an attempt ended.
func (t *Transport) logEnd(key dag.PublicKey, outbound, established bool, err error) {
	var ev *zerolog.Event
	var ce *CloseError
	switch {
	case err == nil || errors.Is(err, ErrShutdown) || errors.Is(err, ErrDuplicate):
		ev = t.log.Debug()
	case errors.As(err, &ce) && ce.Code != CodeDisconnected && ce.Code != CodeStalled:
		ev = t.log.Warn() // a protocol or configuration mismatch: someone must act
	case errors.Is(err, ErrRefused) || errors.Is(err, ErrWrongKey):
		ev = t.refusals.Warn() // a key misconfigured on one side or the other
	case !established:
		ev = t.log.Debug() // failed dials repeat with backoff
	default:
		ev = t.log.Info()
	}
	msg := "gossip: connection attempt failed"
	if established {
		msg = "gossip: peer disconnected"
	}
	ev.Str("peer", key.String()).Bool("outbound", outbound).Err(err).Msg(msg)
}

// admit decides, in the TLS handshake, whether key may connect in.
func (t *Transport) admit(key dag.PublicKey) error {
	if key == t.self {
		return fmt.Errorf("%w: our own key", ErrUnknownPeer)
	}
	if wait := t.banned(key); wait > 0 {
		return fmt.Errorf("%w: backing off for %v", ErrDisconnected, wait.Round(time.Millisecond))
	}
	t.mu.RLock()
	p := t.peers[key]
	t.mu.RUnlock()
	if (p != nil && p.configured) || t.cfg.Open {
		return nil
	}
	return ErrUnknownPeer
}

// banned returns how long a Disconnect backoff still holds for key.
func (t *Transport) banned(key dag.PublicKey) time.Duration {
	t.mu.RLock()
	until, ok := t.bans[key]
	t.mu.RUnlock()
	if !ok {
		return 0
	}
	return time.Until(until)
}

// sessionOf returns the connection to send to key on, nil if none.
func (t *Transport) sessionOf(key dag.PublicKey) *session {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p := t.peers[key]; p != nil {
		return p.current()
	}
	return nil
}

// current returns the connection to send on: the newest that is not
// ending. The caller holds Transport.mu.
func (p *peer) current() *session {
	for i := len(p.sessions) - 1; i >= 0; i-- {
		if s := p.sessions[i]; s.ctx.Err() == nil {
			return s
		}
	}
	return nil
}

func (t *Transport) recordErr(key dag.PublicKey, err error) {
	t.mu.Lock()
	if p := t.peers[key]; p != nil {
		p.lastErr = err
	}
	t.mu.Unlock()
}

// attach adds s to its peer's connections; it becomes the one to send on.
// If the peer already has maxConns, the oldest is closed with
// CodeDuplicate. See "Connections per pair" in doc.go.
func (t *Transport) attach(ctx context.Context, s *session) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ctx.Err() != nil || t.closed {
		return closeErr(CodeShutdown, ErrShutdown)
	}
	if until, ok := t.bans[s.key]; ok && time.Now().Before(until) {
		return closeErr(CodeDisconnected, fmt.Errorf("%w: backing off until %s", ErrDisconnected, until.Format(time.RFC3339)))
	}
	p := t.peers[s.key]
	if p == nil {
		p = &peer{key: s.key, addr: s.remote}
		t.peers[s.key] = p
	}
	if len(p.sessions) >= maxConns {
		old := p.sessions[0]
		p.sessions = p.sessions[1:]
		old.cancel(closeErr(CodeDuplicate, fmt.Errorf("%w: superseded by a newer connection", ErrDuplicate)))
	}
	s.p = p
	p.sessions = append(p.sessions, s)
	return nil
}

// detach removes s from its peer once it has ended, recording why.
func (t *Transport) detach(s *session, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := s.p
	p.lastErr = err
	p.sessions = slices.DeleteFunc(p.sessions, func(x *session) bool { return x == s })
	if len(p.sessions) == 0 && !p.configured {
		delete(t.peers, p.key)
	}
}

// Broadcast queues raws, as one or more Messages frames, to every connected
// peer but except (pass the zero key to except none), and returns the
// number of peers it was queued to. It never blocks: a peer whose queue has
// no room for the whole batch gets none of it, and the drop is counted in
// its PeerStats. Raws longer than MaxMessageSize or empty are left out and
// logged (no valid message is). The raws are copied: the caller may reuse
// them when Broadcast returns.
func (t *Transport) Broadcast(raws [][]byte, except dag.PublicKey) int {
	raws = t.carriable(raws)
	if len(raws) == 0 {
		return 0
	}
	frames := encodeMessages(raws)
	n := 0
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, p := range t.peers {
		if s := p.current(); s != nil && p.key != except && s.pushData(frames...) {
			n++
		}
	}
	return n
}

// Send queues raws to one peer, like Broadcast. It returns ErrTooLarge (a
// raw is empty or over MaxMessageSize; nothing is queued), ErrNotConnected,
// or ErrQueueFull (nothing is queued; the drop is counted). It never
// blocks.
func (t *Transport) Send(peer dag.PublicKey, raws [][]byte) error {
	if err := checkRaws(raws); err != nil {
		return err
	}
	if len(raws) == 0 {
		return nil
	}
	s := t.sessionOf(peer)
	if s == nil {
		return ErrNotConnected
	}
	if !s.pushData(encodeMessages(raws)...) {
		return ErrQueueFull
	}
	return nil
}

// RequestIDs asks peer for the messages with the given IDs (in frames of at
// most MaxRequestIDs). The peer answers with the ones it has, which arrive
// through Handler.Messages like any other; there is no reply for the IDs it
// lacks. It returns ErrNotConnected or ErrQueueFull (nothing was sent), and
// never blocks.
func (t *Transport) RequestIDs(peer dag.PublicKey, ids []dag.ID) error {
	if len(ids) == 0 {
		return nil
	}
	s := t.sessionOf(peer)
	if s == nil {
		return ErrNotConnected
	}
	if !s.q.push(true, encodeRequests(ids)...) {
		s.p.droppedFrames.Add(uint64((len(ids) + MaxRequestIDs - 1) / MaxRequestIDs))
		return ErrQueueFull
	}
	s.p.reqOut.Add(uint64(len(ids)))
	return nil
}

// Sync asks peer for a page of its log from position from on (at most
// limit messages, clamped to 1..MaxSyncLimit, and at most about
// MaxFrameSize bytes), and waits for the answer: the raws in log order,
// the entry points they name that the peer no longer holds, the position
// to ask from next, and whether the page reached the end of the peer's
// log. A peer that dropped the messages at from answers from the first
// position it holds. Catching up is a loop of Syncs, one page in flight,
// until Done. The raws do not go through Handler.Messages. It returns
// ErrNotConnected (no connection, or it ended before the answer),
// ErrQueueFull, or ErrTimeout (also wrapping ctx's error) once ctx ends
// or, if ctx has no deadline, after Config.RequestTimeout. Safe to call
// concurrently, also for one peer.
func (t *Transport) Sync(ctx context.Context, peer dag.PublicKey, from uint64, limit int) (SyncPage, error) {
	s := t.sessionOf(peer)
	if s == nil {
		return SyncPage{}, ErrNotConnected
	}
	limit = min(max(limit, 1), MaxSyncLimit)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.cfg.RequestTimeout)
		defer cancel()
	}
	id := t.reqID.Add(1)
	ch := s.await(id)
	if ch == nil {
		return SyncPage{}, ErrNotConnected
	}
	defer s.forget(id)
	if !s.q.push(true, outFrame{b: encodeSyncRequest(syncRequest{Req: id, From: from, Limit: uint32(limit)})}) {
		s.p.droppedFrames.Add(1)
		return SyncPage{}, ErrQueueFull
	}
	s.p.syncOut.Add(1)
	select {
	case page := <-ch:
		return page, nil
	case <-s.ctx.Done():
		return SyncPage{}, fmt.Errorf("%w: %w", ErrNotConnected, context.Cause(s.ctx))
	case <-ctx.Done():
		return SyncPage{}, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err())
	}
}

// Disconnect closes the connection to peer, if any, with CodeDisconnected,
// and for backoff (if positive) neither dials the peer nor lets it connect
// in. The node calls it when a peer sent invalid messages. It does not wait
// for the connection to close.
func (t *Transport) Disconnect(peer dag.PublicKey, backoff time.Duration) {
	t.mu.Lock()
	now := time.Now()
	if backoff > 0 {
		for k, until := range t.bans {
			if now.After(until) {
				delete(t.bans, k)
			}
		}
		t.bans[peer] = now.Add(backoff)
	}
	var ss []*session
	if p := t.peers[peer]; p != nil {
		ss = slices.Clone(p.sessions)
	}
	t.mu.Unlock()
	for _, s := range ss {
		s.cancel(closeErr(CodeDisconnected, fmt.Errorf("%w: backing off for %v", ErrDisconnected, backoff)))
	}
}

// Peers returns the state of every configured peer and every connected
// unconfigured one, sorted by key.
func (t *Transport) Peers() []PeerStats {
	t.mu.RLock()
	out := make([]PeerStats, 0, len(t.peers))
	for _, p := range t.peers {
		st := PeerStats{
			Key:             p.key,
			Addr:            p.addr,
			Configured:      p.configured,
			MessagesIn:      p.msgsIn.Load(),
			MessagesOut:     p.msgsOut.Load(),
			DroppedFrames:   p.droppedFrames.Load(),
			DroppedMessages: p.droppedMsgs.Load(),
			RequestsIn:      p.reqIn.Load(),
			RequestsOut:     p.reqOut.Load(),
			SyncsIn:         p.syncIn.Load(),
			SyncsOut:        p.syncOut.Load(),
			EntryPointsIn:   p.epIn.Load(),
			EntryPointsOut:  p.epOut.Load(),
			RTT:             time.Duration(p.rtt.Load()),
			LastError:       p.lastErr,
		}
		if s := p.current(); s != nil {
			st.Connected, st.Outbound, st.Since = true, s.outbound, s.since
			st.Connections = len(p.sessions)
			st.QueuedFrames, st.QueuedBytes = s.q.depth()
		} else if n := len(p.sessions); n > 0 {
			// Ending but not yet detached: its cause is why it ended.
			st.LastError = context.Cause(p.sessions[n-1].ctx)
		}
		out = append(out, st)
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b PeerStats) int { return bytes.Compare(a.Key[:], b.Key[:]) })
	return out
}

// carriable returns raws without the ones gossip cannot carry, logging them.
func (t *Transport) carriable(raws [][]byte) [][]byte {
	if checkRaws(raws) == nil {
		return raws
	}
	kept := make([][]byte, 0, len(raws))
	for _, r := range raws {
		if len(r) == 0 || len(r) > MaxMessageSize {
			t.log.Error().Int("size", len(r)).Msg("gossip: not broadcasting a message of impossible size")
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// now is the transport's monotonic clock, in nanoseconds since New: what a
// Ping carries.
func (t *Transport) now() uint64 { return uint64(time.Since(t.epoch)) }

// jitter draws a wait from [d/2, d) (0 for 0).
func jitter(d time.Duration) time.Duration {
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}
