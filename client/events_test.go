package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/dag"
)

func ev(name, data string) Event { return Event{Name: name, Data: []byte(data)} }

func TestEventDecoding(t *testing.T) {
	id, parent := dag.ID{1}, dag.ID{2}
	key := dag.PublicKey{3}
	m, err := ev("message", fmt.Sprintf(`{"id": %q, "issuer": %q, "seq": 7, "position": 42, "parents": [%q, %q], "timestamp": 1767225600000000000}`,
		id, key, parent, parent)).Message()
	if err != nil || *m != (MessageEvent{ID: id, Issuer: key, Seq: 7, Position: 42, Parents: [2]dag.ID{parent, parent}, Timestamp: 1767225600000000000}) {
		t.Fatalf("message event: %+v, %v", m, err)
	}
	c, err := ev("confirmed", fmt.Sprintf(`{"id": %q, "issuer": %q, "seq": 7, "timestamp": 5, "confirmation": 9, "position": 42, "confirmed_at": 1767225600120000000}`, id, key)).Confirmed()
	if err != nil || !reflect.DeepEqual(*c, ConfirmedEvent{ID: id, Issuer: key, Seq: 7, Timestamp: 5, Confirmation: 9, Position: 42, ConfirmedAt: 1767225600120000000}) {
		t.Fatalf("confirmed event: %+v, %v", c, err)
	}
	if _, err := ev("message", `{}`).Confirmed(); err == nil {
		t.Error("a message event decodes as confirmed")
	}
	if _, err := ev("confirmed", `{"id": "00"}`).Confirmed(); !errors.Is(err, ErrBadResponse) {
		t.Errorf("bad id: %v", err)
	}
	if _, err := ev("message", `{"id": `).Message(); !errors.Is(err, ErrBadResponse) {
		t.Errorf("bad json: %v", err)
	}
}

// sse answers with an event stream made of parts, flushing after each, and
// then holds the stream open until the request ends if hold is set.
func sse(t *testing.T, hold bool, parts ...string) *Client {
	return serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/events" || r.Header.Get("Accept") != "text/event-stream" {
			t.Errorf("request %s, Accept %q", r.URL, r.Header.Get("Accept"))
		}
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		for _, p := range parts {
			io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
		if hold {
			<-r.Context().Done()
		}
	})
}

