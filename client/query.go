package client

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
)

// TimeRange selects messages by the timestamp their device gave them: those
// in [From, To), of Device only unless it is nil, and only the confirmed
// ones if Confirmed. A zero From or To leaves that end open.
type TimeRange struct {
	Device    *dag.PublicKey
	From, To  time.Time
	Confirmed bool
}

// values returns r as query parameters.
func (r TimeRange) values() url.Values {
	q := url.Values{}
	if !r.From.IsZero() {
		q.Set("from", strconv.FormatInt(r.From.UnixNano(), 10))
	}
	if !r.To.IsZero() {
		q.Set("to", strconv.FormatInt(r.To.UnixNano(), 10))
	}
	if r.Confirmed {
		q.Set("confirmed", "true")
	}
	return q
}

// bounds returns r's ends in Unix nanoseconds, open ends as the extremes.
func (r TimeRange) bounds() (from, to int64) {
	from, to = math.MinInt64, math.MaxInt64
	if !r.From.IsZero() {
		from = r.From.UnixNano()
	}
	if !r.To.IsZero() {
		to = r.To.UnixNano()
	}
	return from, to
}

// TimePage is a page of a time-range listing, in (Timestamp, Position)
// order. NextCursor continues the listing; it is "" at the end of the
// range. A page may hold fewer messages than asked, even none, while
// NextCursor is not "".
type TimePage struct {
	Messages   []MessageInfo
	NextCursor string
}

// ParseTime reads a time as the API takes it: Unix nanoseconds, or RFC 3339
// ("2026-01-02T15:04:05Z", fractional seconds and offsets allowed).
func ParseTime(s string) (time.Time, error) {
	ns, err := wire.ParseTime(s)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(0, ns), nil
}

// Messages returns a page of the messages of r: from the start of the
// range when cursor is "", else from where the page that returned cursor
// as its NextCursor ended (with the same r). limit is the most messages
// (0: the node's default, 100; at most 1000). It checks that every message
// hashes to its ID, falls in r (the device's, confirmed if asked) and
// comes in order.
func (c *Client) Messages(ctx context.Context, r TimeRange, cursor string, limit int) (*TimePage, error) {
	if limit < 0 || limit > maxPageLimit {
		return nil, fmt.Errorf("client: limit %d out of range 0..%d", limit, maxPageLimit)
	}
	q := r.values()
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	n := defaultPageLimit
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
		n = limit
	}
	path := wire.PathMessages
	if r.Device != nil {
		path = wire.PathIssuers + "/" + r.Device.String() + "/messages"
		if !q.Has("from") && !q.Has("cursor") && !q.Has("confirmed") && !q.Has("to") {
			// A time query needs a time parameter on this path: without
			// one it lists by sequence number.
			q.Set("from", strconv.FormatInt(math.MinInt64, 10))
		}
	}
	var w wire.TimePage
	if err := c.getJSON(ctx, path, q, int64(n)*maxPageEntry+4096, &w); err != nil {
		return nil, err
	}
	if len(w.Messages) > n {
		return nil, fmt.Errorf("%w: asked for at most %d messages, got %d", ErrBadResponse, n, len(w.Messages))
	}
	from, to := r.bounds()
	page := &TimePage{Messages: make([]MessageInfo, len(w.Messages)), NextCursor: w.NextCursor}
	for i := range w.Messages {
		m, err := fromWire(&w.Messages[i])
		if err != nil {
			return nil, fmt.Errorf("%w: time listing: %v", ErrBadResponse, err)
		}
		if err := checkFields(&m); err != nil {
			return nil, err
		}
		switch {
		case r.Device != nil && m.Issuer != *r.Device:
			return nil, fmt.Errorf("%w: message %s of the listing of %s is issued by %s", ErrBadResponse, m.ID, *r.Device, m.Issuer)
		case m.Timestamp < from || m.Timestamp >= to:
			return nil, fmt.Errorf("%w: message %s has timestamp %d, outside the range asked for", ErrBadResponse, m.ID, m.Timestamp)
		case r.Confirmed && !m.Confirmed:
			return nil, fmt.Errorf("%w: message %s is not confirmed; only confirmed ones were asked for", ErrBadResponse, m.ID)
		case i > 0 && (m.Timestamp < page.Messages[i-1].Timestamp ||
			m.Timestamp == page.Messages[i-1].Timestamp && m.Position <= page.Messages[i-1].Position):
			return nil, fmt.Errorf("%w: message %s is out of (timestamp, position) order", ErrBadResponse, m.ID)
		}
		page.Messages[i] = m
	}
	return page, nil
}

// Export formats.
const (
	FormatNDJSON = wire.FormatNDJSON
	FormatCSV    = wire.FormatCSV
)

// Export streams the export of r in format (FormatNDJSON or FormatCSV;
// docs/API.md) to dst as the node sends it, and returns the bytes
// written. It holds none of it in memory. An export the node could not
// finish (its connection ended before the end of the answer) is an error:
// dst then holds a truncated export. The call is not retried once the
// node has begun to answer.
func (c *Client) Export(ctx context.Context, r TimeRange, format string, dst io.Writer) (int64, error) {
	q := r.values()
	if r.Device != nil {
		q.Set("device", r.Device.String())
	}
	if format != "" {
		q.Set("format", format)
	}
	resp, _, err := c.do(ctx, http.MethodGet, wire.PathExport, q, "", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(dst, resp.Body)
	if err != nil {
		return n, fmt.Errorf("client: export: after %d bytes: %w", n, err)
	}
	return n, nil
}
