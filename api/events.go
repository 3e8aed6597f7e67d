package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
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

// stream is one event stream being served.
type stream struct {
	s     *Server
	f     wire.Feed
	sub   *node.Subscription
	write func([]byte) bool
	// next is the place in the node's confirmation order of the next
	// confirmed event the stream owes: those before it were sent (or
	// filtered out), those from it on come from the subscription or, where
	// it has a gap or payloads are wanted, from the store.
	next uint64
	buf  []byte // the write being built
}

// events streams server-sent events until the client leaves, the node
// stops, the client accepts no data for the write timeout, or it falls
// further behind than the node keeps events while it wants message events
// (event: overflow; confirmed events alone are read again from the store).
// A stream that resumes (Last-Event-ID or since) first gets every
// confirmed event after that id, from the store.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	f, err := wire.ParseFeed(r.URL.Query(), r.Header.Get("Last-Event-ID"))
	for _, tag := range f.Tags {
		if err == nil {
			err = node.CheckTag(tag)
		}
	}
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	sub, err := s.node.Subscribe()
	if errors.Is(err, node.ErrTooManySubscribers) {
		writeError(w, wire.CodeOverloaded, err.Error()+"; retry later")
		return
	}
	if err != nil {
		fail(w, err)
		return
	}
	st := &stream{s: s, f: f, sub: sub, next: s.node.ConfirmCount()} // subscribed first: nothing after next is missed
	defer func() { st.sub.Close() }()
	if f.Resume {
		if f.From > st.next {
			writeError(w, wire.CodeBadRequest, fmt.Sprintf("event id %d is beyond this node's confirmation order, which has %d events so far (ids are a node's own)", f.From-1, st.next))
			return
		}
		st.next = f.From
	}
	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve other requests
	st.write = func(b []byte) bool {
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
	if !st.write([]byte(wire.StreamOpen)) || !st.catchUp(s.node.ConfirmCount()) {
		return
	}
	keepalive := time.NewTicker(keepAliveInterval)
	defer keepalive.Stop()
	evs := make([]node.Event, 0, eventsPerWrite)
	for {
		var wait <-chan struct{}
		evs, wait, err = st.sub.Next(evs[:0], eventsPerWrite)
		if len(evs) > 0 {
			if !st.send(evs) {
				return
			}
			continue
		}
		if errors.Is(err, node.ErrSubscriberBehind) && !f.Messages && !f.Rules {
			// Confirmed events only: the store has what the ring lost.
			if st.sub, err = s.node.Subscribe(); err != nil || !st.catchUp(s.node.ConfirmCount()) {
				return
			}
			continue
		}
		if err != nil {
			if errors.Is(err, node.ErrSubscriberBehind) {
				st.write([]byte(wire.Overflow))
			}
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.ending:
			return
		case <-keepalive.C:
			if !st.write([]byte(wire.KeepAlive)) {
				return
			}
		case <-wait:
		}
	}
}

// send writes the events of evs the stream takes. A confirmed event comes
// from the store instead when the stream has a gap before it or wants
// payloads.
func (st *stream) send(evs []node.Event) bool {
	bp := eventBufs.Get().(*[]byte)
	defer eventBufs.Put(bp)
	st.buf = (*bp)[:0]
	defer func() { *bp = st.buf[:0] }()
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case node.EventMessage:
			if st.f.Messages && st.match(e.Issuer, e.ID) {
				st.buf = appendEvent(st.buf, *e)
			}
		case node.EventRule:
			if st.f.Rules && st.match(e.Issuer, e.ID) {
				st.buf = appendEvent(st.buf, *e)
			}
		case node.EventConfirmed:
			switch {
			case e.ConfirmSeq < st.next: // sent from the store already
			case e.ConfirmSeq > st.next || st.f.Payload:
				if !st.flush() || !st.catchUp(e.ConfirmSeq+1) {
					return false
				}
			default:
				if st.f.Confirmed && st.match(e.Issuer, e.ID) {
					st.buf = appendEvent(st.buf, *e)
				}
				st.next++
			}
		}
	}
	return st.flush()
}

// match reports whether the stream takes the events of message id of
// issuer: one of its issuers, if it names any, and a device with one of
// its tags, if it names any, as the registry has it now; and, if it
// samples, a validator or a sampled message.
func (st *stream) match(issuer dag.PublicKey, id dag.ID) bool {
	if !st.f.Match(issuer) {
		return false
	}
	if st.f.Sample > 1 && !st.f.Sampled(id) && !st.s.node.IsValidator(issuer) {
		return false
	}
	if len(st.f.Tags) == 0 {
		return true
	}
	d, ok := st.s.node.Device(issuer)
	return ok && slices.ContainsFunc(st.f.Tags, d.HasTag)
}

// flush writes what st.buf holds.
func (st *stream) flush() bool {
	if len(st.buf) == 0 {
		return true
	}
	ok := st.write(st.buf)
	st.buf = st.buf[:0]
	return ok
}

// catchUpPage is how many confirmed messages a stream reads from the store
// at a time.
const catchUpPage = 64

// catchUp sends, from the store, the confirmed events from st.next up to
// until (exclusive) that the stream takes.
func (st *stream) catchUp(until uint64) bool {
	if !st.f.Confirmed {
		st.next = max(st.next, until)
		return true
	}
	for st.next < until {
		page, err := st.s.node.ConfirmedSince(st.next, int(min(until-st.next, catchUpPage)))
		if err != nil || len(page) == 0 {
			st.s.log.Error().Err(err).Uint64("from", st.next).Msg("event stream: reading the confirmation order failed")
			return false
		}
		bp := eventBufs.Get().(*[]byte)
		buf := (*bp)[:0]
		for _, c := range page {
			m := c.Msg
			if st.f.Confirmed && st.match(m.Issuer, m.ID()) {
				buf = wire.AppendConfirmed(buf, &wire.ConfirmedEvent{ID: m.ID(), Position: c.Pos, ConfirmedAt: c.ConfirmedAt,
					Confirmation: c.Seq, Issuer: m.Issuer, Seq: m.Seq, Timestamp: m.Timestamp,
					Payload: m.Payload, HasPayload: st.f.Payload})
			}
			st.next = c.Seq + 1
		}
		ok := len(buf) == 0 || st.write(buf)
		*bp = buf[:0]
		eventBufs.Put(bp)
		if !ok {
			return false
		}
	}
	return true
}

// appendEvent appends e as a server-sent event, in wire's encoding.
func appendEvent(b []byte, e node.Event) []byte {
	switch e.Kind {
	case node.EventMessage:
		return wire.AppendMessage(b, &wire.MessageEvent{ID: e.ID, Issuer: e.Issuer, Seq: e.Seq, Position: e.Pos,
			Parents: e.Parents, Timestamp: e.Timestamp})
	case node.EventConfirmed:
		return wire.AppendConfirmed(b, &wire.ConfirmedEvent{ID: e.ID, Position: e.Pos, ConfirmedAt: e.ConfirmedAt,
			Confirmation: e.ConfirmSeq, Issuer: e.Issuer, Seq: e.Seq, Timestamp: e.Timestamp})
	case node.EventRule:
		return wire.AppendRule(b, &wire.RuleEvent{Rule: e.Rule, Confirmation: e.ConfirmSeq, ConfirmedAt: e.ConfirmedAt,
			ID: e.ID.String(), Issuer: e.Issuer.String(), Position: e.Pos, Seq: e.Seq, Timestamp: e.Timestamp})
	}
	return b
}
