package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrapeMetrics reads what a Prometheus registry serves, with
// labelled metrics of the same names beside the unlabelled ones.
func TestScrapeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	for name, v := range map[string]float64{"process_cpu_seconds_total": 1.5, "weft_messages_confirmed_total": 300, "weft_own_messages_total": 12} {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: "h"})
		c.Add(v)
		reg.MustRegister(c)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "process_resident_memory_bytes", Help: "h"})
	g.Set(4096)
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "weft_messages_in_total", Help: "h"}, []string{"source"})
	other.WithLabelValues("api").Add(7)
	reg.MustRegister(g, other)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	m, err := scrapeMetrics(context.Background(), http.DefaultClient, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m != (nodeMetrics{cpuSeconds: 1.5, rssBytes: 4096, confirmed: 300, own: 12}) || m.confirmedOthers() != 288 {
		t.Fatalf("%+v", m)
	}

	empty := httptest.NewServer(promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{}))
	defer empty.Close()
	if _, err := scrapeMetrics(context.Background(), http.DefaultClient, empty.URL); err == nil {
		t.Fatal("no metrics, no error")
	}
}
