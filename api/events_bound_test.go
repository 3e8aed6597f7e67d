package api

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/node"
)

// openStream opens GET /api/v1/events and returns the response; the caller
// closes its body.
func openStream(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url + wire.PathEvents)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestEventsMaxSubscribers: past MaxSubscribers a stream is refused with
// 503 overloaded and Retry-After; a stream that ends frees its slot.
func TestEventsMaxSubscribers(t *testing.T) {
	srv, n := testServer(t, func(c *node.Config) { c.MaxSubscribers = 2 })
	a, b := openStream(t, srv.URL), openStream(t, srv.URL)
	defer b.Body.Close()
	if a.StatusCode != 200 || b.StatusCode != 200 {
		t.Fatalf("streams within the bound: %d, %d", a.StatusCode, b.StatusCode)
	}
	c := openStream(t, srv.URL)
	body := streamBody(t, c)
	if c.StatusCode != 503 || c.Header.Get("Retry-After") == "" || errorBody(t, body).Code != wire.CodeOverloaded {
		t.Fatalf("third stream: %d, Retry-After %q, %s", c.StatusCode, c.Header.Get("Retry-After"), body)
	}
	if !strings.Contains(string(body), "2 open") {
		t.Errorf("the refusal does not say the bound: %s", body)
	}
	a.Body.Close()
	waitSubscribers(t, n, 1)
	d := openStream(t, srv.URL)
	defer d.Body.Close()
	if d.StatusCode != 200 {
		t.Fatalf("a stream after one ended: %d", d.StatusCode)
	}
}

func streamBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitSubscribers waits until n has want subscriptions open; it fails the
// test after 30 s.
func waitSubscribers(t *testing.T, n *node.Node, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for n.Subscribers() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers after 30 s, want %d", n.Subscribers(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// submitUntil submits messages of one device, one at a time, until done
// returns true; it fails the test after 30 s.
func submitUntil(t *testing.T, url string, n *node.Node, done func() bool) int {
	t.Helper()
	dev := &builder{t: t, n: n, key: key(40)}
	deadline := time.Now().Add(30 * time.Second)
	k := 0
	for ; !done(); k++ {
		if time.Now().After(deadline) {
			t.Fatalf("not done after %d messages in 30 s", k)
		}
		if st, out := post(t, url+wire.PathMessages, dev.build(fmt.Sprintf("m%d", k), nil).Bytes()); st != 201 {
			t.Fatalf("message %d: %d %v", k, st, out)
		}
	}
	return k
}

// TestEventsWriteTimeout: a client that stops reading is dropped once its
// connection takes no data for the write timeout, and its slot is freed.
// The socket buffers are made small on both ends so that they fill after
// a few events instead of megabytes.
func TestEventsWriteTimeout(t *testing.T) {
	_, n := testServer(t, nil)
	srv := httptest.NewUnstartedServer(NewWithOptions(n, "test", zerolog.Nop(), Options{EventWriteTimeout: 200 * time.Millisecond}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		c.(*net.TCPConn).SetWriteBuffer(4096)
		return ctx
	}
	srv.Start()
	defer srv.Close()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: weft\r\n\r\n", wire.PathEvents) // and never read
	waitSubscribers(t, n, 1)
	sent := submitUntil(t, srv.URL, n, func() bool { return n.Subscribers() == 0 })
	t.Logf("the stuck client was dropped after %d messages", sent)
}

// stuckWriter is a ResponseWriter whose first Write blocks until release
// is closed: a client that stopped reading, seen from the handler.
type stuckWriter struct {
	header  http.Header
	release chan struct{}
	once    sync.Once
	stuck   chan struct{} // closed when the first Write blocks
	mu      sync.Mutex
	out     strings.Builder
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Flush()              {}
func (w *stuckWriter) Write(b []byte) (int, error) {
	w.once.Do(func() {
		close(w.stuck)
		<-w.release
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

// TestEventsOverflow: a client that falls further behind than the node
// keeps events is sent the overflow event, saying why, and dropped.
func TestEventsOverflow(t *testing.T) {
	// Rule events are live only, as message events are: a stream that
	// wants them is cut too, never caught up from the store in silence.
	for _, query := range []string{"", "?kind=rule", "?kind=confirmed,rule"} {
		srv, n := testServer(t, func(c *node.Config) { c.EventBuffer = 16 })
		api := New(n, "test", zerolog.Nop())
		w := &stuckWriter{header: http.Header{}, release: make(chan struct{}), stuck: make(chan struct{})}
		req := httptest.NewRequest("GET", wire.PathEvents+query, nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			api.ServeHTTP(w, req)
		}()
		<-w.stuck
		sent := 0
		submitUntil(t, srv.URL, n, func() bool { sent++; return sent > 20 }) // 20 messages: more than 16 events
		close(w.release)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("events%s: the stream fell behind and was not cut in 30 s", query)
		}
		w.mu.Lock()
		out := w.out.String()
		w.mu.Unlock()
		if !strings.HasSuffix(out, wire.Overflow) {
			t.Fatalf("events%s: the stream did not end with the overflow event: %q", query, out)
		}
		evs := readEvents(t, []byte(out))
		if last := evs[len(evs)-1]; last.Name != wire.EventOverflow || !strings.Contains(string(last.Data), `"reason":"behind"`) {
			t.Fatalf("events%s: last event %+v", query, last)
		}
		if s := n.Subscribers(); s != 0 {
			t.Fatalf("events%s: %d subscribers after the overflow", query, s)
		}
	}
}

// TestBatchCancelledInFlight: a batch whose request is cancelled while the
// pipeline still checks its messages answers without a data race (the
// race detector watches): the API takes the IDs before the pipeline has
// the messages.
func TestBatchCancelledInFlight(t *testing.T) {
	srv, n := testServer(t, nil)
	for round := range 5 {
		dev := &builder{t: t, n: n, key: key(byte(60 + round))}
		var body []byte
		for i := range 200 {
			m := dev.build(fmt.Sprintf("c%d", i), nil).Bytes()
			body = binary.BigEndian.AppendUint32(body, uint32(len(m)))
			body = append(body, m...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(round+1)*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+wire.PathBatch, bytes.NewReader(body))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
	}
}
