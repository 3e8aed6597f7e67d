package api

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/node"
)

// eventsPerWrite bounds the events encoded into one write, so that a
// stream's memory stays a few kilobytes whatever the node publishes at
// once; a stream blocked on a client that does not read holds one such
// write.
const eventsPerWrite = 16

// eventBufs are the encoding buffers of the streams, held only while a
// write is under way: a stream waiting for events holds none.
var eventBufs = sync.Pool{New: func() any { return new([]byte) }}

// keepAliveInterval is the pace of comments on an idle stream.
const keepAliveInterval = 15 * time.Second

// events streams server-sent events until the client leaves, the node
// stops, the client accepts no data for the write timeout, or it falls
// further behind than the node keeps events (event: overflow).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	sub, err := s.node.Subscribe()
	if errors.Is(err, node.ErrTooManySubscribers) {
		writeError(w, wire.CodeOverloaded, err.Error()+"; retry later")
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve other requests
	// write sends b at once; false means the client is gone or stuck.
	write := func(b []byte) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(s.eventWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !write([]byte(wire.StreamOpen)) {
		return
	}
	keepalive := time.NewTicker(keepAliveInterval)
	defer keepalive.Stop()
	evs := make([]node.Event, 0, eventsPerWrite)
	for {
		var wait <-chan struct{}
		evs, wait, err = sub.Next(evs[:0], eventsPerWrite)
		if len(evs) > 0 {
			if !writeEvents(write, evs) {
				return
			}
			continue
		}
		if err != nil {
			if errors.Is(err, node.ErrSubscriberBehind) {
				write([]byte(wire.Overflow))
			}
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.ending:
			return
		case <-keepalive.C:
			if !write([]byte(wire.KeepAlive)) {
				return
			}
		case <-wait:
		}
	}
}

// writeEvents encodes evs into a pooled buffer and writes them.
func writeEvents(write func([]byte) bool, evs []node.Event) bool {
	bp := eventBufs.Get().(*[]byte)
	defer eventBufs.Put(bp)
	buf := (*bp)[:0]
	for _, e := range evs {
		buf = appendEvent(buf, e)
	}
	*bp = buf
	return write(buf)
}

// appendEvent appends e as a server-sent event, in wire's encoding.
func appendEvent(b []byte, e node.Event) []byte {
	switch e.Kind {
	case node.EventMessage:
		return wire.AppendMessage(b, &wire.MessageEvent{ID: e.ID, Issuer: e.Issuer, Seq: e.Seq, Position: e.Pos,
			Parents: e.Parents, Timestamp: e.Timestamp})
	case node.EventConfirmed:
		return wire.AppendConfirmed(b, &wire.ConfirmedEvent{ID: e.ID, Position: e.Pos, ConfirmedAt: e.ConfirmedAt})
	}
	return b
}
