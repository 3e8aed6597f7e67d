package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/weftnet/weft/dag"
)

// Bounds of one event stream's filters: the issuers and the tags it
// names, and the sampling.
const (
	MaxFeedIssuers = 256
	MaxFeedTags    = 16
	MaxFeedSample  = 1 << 16
)

// Feed is the query of the event stream (GET /api/v1/events).
type Feed struct {
	// Messages, Confirmed and Rules say which kinds of events to send:
	// "message", "confirmed" and "rule". The first two, unless kind names
	// some.
	Messages, Confirmed, Rules bool
	// Issuers, when not empty, are the only issuers whose events to send.
	Issuers []dag.PublicKey
	// Tags, when not empty: only the events of devices the node's registry
	// gives one of these tags (checked by the server, which knows the tags).
	Tags []string
	// Payload: confirmed events carry the message's payload.
	Payload bool
	// Sample, above 1, keeps the events of one device message in Sample,
	// chosen by its ID (Sampled), and every validator's: a lossy feed,
	// for a view of a busy node (the dashboard's). 0 and 1 keep all.
	Sample uint32
	// Resume: send first every confirmed event from the one with id From
	// on, from the node's store: from=N, or since=N and the Last-Event-ID
	// header N, which name the last event a client processed (From N+1).
	Resume bool
	From   uint64
}

// Match reports whether the feed takes an event of issuer.
func (f *Feed) Match(issuer dag.PublicKey) bool {
	if len(f.Issuers) == 0 {
		return true
	}
	for _, k := range f.Issuers {
		if k == issuer {
			return true
		}
	}
	return false
}

// Sampled reports whether a sampled feed keeps the events of message id:
// its ID's first 8 bytes, a big-endian number, are a multiple of Sample.
// The same messages on every stream of one Sample, for message and
// confirmed events alike.
func (f *Feed) Sampled(id dag.ID) bool {
	return f.Sample <= 1 || binary.BigEndian.Uint64(id[:8])%uint64(f.Sample) == 0
}

// ParseFeed reads kind, issuer, tag, payload, sample, since and from of q, and
// lastEventID, the Last-Event-ID header a reconnecting client sends, which
// takes precedence over since, which takes precedence over from. kind, issuer and tag may repeat or hold
// comma-separated lists.
func ParseFeed(q url.Values, lastEventID string) (Feed, error) {
	var f Feed
	kinds := list(q["kind"])
	for _, k := range kinds {
		switch k {
		case EventMessage:
			f.Messages = true
		case EventConfirmed:
			f.Confirmed = true
		case EventRule:
			f.Rules = true
		default:
			return f, fmt.Errorf("%w: kind %q: want %s, %s or %s", ErrQuery, k, EventMessage, EventConfirmed, EventRule)
		}
	}
	if len(kinds) == 0 {
		f.Messages, f.Confirmed = true, true
	}
	issuers := list(q["issuer"])
	if len(issuers) > MaxFeedIssuers {
		return f, fmt.Errorf("%w: %d issuers, at most %d", ErrQuery, len(issuers), MaxFeedIssuers)
	}
	for _, s := range issuers {
		k, err := ParseKey("issuer", s)
		if err != nil {
			return f, fmt.Errorf("%w: %v", ErrQuery, err)
		}
		f.Issuers = append(f.Issuers, k)
	}
	f.Tags = list(q["tag"])
	if len(f.Tags) > MaxFeedTags {
		return f, fmt.Errorf("%w: %d tags, at most %d", ErrQuery, len(f.Tags), MaxFeedTags)
	}
	if v := q.Get("payload"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, fmt.Errorf("%w: payload must be true or false", ErrQuery)
		}
		f.Payload = b
	}
	if v := q.Get("sample"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n < 1 || n > MaxFeedSample {
			return f, fmt.Errorf("%w: sample must be an integer from 1 to %d", ErrQuery, MaxFeedSample)
		}
		f.Sample = uint32(n)
	}
	since, name := q.Get("since"), "since"
	if lastEventID != "" {
		since, name = lastEventID, "Last-Event-ID"
	}
	if since != "" {
		n, err := strconv.ParseUint(since, 10, 64)
		if err != nil || n == math.MaxUint64 {
			return f, fmt.Errorf("%w: %s must be an event id, an unsigned integer", ErrQuery, name)
		}
		f.Resume, f.From = true, n+1
	} else if v := q.Get("from"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return f, fmt.Errorf("%w: from must be an event id, an unsigned integer", ErrQuery)
		}
		f.Resume, f.From = true, n
	}
	return f, nil
}

// list splits comma-separated values and drops empty ones.
func list(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}
