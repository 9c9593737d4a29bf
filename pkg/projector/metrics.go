package projector

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts what a projector does, for /metrics: which box writes
// GitHub now, and how its writes fare.
type Metrics struct {
	// Leading is 1 while this projector holds the lease.
	Leading prometheus.Gauge
	// Writes counts the states GitHub took; Failures the writes that
	// failed and wait for a retry from the latest record.
	Writes, Failures prometheus.Counter
}

// NewMetrics creates a projector's metrics and registers them on reg,
// which may be nil to keep them unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Leading: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "yci_projector_leading",
			Help: "1 while this worker's projector holds the lease and writes GitHub from the build records.",
		}),
		Writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yci_projector_writes_total",
			Help: "Test and summary states GitHub took from this worker's projector.",
		}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "yci_projector_write_failures_total",
			Help: "Writes to GitHub that failed and wait for a retry from the build's latest record.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.Leading, m.Writes, m.Failures)
	}
	return m
}
