package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/yourci/yourci/pkg/pipeline"
)

// Metrics counts what a worker does, for /metrics.
type Metrics struct {
	PullsHandled *prometheus.CounterVec
	TestsQueued  prometheus.Counter
	TestsRunning prometheus.Gauge
	TestsRetried prometheus.Counter
	Attempts     *prometheus.CounterVec
	Durations    *prometheus.HistogramVec
	// RepliesHeld counts refusal replies not posted because their
	// author had one on the same pull request within ReplyInterval.
	RepliesHeld prometheus.Counter
	// HandlersEnded counts handlers that ran past their deadline, by kind
	// (pull, command) and result: cancelled (they returned once told to
	// stop) or stuck (they ignored it and their slot was freed).
	HandlersEnded *prometheus.CounterVec
	// InfraErrors counts infrastructure errors by kind (disk, mirror,
	// sandbox): jobs handed back because the box, not the code, failed.
	InfraErrors *prometheus.CounterVec
	// DiskStops counts attempts stopped for disk, by reason (budget or
	// floor).
	DiskStops *prometheus.CounterVec
}

// NewMetrics creates the worker's metrics and registers them on reg, which
// may be nil to keep them unregistered (tests, local runs).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		PullsHandled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yci_pull_events_handled_total",
			Help: "handle_pull deliveries handled, by result (ok or error).",
		}, []string{"result"}),
		TestsQueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yci_tests_queued_total",
			Help: "Tests queued by handle_pull.",
		}),
		TestsRunning: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "yci_tests_running",
			Help: "Test attempts running on this worker now.",
		}),
		TestsRetried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yci_tests_retried_total",
			Help: "Failed attempts queued again for a retry.",
		}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yci_test_attempts_total",
			Help: "Finished test attempts, by outcome (passed, failed, timed out, canceled, errored).",
		}, []string{"outcome"}),
		Durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "yci_test_attempt_duration_seconds",
			Help:    "How long finished test attempts ran, by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.1, 4, 10),
		}, []string{"outcome"}),
		RepliesHeld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yci_command_replies_held_total",
			Help: "Refusal replies to comment commands not posted: their author had one on the same pull request within the reply interval.",
		}),
		HandlersEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yci_handlers_past_deadline_total",
			Help: "Handlers that ran past their deadline, by kind and result (cancelled, or stuck: ignored cancellation).",
		}, []string{"kind", "result"}),
		InfraErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yci_infrastructure_errors_total",
			Help: "Jobs handed back because of an infrastructure error, by kind (disk, mirror, sandbox).",
		}, []string{"kind"}),
		DiskStops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "yci_attempts_stopped_for_disk_total",
			Help: "Test attempts stopped for disk, by reason (budget: wrote past -attempt-disk; floor: wrote most while the disk was below -min-free-disk).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.PullsHandled, m.TestsQueued, m.TestsRunning, m.TestsRetried, m.Attempts, m.Durations, m.HandlersEnded, m.RepliesHeld, m.InfraErrors, m.DiskStops)
	}
	return m
}

func (m *Metrics) pullHandled(err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.PullsHandled.WithLabelValues(result).Inc()
}

func (m *Metrics) attemptDone(r pipeline.Result) {
	outcome := r.Outcome.String()
	m.Attempts.WithLabelValues(outcome).Inc()
	m.Durations.WithLabelValues(outcome).Observe(r.Duration.Seconds())
}

func (m *Metrics) handlerEnded(kind, result string) {
	m.HandlersEnded.WithLabelValues(kind, result).Inc()
}

func (m *Metrics) infraError(kind string) { m.InfraErrors.WithLabelValues(kind).Inc() }
