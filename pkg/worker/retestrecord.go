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

// recordFacts reads what a build's record says for a command: each
// test's state (none when the build has no record yet: claimed, nothing
// has run) and the base the build tested, nil for a build from before
// builds merged or one whose head did not merge (it has no tests).
func (h *commandHandler) recordFacts(ctx context.Context, k events.BuildKey) (map[string]events.TestState, *events.TestedBase, error) {
	states := map[string]events.TestState{}
	rec, err := h.records.BuildRecord(ctx, k)
	switch {
	case errors.Is(err, events.ErrNoRecord):
		return states, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("reading the record of build %d: %w", k.Build, err)
	}
	for _, tr := range rec.Tests {
		states[tr.Name] = tr.State
	}
	base := rec.Base
	if base == nil || base.SHA == "" || len(base.Conflicts) > 0 {
		base = nil
	}
	return states, base, nil
}

// busy reports whether a test in state s has a run that is not over: it is
// queued, running or waiting to retry.
func busy(s events.TestState) bool { return s != "" && !s.Final() }

// recordRerunsQueued records each re-run in runs (test name to re-run
// number) as queued in a's build record, before any is published, so that
// the pages show it and a second /retest finds it busy rather than queuing
// it again. A test whose record already holds an attempt of that re-run or
// a later one (the command delivered again after its re-runs started) is
// left as it is, and reported in started: it was published, and its
// attempts are under way or over, so it is not published again.
func (h *commandHandler) recordRerunsQueued(ctx context.Context, ev events.CommandEvent, pull int, a *rerunAction, runs map[string]int) (started map[string]bool, err error) {
	b := build(ev.Repo, pull, a.build)
	now := h.now().UTC()
	_, err = h.records.UpdateBuild(ctx, buildKey(ev.Repo, pull, a.build), func(r *events.BuildRecord) error {
		started = startedReruns(r, runs)
		if !markRerunsQueued(r, a.sha, ev.Author, runs, now, func(name string, k int) string { return h.runLogURL(b, name, k) }) {
			return events.ErrUnchanged
		}
		return nil
	})
	if err != nil && !errors.Is(err, events.ErrUnchanged) {
		return nil, fmt.Errorf("recording re-runs of build %d as queued: %w", a.build, err)
	}
	return started, nil
}

// startedReruns are the tests of runs whose re-run (or a later one) has
// an attempt in r. It is pure.
func startedReruns(r *events.BuildRecord, runs map[string]int) map[string]bool {
	started := map[string]bool{}
	for name, k := range runs {
		if tr := r.Test(name); tr != nil {
			if latest := tr.Latest(); latest != nil && latest.Rerun >= k {
				started[name] = true
			}
		}
	}
	return started
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
