package node

import (
	"maps"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/weftnet/weft/rules"
	"github.com/weftnet/weft/storage"
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
	checkpoints    *prometheus.CounterVec

	// rejectedBy is rejected's counts, for Info (codes are a small fixed
	// set).
	rejectedMu sync.Mutex
	rejectedBy map[string]uint64
}

// reject counts a message refused with code.
func (m *metrics) reject(code string) {
	m.rejected.WithLabelValues(code).Inc()
	m.rejectedMu.Lock()
	if m.rejectedBy == nil {
		m.rejectedBy = map[string]uint64{}
	}
	m.rejectedBy[code]++
	m.rejectedMu.Unlock()
}

// rejectedCounts returns a copy of the counts of refused messages by code.
func (m *metrics) rejectedCounts() map[string]uint64 {
	m.rejectedMu.Lock()
	defer m.rejectedMu.Unlock()
	return maps.Clone(m.rejectedBy)
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
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weft_checkpoints_total",
			Help: "Validators' checkpoints that became durable here, by what became of them: kept for proofs, unmatched (leaves not rebuilt here), dropped (the keeper's queue was full), unstored (the state did not commit), pruned (past proof retention).",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.in, m.rejected, m.stored, m.confirmed, m.confirmLatency, m.commitLatency,
		m.commitBatch, m.tips, m.unconfirmed, m.pending, m.inflight, m.equivocations, m.ownMessages,
		m.checkpoints,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registerStore exposes the store's health: whether it fails to commit
// now, and how many commit attempts failed since it opened.
func (m *metrics) registerStore(s *storage.Store) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_storage_failing",
			Help: "1 while the store cannot commit (a full disk, an I/O error) and the node takes no messages."},
			func() float64 {
				if s.Failing() != nil {
					return 1
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_storage_commit_failures_total",
			Help: "Commit attempts of the store that failed (each is retried)."},
			func() float64 { return float64(s.Stats().Failures) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_storage_retention_failing",
			Help: "1 while the store's cuts or drops of epochs fail (retried every second; writes go on)."},
			func() float64 {
				if s.RetentionFailing() != nil {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_storage_epochs",
			Help: "Epochs (files) the store holds."},
			func() float64 { return float64(s.Stats().Epochs) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_storage_disk_bytes",
			Help: "Bytes the store's files take on the file system (blocks allocated)."},
			func() float64 { return float64(s.DiskUsage()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_storage_first_position",
			Help: "First position the store holds: 0 until retention dropped an epoch."},
			func() float64 { return float64(s.FirstPos()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_storage_drops_total",
			Help: "Drops of epochs by retention since the node started."},
			func() float64 { return float64(s.Stats().Drops) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_storage_dropped_messages_total",
			Help: "Messages dropped by retention since the node started."},
			func() float64 { return float64(s.Stats().Dropped) }),
	)
}

// registerHub exposes the event subscriptions: how many are open, how
// many were refused for the bound, and how many were cut for falling
// behind.
func (m *metrics) registerHub(h *hub) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "weft_event_subscribers",
			Help: "Open event subscriptions (GET /api/v1/events streams)."},
			func() float64 { return float64(h.subscribers()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_event_subscribers_refused_total",
			Help: "Event subscriptions refused because the most the node serves were open."},
			func() float64 { return float64(h.refused.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "weft_event_subscribers_behind_total",
			Help: "Event subscriptions cut for falling further behind than the node keeps events."},
			func() float64 { return float64(h.behind.Load()) }),
	)
}

// registerRules exposes the rules' figures, per rule.
func (m *metrics) registerRules(e *rules.Engine) { m.reg.MustRegister(&ruleCollector{e: e}) }

// ruleCollector exposes the rules engine's figures, per rule.
type ruleCollector struct{ e *rules.Engine }

