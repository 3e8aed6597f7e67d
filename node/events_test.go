package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// waitConfirmed waits for the event that says id's confirmation is durable
// (or finds it confirmed already), and returns the message's state. It
// fails the test after 10 s.
func waitConfirmed(t *testing.T, n *Node, id dag.ID) *MessageInfo {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		// Subscribed before the look: a confirmation after it is an event.
		sub := n.Subscribe(1 << 12)
		mi, err := n.Message(context.Background(), id)
		if err == nil && mi.Confirmed {
			sub.Close()
			return mi
		}
		confirmed, cut := waitFor(sub, deadline.C, func(e Event) bool { return e.Kind == EventConfirmed && e.ID == id })
		sub.Close()
		switch {
		case confirmed:
			mi, err := n.Message(context.Background(), id)
			if err != nil || !mi.Confirmed {
				t.Fatalf("message %s: confirmed event, then %+v, %v", id, mi, err)
			}
			return mi
		case !cut:
			t.Fatalf("message %s not confirmed within 10 s", id)
		}
		// Cut for falling behind, or the node stopped: look again.
	}
}

// waitFor reads sub until an event satisfies match (true), the
// subscription ends (false, true), or timeout fires (false, false).
func waitFor(sub *Subscription, timeout <-chan time.Time, match func(Event) bool) (matched, cut bool) {
	for {
		select {
		case e, ok := <-sub.C:
			if !ok {
				return false, true
			}
			if match(e) {
				return true, false
			}
		case <-timeout:
			return false, false
		}
	}
}

// changes signals on C, coalesced, whenever any of nodes publishes an
// event after changes returned, so that a condition on the nodes' state
// can be checked again on every change instead of on a timer: check after
// each receive, and no change goes unseen. A subscription cut for falling
// behind is renewed (and signalled, since something changed). stop ends
// it.
type changes struct {
	C    chan struct{}
	quit chan struct{}
	wg   sync.WaitGroup
}

func watchChanges(nodes []*Node) *changes {
	c := &changes{C: make(chan struct{}, 1), quit: make(chan struct{})}
	for _, n := range nodes {
		sub := n.Subscribe(1 << 12)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case _, ok := <-sub.C:
					if !ok && !sub.Overflowed() {
						return // the node stopped
					}
					if !ok {
						sub = n.Subscribe(1 << 12)
					}
					c.signal()
				case <-c.quit:
					sub.Close()
					return
				}
			}
		}()
	}
	return c
}

func (c *changes) signal() {
	select {
	case c.C <- struct{}{}:
	default:
	}
}

func (c *changes) stop() {
	close(c.quit)
	c.wg.Wait()
}
