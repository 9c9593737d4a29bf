package reconcile

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// WriteMetrics writes the summary as Prometheus metrics to path, for
// node_exporter's textfile collector: a cron job has no /metrics endpoint
// of its own to be scraped. The file is replaced atomically.
func (s Summary) WriteMetrics(path string) error {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "yci_reconcile_" + name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	gauge("last_run_timestamp_seconds", "When the last sweep finished.", float64(s.Finished.Unix()))
	gauge("duration_seconds", "How long the last sweep took.", s.Finished.Sub(s.Started).Seconds())
	gauge("repositories_swept", "Repositories the last sweep swept to the end.", float64(s.Repositories))
	gauge("repositories_failed", "Repositories the last sweep could not sweep or did not reach.", float64(len(s.Failed)+len(s.NotReached)))
	gauge("pulls_seen", "Open pull requests the last sweep saw.", float64(s.Pulls))
	gauge("builds_queued", "Head commits the last sweep queued for their first build.", float64(s.Queued))
	gauge("builds_rebuilt", "Head commits left pending with no job that the last sweep queued again.", float64(s.Rebuilt))
	gauge("statuses_errored", "Head commits whose pending statuses the last sweep set to error.", float64(s.Errored))
	gauge("github_requests", "GitHub requests the last sweep sent.", float64(s.Requests.Total))
	gauge("github_requests_counted", "GitHub requests of the last sweep counted against the rate limit (not 304).", float64(s.Requests.Total-s.Requests.NotModified))
	if s.Requests.RateKnown {
		gauge("github_rate_remaining", "Requests left in GitHub's rate limit after the last sweep.", float64(s.Requests.RateRemaining))
	}
	stopped := 0.0
	if s.Stopped != nil {
		stopped = 1
	}
	gauge("rate_limited", "1 when the last sweep stopped at GitHub's rate limit.", stopped)
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("writing sweep metrics to %s: %w", path, err)
	}
	return nil
}
