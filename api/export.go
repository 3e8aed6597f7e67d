package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
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
	json   *json.Encoder
	csv    *csv.Writer
	rec    wire.ExportRecord
	atNs   int64
	pay    bytes.Buffer
}

func newExportEncoder(format string) *exportEncoder {
	e := &exportEncoder{format: format}
	if format == wire.FormatCSV {
		e.csv = csv.NewWriter(&e.buf)
	} else {
		e.json = json.NewEncoder(&e.buf)
		e.json.SetEscapeHTML(false)
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

// add writes mi's record.
func (e *exportEncoder) add(mi *node.MessageInfo) error {
	m := mi.Msg
	e.rec = wire.ExportRecord{
		ID: m.ID().String(), Issuer: m.Issuer.String(), Seq: m.Seq,
		Timestamp: wire.FormatTime(m.Timestamp), TimestampNs: m.Timestamp, Position: mi.Pos, Confirmed: mi.Confirmed,
	}
	if mi.Confirmed {
		e.atNs = mi.ConfirmedAt
		e.rec.ConfirmedAt, e.rec.ConfirmedAtNs = wire.FormatTime(mi.ConfirmedAt), &e.atNs
	}
	e.pay.Reset()
	if json.Valid(m.Payload) && json.Compact(&e.pay, m.Payload) == nil {
		e.rec.PayloadEncoding = wire.PayloadJSON
	} else {
		e.rec.PayloadEncoding = wire.PayloadBase64
		e.pay.WriteByte('"')
		e.pay.WriteString(base64.StdEncoding.EncodeToString(m.Payload))
		e.pay.WriteByte('"')
	}
	if e.csv == nil {
		e.rec.Payload = e.pay.Bytes()
		return e.json.Encode(&e.rec)
	}
	r := &e.rec
	payload := e.pay.Bytes()
	if r.PayloadEncoding == wire.PayloadBase64 {
		payload = payload[1 : len(payload)-1] // the base64, unquoted
	}
	confirmedAtNs := ""
	if r.ConfirmedAtNs != nil {
		confirmedAtNs = strconv.FormatInt(*r.ConfirmedAtNs, 10)
	}
	row := []string{r.ID, r.Issuer, strconv.FormatUint(r.Seq, 10), r.Timestamp, strconv.FormatInt(r.TimestampNs, 10),
		strconv.FormatUint(r.Position, 10), strconv.FormatBool(r.Confirmed), r.ConfirmedAt, confirmedAtNs,
		r.PayloadEncoding, string(payload)}
	if err := e.csv.Write(row); err != nil {
		return fmt.Errorf("api: export: %w", err)
	}
	e.csv.Flush()
	return e.csv.Error()
}
