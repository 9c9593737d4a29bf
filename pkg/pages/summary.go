package pages

import (
	"fmt"
	"strings"

	"github.com/yourci/yourci/pkg/events"
)

// The summary states, spelled as GitHub spells commit status states.
const (
	Pending = "pending"
	Success = "success"
	Failure = "failure"
	Error   = "error"
)

// Summary is a build as one verdict: the `yci` status of its head commit
// and the headline of its page.
type Summary struct {
	// State is Pending while any test is queued, running or waiting to
	// retry; otherwise Failure when a test failed, Error when none failed
	// but one could not be run or judged, and Success when all passed (or
	// there are none).
	State string
	// Description counts the tests by state, such as "3 passed, 1 failed
	// (1 flaky) of 4"; it is at most 140 characters, GitHub's limit.
	Description string

	Passed, Failed, Errored, Running, Retrying, Queued int
	// Flaky counts tests that passed after a failed attempt.
	Flaky int
	Total int
}

// Summarize computes the summary of rec. It is a pure function of the
// record, so every box computes the same summary from the same revision.
func Summarize(rec events.BuildRecord) Summary {
	var s Summary
	for _, t := range rec.Tests {
		s.Total++
		switch t.State {
		case events.TestPassed:
			s.Passed++
		case events.TestFailed:
			s.Failed++
		case events.TestErrored:
			s.Errored++
		case events.TestRunning:
			s.Running++
		case events.TestRetrying:
			s.Retrying++
		default:
			s.Queued++
		}
		if t.Flaky {
			s.Flaky++
		}
	}
	switch {
	case s.Running+s.Retrying+s.Queued > 0:
		s.State = Pending
	case s.Failed > 0:
		s.State = Failure
	case s.Errored > 0:
		s.State = Error
	default:
		s.State = Success
	}
	s.Description = s.describe()
	return s
}

func (s Summary) describe() string {
	if s.Total == 0 {
		return "no tests"
	}
	var parts []string
	for _, c := range []struct {
		n    int
		word string
	}{
		{s.Passed, "passed"}, {s.Failed, "failed"}, {s.Errored, "errored"},
		{s.Running, "running"}, {s.Retrying, "retrying"}, {s.Queued, "queued"},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.word))
		}
	}
	d := strings.Join(parts, ", ")
	if s.Flaky > 0 {
		d += fmt.Sprintf(" (%d flaky)", s.Flaky)
	}
	// Six counts and a total of at most ten digits each stay far below
	// GitHub's 140 characters.
	return d + fmt.Sprintf(" of %d", s.Total)
}
