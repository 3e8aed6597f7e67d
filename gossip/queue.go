package gossip

import "sync"

// lane is one bounded FIFO of frames, bounded both in frames and in bytes.
type lane struct {
	frames    []outFrame
	bytes     int
	maxFrames int
	maxBytes  int
}

// fits reports whether frames can be appended without passing a bound.
func (l *lane) fits(frames []outFrame) bool {
	n := 0
	for _, f := range frames {
		n += len(f.b)
	}
	return len(l.frames)+len(frames) <= l.maxFrames && l.bytes+n <= l.maxBytes
}

// sendQueue is a peer's outgoing queue: many producers (Broadcast, Send, the
// peer's reader answering requests), one consumer (the peer's writer), never
// blocking a producer. It has two lanes: control (pings, pongs, requests,
// small and urgent) and data (messages and sync responses); the writer takes
// control frames first. A push either queues all its frames or none.
type sendQueue struct {
	mu   sync.Mutex
	ctrl lane
	data lane
	// ready holds a token while frames are waiting; the writer waits on it.
	ready chan struct{}
}

func newSendQueue(dataFrames, dataBytes int) *sendQueue {
	return &sendQueue{
		ctrl:  lane{maxFrames: ctrlQueueFrames, maxBytes: ctrlQueueBytes},
		data:  lane{maxFrames: dataFrames, maxBytes: dataBytes},
		ready: make(chan struct{}, 1),
	}
}

// depth returns the frames and bytes waiting in both lanes.
func (q *sendQueue) depth() (frames, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ctrl.frames) + len(q.data.frames), q.ctrl.bytes + q.data.bytes
}

// push queues frames on the control or data lane, all of them or, when they
// do not fit, none, and reports which. Safe from any goroutine.
func (q *sendQueue) push(ctrl bool, frames ...outFrame) bool {
	q.mu.Lock()
	l := &q.data
	if ctrl {
		l = &q.ctrl
	}
	if !l.fits(frames) {
		q.mu.Unlock()
		return false
	}
	for _, f := range frames {
		l.frames = append(l.frames, f)
		l.bytes += len(f.b)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// take moves every waiting frame, control first, onto dst and returns it.
// Only the writer calls it.
func (q *sendQueue) take(dst []outFrame) []outFrame {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, l := range []*lane{&q.ctrl, &q.data} {
		dst = append(dst, l.frames...)
		clear(l.frames) // release the frames' bytes
		l.frames = l.frames[:0]
		l.bytes = 0
	}
	return dst
}
