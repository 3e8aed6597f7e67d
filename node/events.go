package node

import (
	"sync"

	"github.com/weftnet/weft/dag"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventMessage: a message became durable.
	EventMessage EventKind = iota + 1
	// EventConfirmed: a message's confirmation became durable.
	EventConfirmed
)

// Event is one entry of the event stream.
type Event struct {
	Kind        EventKind
	ID          dag.ID
	Pos         uint64
	Issuer      dag.PublicKey // EventMessage only
	Seq         uint64        // EventMessage only
	Timestamp   int64         // EventMessage only
	Parents     [2]dag.ID     // EventMessage only
	ConfirmedAt int64         // EventConfirmed only
}

// Subscription receives events on C until it is closed: by Close, by the
// node stopping, or because the subscriber fell more than its buffer behind
// (then Overflowed reports true). Events are never blocked on a subscriber.
type Subscription struct {
	C          <-chan Event
	c          chan Event
	hub        *hub
	overflowed bool // guarded by hub.mu
}

// Overflowed reports whether the subscription was cut for falling behind.
// Call it after C is closed.
func (s *Subscription) Overflowed() bool {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.overflowed
}

// Close ends the subscription. Safe to call more than once.
func (s *Subscription) Close() { s.hub.drop(s, false) }

// hub fans events out to subscribers.
type hub struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
}

func newHub() *hub { return &hub{subs: make(map[*Subscription]struct{})} }

func (h *hub) subscribe(buf int) *Subscription {
	c := make(chan Event, buf)
	s := &Subscription{C: c, c: c, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(c)
		return s
	}
	h.subs[s] = struct{}{}
	return s
}

func (h *hub) drop(s *Subscription, overflow bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropLocked(s, overflow)
}

func (h *hub) dropLocked(s *Subscription, overflow bool) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		s.overflowed = overflow
		close(s.c)
	}
}

// publish hands evs to every subscriber, cutting those that are full.
func (h *hub) publish(evs []Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		for _, e := range evs {
			select {
			case s.c <- e:
			default:
				h.dropLocked(s, true)
			}
			if _, ok := h.subs[s]; !ok {
				break
			}
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		h.dropLocked(s, false)
	}
	h.closed = true
}

func (h *hub) active() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}
