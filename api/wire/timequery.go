package wire

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// Paths of the time-range queries: GET PathMessages lists every device's
// messages in a range, GET PathIssuers+"/{key}/messages" with a time
// parameter one device's, and GET PathExport streams either.
const PathExport = "/api/v1/export"

// Export formats (the format parameter of GET PathExport) and their
// content types.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"

	ContentNDJSON = "application/x-ndjson"
	ContentCSV    = "text/csv; charset=utf-8"
)

// maxTimeParam bounds the length of a time parameter: RFC 3339 with
// nanoseconds and an offset is 35 characters.
const maxTimeParam = 64

// ParseTime reads a time parameter: Unix nanoseconds (a decimal integer,
// possibly negative) or an RFC 3339 time ("2026-01-02T15:04:05Z", with
// fractional seconds and any offset) between the years 1678 and 2262, the
// times Unix nanoseconds can hold. It returns Unix nanoseconds.
func ParseTime(s string) (int64, error) {
	if s == "" || len(s) > maxTimeParam {
		return 0, fmt.Errorf("%w: a time is Unix nanoseconds or RFC 3339, got %q", ErrQuery, truncate(s))
	}
	if c := s[0]; c == '-' || c >= '0' && c <= '9' {
		if ns, err := strconv.ParseInt(s, 10, 64); err == nil {
			return ns, nil
		}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is neither Unix nanoseconds nor an RFC 3339 time", ErrQuery, truncate(s))
	}
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("%w: %q is outside the times Unix nanoseconds hold (1678 to 2262)", ErrQuery, truncate(s))
	}
	return t.UnixNano(), nil
}

// The times ParseTime accepts in RFC 3339.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// FormatTime writes Unix nanoseconds as RFC 3339 with nanoseconds, in UTC,
// as the export does.
func FormatTime(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// TimeRange is the selection of a time-range query: the messages whose
// timestamp is in [From, To), of one issuer (Issuer, 64 hex characters) or
// of every issuer (""), only the confirmed ones if Confirmed.
type TimeRange struct {
	Issuer    string
	From, To  int64
	Confirmed bool
}

// TimeQuery is one page of a time-range query.
type TimeQuery struct {
	TimeRange
	// Limit is the most messages of the page, 1..MaxPageLimit.
	Limit int
	// Start is where the page starts, (From, 0) or the cursor's place.
	Start Place
}

// A Place is a point in the (timestamp, position) order of a time-range
// listing: a page starts at the first message at or after it.
type Place struct {
	Time int64
	Pos  uint64
}

// IsTimeQuery reports whether q asks the issuer listing for a time range
// (any of from, to, confirmed and cursor) rather than for sequence order.
func IsTimeQuery(q url.Values) bool {
	return q.Has("from") || q.Has("to") || q.Has("confirmed") || q.Has("cursor")
}

// ParseTimeRange reads from (default: no lower bound), to (default: no
// upper bound; exclusive) and confirmed ("true", "false", "1", "0"; default
// false) of q, for issuer ("" for every issuer).
func ParseTimeRange(q url.Values, issuer string) (TimeRange, error) {
	r := TimeRange{Issuer: issuer, From: math.MinInt64, To: math.MaxInt64}
	var err error
	if q.Has("from") {
		if r.From, err = ParseTime(q.Get("from")); err != nil {
			return r, fmt.Errorf("from: %w", err)
		}
	}
	if q.Has("to") {
		if r.To, err = ParseTime(q.Get("to")); err != nil {
			return r, fmt.Errorf("to: %w", err)
		}
	}
	if r.From >= r.To {
		return r, fmt.Errorf("%w: from must be before to (the range is [from, to))", ErrQuery)
	}
	if q.Has("confirmed") {
		if r.Confirmed, err = strconv.ParseBool(q.Get("confirmed")); err != nil {
			return r, fmt.Errorf("%w: confirmed must be true or false", ErrQuery)
		}
	}
	return r, nil
}

// ParseTimeQuery reads a page of a time-range query from q: the range
// (ParseTimeRange), limit (default DefaultPageLimit, at most MaxPageLimit)
// and cursor, which must be one that a page of the same range returned.
// after_seq does not go with a time range.
func ParseTimeQuery(q url.Values, issuer string) (TimeQuery, error) {
	var tq TimeQuery
	if q.Has("after_seq") {
		return tq, fmt.Errorf("%w: after_seq pages by sequence number and does not go with from, to, confirmed or cursor", ErrQuery)
	}
	r, err := ParseTimeRange(q, issuer)
	if err != nil {
		return tq, err
	}
	pg, err := ParsePage(q)
	if err != nil {
		return tq, err
	}
	tq = TimeQuery{TimeRange: r, Limit: pg.Limit, Start: Place{Time: r.From}}
	if q.Has("cursor") {
		if tq.Start, err = DecodeCursor(q.Get("cursor"), r); err != nil {
			return tq, err
		}
	}
	return tq, nil
}

// The cursor of a time-range listing is opaque to clients: base64url
// (unpadded) of 25 bytes, a version (1), the place to resume from (the
// timestamp and the position, 8 bytes each, big-endian), and a tag: the
// first 8 bytes of the SHA-256 of the rest and of the range it belongs to.
// The tag is no secret; it catches a cursor that was changed, truncated or
// handed to another query, which DecodeCursor refuses. A cursor names a
// place, not a message: it stays valid however the store grows.
const (
	cursorVersion = 1
	cursorSize    = 1 + 8 + 8 + 8
	// maxCursorParam bounds the length of a cursor parameter before it is
	// decoded.
	maxCursorParam = 64
)

// EncodeCursor returns the cursor of place p in the listing of r.
func EncodeCursor(r TimeRange, p Place) string {
	b := make([]byte, 0, cursorSize)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Time))
	b = binary.BigEndian.AppendUint64(b, p.Pos)
	tag := cursorTag(b, r)
	return base64.RawURLEncoding.EncodeToString(append(b, tag[:8]...))
}

