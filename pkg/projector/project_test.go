package projector

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

var (
	key = events.BuildKey{Repo: events.Repo{Owner: "acme", Name: "widgets"}, Pull: 7, Build: 2}
	t0  = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
)

func record(tests ...events.TestRecord) events.BuildRecord {
	return events.BuildRecord{Key: key, SHA: "abc1234def", Projected: true, Tests: tests, Updated: t0}
}

// shownStatus is the part of a projected status a test compares.
type shownStatus struct {
	Test, Description, URL string
	State                  status.State
	Started, New           bool
	Rerun                  int
	Conclusion             status.Conclusion
	Output                 *status.Output
}

func shownOf(states []State) []shownStatus {
	var out []shownStatus
	for _, s := range states {
		st := s.Status
		out = append(out, shownStatus{Test: st.Test, Description: st.Description, URL: st.TargetURL, State: st.State,
			Started: st.Started, New: st.New, Rerun: st.Rerun, Conclusion: st.Conclusion, Output: st.Output})
	}
	return out
}

func TestProject(t *testing.T) {
	t.Parallel()
	page := "https://ci.example/acme/widgets/pulls/7/2/index.html"
	queued := events.TestRecord{Name: "unit", State: events.TestQueued, Description: "queued", LogURL: "https://ci.example/unit"}
	running := events.TestRecord{Name: "unit", State: events.TestRunning, Description: "running (attempt 1 of 1)",
		Attempts: []events.AttemptRecord{{Number: 1, Start: t0}}}
	tests := []struct {
		name string
		rec  events.BuildRecord
		want []shownStatus
	}{
		{"a .yci.py error with no tests is the summary's error, linking its log",
			func() events.BuildRecord {
				r := record()
				r.ConfigError, r.ConfigLogURL = ".yci.py: no test_generator", "https://ci.example/yci.py/out.txt"
				return r
			}(),
			[]shownStatus{
				{Description: ".yci.py: no test_generator", URL: "https://ci.example/yci.py/out.txt", State: status.Error},
			}},
		{"a queued test nothing was shown of is new, the summary pending",
			record(queued),
			[]shownStatus{
				{Test: "unit", Description: "queued", URL: "https://ci.example/unit", State: status.Pending, New: true},
				{Description: "1 queued of 1", URL: page, State: status.Pending},
			}},
		{"a queued test already shown is not new",
			func() events.BuildRecord {
				r := record(queued)
				r.Shown = map[string]events.Shown{"unit": {Mark: "x"}}
				return r
			}(),
			[]shownStatus{
				{Test: "unit", Description: "queued", URL: "https://ci.example/unit", State: status.Pending},
				{Description: "1 queued of 1", URL: page, State: status.Pending},
			}},
		{"a queued re-run is of its own run before its first attempt, and not new: it may exist already",
			record(events.TestRecord{Name: "unit", State: events.TestQueued, Rerun: 2, Description: "queued: re-run 2 asked by @dev",
				Attempts: []events.AttemptRecord{{Number: 1, Outcome: "failed"}}}),
			[]shownStatus{
				{Test: "unit", Description: "queued: re-run 2 asked by @dev", State: status.Pending, Rerun: 2},
				{Description: "1 queued of 1", URL: page, State: status.Pending},
			}},
		{"a running test is a started pending state",
			record(running),
			[]shownStatus{
				{Test: "unit", Description: "running (attempt 1 of 1)", State: status.Pending, Started: true},
				{Description: "1 running of 1", URL: page, State: status.Pending},
			}},
		{"a re-run's pass carries its report and re-run number",
			record(events.TestRecord{Name: "unit", State: events.TestPassed, Description: "passed in 1s",
				Attempts: []events.AttemptRecord{{Number: 1, Outcome: "failed"}, {Rerun: 1, Number: 1, Outcome: "passed"}},
				Report:   &events.Report{Summary: "**passed**", Text: "ok"}}),
			[]shownStatus{
				{Test: "unit", Description: "passed in 1s", State: status.Success, Rerun: 1,
					Output: &status.Output{Title: "passed in 1s", Summary: "**passed**", Text: "ok"}},
				{Description: "1 passed of 1", URL: page, State: status.Success},
			}},
		{"a timed out test keeps its conclusion",
			record(events.TestRecord{Name: "unit", State: events.TestFailed, Description: "timed out", Conclusion: "timed_out"}),
			[]shownStatus{
				{Test: "unit", Description: "timed out", State: status.Failure, Conclusion: status.ConclusionTimedOut},
				{Description: "1 failed of 1", URL: page, State: status.Failure},
			}},
		{"a superseded test is a cancelled error, and so is the summary",
			record(events.TestRecord{Name: "unit", State: events.TestSuperseded, Description: "superseded by 1234567", SupersededBy: "1234567aaa"}),
			[]shownStatus{
				{Test: "unit", Description: "superseded by 1234567", State: status.Error, Conclusion: status.ConclusionCancelled},
				{Description: "superseded by 1234567", URL: page, State: status.Error, Conclusion: status.ConclusionCancelled},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := shownOf(Project(tt.rec, page))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Project (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProjectMarks(t *testing.T) {
	t.Parallel()
	first := record(events.TestRecord{Name: "unit", State: events.TestRunning, Attempts: []events.AttemptRecord{{Number: 1, Start: t0}}})
	again := record(events.TestRecord{Name: "unit", State: events.TestRunning, Attempts: []events.AttemptRecord{{Number: 1, Start: t0.Add(time.Minute)}}})
	a, b := Project(first, ""), Project(again, "")
	if a[0].Mark == b[0].Mark {
		t.Errorf("an attempt run again after a crash has the same mark %q: it would not be shown running again", a[0].Mark)
	}
	if a[1].Mark != b[1].Mark {
		t.Errorf("summary marks differ (%q, %q) though the summary did not change", a[1].Mark, b[1].Mark)
	}
	if c := Project(first, "https://box2.example/page"); c[1].Mark != a[1].Mark {
		t.Errorf("summary marks differ with the box serving the page (%q, %q): a new lease holder would write every summary again", a[1].Mark, c[1].Mark)
	}
}

func TestNext(t *testing.T) {
	t.Parallel()
	pacing := Pacing{Hold: 2 * time.Second, SummaryInterval: 5 * time.Second}
	running := State{Part: "unit", Status: status.Status{State: status.Pending, Started: true}, Since: t0, Mark: "running"}
	passed := State{Part: "unit", Status: status.Status{State: status.Success}, Since: t0, Mark: "passed"}
	pending := State{Part: SummaryPart, Status: status.Status{State: status.Pending}, Since: t0, Mark: "1 of 2"}
	final := State{Part: SummaryPart, Status: status.Status{State: status.Success}, Since: t0, Mark: "2 of 2"}
	shownAt := func(mark string, at time.Time) events.Shown { return events.Shown{Mark: mark, At: at} }
	// progress is a build's pending summary: quick is its tests' progress
	// with none running or retrying, slow has a test running since t0.
	quick := State{Part: SummaryPart, Status: status.Status{State: status.Pending}, Since: t0, Mark: "pending|1 passed, 1 queued of 2", Progress: true}
	slow := quick
	slow.Mark, slow.Lasting = "pending|1 running, 1 queued of 2", t0
	wasPending, wasPassed := shownAt("pending|2 queued of 2", t0), shownAt("success|2 passed of 2", t0)
	unpaced := Pacing{Hold: -1, SummaryInterval: 5 * time.Second}
	tests := []struct {
		name      string
		st        State
		shown     events.Shown
		ok        bool
		now       time.Time
		p         Pacing
		write     bool
		wantLater time.Time
	}{
		{"what was shown is not written again", passed, shownAt("passed", t0), true, t0, pacing, false, time.Time{}},
		{"a final state is written at once", passed, shownAt("queued", t0), true, t0, pacing, true, time.Time{}},
		{"a running state is held", running, shownAt("queued", t0), true, t0.Add(time.Second), pacing, false, t0.Add(2 * time.Second)},
		{"a running state that lasted the hold is written", running, shownAt("queued", t0), true, t0.Add(2 * time.Second), pacing, true, time.Time{}},
		{"without a hold a running state is written at once", running, shownAt("queued", t0), true, t0, Pacing{Hold: -1}, true, time.Time{}},
		{"the first summary is written at once", pending, events.Shown{}, false, t0, pacing, true, time.Time{}},
		{"a pending summary waits for the interval", pending, shownAt("0 of 2", t0), true, t0.Add(time.Second), pacing, false, t0.Add(5 * time.Second)},
		{"a pending summary after the interval is written", pending, shownAt("0 of 2", t0), true, t0.Add(5 * time.Second), pacing, true, time.Time{}},
		{"a final summary never waits", final, shownAt("1 of 2", t0), true, t0.Add(time.Second), pacing, true, time.Time{}},
		{"quick tests' progress is never news", quick, wasPending, true, t0.Add(time.Hour), pacing, false, time.Time{}},
		{"the first summary of quick tests is written at once", quick, events.Shown{}, false, t0, pacing, true, time.Time{}},
		{"quick tests' pending summary after a final one is written", quick, wasPassed, true, t0.Add(5 * time.Second), pacing, true, time.Time{}},
		{"without a hold quick tests' progress is written", quick, wasPending, true, t0.Add(5 * time.Second), unpaced, true, time.Time{}},
		{"a running test's progress waits for the hold", slow, shownAt("pending|2 queued of 2", t0.Add(-time.Minute)), true, t0.Add(time.Second), pacing, false, t0.Add(2 * time.Second)},
		{"a running test's progress waits for the interval too", slow, wasPending, true, t0.Add(3 * time.Second), pacing, false, t0.Add(5 * time.Second)},
		{"a running test's progress is written after both", slow, wasPending, true, t0.Add(5 * time.Second), pacing, true, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			write, later := next(tt.st, tt.shown, tt.ok, tt.now, tt.p)
			if write != tt.write || !later.Equal(tt.wantLater) {
				t.Errorf("next = %v, %v; want %v, %v", write, later, tt.write, tt.wantLater)
			}
		})
	}
}

func TestSummaryLasting(t *testing.T) {
	t.Parallel()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name  string
		tests []events.TestRecord
		want  time.Time
	}{
		{"queued and finished tests do not last", []events.TestRecord{
			{Name: "a", State: events.TestQueued, Updated: at(1)},
			{Name: "b", State: events.TestPassed, Updated: at(2)},
			{Name: "c", State: events.TestFailed, Updated: at(3)},
		}, time.Time{}},
		{"the earliest running or retrying test", []events.TestRecord{
			{Name: "a", State: events.TestRunning, Updated: at(5 * time.Second)},
			{Name: "b", State: events.TestRetrying, Updated: at(3 * time.Second)},
			{Name: "c", State: events.TestPassed, Updated: at(time.Second)},
		}, at(3 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			states := Project(record(tt.tests...), "")
			sum := states[len(states)-1]
			if !sum.Progress || !sum.Lasting.Equal(tt.want) {
				t.Errorf("summary Progress %v, Lasting %v; want true, %v", sum.Progress, sum.Lasting, tt.want)
			}
		})
	}
}
