package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/yourci/yourci/pkg/envflag"
	"github.com/yourci/yourci/pkg/worker"
)

// DiskOptions bound what tests write to the workspace's disk.
type DiskOptions struct {
	// AttemptDisk is how many bytes an attempt may add to its working
	// copy (and, per 4 KiB of it, one file or directory); 0 means no
	// budget.
	AttemptDisk int64
	// MinFreeDisk is the workspace filesystem's free-space floor in
	// bytes; 0 means the larger of 2 GiB and 5% of the filesystem, -1 no
	// floor.
	MinFreeDisk int64
}

func (o *DiskOptions) addFlags(fs *envflag.Set) {
	fs.Int64Var(&o.AttemptDisk, "attempt-disk", worker.DefaultAttemptDisk, "`BYTES` a test attempt may write into its working copy (one file or directory counts 4 KiB) before it is stopped; 0 means no limit")
	fs.Env("attempt-disk", "YCI_ATTEMPT_DISK")
	fs.Int64Var(&o.MinFreeDisk, "min-free-disk", 0, "free `BYTES` kept on the workspace's filesystem: below it no attempt starts and the one that wrote most is stopped; 0 means the larger of 2 GiB and 5%, -1 no floor")
	fs.Env("min-free-disk", "YCI_MIN_FREE_DISK")
}

// validate reports every problem at once.
func (o DiskOptions) validate() []error {
	var errs []error
	if o.AttemptDisk < 0 {
		errs = append(errs, fmt.Errorf("-attempt-disk %d is negative", o.AttemptDisk))
	}
	if o.MinFreeDisk < -1 {
		errs = append(errs, fmt.Errorf("-min-free-disk must be -1 (no floor), 0 (the default) or a number of bytes, not %d", o.MinFreeDisk))
	}
	return errs
}

// guard is the DiskGuard of the workspace at root.
func (o DiskOptions) guard(root string) *worker.DiskGuard {
	return &worker.DiskGuard{Root: root, Budget: o.AttemptDisk, MinFree: o.MinFreeDisk}
}

// diskCollector reports the workspace filesystem's free space and its
// floor at each scrape.
type diskCollector struct {
	guard       *worker.DiskGuard
	log         *slog.Logger
	free, floor *prometheus.Desc
}

func newDiskCollector(g *worker.DiskGuard, log *slog.Logger) *diskCollector {
	return &diskCollector{
		guard: g, log: log,
		free:  prometheus.NewDesc("yci_workspace_free_bytes", "Free bytes on the workspace's filesystem.", nil, nil),
		floor: prometheus.NewDesc("yci_workspace_min_free_bytes", "The free-space floor (-min-free-disk): below it no test attempt starts.", nil, nil),
	}
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.free; ch <- c.floor }

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	free, floor, err := c.guard.Free()
	if err != nil {
		c.log.Warn("measuring the workspace's free space", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(free))
	ch <- prometheus.MustNewConstMetric(c.floor, prometheus.GaugeValue, float64(floor))
}
