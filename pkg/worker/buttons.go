package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/yourci/yourci/pkg/events"
)

// rerunCheck carries out GitHub's "Re-run" on one check run: the test the
// check run shows runs again as `/retest NAME` runs it, with a new check
// run and log, if the check run's commit is still the pull request's head
// and its build that head's latest. The build-wide check names no test:
// its Re-run runs the failed ones, as a bare /retest does.
func (w *Worker) rerunCheck(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent, c events.Command) (outcome, error) {
	t, o, err := w.findTarget(ctx, log, inst, ev)
	if err != nil || o.refusal != "" {
		return o, err
	}
	if t.build != ev.Button.Build {
		return refused("the check run shows build %d, and %.7s has been built again since (build %d).", ev.Button.Build, t.sha, t.build), nil
	}
	return w.retest(ctx, log, inst, ev, 0, events.Command{Kind: events.Retest, Tests: c.Tests}, t)
}

// rerunSuite carries out "Re-run all checks" on the check suite of a
// commit: every test of the latest build of the commit runs again, if the
// commit is still the pull request's head; tests still queued or running
// are left to finish.
func (w *Worker) rerunSuite(ctx context.Context, log *slog.Logger, inst Installation, ev events.CommandEvent) (outcome, error) {
	if ev.Number == 0 {
		n, o, err := w.suitePull(ctx, ev)
		if err != nil || o.refusal != "" {
			return o, err
		}
		ev.Number = n
		log = log.With("pull", n)
	}
	t, o, err := w.findTarget(ctx, log, inst, ev)
	if err != nil || o.refusal != "" {
		return o, err
	}
	states, o, err := w.testStates(ctx, ev.Repo, t)
	if err != nil || o.refusal != "" {
		return o, err
	}
	var run []string
	for _, test := range t.tests {
		if !busy(states[test.Name]) {
			run = append(run, test.Name)
		}
	}
	if len(run) == 0 {
		return refused("every test of build %d is still queued or running.", t.build), nil
	}
	return w.retest(ctx, log, inst, ev, 0, events.Command{Kind: events.Retest, Tests: run}, t)
}

// suitePull finds the pull request a suite's commit was built for, from
// the build records (GitHub's check_suite does not name pull requests from
// forks): the pulls of the repository's recent builds of that commit.
func (w *Worker) suitePull(ctx context.Context, ev events.CommandEvent) (int, outcome, error) {
	recs, err := w.opts.Records.RecentBuilds(ctx, ev.Repo, recentBuilds)
	if err != nil {
		return 0, outcome{}, fmt.Errorf("reading the build records of %s: %w", ev.Repo.FullName(), err)
	}
	var pulls []int
	for _, r := range recs {
		if r.SHA == ev.Button.SHA && !slices.Contains(pulls, r.Key.Pull) {
			pulls = append(pulls, r.Key.Pull)
		}
	}
	switch len(pulls) {
	case 0:
		return 0, refused("%.7s has no build of YourCI's.", ev.Button.SHA), nil
	case 1:
		return pulls[0], outcome{}, nil
	}
	slices.Sort(pulls)
	return 0, refused("%.7s was built for several pull requests (%v); re-run each from its own page.", ev.Button.SHA, pulls), nil
}
