package wire

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/weftnet/weft/dag"
)

// ErrQuery: a query parameter is out of range or not a number. Servers
// answer it with CodeBadRequest.
var ErrQuery = errors.New("wire: bad query parameter")

// ParseSize reads the size parameter of GET /api/v1/tips: a payload size
// 0..dag.MaxPayload; "" is 0.
func ParseSize(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > dag.MaxPayload {
		return 0, fmt.Errorf("%w: size must be 0..%d", ErrQuery, dag.MaxPayload)
	}
	return n, nil
}

// Page is the query of the issuer listing (GET /api/v1/issuers/{key}/messages).
type Page struct {
	// Limit is the most messages to list, 1..MaxPageLimit.
	Limit int
	// AfterSeq, when HasAfter, lists the messages above that sequence
	// number only.
	AfterSeq uint64
	HasAfter bool
}

// ParsePage reads limit (default DefaultPageLimit) and after_seq of q.
func ParsePage(q url.Values) (Page, error) {
	p := Page{Limit: DefaultPageLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageLimit {
			return p, fmt.Errorf("%w: limit must be 1..%d", ErrQuery, MaxPageLimit)
		}
		p.Limit = n
	}
	if v := q.Get("after_seq"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return p, fmt.Errorf("%w: after_seq must be an unsigned integer", ErrQuery)
		}
		p.AfterSeq, p.HasAfter = n, true
	}
	return p, nil
}