var (
	ruleLabels     = []string{"rule"}
	ruleMatches    = prometheus.NewDesc("weft_rule_matches_total", "Confirmed messages a rule's condition held on, since the node started.", ruleLabels, nil)
	ruleEvalErrors = prometheus.NewDesc("weft_rule_eval_errors_total", "Confirmed messages a rule's condition failed on (skipped), since the node started.", ruleLabels, nil)
	ruleDelivered  = prometheus.NewDesc("weft_rule_delivered_total", "A rule's matches delivered, since the node started.", ruleLabels, nil)
	ruleFailed     = prometheus.NewDesc("weft_rule_delivery_failures_total", "A rule's failed delivery attempts, since the node started.", ruleLabels, nil)
	rulePending    = prometheus.NewDesc("weft_rule_outbox_matches", "A rule's matches waiting for delivery.", ruleLabels, nil)
	ruleDead       = prometheus.NewDesc("weft_rule_dead_letters", "A rule's dead letters in the store.", ruleLabels, nil)
	ruleCursor     = prometheus.NewDesc("weft_rule_cursor", "The next confirmation a rule evaluates.", ruleLabels, nil)
)

func (c *ruleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{ruleMatches, ruleEvalErrors, ruleDelivered, ruleFailed, rulePending, ruleDead, ruleCursor} {
		ch <- d
	}
}

func (c *ruleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.e.Stats() {
		ch <- prometheus.MustNewConstMetric(ruleMatches, prometheus.CounterValue, float64(s.Matches), s.Name)
		ch <- prometheus.MustNewConstMetric(ruleEvalErrors, prometheus.CounterValue, float64(s.EvalErrors), s.Name)
		ch <- prometheus.MustNewConstMetric(ruleDelivered, prometheus.CounterValue, float64(s.Delivered), s.Name)
		ch <- prometheus.MustNewConstMetric(ruleFailed, prometheus.CounterValue, float64(s.FailedAttempts), s.Name)
		ch <- prometheus.MustNewConstMetric(rulePending, prometheus.GaugeValue, float64(s.Pending), s.Name)
		ch <- prometheus.MustNewConstMetric(ruleDead, prometheus.GaugeValue, float64(s.DeadLetters), s.Name)
		ch <- prometheus.MustNewConstMetric(ruleCursor, prometheus.GaugeValue, float64(s.Cursor), s.Name)
	}
}

// peerCollector exposes per-peer counters from the transport.
type peerCollector struct {
	n                                  *Node
	in, out, invalid, dropped, rtt, up *prometheus.Desc
}

func newPeerCollector(n *Node) *peerCollector {
	l := []string{"peer"}
	return &peerCollector{n: n,
		in:      prometheus.NewDesc("weft_peer_messages_in_total", "Messages received from a peer.", l, nil),
		out:     prometheus.NewDesc("weft_peer_messages_out_total", "Messages sent to a peer.", l, nil),
		invalid: prometheus.NewDesc("weft_peer_invalid_total", "Invalid messages a peer sent.", l, nil),
		dropped: prometheus.NewDesc("weft_peer_dropped_messages_total", "Messages dropped because a peer's queue was full.", l, nil),
		rtt:     prometheus.NewDesc("weft_peer_rtt_seconds", "Round-trip time to a peer.", l, nil),
		up:      prometheus.NewDesc("weft_peer_connected", "1 if connected to a peer.", l, nil),
	}
}

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.in, c.out, c.invalid, c.dropped, c.rtt, c.up} {
		ch <- d
	}
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.n.Peers() {
		k := p.Key.String()[:16]
		up := 0.0
		if p.Connected {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.in, prometheus.CounterValue, float64(p.MessagesIn), k)
		ch <- prometheus.MustNewConstMetric(c.out, prometheus.CounterValue, float64(p.MessagesOut), k)
		ch <- prometheus.MustNewConstMetric(c.invalid, prometheus.CounterValue, float64(p.Invalid), k)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(p.DroppedMessages), k)
		ch <- prometheus.MustNewConstMetric(c.rtt, prometheus.GaugeValue, p.RTT.Seconds(), k)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up, k)
	}
}
