package gossip

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/dag"
)

const testNet = dag.NetworkID(0x7765667474657374)

// identity returns a deterministic key for node i.
func identity(i byte) (ed25519.PrivateKey, dag.PublicKey) {
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = i, 0x5a
	priv := ed25519.NewKeyFromSeed(seed)
	var k dag.PublicKey
	copy(k[:], priv.Public().(ed25519.PublicKey))
	return priv, k
}

// fakeHandler is a node stand-in: it records what arrives, serves Request
// from a map and Sync from a log.
type fakeHandler struct {
	mu        sync.Mutex
	got       map[dag.PublicKey][][]byte
	connected map[dag.PublicKey]int
	store     map[dag.ID][]byte
	log       [][]byte
	// eps, if set, gives the entry points of the page from a position,
	// before the transport fits them.
	eps     func(pos uint64, raws [][]byte) []EntryPoint
	changed chan struct{} // a token after every change
	// block, if set, makes Messages wait until it is closed (a peer that
	// stops reading); syncBlock does the same to Sync.
	block, syncBlock chan struct{}
}

func newFakeHandler() *fakeHandler {
	return &fakeHandler{
		got:       make(map[dag.PublicKey][][]byte),
		connected: make(map[dag.PublicKey]int),
		store:     make(map[dag.ID][]byte),
		changed:   make(chan struct{}, 1),
	}
}

func (h *fakeHandler) signal() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

func (h *fakeHandler) Connected(p dag.PublicKey) {
	h.mu.Lock()
	h.connected[p]++
	h.mu.Unlock()
	h.signal()
}

func (h *fakeHandler) Messages(from dag.PublicKey, raws [][]byte) {
	h.mu.Lock()
	h.got[from] = append(h.got[from], raws...)
	block := h.block
	h.mu.Unlock()
	h.signal()
	if block != nil {
		<-block
	}
}

func (h *fakeHandler) Request(_ dag.PublicKey, ids []dag.ID) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out [][]byte
	for _, id := range ids {
		if r, ok := h.store[id]; ok {
			out = append(out, r)
		}
	}
	return out
}

func (h *fakeHandler) Sync(_ dag.PublicKey, pos uint64, limit, maxBytes int) SyncPage {
	if h.syncBlock != nil {
		<-h.syncBlock
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	page := SyncPage{Next: pos}
	size := 0
	for page.Next < uint64(len(h.log)) && len(page.Raws) < limit {
		r := h.log[page.Next]
		if len(page.Raws) > 0 && size+4+len(r) > maxBytes {
			break
		}
		size += 4 + len(r)
		page.Raws = append(page.Raws, r)
		page.Next++
	}
	if h.eps != nil {
		page.EntryPoints = h.eps(pos, page.Raws)
	}
	page.Done = page.Next >= uint64(len(h.log))
	return page
}

func (h *fakeHandler) count(from dag.PublicKey) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got[from])
}

func (h *fakeHandler) received(from dag.PublicKey) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([][]byte(nil), h.got[from]...)
}

func (h *fakeHandler) connects(p dag.PublicKey) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.connected[p]
}

// node is a running Transport under test.
type node struct {
	*Transport
	key  dag.PublicKey
	h    *fakeHandler
	stop func() error // cancels Run and returns its result
	// crashed marks a node whose socket the test closed under it: its Run
	// returns an error.
	crashed bool
}

// start runs a Transport for cfg (Listen defaults to 127.0.0.1:0, the
// handler to a fresh fake) and stops it, checking that Run returns, at the
// end of the test.
func start(t testing.TB, cfg Config) *node {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Network == 0 {
		cfg.Network = testNet
	}
	if _, bench := t.(*testing.B); !bench {
		// Logs show in the output of a failing test (or with -v).
		var self dag.PublicKey
		copy(self[:], cfg.Identity.Public().(ed25519.PublicKey))
		cfg.Log = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).With().
			Timestamp().Str("node", self.String()[:8]).Logger()
	}
	h, _ := cfg.Handler.(*fakeHandler)
	if cfg.Handler == nil {
		h = newFakeHandler()
		cfg.Handler = h
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- tr.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(20 * time.Second):
				runErr = errors.New("Run did not return within 20 s of cancel")
			}
		})
		return runErr
	}
	n := &node{Transport: tr, key: tr.Key(), h: h, stop: stop}
	t.Cleanup(func() {
		if err := stop(); err != nil && !n.crashed {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (n *node) stats(peer dag.PublicKey) PeerStats {
	for _, st := range n.Peers() {
		if st.Key == peer {
			return st
		}
	}
	return PeerStats{}
}

func (n *node) connectedTo(peer dag.PublicKey) bool { return n.stats(peer).Connected }

// msgs makes count raws of size bytes, tagged with tag and their index.
func msgs(tag byte, from, count, size int) [][]byte {
	out := make([][]byte, count)
	for i := range out {
		b := make([]byte, size)
		b[0] = tag
		binary.BigEndian.PutUint32(b[1:], uint32(from+i))
		out[i] = b
	}
	return out
}