func TestEvents(t *testing.T) {
	const stream = ": hi\n\nevent: message\ndata: {\"n\": 1}\n\nevent: confirmed\ndata: {\"n\": 2}\n\n"
	want := []Event{ev("message", `{"n": 1}`), ev("confirmed", `{"n": 2}`)}

	t.Run("stream ends", func(t *testing.T) {
		var got []Event
		err := sse(t, false, stream).Events(context.Background(), func(e Event) error { got = append(got, e); return nil })
		if !errors.Is(err, ErrStreamEnded) || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("overflow", func(t *testing.T) {
		var got []Event
		err := sse(t, true, stream, "event: overflow\ndata: {}\n\n", "event: message\ndata: 3\n\n").
			Events(context.Background(), func(e Event) error { got = append(got, e); return nil })
		if !errors.Is(err, ErrOverflow) || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("fn fails", func(t *testing.T) {
		stop := errors.New("enough")
		n := 0
		err := sse(t, true, stream).Events(context.Background(), func(e Event) error { n++; return stop })
		if err != stop || n != 1 {
			t.Fatalf("%d calls, %v", n, err)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var got []Event
		err := sse(t, true, stream).Events(ctx, func(e Event) error {
			got = append(got, e)
			if len(got) == 2 {
				cancel()
			}
			return nil
		})
		if err != context.Canceled || !reflect.DeepEqual(got, want) {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("deadline while idle", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := sse(t, true, ": idle\n\n").Events(ctx, func(e Event) error { return nil })
		if err != context.DeadlineExceeded {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not an event stream", func(t *testing.T) {
		c := serve(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>")
		})
		if err := c.Events(context.Background(), func(Event) error { return nil }); !errors.Is(err, ErrBadResponse) {
			t.Fatalf("got %v", err)
		}
	})
}

// waitServer is a node holding one message for WaitConfirmed: Get answers
// it unconfirmed until confirmed is set.
type waitServer struct {
	m         *dag.Message
	confirmed atomic.Bool
	gets      atomic.Int32
	notFound  atomic.Int32 // answer not_found to this many Gets first
	events    func(w http.ResponseWriter, r *http.Request)
}

func (s *waitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api/v1/events":
		s.events(w, r)
	case "/api/v1/messages/" + s.m.ID().String():
		confirmed := s.confirmed.Load() // before gets moves: the stream waits on gets
		s.gets.Add(1)
		if s.notFound.Add(-1) >= 0 {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error": {"code": "not_found", "message": "no such message"}}`)
			return
		}
		extra := map[string]any{"confirmed": false, "confirmed_at": nil}
		if confirmed {
			extra = map[string]any{"confirmed": true, "confirmed_at": 99}
		}
		w.Write(messageJSONFor(s.m, extra))
	default:
		http.NotFound(w, r)
	}
}

func TestWaitConfirmedByEvent(t *testing.T) {
	s := &waitServer{m: testMessage(testKey(1), 1, "x")}
	other := testMessage(testKey(1), 2, "y")
	s.events = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for s.gets.Load() == 0 { // confirm only once the waiter has seen it unconfirmed
			time.Sleep(time.Millisecond)
		}
		s.confirmed.Store(true)
		fmt.Fprintf(w, "event: message\ndata: {}\n\nevent: confirmed\ndata: {\"id\": %q}\n\nevent: confirmed\ndata: {\"id\": %q, \"issuer\": \"0000000000000000000000000000000000000000000000000000000000000000\", \"position\": 1, \"confirmed_at\": 99}\n\n",
			other.ID(), s.m.ID())
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	c := serve(t, s.ServeHTTP)
	c.pollInterval = time.Hour // only the event can end the wait
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := c.WaitConfirmed(ctx, s.m.ID())
	if err != nil || !info.Confirmed || info.ConfirmedAt != 99 || info.ID != s.m.ID() {
		t.Fatalf("got %+v, %v", info, err)
	}
	if n := s.gets.Load(); n != 2 {
		t.Fatalf("%d Gets, want 2 (before and after the event)", n)
	}
}

func TestWaitConfirmedByPolling(t *testing.T) {
	for name, events := range map[string]func(w http.ResponseWriter, r *http.Request){
		"no events endpoint": http.NotFound,
		"silent stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		},
		"overflowing stream": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: overflow\ndata: {}\n\n")
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := &waitServer{m: testMessage(testKey(1), 1, "x"), events: events}
			s.notFound.Store(2) // the message is not there yet at first
			c := serve(t, s.ServeHTTP)
			c.pollInterval = 5 * time.Millisecond
			go func() {
				for s.gets.Load() < 5 {
					time.Sleep(time.Millisecond)
				}
				s.confirmed.Store(true)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			info, err := c.WaitConfirmed(ctx, s.m.ID())
			if err != nil || !info.Confirmed {
				t.Fatalf("got %+v, %v", info, err)
			}
		})
	}
}

func TestWaitConfirmedEnds(t *testing.T) {
	s := &waitServer{m: testMessage(testKey(1), 1, "x"), events: http.NotFound}
	c := serve(t, s.ServeHTTP)
	c.pollInterval = 5 * time.Millisecond

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitConfirmed(ctx, s.m.ID()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("never confirmed: %v", err)
	}

	s.notFound.Store(1 << 30)
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.WaitConfirmed(ctx, s.m.ID())
	if !errors.Is(err, context.DeadlineExceeded) || !IsCode(err, CodeNotFound) {
		t.Fatalf("never found: %v, want the deadline and the last error", err)
	}

	// An answer that cannot pass ends the wait at once.
	c = serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/events" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error": {"code": "forbidden", "message": "no"}}`)
	})
	if _, err := c.WaitConfirmed(context.Background(), s.m.ID()); !IsCode(err, CodeForbidden) {
		t.Fatalf("forbidden: %v", err)
	}
}
