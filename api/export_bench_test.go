package api

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/weftnet/weft/client"
	"github.com/weftnet/weft/dag"
	"github.com/weftnet/weft/internal/storegen"
)

// benchPayload is a reading as a device might send it, about 100 bytes.
func benchPayload(i int) []byte {
	return []byte(`{"device":"fridge-` + strconv.Itoa(i%100) + `","temp_c":` + strconv.Itoa(i%90) + `.5,"door":"closed","battery_mv":3012}`)
}

// BenchmarkExport measures GET /api/v1/export of a 200,000-message range
// from an in-process node over loopback HTTP, read by the Go client into
// io.Discard: msgs/s is messages exported per second of the whole request.
func BenchmarkExport(b *testing.B) {
	const n = 200_000
	var devices [50]dag.PublicKey
	for i := range devices {
		devices[i] = pubOf(key(byte(10 + i)))
	}
	_, _, c := ledgerServerWrapped(b, n, func(i int) storegen.Message {
		return storegen.Message{Issuer: devices[i%len(devices)], Timestamp: exportBase + int64(i)*1e6, Payload: benchPayload(i)}
	}, nil)
	b.ResetTimer()
	for _, format := range []string{client.FormatNDJSON, client.FormatCSV} {
		b.Run(fmt.Sprintf("format=%s", format), func(b *testing.B) {
			var bytes int64
			start := time.Now()
			for range b.N {
				m, err := c.Export(context.Background(), client.TimeRange{From: time.Unix(0, exportBase)}, format, io.Discard)
				if err != nil {
					b.Fatal(err)
				}
				bytes = m
			}
			el := time.Since(start)
			b.ReportMetric(float64(n*b.N)/el.Seconds(), "msgs/s")
			b.ReportMetric(float64(bytes)/n, "bytes/msg")
		})
	}
}
