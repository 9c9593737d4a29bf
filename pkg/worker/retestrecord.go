package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// testStates maps each test of a build to its state in the build's
// record: the one account of a build every box shares and the pages show,
// so /retest and the re-run buttons act on what the pages say, whichever
// box ran the tests and whatever GitHub's statuses or check runs show
// (they may lag the record, or have been changed by hand). A test missing
// from the record has no state.
func (h *commandHandler) testStates(ctx context.Context, k events.BuildKey) (map[string]events.TestState, error) {
	states := map[string]events.TestState{}
	rec, err := h.records.BuildRecord(ctx, k)
	switch {
	case errors.Is(err, events.ErrNoRecord):
		return states, nil // claimed, not yet recorded: nothing has run
	case err != nil:
		return nil, fmt.Errorf("reading the record of build %d: %w", k.Build, err)
	}
	for _, tr := range rec.Tests {
		states[tr.Name] = tr.State
	}
	return states, nil
}

// busy reports whether a test in state s has a run that is not over: it is
// queued, running or waiting to retry.
func busy(s events.TestState) bool { return s != "" && !s.Final() }

// recordRerunsQueued records each re-run in runs (test name to re-run
// number) as queued in a's build record, before any is published, so that
// the pages show it and a second /retest finds it busy rather than queuing
// it again. A test whose record already holds an attempt of that re-run or
// a later one (the command delivered again after its re-runs started) is
// left as it is.
func (h *commandHandler) recordRerunsQueued(ctx context.Context, ev events.CommandEvent, pull int, a *rerunAction, runs map[string]int) error {
	b := build(ev.Repo, pull, a.build)
	now := h.now().UTC()
	_, err := h.records.UpdateBuild(ctx, buildKey(ev.Repo, pull, a.build), func(r *events.BuildRecord) error {
		if !markRerunsQueued(r, a.sha, ev.Author, runs, now, func(name string, k int) string { return h.runLogURL(b, name, k) }) {
			return events.ErrUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, events.ErrUnchanged) {
		return fmt.Errorf("recording re-runs of build %d as queued: %w", a.build, err)
	}
	return nil
}

// markRerunsQueued changes r as recordRerunsQueued describes and reports
// whether anything changed, at now; logURL is where re-run k of a test
// logs, or "". It is pure.
func markRerunsQueued(r *events.BuildRecord, sha, author string, runs map[string]int, now time.Time, logURL func(name string, k int) string) bool {
	if r.SHA == "" {
		r.SHA = sha
	}
	changed := false
	for name, k := range runs {
		tr := r.AddTest(name)
		if latest := tr.Latest(); latest != nil && latest.Rerun >= k {
			continue
		}
		tr.State, tr.Updated, tr.SupersededBy = events.TestQueued, now, ""
		// The state is re-run k's from now on: the projector shows it
		// as a new run, without the last run's conclusion or report.
		tr.Rerun, tr.Conclusion, tr.Report, tr.Flaky = k, "", nil, false
		tr.Description = fmt.Sprintf("%s: re-run %d asked by @%s", status.Queued(), k, author)
		if u := logURL(name, k); u != "" {
			tr.LogURL = u
		}
		changed = true
	}
	return changed
}

// logLinker gives where one run of a test logs, or "" when this box
// serves no logs; Worker.runLogURL is one.
type logLinker func(b artifacts.Build, name string, rerun int) string
