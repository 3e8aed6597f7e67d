package rules

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// memSource is a confirmation order in memory.
type memSource struct {
	mu   sync.Mutex
	msgs []Message
}

func (s *memSource) ConfirmCount() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.msgs))
}

func (s *memSource) ConfirmedSince(seq uint64, limit int) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq >= uint64(len(s.msgs)) {
		return nil, nil
	}
	end := min(uint64(len(s.msgs)), seq+uint64(limit))
	return append([]Message(nil), s.msgs[seq:end]...), nil
}

// add confirms messages with the given payloads, issued by issuer.
func (s *memSource) add(issuer byte, payloads ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range payloads {
		n := uint64(len(s.msgs))
		s.msgs = append(s.msgs, testMessage(n, issuer, p))
	}
}

// testEpoch is the time of the test messages: message n is issued n
// seconds after it and confirmed a second later.
var testEpoch = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// testMessage returns a confirmed message, the n-th of the order, with
// its ID cached.
func testMessage(n uint64, issuer byte, payload string) Message {
	m := &dag.Message{Version: 1, Seq: n + 1, Timestamp: testEpoch.Add(time.Duration(n) * time.Second).UnixNano(), Payload: []byte(payload)}
	m.Issuer[0] = issuer
	m.Parents[0][0] = byte(n)
	m.ID()
	return Message{Confirmation: n, Position: 1000 + n, ConfirmedAt: testEpoch.Add(time.Duration(n+1) * time.Second), Msg: m}
}

// registry maps issuers' first bytes to devices.
func registry(devs map[byte]Device) Lookup {
	return func(k dag.PublicKey) Device { return devs[k[0]] }
}

var errCrash = errors.New("test: the power went out")

// crashStore is a store that loses power after a number of writes: that
// write and every one after it fail and change nothing, as a crash leaves
// a store that commits atomically.
type crashStore struct {
	*MemStore
	mu    sync.Mutex
	left  int // writes before the crash
	dead  bool
	crash chan struct{} // closed at the crash
}

func newCrashStore(s *MemStore, writes int) *crashStore {
	return &crashStore{MemStore: s, left: writes, crash: make(chan struct{})}
}

func (s *crashStore) Write(ops []Op) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dead && s.left == 0 {
		s.dead = true
		close(s.crash)
	}
	if s.dead {
		return errCrash
	}
	s.left--
	return s.MemStore.Write(ops)
}

// payloads returns n payloads, temp_c cycling through 0.5..11.5: four in
// twelve are above 8.
func payloads(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"temp_c":%d.5,"n":%d}`, i%12, i)
	}
	return out
}

// wantHot returns the confirmations among the first n of payloads whose
// temp_c > 8.
func wantHot(n int) []uint64 {
	var out []uint64
	for i := range n {
		if float64(i%12)+0.5 > 8 {
			out = append(out, uint64(i))
		}
	}
	return out
}

func seedLog(t *testing.T, name string, seed uint64) {
	t.Helper()
	t.Logf("%s seed %d", name, seed)
}
