package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// MaxEventSize bounds one event of the stream (its lines and its data):
// Events fails with ErrEventTooLarge past it. The API's events are a few
// hundred bytes.
const MaxEventSize = wire.MaxEventSize

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
// The stream is parsed as server-sent events by wire.EventReader (the
// WHATWG HTML standard): comments and the "id" and "retry" fields are
// ignored, data lines are joined with newlines, and an event without data
// is not delivered. Events makes one attempt: it is not retried as the
// other calls are, since its caller must catch up after a new stream.
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	return c.EventsWith(ctx, FeedOptions{}, fn)
}

// FeedOptions select what an event stream carries and where it starts
// (docs/API.md, GET /api/v1/events). The zero value is every live event.
type FeedOptions struct {
	// Kinds, when not empty, are the kinds of events to send:
	// EventMessage, EventConfirmed, EventRule. Empty: the first two.
	Kinds []string
	// Issuers, when not empty, are the only devices whose events to send.
	Issuers []dag.PublicKey
	// Tags, when not empty: only the events of devices the node's registry
	// gives one of these tags.
	Tags []string
	// Payload: confirmed events carry the message's payload.
	Payload bool
	// Resume: begin with every confirmed event from place From on in the
	// node's confirmation order, read from its store, then the live ones.
	Resume bool
	From   uint64
}

func (o FeedOptions) query() string {
	q := url.Values{}
	for _, k := range o.Kinds {
		q.Add("kind", k)
	}
	for _, k := range o.Issuers {
		q.Add("issuer", k.String())
	}
	for _, tag := range o.Tags {
		q.Add("tag", tag)
	}
	if o.Payload {
		q.Set("payload", "true")
	}
	if o.Resume {
		q.Set("from", strconv.FormatUint(o.From, 10))
	}
	return q.Encode()
}

// EventsWith is Events with the stream's options.
func (c *Client) EventsWith(ctx context.Context, o FeedOptions, fn func(Event) error) error {
	u := c.base + wire.PathEvents
	if q := o.query(); q != "" {
		u += "?" + q
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("User-Agent", "weft-client")
	if c.token != "" { // a node with api-read-auth needs it for the feed too
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
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
		return newAPIError(resp.StatusCode, resp.Header, b, c.retry.Now())
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "text/event-stream" {
		return fmt.Errorf("%w: events: content type %q, want text/event-stream", ErrBadResponse, resp.Header.Get("Content-Type"))
	}
	r := wire.NewEventReader(resp.Body)
	for {
		we, err := r.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, io.EOF) {
				return ErrStreamEnded
			}
			return err
		}
		if we.Name == EventOverflow {
			return ErrOverflow
		}
		ev := Event{Name: we.Name, Data: we.Data, ID: we.ID}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// FollowConfirmed calls fn with every confirmed event of the node from
// place from on in its confirmation order (0: all of them), in that order,
// each once, until ctx ends or fn fails, and returns that error: it resumes
// after the last event fn accepted whenever the stream ends, with the
// client's retry backoff while the node is unreachable. Each event reaches
// fn once as long as fn returns nil only for events it has processed; a
// restart of the process must pass the last place it processed plus one.
// o's Kinds, Resume and From are ignored. It gives up with the node's
// answer when the node refuses the stream for good (a 4xx, such as a from
// beyond the node's order).
func (c *Client) FollowConfirmed(ctx context.Context, o FeedOptions, from uint64, fn func(*ConfirmedEvent) error) error {
	o.Kinds, o.Resume, o.From = []string{EventConfirmed}, true, from
	var fnErr error
	for attempt := 1; ; attempt++ {
		progressed := false
		err := c.EventsWith(ctx, o, func(ev Event) error {
			if ev.Name != EventConfirmed {
				return nil
			}
			ce, err := ev.Confirmed()
			if err != nil {
				return err
			}
			if ce.Confirmation < o.From {
				return nil // already processed
			}
			if err := fn(ce); err != nil {
				fnErr = err
				return err
			}
			o.From, progressed = ce.Confirmation+1, true
			return nil
		})
		switch {
		case fnErr != nil:
			return fnErr
		case ctx.Err() != nil:
			return ctx.Err()
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
			return err
		}
		if progressed {
			attempt = 1
		}
		if err := c.retry.Sleep(ctx, c.retry.delay(attempt, err)); err != nil {
			return err
		}
	}
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
