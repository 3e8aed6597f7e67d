package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// conn is one HTTP/1.1 keep-alive connection used by one goroutine, which
// writes each request and reads its answer itself. Unlike net/http's
// Transport, it starts no goroutine of its own, so the CPU time of all the
// client-side work is on the caller's thread, where the load generator
// measures it (see sender). It is not safe for concurrent use.
type conn struct {
	host string // host:port
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used bool // at least one answer was read on nc
	body []byte
}

func newConn(base string) (*conn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("bench: %s: only http:// node URLs are supported", base)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return &conn{host: host}, nil
}

func (c *conn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.host)
	if err != nil {
		return err
	}
	c.nc, c.used = nc, false
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 64<<10)
		c.bw = bufio.NewWriterSize(nc, 64<<10)
	} else {
		c.br.Reset(nc)
		c.bw.Reset(nc)
	}
	return nil
}

// Close closes the connection.
func (c *conn) Close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// post sends body to path and returns the status and the answer's body,
// which is valid until the next call. A request that fails on a connection
// reused from an earlier request before any answer arrived (the server
// closed it while idle) is sent again once on a new connection.
func (c *conn) post(ctx context.Context, path, contentType string, body []byte) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		if c.nc == nil {
			if err := c.dial(ctx); err != nil {
				return 0, nil, err
			}
		}
		reused := c.used
		nc := c.nc
		stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
		st, b, err := c.roundTrip(path, contentType, body)
		stop()
		if err == nil {
			return st, b, nil
		}
		c.Close()
		if !reused || attempt > 0 || ctx.Err() != nil {
			return 0, nil, err
		}
	}
}

func (c *conn) roundTrip(path, contentType string, body []byte) (int, []byte, error) {
	w := c.bw
	w.WriteString("POST ")
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(c.host)
	w.WriteString("\r\nUser-Agent: weft-bench\r\nContent-Type: ")
	w.WriteString(contentType)
	w.WriteString("\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(body)))
	w.WriteString("\r\n\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, nil, err
	}
	c.used = true
	c.body, err = readInto(c.body[:0], resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, nil, err
	}
	if resp.Close {
		c.Close()
	}
	return resp.StatusCode, c.body, nil
}

// readInto appends what r holds to b.
func readInto(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
