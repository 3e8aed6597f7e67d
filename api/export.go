package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/weftnet/weft/api/wire"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/node"
)

// exportWriteTimeout drops an export whose client accepts no data for this
// long: one that stopped reading, once the connection's buffers are full.
const exportWriteTimeout = 30 * time.Second

// exportFlush is how many bytes of an export are gathered before they are
// sent.
const exportFlush = 64 << 10

// errClientGone: a write of an export failed; the client left or stalled.
var errClientGone = errors.New("api: the export's client is gone")

// export answers GET /api/v1/export: the messages of a time range, one
// record per message, as NDJSON or CSV, streamed as the node reads them a
// page at a time (node.EachTimeMessage), so that neither the node nor the
// answer holds the selection. A client that disconnects, or accepts nothing
// for exportWriteTimeout, ends it; so does the server's EndStreams. An
// error of the store before the first byte is answered as an error; after
// it, the connection is aborted, so that the client sees a truncated
// answer (no final chunk) rather than a complete-looking one.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	eq, err := wire.ParseExportQuery(r.URL.Query())
	if err != nil {
		writeError(w, wire.CodeBadRequest, err.Error())
		return
	}
	var issuer *dag.PublicKey
	if eq.Issuer != "" {
		k, err := wire.ParseKey("device", eq.Issuer)
		if err != nil {
			writeError(w, wire.CodeBadRequest, err.Error())
			return
		}
		issuer = &k
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.ending:
			cancel()
		case <-ctx.Done():
		}
	}()

	rc := http.NewResponseController(w)
	defer rc.SetWriteDeadline(time.Time{}) // the connection may serve other requests
	enc := newExportEncoder(eq.Format)
	started := false
	start := func() error {
		started = true
		h := w.Header()
		if eq.Format == wire.FormatCSV {
			h.Set("Content-Type", wire.ContentCSV)
		} else {
			h.Set("Content-Type", wire.ContentNDJSON)
		}
		h.Set("Content-Disposition", `attachment; filename="weft-export.`+eq.Format+`"`)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(http.StatusOK)
		return enc.header()
	}
	flush := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(exportWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return errClientGone
		}
		if _, err := w.Write(enc.buf.Bytes()); err != nil {
			return errClientGone
		}
		enc.buf.Reset()
		if rc.Flush() != nil {
			return errClientGone
		}
		return nil
	}
	if r.Method == http.MethodHead { // the headers only: no need to read the range
		start()
		return
	}
	count := 0
	err = s.node.EachTimeMessage(ctx, nodeRange(eq.TimeRange, issuer), func(mi *node.MessageInfo) error {
		if !started {
			if err := start(); err != nil {
				return err
			}
		}
		if err := enc.add(mi); err != nil {
			return err
		}
		count++
		if enc.buf.Len() >= exportFlush {
			return flush()
		}
		return nil
	})
	switch {
	case err == nil:
		if !started {
			err = start()
		}
		if err == nil {
			err = flush()
		}
		if err == nil {
			return
		}
	case !started && ctx.Err() == nil:
		fail(w, err)
		return
	}
	if errors.Is(err, errClientGone) || ctx.Err() != nil {
		s.log.Debug().Int("messages", count).Msg("export ended by its client or the server's shutdown")
	} else {
		s.log.Error().Err(err).Int("messages", count).Msg("export failed; aborting the answer")
	}
	panic(http.ErrAbortHandler) // no final chunk: the client sees the answer is incomplete
}

// exportEncoder writes export records into buf.
type exportEncoder struct {
	format string
	buf    bytes.Buffer
	csv    *csv.Writer
	pay    bytes.Buffer // the payload of the record being written
	b      []byte       // scratch
}

func newExportEncoder(format string) *exportEncoder {
	e := &exportEncoder{format: format}
	if format == wire.FormatCSV {
		e.csv = csv.NewWriter(&e.buf)
	}
	return e
}

// header writes what comes before the first record: CSV's header row.
func (e *exportEncoder) header() error {
	if e.csv == nil {
		return nil
	}
	e.csv.Write(wire.ExportColumns)
	e.csv.Flush()
	return e.csv.Error()
}

// add writes mi's record: a line of JSON with the fields of
// wire.ExportRecord in its order, or a CSV row of wire.ExportColumns.
func (e *exportEncoder) add(mi *node.MessageInfo) error {
	m := mi.Msg
	encoding := wire.PayloadText(&e.pay, m.Payload)
	if e.csv != nil {
		at, atNs := "", ""
		if mi.Confirmed {
			at, atNs = wire.FormatTime(mi.ConfirmedAt), strconv.FormatInt(mi.ConfirmedAt, 10)
		}
		row := []string{mi.ID.String(), m.Issuer.String(), strconv.FormatUint(m.Seq, 10), wire.FormatTime(m.Timestamp),
			strconv.FormatInt(m.Timestamp, 10), strconv.FormatUint(mi.Pos, 10), strconv.FormatBool(mi.Confirmed), at, atNs,
			encoding, e.pay.String()}
		if err := e.csv.Write(row); err != nil {
			return fmt.Errorf("api: export: %w", err)
		}
		e.csv.Flush()
		return e.csv.Error()
	}
	// Every string but the payload is hex, digits, RFC 3339 or base64:
	// nothing to escape.
	b := append(e.b[:0], `{"id":"`...)
	b = hex.AppendEncode(b, mi.ID[:])
	b = append(b, `","issuer":"`...)
	b = hex.AppendEncode(b, m.Issuer[:])
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, m.Seq, 10)
	b = append(b, `,"timestamp":"`...)
	b = appendTime(b, m.Timestamp)
	b = append(b, `","timestamp_ns":`...)
	b = strconv.AppendInt(b, m.Timestamp, 10)
	b = append(b, `,"position":`...)
	b = strconv.AppendUint(b, mi.Pos, 10)
	b = append(b, `,"confirmed":`...)
	b = strconv.AppendBool(b, mi.Confirmed)
	if mi.Confirmed {
		b = append(b, `,"confirmed_at":"`...)
		b = appendTime(b, mi.ConfirmedAt)
		b = append(b, `","confirmed_at_ns":`...)
		b = strconv.AppendInt(b, mi.ConfirmedAt, 10)
	}
	b = append(b, `,"payload_encoding":"`...)
	b = append(b, encoding...)
	b = append(b, `","payload":`...)
	if encoding == wire.PayloadBase64 {
		b = append(b, '"')
		b = append(b, e.pay.Bytes()...)
		b = append(b, '"')
	} else {
		b = append(b, e.pay.Bytes()...)
	}
	b = append(b, "}\n"...)
	e.b = b
	_, err := e.buf.Write(b)
	return err
}

// appendTime appends Unix nanoseconds as wire.FormatTime writes them.
func appendTime(b []byte, ns int64) []byte {
	return time.Unix(0, ns).UTC().AppendFormat(b, time.RFC3339Nano)
}
