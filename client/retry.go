package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"
)

// Retry says how a Client sends a request again after an answer that may
// pass (429, 503) or a transport error. Every request of the Client may be
// sent again: reads, and submissions, since the same bytes submitted twice
// are one message (the second answer is duplicate, which a retried submit
// reports as success). Zero fields mean the defaults documented on each.
//
// The wait before attempt n+1 is drawn uniformly from 0 up to
// min(MaxDelay, BaseDelay * 2^(n-1)) (exponential backoff with full jitter),
// and is at least what the node asked for with Retry-After. No wait passes
// the call's context or MaxElapsed: a call that would have to wait longer
// returns the last error instead.
type Retry struct {
	// Attempts bounds the attempts of one call, the first included.
	// Default 5; 1 turns retrying off.
	Attempts int
	// MaxElapsed bounds the time of one call, from its first attempt to
	// the start of its last. Default 10 s.
	MaxElapsed time.Duration
	// BaseDelay is the backoff's first bound. Default 100 ms.
	BaseDelay time.Duration
	// MaxDelay caps the backoff's bound (not a Retry-After). Default 2 s.
	MaxDelay time.Duration

	// Sleep waits d or until ctx ends, returning ctx.Err() then. Default:
	// a timer. Tests inject one that records the waits.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the jitter. Default
	// math/rand/v2's Float64.
	Rand func() float64
	// Now is the time, for MaxElapsed and Retry-After dates. Default
	// time.Now.
	Now func() time.Time
}

// Defaults of Retry.
const (
	DefaultRetryAttempts   = 5
	DefaultRetryMaxElapsed = 10 * time.Second
	DefaultRetryBaseDelay  = 100 * time.Millisecond
	DefaultRetryMaxDelay   = 2 * time.Second
)

// WithRetry makes the Client retry as r says (zero fields: defaults).
func WithRetry(r Retry) Option {
	return func(c *Client) { c.retry = r.withDefaults() }
}

func (r Retry) withDefaults() Retry {
	if r.Attempts <= 0 {
		r.Attempts = DefaultRetryAttempts
	}
	if r.MaxElapsed <= 0 {
		r.MaxElapsed = DefaultRetryMaxElapsed
	}
	if r.BaseDelay <= 0 {
		r.BaseDelay = DefaultRetryBaseDelay
	}
	if r.MaxDelay <= 0 {
		r.MaxDelay = DefaultRetryMaxDelay
	}
	if r.Sleep == nil {
		r.Sleep = sleep
	}
	if r.Rand == nil {
		r.Rand = rand.Float64
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	return r
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// delay returns the wait after attempt n (1-based) failed with err: a
// random share of BaseDelay doubled for each attempt before, at most
// MaxDelay, or the node's Retry-After if that is longer.
func (r *Retry) delay(n int, err error) time.Duration {
	bound := r.MaxDelay
	if shift := n - 1; shift < 32 && r.BaseDelay<<shift < r.MaxDelay && r.BaseDelay<<shift > 0 {
		bound = r.BaseDelay << shift
	}
	d := time.Duration(r.Rand() * float64(bound))
	var e *APIError
	if errors.As(err, &e) && e.RetryAfter > d {
		d = e.RetryAfter
	}
	return d
}

// retryable reports whether a call that failed with err may be sent again.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var e *APIError
	if errors.As(err, &e) {
		return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable
	}
	return !errors.Is(err, ErrBadResponse) && !errors.Is(err, errRequest)
}

// wait returns how long to wait after attempt n (1-based) failed with err,
// and false when the call must end instead: no attempt left, or the wait
// would pass MaxElapsed since start.
func (r *Retry) wait(n int, start time.Time, err error) (time.Duration, bool) {
	if n >= r.Attempts {
		return 0, false
	}
	d := r.delay(n, err)
	if r.Now().Add(d).Sub(start) > r.MaxElapsed {
		return 0, false
	}
	return d, true
}
