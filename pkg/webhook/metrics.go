package webhook

import (
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts deliveries for Prometheus. A nil *Metrics records nothing,
// so a handler built without one needs no checks. Safe for concurrent use.
type Metrics struct {
	received  prometheus.Counter
	refused   *prometheus.CounterVec
	published prometheus.Counter
	ignored   prometheus.Counter
	duration  *prometheus.HistogramVec
}

// NewMetrics creates the delivery metrics and registers them on reg. It
// fails when reg already holds metrics of the same names (one Metrics per
// registry).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "yci", Subsystem: "webhook", Name: "deliveries_received_total",
			Help: "Webhook deliveries received, before any check.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "yci", Subsystem: "webhook", Name: "deliveries_refused_total",
			Help: "Webhook deliveries answered with an error, by reason.",
		}, []string{"reason"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "yci", Subsystem: "webhook", Name: "deliveries_published_total",
			Help: "Pull request events published and acknowledged by JetStream.",
		}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "yci", Subsystem: "webhook", Name: "deliveries_ignored_total",
			Help: "Authentic deliveries that ask for no build (other actions and events, pings).",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "yci", Subsystem: "webhook", Name: "delivery_duration_seconds",
			Help:    "Time from receiving a delivery to answering it, by HTTP status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"code"}),
	}
	for _, c := range []prometheus.Collector{m.received, m.refused, m.published, m.ignored, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering webhook metrics: %w", err)
		}
	}
	// Pre-create every refusal series so dashboards see zeros, not gaps.
	for _, r := range []string{reasonUnauthorized, reasonTooLarge, reasonBadRequest, reasonMethod, reasonUnavailable, reasonInternal, reasonBusy, reasonSlowBody} {
		m.refused.WithLabelValues(r)
	}
	return m, nil
}

// receive counts a delivery as it arrives.
func (m *Metrics) receive() {
	if m == nil {
		return
	}
	m.received.Inc()
}

// observe records how a delivery was answered.
func (m *Metrics) observe(outcome, reason string, code int, took time.Duration) {
	if m == nil {
		return
	}
	switch {
	case reason != "":
		m.refused.WithLabelValues(reason).Inc()
	case outcome == outcomePublished:
		m.published.Inc()
	case outcome == outcomeIgnored || outcome == outcomePong:
		m.ignored.Inc()
	}
	m.duration.WithLabelValues(strconv.Itoa(code)).Observe(took.Seconds())
}
