package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

// feedClient reads an event stream in a test.
type feedClient struct {
	t    *testing.T
	resp *http.Response
	er   *wire.EventReader
	evs  chan wire.Event
	errc chan error
}

// openFeed opens GET /api/v1/events?query with the Last-Event-ID lastID
// (none if ""), and requires 200.
func openFeed(t *testing.T, url, query, lastID string) *feedClient {
	t.Helper()
	req, _ := http.NewRequest("GET", url+wire.PathEvents+"?"+query, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("events?%s: %d %s", query, resp.StatusCode, streamBody(t, resp))
	}
	fc := &feedClient{t: t, resp: resp, er: wire.NewEventReader(resp.Body), evs: make(chan wire.Event, 1024), errc: make(chan error, 1)}
	go func() {
		for {
			ev, err := fc.er.Next()
			if err != nil {
				fc.errc <- err
				close(fc.evs)
				return
			}
			fc.evs <- ev
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return fc
}

// next returns the next event; it fails the test after 10 s.
func (fc *feedClient) next() wire.Event {
	fc.t.Helper()
	select {
	case ev, ok := <-fc.evs:
		if !ok {
			fc.t.Fatalf("stream ended: %v", <-fc.errc)
		}
		return ev
	case <-time.After(10 * time.Second):
		fc.t.Fatal("no event within 10 s")
	}
	return wire.Event{}
}

// nextConfirmed skips message events and returns the next confirmed one,
// checking that its SSE id is its confirmation.
func (fc *feedClient) nextConfirmed() wire.ConfirmedEvent {
	fc.t.Helper()
	for {
		ev := fc.next()
		if ev.Name != wire.EventConfirmed {
			continue
		}
		c, err := wire.DecodeConfirmed(ev.Data)
		if err != nil {
			fc.t.Fatal(err)
		}
		if ev.ID != strconv.FormatUint(c.Confirmation, 10) {
			fc.t.Fatalf("event id %q, confirmation %d", ev.ID, c.Confirmation)
		}
		return c
	}
}

// confirmAll submits k messages of dev and waits until the node's
// confirmation order has grown past all of them.
func confirmAll(t *testing.T, url string, n *node.Node, dev *builder, k int, payload func(int) string) {
	t.Helper()
	for i := range k {
		if st, out := post(t, url+wire.PathMessages, dev.build(payload(i), nil).Bytes()); st != 201 {
			t.Fatalf("message %d: %d %v", i, st, out)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for n.Info().Unconfirmed > 0 {
		if time.Now().After(deadline) {
			t.Fatal("messages not confirmed within 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFeedResume: a stream that resumes after an id gets every confirmed
// event after it, from the store, in the node's confirmation order with
// consecutive ids, then live ones; a client that reconnects with
// Last-Event-ID misses nothing and repeats nothing.
func TestFeedResume(t *testing.T) {
	srv, n := testServer(t, nil)
	dev := &builder{t: t, n: n, key: key(50)}
	confirmAll(t, srv.URL, n, dev, 30, func(i int) string { return fmt.Sprintf(`{"i":%d}`, i) })
	total := n.ConfirmCount()
	stored, err := n.ConfirmedSince(0, 0)
	if err != nil || uint64(len(stored)) != total {
		t.Fatalf("ConfirmedSince: %d of %d, %v", len(stored), total, err)
	}
	from := total / 3
	fc := openFeed(t, srv.URL, "kind=confirmed&since="+strconv.FormatUint(from, 10), "")
	for seq := from + 1; seq < total; seq++ {
		c := fc.nextConfirmed()
		if c.Confirmation != seq || c.ID != stored[seq].Msg.ID() || c.Position != stored[seq].Pos {
			t.Fatalf("replayed event %+v, want place %d (%s)", c, seq, stored[seq].Msg.ID())
		}
	}
	// Live ones follow, and a reconnect in the middle loses none.
	confirmAll(t, srv.URL, n, dev, 20, func(i int) string { return "x" }) // the stream is open: these are live
	last := total - 1
	for range 10 {
		c := fc.nextConfirmed()
		if c.Confirmation != last+1 {
			t.Fatalf("live event %d after %d", c.Confirmation, last)
		}
		last = c.Confirmation
	}
	fc.resp.Body.Close()
	fc = openFeed(t, srv.URL, "kind=confirmed&since=0", strconv.FormatUint(last, 10)) // the header wins
	for end := n.ConfirmCount(); last+1 < end; {
		c := fc.nextConfirmed()
		if c.Confirmation != last+1 {
			t.Fatalf("after reconnecting with Last-Event-ID %d: event %d", last, c.Confirmation)
		}
		last = c.Confirmation
	}
}

// TestFeedFilters: kind, issuer and payload select what a stream carries,
// live and from the store alike.
func TestFeedFilters(t *testing.T) {
	srv, n := testServer(t, nil)
	a, b := &builder{t: t, n: n, key: key(51)}, &builder{t: t, n: n, key: key(52)}
	start := n.ConfirmCount()
	live := openFeed(t, srv.URL, "kind=confirmed&payload=true&issuer="+pubOf(a.key).String(), "")
	msgs := openFeed(t, srv.URL, "kind=message&issuer="+pubOf(b.key).String(), "")
	confirmAll(t, srv.URL, n, a, 5, func(i int) string { return fmt.Sprintf("{\"temp_c\": %d.5}", i) })
	confirmAll(t, srv.URL, n, b, 5, func(i int) string { return "\x00binary" })
	// Resume after the last event before the submissions.
	replay := openFeed(t, srv.URL, "kind=confirmed&payload=true&issuer="+pubOf(a.key).String(), strconv.FormatUint(start-1, 10))
	for k, fc := range []*feedClient{live, replay} {
		for i := range 5 {
			ev := fc.next()
			if ev.Name != wire.EventConfirmed {
				t.Fatalf("a %s event on a confirmed-only stream", ev.Name)
			}
			c, err := wire.DecodeConfirmed(ev.Data)
			if err != nil || c.Issuer != pubOf(a.key) || c.Seq != uint64(i+1) || !c.HasPayload {
				t.Fatalf("stream %d, event %d: %+v, %v", k, i, c, err)
			}
			var p struct {
				TempC float64 `json:"temp_c"`
			}
			if json.Unmarshal(c.Payload, &p) != nil || p.TempC != float64(i)+0.5 || !bytes.Contains(ev.Data, []byte(`"payload_encoding":"json"`)) {
				t.Fatalf("event %d: payload %s", i, ev.Data)
			}
		}
	}
	for i := range 5 {
		ev := msgs.next()
		m, err := wire.DecodeMessage(ev.Data)
		if ev.Name != wire.EventMessage || err != nil || m.Issuer != pubOf(b.key) || m.Seq != uint64(i+1) {
			t.Fatalf("message stream, event %d: %s %s %v", i, ev.Name, ev.Data, err)
		}
	}
	// A binary payload is base64.
	bin := openFeed(t, srv.URL, "kind=confirmed&payload=1&issuer="+pubOf(b.key).String(), strconv.FormatUint(start-1, 10))
	c := bin.nextConfirmed()
	if string(c.Payload) != "\x00binary" {
		t.Fatalf("binary payload %q", c.Payload)
	}
}

// TestFeedSample: a stream with sample=4 carries the message and
// confirmed events of exactly the device messages whose ID Sampled keeps,
// and of every validator message; a stream without carries them all.
func TestFeedSample(t *testing.T) {
	srv, n := testServer(t, nil)
	dev := &builder{t: t, n: n, key: key(53)}
	sampled := openFeed(t, srv.URL, "kind=message,confirmed&sample=4", "")
	all := openFeed(t, srv.URL, "kind=message,confirmed&issuer="+pubOf(dev.key).String(), "")
	const k = 64
	confirmAll(t, srv.URL, n, dev, k, func(i int) string { return fmt.Sprintf("reading %d", i) })
	f := wire.Feed{Sample: 4}
	want := map[string]int{} // kind and id of the device's events the sampled stream must carry
	for range 2 * k {
		ev := all.next()
		id, _ := eventOf(t, ev)
		if f.Sampled(id) {
			want[ev.Name+" "+id.String()]++
		}
	}
	if len(want) == 0 || len(want) == 2*k {
		t.Fatalf("sample=4 keeps %d of the %d events", len(want), 2*k)
	}
	validators := 0
	for len(want) > 0 {
		ev := sampled.next()
		id, issuer := eventOf(t, ev)
		switch {
		case n.IsValidator(issuer):
			validators++
		case issuer != pubOf(dev.key) || !f.Sampled(id):
			t.Fatalf("the sampled stream carries %s %s of %s", ev.Name, id, issuer)
		default:
			delete(want, ev.Name+" "+id.String())
		}
	}
	if validators == 0 {
		t.Fatal("no validator message on the sampled stream")
	}
}

// eventOf decodes a message or confirmed event's id and issuer.
func eventOf(t *testing.T, ev wire.Event) (dag.ID, dag.PublicKey) {
	t.Helper()
	if ev.Name == wire.EventMessage {
		m, err := wire.DecodeMessage(ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		return m.ID, m.Issuer
	}
	c, err := wire.DecodeConfirmed(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	return c.ID, c.Issuer
}

// TestFeedBadQueries: what the stream cannot serve is refused with 400
// and a message, before it opens.
func TestFeedBadQueries(t *testing.T) {
	srv, n := testServer(t, nil)
	for _, tc := range []struct{ query, lastID string }{
		{"kind=everything", ""},
		{"issuer=zz", ""},
		{"payload=maybe", ""},
		{"since=-1", ""},
		{"", "not-a-number"},
		{"since=" + strconv.FormatUint(n.ConfirmCount(), 10), ""},
		{"from=" + strconv.FormatUint(n.ConfirmCount()+1, 10), ""},
		{"since=18446744073709551615", ""},
		{"sample=0", ""},
		{"sample=65537", ""},
		{"sample=half", ""},
	} {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", srv.URL+wire.PathEvents+"?"+tc.query, nil)
		if tc.lastID != "" {
			req.Header.Set("Last-Event-ID", tc.lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := streamBody(t, resp)
		if resp.StatusCode != 400 || errorBody(t, body).Code != wire.CodeBadRequest {
			t.Errorf("%q (Last-Event-ID %q): %d %s", tc.query, tc.lastID, resp.StatusCode, body)
		}
	}
}

// TestFeedConfirmedNeverCut: a stream of confirmed events only that falls
// further behind than the node keeps events is not cut: it reads what it
// missed from the store and goes on, every confirmation once, in order.
func TestFeedConfirmedNeverCut(t *testing.T) {
	srv, n := testServer(t, func(c *node.Config) { c.EventBuffer = 16 })
	api := New(n, "test", zerolog.Nop())
	w := &stuckWriter{header: http.Header{}, release: make(chan struct{}), stuck: make(chan struct{})}
	start := n.ConfirmCount()
	req := httptest.NewRequest("GET", wire.PathEvents+"?kind=confirmed", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		api.ServeHTTP(w, req)
	}()
	<-w.stuck // the stream is subscribed, and its first write does not return
	dev := &builder{t: t, n: n, key: key(53)}
	confirmAll(t, srv.URL, n, dev, 20, func(int) string { return "r" }) // far more than 16 events
	end := n.ConfirmCount()
	close(w.release)
	want := fmt.Sprintf("id: %d\n", end-1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		out := w.out.String()
		w.mu.Unlock()
		if strings.Contains(out, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not reach place %d: %q", end-1, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	api.EndStreams()
	<-done
	w.mu.Lock()
	evs := readEvents(t, []byte(w.out.String()))
	w.mu.Unlock()
	next := start
	for _, ev := range evs {
		if ev.Name != wire.EventConfirmed || ev.ID != strconv.FormatUint(next, 10) {
			t.Fatalf("event %s id %q, want confirmed %d", ev.Name, ev.ID, next)
		}
		next++
	}
	if next < end {
		t.Fatalf("events up to %d, want %d", next, end)
	}
}

// TestFeedTag: tag selects the events of the devices the registry gives
// that tag, live and from the store; a tag the registry would refuse is a
// bad query.
func TestFeedTag(t *testing.T) {
	srv, n := testServer(t, nil)
	a, b := &builder{t: t, n: n, key: key(54)}, &builder{t: t, n: n, key: key(55)}
	if _, err := n.AddDevice("test", node.Device{Key: pubOf(a.key), Name: "fridge-1", Tags: []string{"cold-chain"}}); err != nil {
		t.Fatal(err)
	}
	start := n.ConfirmCount()
	live := openFeed(t, srv.URL, "tag=cold-chain,other", "")
	confirmAll(t, srv.URL, n, b, 3, func(int) string { return "b" })
	confirmAll(t, srv.URL, n, a, 3, func(int) string { return "a" })
	replay := openFeed(t, srv.URL, "kind=confirmed&tag=cold-chain&from="+strconv.FormatUint(start, 10), "")
	for k, fc := range []*feedClient{live, replay} {
		confirmed := 0
		for confirmed < 3 {
			ev := fc.next()
			var issuer struct{ Issuer string }
			if err := json.Unmarshal(ev.Data, &issuer); err != nil || issuer.Issuer != pubOf(a.key).String() {
				t.Fatalf("stream %d: an event of another device: %s %s", k, ev.Name, ev.Data)
			}
			if ev.Name == wire.EventConfirmed {
				confirmed++
			}
		}
	}
	resp, err := http.Get(srv.URL + wire.PathEvents + "?tag=Not%20A%20Tag")
	if err != nil {
		t.Fatal(err)
	}
	if body := streamBody(t, resp); resp.StatusCode != 400 {
		t.Fatalf("a bad tag: %d %s", resp.StatusCode, body)
	}
}
