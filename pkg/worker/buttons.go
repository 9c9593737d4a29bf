package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// CheckRunLister lists the check runs of a commit; go-github's
// ChecksService has it (and so does status.CheckRunClient).
type CheckRunLister interface {
	ListCheckRunsForRef(ctx context.Context, owner, repo, ref string, opts *github.ListCheckRunsOptions) (*github.ListCheckRunsResults, *github.Response, error)
}

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
		n, o, err := suitePull(ctx, inst, ev)
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
	states, err := w.testStates(ctx, inst, ev.Repo, t)
	if err != nil {
		return outcome{}, err
	}
	var run []string
	for _, test := range t.tests {
		if states[test.Name] != string(status.Pending) {
			run = append(run, test.Name)
		}
	}
	if len(run) == 0 {
		return refused("every test of build %d is still queued or running.", t.build), nil
	}
	return w.retest(ctx, log, inst, ev, 0, events.Command{Kind: events.Retest, Tests: run}, t)
}

// suitePull finds the pull request a suite's commit was built for, from
// the external_ids of YourCI's check runs on it: GitHub's check_suite does
// not name pull requests from forks.
func suitePull(ctx context.Context, inst Installation, ev events.CommandEvent) (int, outcome, error) {
	if inst.Checks == nil {
		return 0, refused("this YourCI does not write check runs."), nil
	}
	runs, err := ourCheckRuns(ctx, inst.Checks, ev.Repo, ev.Button.SHA)
	if err != nil {
		return 0, outcome{}, err
	}
	var pulls []int
	for _, r := range runs {
		if !slices.Contains(pulls, r.id.Pull) {
			pulls = append(pulls, r.id.Pull)
		}
	}
	switch len(pulls) {
	case 0:
		return 0, refused("%.7s has no check run of YourCI's.", ev.Button.SHA), nil
	case 1:
		return pulls[0], outcome{}, nil
	}
	slices.Sort(pulls)
	return 0, refused("%.7s was built for several pull requests (%v); re-run each from its own page.", ev.Button.SHA, pulls), nil
}

// ownRun is one of YourCI's check runs, with what its external_id says.
type ownRun struct {
	runID int64
	id    status.ExternalID
	state string
}

// ourCheckRuns lists every check run YourCI wrote on sha of repo (those
// whose external_id it can read, for this repository and commit): the
// check runs of other Apps are skipped.
func ourCheckRuns(ctx context.Context, checks CheckRunLister, repo events.Repo, sha string) ([]ownRun, error) {
	var out []ownRun
	opts := &github.ListCheckRunsOptions{Filter: github.Ptr("all"), ListOptions: github.ListOptions{PerPage: 100}}
	for range maxStatusPages {
		list, resp, err := checks.ListCheckRunsForRef(ctx, repo.Owner, repo.Name, sha, opts)
		if err != nil {
			return nil, fmt.Errorf("reading check runs of %s: %w", sha, err)
		}
		for _, run := range list.CheckRuns {
			id, err := status.ParseExternalID(run.GetExternalID())
			if err != nil || id.Owner != repo.Owner || id.Repo != repo.Name || id.SHA != sha {
				continue
			}
			out = append(out, ownRun{runID: run.GetID(), id: id, state: checkRunState(run)})
		}
		if resp == nil || resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	return out, nil
}

// checkRunStates maps each test of a build to the state of its newest
// check run (the highest id: a re-run is a newer check run of the same
// name), in the words of commit statuses, so that /retest reads check runs
// as it reads statuses.
func checkRunStates(ctx context.Context, checks CheckRunLister, repo events.Repo, pull int, sha string, build int) (map[string]string, error) {
	runs, err := ourCheckRuns(ctx, checks, repo, sha)
	if err != nil {
		return nil, err
	}
	newest := map[string]int64{}
	states := map[string]string{}
	for _, r := range runs {
		if r.id.Pull != pull || r.id.Build != build || r.id.Test == "" || newest[r.id.Test] > r.runID {
			continue
		}
		newest[r.id.Test], states[r.id.Test] = r.runID, r.state
	}
	return states, nil
}

// checkRunState is the commit status state that says what run says:
// pending until it completes, then success (success, neutral, skipped),
// error (cancelled or stale: stopped, not judged) or failure.
func checkRunState(run *github.CheckRun) string {
	if run.GetStatus() != "completed" {
		return string(status.Pending)
	}
	switch run.GetConclusion() {
	case "success", "neutral", "skipped":
		return string(status.Success)
	case "cancelled", "stale":
		return string(status.Error)
	}
	return string(status.Failure)
}
