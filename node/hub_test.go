package node

import (
	"errors"
	"runtime"
	"testing"
)

func seqEvents(from, n int) []Event {
	evs := make([]Event, n)
	for k := range evs {
		evs[k] = Event{Kind: EventMessage, Pos: uint64(from + k)}
	}
	return evs
}

// readAll reads what s has now, in calls of at most max events.
func readAll(t *testing.T, s *Subscription, max int) ([]Event, error) {
	t.Helper()
	var got []Event
	for {
		evs, wait, err := s.Next(nil, max)
		if len(evs) > max {
			t.Fatalf("Next returned %d events, max %d", len(evs), max)
		}
		got = append(got, evs...)
		if err != nil || wait != nil {
			return got, err
		}
	}
}

func checkPositions(t *testing.T, got []Event, from, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d events, want %d", len(got), n)
	}
	for k, e := range got {
		if e.Pos != uint64(from+k) {
			t.Fatalf("event %d has position %d, want %d", k, e.Pos, from+k)
		}
	}
}

// TestHubOrder: every subscriber reads every event published after it
// subscribed, in order, however it splits its reads; a wait channel closes
// on the next publish.
func TestHubOrder(t *testing.T) {
	h := newHub(64, 10)
	h.publish(seqEvents(0, 5)) // no subscriber: dropped
	a, _ := h.subscribe()
	h.publish(seqEvents(5, 10))
	b, _ := h.subscribe()
	h.publish(seqEvents(15, 20))
	got, err := readAll(t, a, 7)
	if err != nil {
		t.Fatal(err)
	}
	checkPositions(t, got, 5, 30)
	got, _ = readAll(t, b, 64)
	checkPositions(t, got, 15, 20)

	_, wait, err := a.Next(nil, 1)
	if wait == nil || err != nil {
		t.Fatalf("caught up: wait %v, err %v", wait, err)
	}
	select {
	case <-wait:
		t.Fatal("wait closed before a publish")
	default:
	}
	h.publish(seqEvents(35, 1))
	<-wait // must not block
	got, _ = readAll(t, a, 64)
	checkPositions(t, got, 35, 1)
}

// TestHubBehind: a subscriber that falls more than the buffer behind is
// cut with ErrSubscriberBehind, its slot freed; one within the buffer
// reads everything.
func TestHubBehind(t *testing.T) {
	h := newHub(100, 2) // rounded down to 64
	slow, _ := h.subscribe()
	ok, _ := h.subscribe()
	h.publish(seqEvents(0, 40))
	got, _ := readAll(t, ok, 64)
	checkPositions(t, got, 0, 40)
	h.publish(seqEvents(40, 40)) // slow is 80 behind, ok 40
	got, _ = readAll(t, ok, 64)
	checkPositions(t, got, 40, 40)
	if _, err := readAll(t, slow, 64); !errors.Is(err, ErrSubscriberBehind) {
		t.Fatalf("slow subscriber: %v, want ErrSubscriberBehind", err)
	}
	if n := h.subscribers(); n != 1 {
		t.Fatalf("%d subscribers after the cut, want 1", n)
	}
	if _, err := h.subscribe(); err != nil {
		t.Fatalf("the cut subscriber's slot was not freed: %v", err)
	}
}

// TestHubMaxSubscribers: past the bound Subscribe is refused; Close frees
// a slot, twice is harmless.
func TestHubMaxSubscribers(t *testing.T) {
	h := newHub(16, 3)
	var subs []*Subscription
	for range 3 {
		s, err := h.subscribe()
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if _, err := h.subscribe(); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("fourth subscriber: %v, want ErrTooManySubscribers", err)
	}
	subs[0].Close()
	subs[0].Close()
	if n := h.subscribers(); n != 2 {
		t.Fatalf("%d subscribers, want 2", n)
	}
	if _, err := h.subscribe(); err != nil {
		t.Fatalf("after a Close: %v", err)
	}
	if _, err := h.subscribe(); !errors.Is(err, ErrTooManySubscribers) {
		t.Fatalf("past the bound again: %v", err)
	}
}

// TestHubClose: when the node stops, a subscriber reads what is left, then
// ErrSubscriptionClosed; a waiting one is woken; a later Subscribe gets an
// ended subscription.
func TestHubClose(t *testing.T) {
	h := newHub(16, 4)
	a, _ := h.subscribe()
	b, _ := h.subscribe()
	_, wait, _ := b.Next(nil, 1)
	h.publish(seqEvents(0, 3))
	h.close()
	<-wait
	got, err := readAll(t, a, 16)
	checkPositions(t, got, 0, 3)
	if !errors.Is(err, ErrSubscriptionClosed) {
		t.Fatalf("after close: %v, want ErrSubscriptionClosed", err)
	}
	c, err := h.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Next(nil, 1); !errors.Is(err, ErrSubscriptionClosed) {
		t.Fatalf("subscribed after close: %v", err)
	}
}

// TestHubIdleSubscribersCost: idle subscribers share the buffer; each
// costs its cursor, not a buffer of its own.
func TestHubIdleSubscribersCost(t *testing.T) {
	const n = 10_000
	h := newHub(1<<12, n)
	first, _ := h.subscribe() // allocates the ring
	h.publish(seqEvents(0, 1<<12))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	subs := make([]*Subscription, 0, n)
	for range n - 1 {
		s, err := h.subscribe()
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	h.publish(seqEvents(1<<12, 1<<12))
	runtime.ReadMemStats(&after)
	per := float64(after.TotalAlloc-before.TotalAlloc-uint64(cap(subs))*8) / (n - 1)
	t.Logf("%.0f bytes allocated per idle subscriber (the shared buffer: %d bytes)", per, len(h.ring)*EventSize)
	if per > 1024 { // the buffer per subscriber it replaced was 11 MB
		t.Fatalf("%.0f bytes per idle subscriber, want at most 1024", per)
	}
	runtime.KeepAlive(first)
}
