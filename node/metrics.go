package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the node's Prometheus metrics, on a registry of its own so
// that several nodes can live in one process (tests, devnet).
type metrics struct {
	reg            *prometheus.Registry
	in             *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	stored         prometheus.Counter
	confirmed      prometheus.Counter
	confirmLatency prometheus.Histogram
	commitLatency  prometheus.Histogram
	commitBatch    prometheus.Histogram
	tips           prometheus.Gauge
	unconfirmed    prometheus.Gauge
	pending        prometheus.Gauge
	equivocations  prometheus.Counter
	inflight       prometheus.Gauge
	ownMessages    prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		in: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_messages_in_total", Help: "Messages received, by source.",
		}, []string{"source"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_messages_rejected_total", Help: "Messages refused, by reason code.",
		}, []string{"code"}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_messages_stored_total", Help: "Messages made durable.",
		}),
		confirmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_messages_confirmed_total", Help: "Messages confirmed.",
		}),
		confirmLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weft_confirmation_latency_seconds", Help: "From becoming solid here to confirmed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weft_store_commit_seconds", Help: "From submitting a write to the store to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "weft_store_write_messages", Help: "Messages per write handed to the store.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}),
		tips:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_tips", Help: "Tips in the pool."}),
		unconfirmed:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_unconfirmed", Help: "Solid messages not yet confirmed."}),
		pending:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_pending", Help: "Messages waiting for parents."}),
		inflight:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "weft_inflight", Help: "Messages submitted and not yet answered."}),
		equivocations: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_equivocations_total", Help: "Equivocations seen."}),
		ownMessages:   prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_own_messages_total", Help: "Messages this node issued as a validator."}),
	}
	m.reg.MustRegister(m.in, m.rejected, m.stored, m.confirmed, m.confirmLatency, m.commitLatency,
		m.commitBatch, m.tips, m.unconfirmed, m.pending, m.inflight, m.equivocations, m.ownMessages,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
