package reconcile

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// lastSuccessMetric is the metric to alert on: when a sweep last finished
// with nothing failed.
const lastSuccessMetric = "yci_reconcile_last_success_timestamp_seconds"

// WriteMetrics writes the summary as Prometheus metrics to path, for
// node_exporter's textfile collector: a cron job has no /metrics endpoint
// of its own to be scraped. The file is replaced atomically. sweepErr is
// what the sweep returned: when it is not nil, success is 0, at least one
// repository counts as failed (a sweep that could not list its
// repositories reached none of them), and the last-success timestamp keeps
// the value the previous file had.
func (s Summary) WriteMetrics(path string, sweepErr error) error {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "yci_reconcile_" + name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	gauge("last_run_timestamp_seconds", "When the last sweep finished.", float64(s.Finished.Unix()))
	gauge("duration_seconds", "How long the last sweep took.", s.Finished.Sub(s.Started).Seconds())
	gauge("repositories_swept", "Repositories the last sweep swept to the end.", float64(s.Repositories))
	failed := len(s.Failed) + len(s.NotReached)
	if sweepErr != nil {
		failed = max(failed, 1)
	}
	gauge("repositories_failed", "Repositories the last sweep could not sweep or did not reach.", float64(failed))
	gauge("pulls_seen", "Open pull requests the last sweep saw.", float64(s.Pulls))
	gauge("builds_queued", "Head commits the last sweep queued for their first build.", float64(s.Queued))
	gauge("builds_rebuilt", "Head commits left pending with no job that the last sweep queued again.", float64(s.Rebuilt))
	gauge("statuses_errored", "Head commits whose pending statuses the last sweep set to error.", float64(s.Errored))
	gauge("parts_reshown", "Tests and summaries GitHub showed otherwise than their build records, which the last sweep had the projector write again.", float64(s.Reshown))
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
	success, lastSuccess := 0.0, previousValue(path, lastSuccessMetric)
	if sweepErr == nil {
		success, lastSuccess = 1, float64(s.Finished.Unix())
	}
	gauge("success", "1 when the last sweep swept every repository.", success)
	if lastSuccess > 0 {
		gauge("last_success_timestamp_seconds", "When a sweep last swept every repository.", lastSuccess)
	}
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		return fmt.Errorf("writing sweep metrics to %s: %w", path, err)
	}
	return nil
}

// previousValue is the value of metric in the file at path, or 0 when the
// file or the metric is missing or unreadable: the first run has no
// history.
func previousValue(path, metric string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, metric+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return 0
}
