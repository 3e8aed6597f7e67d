package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/weftnet/weft/dag"
)

// MaxEventSize bounds one event of the stream (its lines and its data):
// Events fails with ErrEventTooLarge past it. The API's events are a few
// hundred bytes.
const MaxEventSize = 1 << 20

// Events follows the node's event stream (GET /api/v1/events) and calls fn
// with each event, in the order the node sent them, on the calling
// goroutine. fn must keep up: a client that falls behind is dropped by the
// node.
//
// Events returns when the stream cannot go on, always with a non-nil error:
// ctx.Err() when ctx ends; fn's error, unchanged, when fn returns one;
// ErrOverflow when the node announces it is dropping the client;
// ErrStreamEnded when the node closes the stream; ErrEventTooLarge; an
// *APIError when the node refuses the stream; or a transport error. After
// ErrOverflow or ErrStreamEnded, call Events again and catch up through the
// other endpoints.
//
// The stream is parsed as server-sent events (the WHATWG HTML standard):
// comments and the "id" and "retry" fields are ignored, data lines are
// joined with newlines, and an event without data is not delivered.
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/api/v1/events", nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", "weft-client")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return newAPIError(resp.StatusCode, resp.Header, b)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/event-stream" {
		return fmt.Errorf("%w: events: content type %q, want text/event-stream", ErrBadResponse, resp.Header.Get("Content-Type"))
	}
	r := newEventReader(resp.Body)
	for {
		ev, err := r.next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return ErrStreamEnded
			}
			return err
		}
		if ev.Name == EventOverflow {
			return ErrOverflow
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// eventReader parses a server-sent-events stream.
type eventReader struct {
	sc      *bufio.Scanner
	skipLF  bool // the last line ended with '\r': a '\n' right after belongs to it
	started bool // the byte order mark, if any, has been skipped
}

func newEventReader(r io.Reader) *eventReader {
	er := &eventReader{sc: bufio.NewScanner(r)}
	er.sc.Buffer(make([]byte, 0, 4096), MaxEventSize)
	er.sc.Split(er.splitLine)
	return er
}

// splitLine splits at "\r\n", "\n" or "\r", the three line ends of the
// standard, without waiting for more input after a '\r'.
func (er *eventReader) splitLine(data []byte, atEOF bool) (int, []byte, error) {
	off := 0
	if er.skipLF && len(data) > 0 && data[0] == '\n' {
		off = 1 // the rest of the last line's "\r\n"
	}
	rest := data[off:]
	if i := bytes.IndexAny(rest, "\r\n"); i >= 0 {
		er.skipLF = rest[i] == '\r'
		return off + i + 1, rest[:i], nil
	}
	if atEOF && len(data) > 0 {
		er.skipLF = false
		if len(rest) == 0 {
			return len(data), nil, nil
		}
		return len(data), rest, nil
	}
	return 0, nil, nil
}

// next returns the next complete event. At the end of the stream it
// returns io.EOF, discarding an event not ended by a blank line.
func (er *eventReader) next() (Event, error) {
	var (
		name string
		data []byte
		size int
		seen bool // some data line was seen
	)
	for er.sc.Scan() {
		line := er.sc.Bytes()
		if !er.started {
			er.started = true
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if len(line) == 0 {
			if !seen {
				name, size = "", 0
				continue
			}
			if name == "" {
				name = EventMessage
			}
			if data == nil {
				data = []byte{}
			}
			return Event{Name: name, Data: data}, nil
		}
		if line[0] == ':' {
			continue // a comment, such as a keep-alive
		}
		if size += len(line); size > MaxEventSize {
			return Event{}, fmt.Errorf("%w: more than %d bytes", ErrEventTooLarge, MaxEventSize)
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			if seen {
				data = append(data, '\n')
			}
			data = append(data, value...)
			seen = true
		}
	}
	if err := er.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Event{}, fmt.Errorf("%w: a line of more than %d bytes", ErrEventTooLarge, MaxEventSize)
		}
		return Event{}, err
	}
	return Event{}, io.EOF
}

// errStop ends the event stream of WaitConfirmed.
var errStop = errors.New("client: stop")

// WaitConfirmed waits until message id is confirmed and returns it as Get
// does. It follows the event stream for the id's confirmation and also asks
// for the message every 250 ms, so a missed event, a stream the node drops
// or an event stream that is unavailable never makes it hang: it returns
// at the latest when ctx ends.
//
// While waiting it tolerates answers that may pass (CodeNotFound, since the
// message may yet arrive; rate limiting, overload, transport errors); when
// ctx ends it returns ctx.Err() wrapped together with the last such error.
// Any other error (ErrBadResponse, another *APIError) ends the wait.
func (c *Client) WaitConfirmed(ctx context.Context, id dag.ID) (*MessageInfo, error) {
	ctx, cancel := context.WithCancel(ctx)
	seen := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Its error does not matter: polling covers for a stream that fails.
		_ = c.Events(ctx, func(ev Event) error {
			if ev.Name != EventConfirmed {
				return nil
			}
			if ce, err := ev.Confirmed(); err == nil && ce.ID == id {
				seen <- struct{}{}
				return errStop
			}
			return nil
		})
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	tick := time.NewTicker(c.pollInterval)
	defer tick.Stop()
	var lastErr error
	for {
		info, err := c.Get(ctx, id)
		switch {
		case err == nil && info.Confirmed:
			return info, nil
		case err == nil:
			lastErr = nil
		case ctx.Err() != nil:
		case transient(err):
			lastErr = err
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), lastErr)
			}
			return nil, ctx.Err()
		case <-seen:
		case <-tick.C:
		}
	}
}

// transient reports whether an error of Get may pass if asked again.
func transient(err error) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return !errors.Is(err, ErrBadResponse)
	}
	switch {
	case e.Code == CodeNotFound, e.Code == CodeRateLimited, e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return true
	}
	return false
}
