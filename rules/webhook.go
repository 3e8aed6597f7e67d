package rules

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// A Deliverer carries a rule's matches out of the node: a webhook, and the
// kinds of Config.Kinds (MQTT publish, say). The engine calls Deliver for
// one match of a rule at a time, in confirmation order, and again for the
// same match after an error, with backoff, until it succeeds or the match
// is dead-lettered. Deliver must return when ctx is done.
type Deliverer interface {
	Deliver(ctx context.Context, d *Delivery) error
}

// Delivery is one attempt to deliver a match.
type Delivery struct {
	Rule         string
	ID           string // the delivery id, "RULE:CONFIRMATION"
	Confirmation uint64
	Body         []byte // the match document, JSON (DecodeMatch parses it)
	Attempt      int    // 1 for the first attempt since the engine started
}

// The headers of a webhook request.
const (
	HeaderRule      = "X-Weft-Rule"
	HeaderDelivery  = "X-Weft-Delivery"
	HeaderTimestamp = "X-Weft-Timestamp"
	HeaderSignature = "X-Weft-Signature"
)

// Sign returns the X-Weft-Signature of a webhook body sent at timestamp (the
// X-Weft-Timestamp header, decimal Unix seconds): "sha256=" and the lower-case
// hex of HMAC-SHA256(secret, timestamp + "." + body).
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// ErrSignature is what Verify returns for a request it refuses.
var ErrSignature = errors.New("rules: bad webhook signature")

// Verify checks a webhook request's signature and timestamp as a receiver
// written in Go would: the signature must be Sign's, compared in constant
// time, and the timestamp within tolerance of now, so that a recorded
// request cannot be replayed later.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %.40q", ErrSignature, timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp %d is %s from now", ErrSignature, ts, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return fmt.Errorf("%w: signature does not match", ErrSignature)
	}
	return nil
}

// webhook posts matches to a URL.
type webhook struct {
	url    string
	secret []byte
	client *http.Client
	now    func() time.Time
}

// maxErrorBody bounds what is read of a refusal's body for the error.
const maxErrorBody = 256

// Deliver posts the match; a response other than 2xx is an error.
func (w *webhook) Deliver(ctx context.Context, d *Delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(d.Body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(w.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "weft-rules")
	req.Header.Set(HeaderRule, d.Rule)
	req.Header.Set(HeaderDelivery, d.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(w.secret, ts, d.Body))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: %s: %q", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// newHTTPClient returns the client of webhooks: a request timeout, and no
// redirects followed (a 3xx is a failure, never a POST elsewhere).
func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
