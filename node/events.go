package node

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/weftnet/weft/dag"
)

// EventKind says what an Event reports.
type EventKind uint8

const (
	// EventMessage: a message became durable.
	EventMessage EventKind = iota + 1
	// EventConfirmed: a message's confirmation became durable.
	EventConfirmed
	// EventRule: a rule whose action is "event" matched a confirmed
	// message (Rule names it).
	EventRule
)

// Event is one entry of the event stream.
type Event struct {
	Kind        EventKind
	ID          dag.ID
	Pos         uint64
	Issuer      dag.PublicKey
	Seq         uint64
	Timestamp   int64
	Parents     [2]dag.ID // EventMessage only
	ConfirmedAt int64     // EventConfirmed and EventRule
	// ConfirmSeq is the confirmation's place in the node's confirmation
	// order (Node.ConfirmedSince): EventConfirmed and EventRule.
	ConfirmSeq uint64
	// Rule is the rule that matched: EventRule only. The string is the
	// rule's own name, shared by its events.
	Rule string
}

// EventSize is the memory an Event takes in the event buffer.
const EventSize = int(unsafe.Sizeof(Event{}))

// Errors that end a subscription.
var (
	// ErrTooManySubscribers: Subscribe was called while Config.MaxSubscribers
	// subscriptions were open.
	ErrTooManySubscribers = errors.New("node: too many event subscribers")
	// ErrSubscriberBehind: the subscriber fell more than Config.EventBuffer
	// events behind, and missed some.
	ErrSubscriberBehind = errors.New("node: event subscriber fell too far behind")
	// ErrSubscriptionClosed: the subscription was closed, or the node stopped.
	ErrSubscriptionClosed = errors.New("node: event subscription closed")
)

// Subscription is a reader of the node's events, in the order the node
// published them. Its cost to the node is a cursor: every subscription
// reads one shared buffer of the latest Config.EventBuffer events, so that
// publishing does not depend on the number of subscribers, and a
// subscriber that does not read costs nothing but its cursor. One that
// falls more than the buffer behind is cut (ErrSubscriberBehind). A
// Subscription is for one goroutine.
type Subscription struct {
	hub    *hub
	next   uint64 // sequence number of the next event to read
	closed bool   // guarded by hub.mu
}

// Next appends to dst the events published since the last call, at most
// max, and returns it. When there are none it returns dst unchanged and a
// channel that is closed once there are (or the subscription ends): wait
// on it, then call Next again. The error is ErrSubscriberBehind or
// ErrSubscriptionClosed once the subscription has ended; events still
// readable are returned first.
func (s *Subscription) Next(dst []Event, max int) ([]Event, <-chan struct{}, error) {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.next+uint64(len(h.ring)) < h.seq {
		if !s.closed {
			h.behind.Add(1)
		}
		h.dropLocked(s)
		return dst, nil, ErrSubscriberBehind
	}
	if s.next == h.seq {
		if s.closed || h.closed {
			return dst, nil, ErrSubscriptionClosed
		}
		return dst, h.wake, nil
	}
	mask := uint64(len(h.ring) - 1)
	for ; s.next < h.seq && max > 0; s.next, max = s.next+1, max-1 {
		dst = append(dst, h.ring[s.next&mask])
	}
	return dst, nil, nil
}

// Close ends the subscription. Safe to call more than once.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.dropLocked(s)
}

// hub publishes events into a ring that subscriptions read.
type hub struct {
	mu      sync.Mutex
	ring    []Event       // len a power of two; allocated with the first subscriber
	size    int           // len(ring) once allocated
	seq     uint64        // sequence number of the next event published
	wake    chan struct{} // closed, and replaced, when events are published
	subs    int
	maxSubs int
	closed  bool

	refused, behind atomic.Uint64 // subscriptions refused, and cut for falling behind
}

// newHub returns a hub that keeps the latest size events (rounded down to
// a power of two) for at most maxSubs subscribers.
func newHub(size, maxSubs int) *hub {
	p := 1
	for p*2 <= size {
		p *= 2
	}
	return &hub{size: p, maxSubs: maxSubs, wake: make(chan struct{})}
}

func (h *hub) subscribe() (*Subscription, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs >= h.maxSubs && !h.closed {
		h.refused.Add(1)
		return nil, fmt.Errorf("%w: %d open, the most this node serves", ErrTooManySubscribers, h.maxSubs)
	}
	s := &Subscription{hub: h, next: h.seq}
	if h.closed {
		s.closed = true
		return s, nil
	}
	if h.ring == nil {
		h.ring = make([]Event, h.size)
	}
	h.subs++
	return s, nil
}

func (h *hub) dropLocked(s *Subscription) {
	if !s.closed {
		s.closed = true
		h.subs--
	}
}

// publish appends evs to the ring, overwriting the oldest, and wakes the
// subscribers waiting. Its cost does not depend on the subscribers.
func (h *hub) publish(evs []Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == 0 || len(evs) == 0 {
		return
	}
	mask := uint64(len(h.ring) - 1)
	for _, e := range evs {
		h.ring[h.seq&mask] = e
		h.seq++
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// close ends every subscription: each reads what is left, then gets
// ErrSubscriptionClosed.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.wake)
	h.wake = make(chan struct{})
}

// subscribers returns the number of open subscriptions.
func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subs
}
