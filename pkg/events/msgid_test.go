package events_test

import (
	"testing"

	"github.com/yourci/yourci/pkg/events"
)

// Each re-publication of an attempt, to wait out an infrastructure error
// or its NotBefore, is a message of its own: the stream's duplicate window
// must not drop it as a copy of the one before.
func TestTestJobMsgIDTellsWaitsApart(t *testing.T) {
	t.Parallel()
	base := events.TestJob{Repo: events.Repo{Owner: "o", Name: "r"}, Number: 1, Build: 2, Test: events.TestSpec{Name: "unit"}, Attempt: 3}
	with := func(infra, requeues int, report bool) events.TestJob {
		j := base
		j.InfraRetries, j.Requeues = infra, requeues
		if report {
			j.Outcome = &events.Outcome{State: "success"}
		}
		return j
	}
	cases := map[string]events.TestJob{
		"test/o/r/1/2/unit/3":                   base,
		"test/o/r/1/2/unit/3/infra/1":           with(1, 0, false),
		"test/o/r/1/2/unit/3/infra/2":           with(2, 0, false),
		"test/o/r/1/2/unit/3/requeue/1":         with(0, 1, false),
		"test/o/r/1/2/unit/3/infra/1/requeue/1": with(1, 1, false),
		"test/o/r/1/2/unit/3/infra/1/report":    with(1, 0, true),
	}
	for want, job := range cases {
		if got := job.MsgID(); got != want {
			t.Errorf("MsgID() = %q, want %q", got, want)
		}
	}
}
