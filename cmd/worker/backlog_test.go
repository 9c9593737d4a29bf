package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/yourci/yourci/pkg/events"
)

type fakeBacklog struct {
	backlog []events.ConsumerBacklog
	err     error
}

func (f fakeBacklog) Backlog(context.Context) ([]events.ConsumerBacklog, error) {
	return f.backlog, f.err
}

// gauges gathers reg into "name{consumer}" → value.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestBacklogCollector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		board fakeBacklog
		want  map[string]float64
	}{
		{
			name: "per_consumer_gauges",
			board: fakeBacklog{backlog: []events.ConsumerBacklog{
				{Consumer: events.PullConsumer, Pending: 1},
				{Consumer: events.TestConsumer, Pending: 7, AckPending: 2, Redelivered: 1},
			}},
			want: map[string]float64{
				"yci_queue_backlog_up":                        1,
				"yci_queue_pending_messages{handle_pull}":     1,
				"yci_queue_pending_messages{handle_test}":     7,
				"yci_queue_ack_pending_messages{handle_pull}": 0,
				"yci_queue_ack_pending_messages{handle_test}": 2,
				"yci_queue_redelivered_messages{handle_pull}": 0,
				"yci_queue_redelivered_messages{handle_test}": 1,
			},
		},
		{
			name:  "unreadable_backlog_says_so",
			board: fakeBacklog{err: errors.New("nats: timeout")},
			want:  map[string]float64{"yci_queue_backlog_up": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(newBacklogCollector(tt.board, slog.New(slog.DiscardHandler)))
			if diff := cmp.Diff(tt.want, gauges(t, reg)); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}
