package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

// feed reads a subscription into C, as a test wants it: C is closed when
// the subscription ends, and then err says why.
type feed struct {
	C    chan Event
	sub  *Subscription
	quit chan struct{}
	done chan struct{}
	err  error // set before C is closed
}

// follow subscribes to n's events; it fails the test if n refuses.
func follow(t testing.TB, n *Node) *feed {
	t.Helper()
	sub, err := n.Subscribe()
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return newFeed(sub)
}

func newFeed(sub *Subscription) *feed {
	f := &feed{C: make(chan Event, 256), sub: sub, quit: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *feed) run() {
	defer close(f.done)
	var buf []Event
	for {
		evs, wait, err := f.sub.Next(buf[:0], 256)
		for _, e := range evs {
			select {
			case f.C <- e:
			case <-f.quit:
				return
			}
		}
		if err != nil {
			f.err = err
			close(f.C)
			return
		}
		if wait != nil {
			select {
			case <-wait:
			case <-f.quit:
				return
			}
		}
		buf = evs
	}
}

// behind reports whether the feed ended for falling behind. Call it after
// C is closed.
func (f *feed) behind() bool { return errors.Is(f.err, ErrSubscriberBehind) }

// close ends the feed and its subscription.
func (f *feed) close() {
	close(f.quit)
	<-f.done
	f.sub.Close()
}

// waitConfirmed waits for the event that says id's confirmation is durable
// (or finds it confirmed already), and returns the message's state. It
// fails the test after 10 s.
func waitConfirmed(t *testing.T, n *Node, id dag.ID) *MessageInfo {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		// Subscribed before the look: a confirmation after it is an event.
		f := follow(t, n)
		mi, err := n.Message(context.Background(), id)
		if err == nil && mi.Confirmed {
			f.close()
			return mi
		}
		confirmed, cut := waitFor(f, deadline.C, func(e Event) bool { return e.Kind == EventConfirmed && e.ID == id })
		f.close()
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

// waitFor reads f until an event satisfies match (true), the feed ends
// (false, true), or timeout fires (false, false).
func waitFor(f *feed, timeout <-chan time.Time, match func(Event) bool) (matched, cut bool) {
	for {
		select {
		case e, ok := <-f.C:
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

func watchChanges(t testing.TB, nodes []*Node) *changes {
	c := &changes{C: make(chan struct{}, 1), quit: make(chan struct{})}
	for _, n := range nodes {
		f := follow(t, n)
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case _, ok := <-f.C:
					if !ok && !f.behind() {
						return // the node stopped
					}
					if !ok {
						f.close()
						sub, err := n.Subscribe()
						if err != nil {
							return
						}
						f = newFeed(sub)
					}
					c.signal()
				case <-c.quit:
					f.close()
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
