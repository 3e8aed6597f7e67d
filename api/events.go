package api

import (
	"io"
	"net/http"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/node"
)

// events streams server-sent events until the client leaves, the node
// stops, or the client falls behind (event: overflow).
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, wire.CodeInternal, "streaming unsupported")
		return
	}
	sub := s.node.Subscribe(1 << 16) // one busy step can publish thousands
	defer sub.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, wire.StreamOpen)
	fl.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	var buf []byte
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.ending:
			return
		case <-keepalive.C:
			io.WriteString(w, wire.KeepAlive)
			fl.Flush()
		case e, ok := <-sub.C:
			if !ok {
				if sub.Overflowed() {
					io.WriteString(w, wire.Overflow)
					fl.Flush()
				}
				return
			}
			buf = appendReady(appendEvent(buf[:0], e), sub.C)
			w.Write(buf)
			fl.Flush()
		}
	}
}

// appendReady appends the events ready on c, at most 256, so that one
// flush carries them.
func appendReady(buf []byte, c <-chan node.Event) []byte {
	for k := 0; k < 256; k++ {
		select {
		case e, ok := <-c:
			if !ok {
				return buf
			}
			buf = appendEvent(buf, e)
		default:
			return buf
		}
	}
	return buf
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
