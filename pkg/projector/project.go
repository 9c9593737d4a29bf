// Package projector shows build records on GitHub. The build record
// (pkg/events) is the one truth about a build; handlers change records and
// nothing else. Project decides, as a pure function of a record, what
// GitHub should show for each test and for the build's summary `yci`; a
// Projector watches record changes and writes the difference between
// each record and what it last showed (kept in the record, Shown), so
// that a write that failed, was held back or was lost in a crash is made
// good from the record by the next change, a restart or a retry. One
// projector writes across the fleet: the holder of a lease in the record
// store. A head commit's summary before it has a build (approval,
// failed preparation: events.HeadSummary) is shown the same way until a
// build's summary takes over (heads.go). A Projector is made of parts
// with one job each: the lease (lease.go), the schedule of what is owed
// and when (schedule.go) and the writer of GitHub (write.go).
package projector

import (
	"strconv"
	"strings"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pages"
	"github.com/yourci/yourci/pkg/status"
)

// SummaryPart is the part name of a build's summary (`yci`) in State and
// in events.BuildRecord.Shown; tests are parts named as themselves.
const SummaryPart = ""

// State is what GitHub should show for one part of a build.
type State struct {
	// Part is the test's name, or SummaryPart.
	Part   string
	Status status.Status
	// Since is when the part reached this state: a held running state is
	// shown once it has lasted the hold.
	Since time.Time
	// Mark identifies the state: a part whose Shown mark equals it needs
	// no write. It includes the attempt, so a test that runs again after a
	// crash shows "running" again.
	Mark string
	// Progress is set on a build's summary: while it stays pending, what
	// changes in it is the tests' progress, which is news only once a
	// test has lasted (see next). A head's own summary has none.
	Progress bool
	// Lasting, on a build's summary, is when the earliest of its tests
	// now running or waiting to retry reached that state; zero when none
	// is.
	Lasting time.Time
}

// Project returns what GitHub should show for rec: one State per test, in
// the record's order, then the summary, whose link is pageURL (the build's
// page; empty for none). A test's first state is New when nothing was shown
// of it yet, so that no check run is looked up before one is created.
func Project(rec events.BuildRecord, pageURL string) []State {
	out := make([]State, 0, len(rec.Tests)+1)
	for i := range rec.Tests {
		out = append(out, testState(rec, &rec.Tests[i]))
	}
	return append(out, summaryState(rec, pageURL))
}

// buildOwes reports whether rec has a part whose state GitHub does not
// show yet (its Shown mark differs).
func buildOwes(rec events.BuildRecord, pageURL string) bool {
	for _, st := range Project(rec, pageURL) {
		if shown, ok := rec.Shown[st.Part]; !ok || shown.Mark != st.Mark {
			return true
		}
	}
	return false
}

func testState(rec events.BuildRecord, t *events.TestRecord) State {
	k := rec.Key
	st := status.Status{
		Owner: k.Repo.Owner, Repo: k.Repo.Name, SHA: rec.SHA, Pull: k.Pull, Build: k.Build,
		Test: t.Name, Description: t.Description, TargetURL: t.LogURL,
		Conclusion: status.Conclusion(t.Conclusion),
	}
	st.Rerun = t.Rerun
	attempt := ""
	if a := t.Latest(); a != nil {
		st.Rerun = max(st.Rerun, a.Rerun)
		attempt = strconv.Itoa(a.Rerun) + "." + strconv.Itoa(a.Number) + "@" + a.Start.UTC().Format(time.RFC3339Nano)
	}
	switch t.State {
	case events.TestRunning:
		st.State, st.Started = status.Pending, true
	case events.TestPassed:
		st.State = status.Success
	case events.TestFailed:
		st.State = status.Failure
	case events.TestErrored:
		st.State = status.Error
	case events.TestSuperseded:
		st.State = status.Error
		if st.Conclusion == "" {
			st.Conclusion = status.ConclusionCancelled
		}
	default: // queued, retrying
		st.State = status.Pending
	}
	if t.Report != nil && st.Final() {
		st.Output = &status.Output{Title: t.Description, Summary: t.Report.Summary, Text: t.Report.Text}
	}
	if _, shown := rec.Shown[t.Name]; !shown && t.State == events.TestQueued && len(t.Attempts) == 0 {
		st.New = true
	}
	mark := strings.Join([]string{string(t.State), st.Description, string(st.Conclusion), st.TargetURL, strconv.Itoa(st.Rerun), attempt}, "|")
	return State{Part: t.Name, Status: st, Since: t.Updated, Mark: mark}
}