// cursorTag is the SHA-256 of the cursor's first 17 bytes and of r.
func cursorTag(head []byte, r TimeRange) [32]byte {
	h := sha256.New()
	h.Write(head)
	fmt.Fprintf(h, "|%s|%d|%d|%t", r.Issuer, r.From, r.To, r.Confirmed)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// DecodeCursor returns the place of cursor s, which must be a cursor that
// EncodeCursor gave for r, with a place in r's range; anything else is
// ErrQuery.
func DecodeCursor(s string, r TimeRange) (Place, error) {
	bad := func(why string) (Place, error) {
		return Place{}, fmt.Errorf("%w: cursor %q %s; pass the next_cursor of a page of the same query, unchanged", ErrQuery, truncate(s), why)
	}
	if len(s) > maxCursorParam {
		return bad("is too long")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != cursorSize {
		return bad("is not a cursor")
	}
	if b[0] != cursorVersion {
		return bad("has an unknown version")
	}
	if tag := cursorTag(b[:17], r); string(tag[:8]) != string(b[17:]) {
		return bad("was changed or belongs to another query")
	}
	p := Place{Time: int64(binary.BigEndian.Uint64(b[1:])), Pos: binary.BigEndian.Uint64(b[9:])}
	if p.Time < r.From || p.Time >= r.To {
		return bad("is outside the range")
	}
	return p, nil
}

// TimePage is a page of a time-range listing (GET PathMessages, and GET
// PathIssuers+"/{key}/messages" with a time range): messages in
// (timestamp, position) order. NextCursor, absent at the end of the range,
// continues the listing; a page can hold fewer messages than its limit,
// even none, while there is a NextCursor (confirmed=true skips the
// unconfirmed ones, and a page reads a bounded number).
type TimePage struct {
	Messages   []Message `json:"messages"`
	NextCursor string    `json:"next_cursor,omitempty"`
	History
}

// ExportQuery is the query of GET PathExport: a range (device, from, to,
// confirmed) and a format.
type ExportQuery struct {
	TimeRange
	Format string // FormatNDJSON or FormatCSV
}

// ParseExportQuery reads device (a 64-hex-character key; absent: every
// device), the range (ParseTimeRange) and format (default FormatNDJSON).
func ParseExportQuery(q url.Values) (ExportQuery, error) {
	var eq ExportQuery
	device := q.Get("device")
	if device != "" {
		k, err := ParseKey("device", device)
		if err != nil {
			return eq, fmt.Errorf("%w: %v", ErrQuery, err)
		}
		device = k.String()
	}
	r, err := ParseTimeRange(q, device)
	if err != nil {
		return eq, err
	}
	eq = ExportQuery{TimeRange: r, Format: FormatNDJSON}
	switch f := q.Get("format"); f {
	case "", FormatNDJSON:
	case FormatCSV:
		eq.Format = FormatCSV
	default:
		return eq, fmt.Errorf("%w: format must be %s or %s, got %q", ErrQuery, FormatNDJSON, FormatCSV, truncate(f))
	}
	return eq, nil
}

// ExportRecord is one message of an export, a line of NDJSON or a row of
// CSV (ExportColumns, in that order). ConfirmedAt and ConfirmedAtNs are
// absent (empty in CSV) while the message is unconfirmed.
type ExportRecord struct {
	ID              string `json:"id"`
	Issuer          string `json:"issuer"`
	Seq             uint64 `json:"seq"`
	Timestamp       string `json:"timestamp"` // RFC 3339 with nanoseconds, UTC
	TimestampNs     int64  `json:"timestamp_ns"`
	Position        uint64 `json:"position"`
	Confirmed       bool   `json:"confirmed"`
	ConfirmedAt     string `json:"confirmed_at,omitempty"`
	ConfirmedAtNs   *int64 `json:"confirmed_at_ns,omitempty"`
	PayloadEncoding string `json:"payload_encoding"` // PayloadJSON or PayloadBase64
	// Payload is the JSON itself (PayloadJSON) or a JSON string of base64.
	Payload json.RawMessage `json:"payload"`
}

// ExportColumns is the header row of a CSV export.
var ExportColumns = []string{"id", "issuer", "seq", "timestamp", "timestamp_ns", "position", "confirmed",
	"confirmed_at", "confirmed_at_ns", "payload_encoding", "payload"}
