package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/yourci/yourci/pkg/events"
)

// backlogReader is what the backlog metrics need of JetStream;
// events.Board has it.
type backlogReader interface {
	Backlog(ctx context.Context) ([]events.ConsumerBacklog, error)
}

// backlogTimeout bounds the JetStream reads of one scrape, well inside
// Prometheus's default 10 s scrape timeout.
const backlogTimeout = 3 * time.Second

// backlogCollector reports the queue's backlog per consumer, read from
// JetStream at each scrape: the queue is shared, so every worker reports
// the same figures, and an alert should take max() over workers, not sum().
type backlogCollector struct {
	board backlogReader
	log   *slog.Logger

	pending, ackPending, redelivered, up *prometheus.Desc
}

func newBacklogCollector(board backlogReader, log *slog.Logger) *backlogCollector {
	consumer := []string{"consumer"}
	return &backlogCollector{
		board: board,
		log:   log,
		pending: prometheus.NewDesc("yci_queue_pending_messages",
			"Jobs stored and not yet delivered to any worker, per consumer (handle_pull, handle_test), on the whole queue.", consumer, nil),
		ackPending: prometheus.NewDesc("yci_queue_ack_pending_messages",
			"Jobs delivered and not yet done, per consumer: being handled, or waiting for a retry.", consumer, nil),
		redelivered: prometheus.NewDesc("yci_queue_redelivered_messages",
			"Jobs delivered and not yet done that were delivered more than once (a worker crashed or handed them back).", consumer, nil),
		up: prometheus.NewDesc("yci_queue_backlog_up",
			"1 when this scrape could read the backlog from JetStream, else 0.", nil, nil),
	}
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
	ch <- c.up
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	backlog, err := c.board.Backlog(ctx)
	if err != nil {
		c.log.Warn("reading the queue's backlog for /metrics", "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, b := range backlog {
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(b.Pending), b.Consumer)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(b.AckPending), b.Consumer)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(b.Redelivered), b.Consumer)
	}
}