func summaryState(rec events.BuildRecord, pageURL string) State {
	sum := pages.Summarize(rec)
	k := rec.Key
	st := status.Status{
		Owner: k.Repo.Owner, Repo: k.Repo.Name, SHA: rec.SHA, Pull: k.Pull, Build: k.Build,
		State: status.State(sum.State), Description: sum.Description, TargetURL: pageURL,
	}
	if rec.ConfigError != "" && len(rec.Tests) == 0 {
		st.TargetURL = rec.ConfigLogURL // the evaluation's log says what went wrong
	}
	if sum.Cancelled {
		st.Conclusion = status.ConclusionCancelled
	}
	plan := renderPlan(rec)
	if plan != "" {
		st.Output = &status.Output{Title: sum.Description, Summary: sum.Description + "\n\n" + plan}
	}
	// The link is left out of the mark: every box serves the same page, so
	// a new lease holder (with its own HTTP root) has nothing new to show.
	mark := strings.Join([]string{sum.State, sum.Description, string(st.Conclusion)}, "|") + planMark(plan)
	return State{Part: SummaryPart, Status: st, Since: rec.Updated, Mark: mark, Progress: true, Lasting: lasting(rec)}
}

// lasting is when the earliest of rec's tests now running or waiting to
// retry reached that state, zero when none is.
func lasting(rec events.BuildRecord) time.Time {
	var at time.Time
	for _, t := range rec.Tests {
		if t.State == events.TestRunning || t.State == events.TestRetrying {
			at = earliest(at, t.Updated)
		}
	}
	return at
}

// shownPending reports whether shown is of a pending summary: every
// summary's mark (a build's and a head's) starts with its state.
func shownPending(shown events.Shown) bool {
	return strings.HasPrefix(shown.Mark, string(status.Pending)+"|")
}

// Pacing is the write budget: how long a running state is held back, so
// that a quick test's result replaces it unsent, and the least time
// between two pending summaries of a build. Zero or negative values hold
// nothing back.
//
// The hold paces a build's summary too: once a pending summary is shown,
// a new pending one (other counts of queued, running and passed tests) is
// written only when a test has been running or waiting to retry for the
// hold, the summary's own "running". A build of quick tests therefore
// costs its summary two writes, pending and final, however long its tests
// wait in the queue (a burst, few slots for many pulls); their progress
// shows on their own statuses and the build's page. A slow test's
// progress is shown, at most every SummaryInterval.
type Pacing struct {
	Hold, SummaryInterval time.Duration
}

// Defaults of Pacing in the service: a running state held 2s costs a
// quick test no write of it, and a summary at most every 5s keeps a busy
// head's pending summaries to a few writes.
const (
	DefaultHold            = 2 * time.Second
	DefaultSummaryInterval = 5 * time.Second
)

// next decides for one part whether its state st is written now, given
// what was shown of it (ok false: nothing yet) at now. When it is not
// written now but will be, later is when to look again; a zero later
// means nothing is owed until the record changes.
func next(st State, shown events.Shown, ok bool, now time.Time, p Pacing) (write bool, later time.Time) {
	if ok && shown.Mark == st.Mark {
		return false, time.Time{}
	}
	if st.Status.Started && p.Hold > 0 {
		if at := st.Since.Add(p.Hold); now.Before(at) {
			return false, at
		}
	}
	if st.Progress && !st.Status.Final() && ok && shownPending(shown) && p.Hold > 0 {
		if st.Lasting.IsZero() {
			return false, time.Time{} // quick tests' progress: no news
		}
		if at := st.Lasting.Add(p.Hold); now.Before(at) {
			return false, at
		}
	}
	if st.Part == SummaryPart && !st.Status.Final() && ok && p.SummaryInterval > 0 {
		if at := shown.At.Add(p.SummaryInterval); now.Before(at) {
			return false, at
		}
	}
	return true, time.Time{}
}
