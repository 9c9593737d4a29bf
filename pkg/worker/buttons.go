package worker

import (
	"slices"

	"github.com/yourci/yourci/pkg/events"
)

// rerunCheck decides GitHub's "Re-run" on one check run: the test the
// check run shows runs again as `/retest NAME` runs it, with a new check
// run and log, if the check run's commit is still the pull request's head
// and its build that head's latest. The build-wide check names no test:
// its Re-run runs the failed ones, as a bare /retest does. Like /retest,
// it builds the head again instead when its base moved (planRebuild): a
// check re-run on an old base would still not be a verdict on the base as
// it is. It is pure.
func rerunCheck(p *commandPlan, f *commandFacts, c events.Command) (outcome, fact) {
	build, o, need := planTarget(f)
	if need != factNone || o.refusal != "" {
		return o, need
	}
	if build != f.ev.Button.Build {
		return refused("the check run shows build %d, and %.7s has been built again since (build %d).", f.ev.Button.Build, f.head.sha, build), factNone
	}
	if o, need, done := planRebuild(p, f, c.Kind, build); done {
		return o, need
	}
	return planReruns(p, f, 0, events.Command{Kind: events.Retest, Tests: c.Tests}, build)
}

// rerunSuite decides "Re-run all checks" on the check suite of a commit:
// every test of the latest build of the commit runs again, if the commit
// is still the pull request's head; tests still queued or running are
// left to finish; when the base moved, the head is built again on it
// (planRebuild). It is pure.
func rerunSuite(p *commandPlan, f *commandFacts) (outcome, fact) {
	if f.ev.Number == 0 {
		if o, need := suitePull(f); need != factNone || o.refusal != "" {
			return o, need
		}
	}
	build, o, need := planTarget(f)
	if need != factNone || o.refusal != "" {
		return o, need
	}
	if o, need, done := planRebuild(p, f, events.RerunSuite, build); done {
		return o, need
	}
	bt, o, need := planTests(f, build)
	if need != factNone || o.refusal != "" {
		return o, need
	}
	var run []string
	for _, test := range bt.tests {
		if !busy(bt.states[test.Name]) {
			run = append(run, test.Name)
		}
	}
	if len(run) == 0 {
		return refused("every test of build %d is still queued or running.", build), factNone
	}
	return planReruns(p, f, 0, events.Command{Kind: events.Retest, Tests: run}, build)
}

// suitePull decides the pull request a suite's commit was built for, from
// the build records (GitHub's check_suite does not name pull requests from
// forks): the pulls of the repository's recent builds of that commit
// (suitePulls), which must be one.
func suitePull(f *commandFacts) (outcome, fact) {
	if !f.suitePullsKnown {
		return outcome{}, factSuitePulls
	}
	switch pulls := f.suitePulls; len(pulls) {
	case 0:
		return refused("%.7s has no build of YourCI's.", f.ev.Button.SHA), factNone
	case 1:
		return outcome{}, factNone
	default:
		return refused("%.7s was built for several pull requests (%v); re-run each from its own page.", f.ev.Button.SHA, pulls), factNone
	}
}

// pullsBuilding lists, in order, the pulls of recs whose build is of sha.
func pullsBuilding(recs []events.BuildRecord, sha string) []int {
	pulls := []int{}
	for _, r := range recs {
		if r.SHA == sha && !slices.Contains(pulls, r.Key.Pull) {
			pulls = append(pulls, r.Key.Pull)
		}
	}
	slices.Sort(pulls)
	return pulls
}
