package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// testStates maps each test of t's build to its state in the build's
// record: the one account of a build every box shares and the pages show,
// so /retest and the re-run buttons act on what the pages say, whichever
// box ran the tests and whatever GitHub's statuses or check runs show
// (they may lag the record, or have been changed by hand). A test missing
// from the record has no state.
func (w *Worker) testStates(ctx context.Context, repo events.Repo, t *commandTarget) (map[string]events.TestState, outcome, error) {
	states := map[string]events.TestState{}
	rec, err := w.opts.Records.BuildRecord(ctx, buildKey(repo, t.pull, t.build))
	switch {
	case errors.Is(err, events.ErrNoRecord):
		return states, outcome{}, nil // claimed, not yet recorded: nothing has run
	case err != nil:
		return nil, outcome{}, fmt.Errorf("reading the record of build %d: %w", t.build, err)
	}
	for _, tr := range rec.Tests {
		states[tr.Name] = tr.State
	}
	return states, outcome{}, nil
}

// busy reports whether a test in state s has a run that is not over: it is
// queued, running or waiting to retry.
func busy(s events.TestState) bool { return s != "" && !s.Final() }

// recordRerunsQueued records each re-run in runs (test name to re-run
// number) as queued in t's build record, before any is published, so that
// the pages show it and a second /retest finds it busy rather than queuing
// it again. A test whose record already holds an attempt of that re-run or
// a later one (the command delivered again after its re-runs started) is
// left as it is.
func (w *Worker) recordRerunsQueued(ctx context.Context, ev events.CommandEvent, t *commandTarget, runs map[string]int) error {
	b := build(ev.Repo, ev.Number, t.build)
	now := time.Now().UTC()
	_, err := w.opts.Records.UpdateBuild(ctx, buildKey(ev.Repo, ev.Number, t.build), func(r *events.BuildRecord) error {
		if r.SHA == "" {
			r.SHA = t.sha
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
			tr.Description = fmt.Sprintf("%s: re-run %d asked by @%s", status.Queued(), k, ev.Author)
			if u := w.runLogURL(b, name, k); u != "" {
				tr.LogURL = u
			}
			changed = true
		}
		if !changed {
			return events.ErrUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, events.ErrUnchanged) {
		return fmt.Errorf("recording re-runs of build %d as queued: %w", t.build, err)
	}
	return nil
}
