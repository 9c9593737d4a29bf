package worker

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// This file holds the pull handler's decisions, apart from what carries
// them out (pull.go): each is a pure function from the facts the handler
// gathered to what it does next, so that every branch is tested in memory
// (pullplan_test.go) and the real-process tests are left for the wiring.
// A pull event is decided once its build is claimed (planClaim), once its
// head is merged and evaluated (planBuild), and once the attempt ended
// (planPullEnd, planPrepFailure, planGiveUp); whether the head may be
// built at all is the approval gate's (approvalplan.go).

// claimPlan is what a claimed build number calls for.
type claimPlan struct {
	// built: another message holds the head's build, which is queued or
	// being queued; nothing is built, and the pull's builds are marked
	// open again (a reopened pull builds nothing new).
	built bool
	// announce: the claim made the head's first build, so running tests
	// of the pull's older heads can stop.
	announce bool
	// showApproved: YourCI had asked for approval of this head, which is
	// now given: the head's summary says "approved by ...; building".
	showApproved bool
}

// planClaim decides what claim c calls for, given the approval gate's
// verdict v. Only a fresh claim announces the head or shows the approval:
// a resumed claim did both before it crashed.
func planClaim(c events.Claim, v verdict) claimPlan {
	if !c.Mine {
		return claimPlan{built: true}
	}
	return claimPlan{announce: c.Fresh, showApproved: c.Fresh && v.asked}
}

// buildStep is what the pull handler does next with a claimed build.
type buildStep int

const (
	// stepEvaluate runs .yci.py on the checkout.
	stepEvaluate buildStep = iota
	// stepQueueTests records the tests as queued and publishes them.
	stepQueueTests
	// stepEndConflict ends the build without tests: its head does not
	// merge into its base.
	stepEndConflict
	// stepEndConfigError ends the build without tests: .yci.py refused.
	stepEndConfigError
	// stepFailBuild fails the attempt with an error: the evaluation
	// itself broke, and the event is handed back.
	stepFailBuild
)

var buildStepNames = [...]string{"evaluate", "queue tests", "end on conflict", "end on config error", "fail"}

func (s buildStep) String() string {
	return enumName(s, buildStepNames[:], "buildStep")
}

// buildFacts are what the pull handler knows of a claimed build once its
// head is merged (merged) and, when evaluated is set, .yci.py ran: tests
// it returned, or err it failed with.
type buildFacts struct {
	ev        events.PullEvent
	pr        *github.PullRequest
	build     int
	merged    artifacts.Merged
	evaluated bool
	tests     []pipeline.Test
	err       error
}

// buildPlan is the plan of a claimed build: its step and, for
// stepQueueTests, the jobs to publish and the changed files to record;
// for stepEndConflict, the log (unmasked) and the record's base and
// summary error; for stepEndConfigError, the evaluation's refusal; for
// stepFailBuild, the error.
type buildPlan struct {
	step    buildStep
	jobs    []events.TestJob
	changes *events.Changes
	log     string
	base    *events.TestedBase
	summary string
	refusal *pipeline.ConfigError
	err     error
}

// planBuild decides what a merged build calls for. A head that does not
// merge is not evaluated: only a push (or a /retest once the base moved)
// can fix it. A refused .yci.py ends the build, as running it again
// cannot fix the file; any other evaluation error hands the event back.
// No tests is a verdict too: "no tests for this change".
func planBuild(f buildFacts) buildPlan {
	baseRef := f.pr.GetBase().GetRef()
	var refusal *pipeline.ConfigError
	switch {
	case len(f.merged.Conflicts) > 0:
		return buildPlan{step: stepEndConflict, log: conflictLog(f.ev.HeadSHA, baseRef, f.merged),
			base:    testedBase(baseRef, f.merged, true),
			summary: status.MergeConflict(baseRef, f.merged.Base, len(f.merged.Conflicts))}
	case !f.evaluated:
		return buildPlan{step: stepEvaluate}
	case errors.As(f.err, &refusal):
		return buildPlan{step: stepEndConfigError, refusal: refusal}
	case f.err != nil:
		return buildPlan{step: stepFailBuild, err: fmt.Errorf("evaluating .yci.py: %w", f.err)}
	}
	return buildPlan{step: stepQueueTests, jobs: testJobs(f.ev, f.pr, f.build, f.tests, f.merged),
		changes: recordedChanges(f.merged.Changes)}
}

// testJobs are the first attempts of build n's tests. Every test checks
// out m.SHA, the commit the build evaluated, and carries the branch names
// and the pull's update time, so that it starts without reading GitHub.
func testJobs(ev events.PullEvent, pr *github.PullRequest, n int, tests []pipeline.Test, m artifacts.Merged) []events.TestJob {
	jobs := make([]events.TestJob, 0, len(tests))
	for _, t := range tests {
		jobs = append(jobs, events.TestJob{
			Version: events.Version, Repo: ev.Repo, Number: ev.Number, HeadSHA: ev.HeadSHA,
			Installation: ev.Installation, Build: n, Test: specOf(t), Attempt: 1,
			BaseRef: pr.GetBase().GetRef(), CloneURL: pr.GetBase().GetRepo().GetCloneURL(),
			HeadRef: pr.GetHead().GetRef(), PullUpdatedAt: pr.GetUpdatedAt().UTC(),
			BaseSHA: m.Base, TestSHA: m.SHA,
		})
	}
	return jobs
}

// conflictLog is the log of a build whose head does not merge into
// baseRef: what happened, what to do, and every conflicting path.
func conflictLog(head, baseRef string, m artifacts.Merged) string {
	var text strings.Builder
	fmt.Fprintf(&text, "%sthe head %s does not merge into %s at %s.\n", pipeline.LogPrefix, head, baseRef, m.Base)
	fmt.Fprintf(&text, "%sYourCI tests a pull request merged into the tip of its base branch, so no test ran.\n", pipeline.LogPrefix)
	fmt.Fprintf(&text, "%smerge %s into the branch (or rebase onto it), resolve these conflicts and push:\n", pipeline.LogPrefix, baseRef)
	for _, p := range m.Conflicts {
		fmt.Fprintf(&text, "  %q\n", p)
	}
	return text.String()
}

// pullEndFacts are what the handler knows once an attempt at preparing a
// head returned: its error, whether the worker is stopping (the
// delivery's context ended), and which delivery it was.
type pullEndFacts struct {
	err       error
	stopping  bool
	delivered uint64
}

// pullEnd is how an attempt ends: the delivery's verdict, and whether the
// failure is told on the head's preparation log (and summary).
type pullEnd struct {
	verdict       Verdict
	recordFailure bool
}

// planPullEnd decides how an attempt ends. A worker that is stopping
// hands the event back at once and tells nothing: the attempt did not
// fail, it was cut short.
func planPullEnd(f pullEndFacts) pullEnd {
	v := classifyError(f.err, f.stopping, f.delivered)
	return pullEnd{verdict: v, recordFailure: v.Outcome != Done && !f.stopping}
}

// prepFailureFacts are what is known of a failed attempt: which delivery
// it was, the steps it took, the build it claimed (0 before the claim),
// its verdict, and when it is told.
type prepFailureFacts struct {
	attempt prepAttempt
	steps   []string
	build   int
	verdict Verdict
	now     time.Time
}

// prepFailure is what telling a failed attempt writes: the entry appended
// to the head's preparation log (unmasked) and, when show is set, the
// pending description of the head's summary about build.
type prepFailure struct {
	log         string
	show        bool
	build       int
	description string
}

// planPrepFailure decides how a failed attempt is told: always on the
// preparation log, with its steps, its reason and what happens next; on
// the head's summary only when it is tried again, since a terminated
// event's build shows its own end.
func planPrepFailure(f prepFailureFacts) prepFailure {
	next := "not tried again: this cannot succeed"
	if f.verdict.Outcome == HandBack {
		next = "trying again in " + f.verdict.Delay.String()
	}
	var text strings.Builder
	fmt.Fprintf(&text, "%sattempt %d of %d at %s\n", pipeline.LogPrefix, f.attempt.delivered, f.attempt.attempts(), f.now.UTC().Format(time.RFC3339))
	for _, s := range f.steps {
		fmt.Fprintf(&text, "%s%s\n", pipeline.LogPrefix, s)
	}
	fmt.Fprintf(&text, "%sfailed: %v\n%s%s\n\n", pipeline.LogPrefix, f.verdict.Err, pipeline.LogPrefix, next)
	p := prepFailure{log: text.String()}
	if f.verdict.Outcome == HandBack {
		p.show, p.build = true, f.build
		p.description = status.PreparingFailed(int(f.attempt.delivered), int(f.attempt.attempts()), withoutPaths(f.verdict.Err))
	}
	return p
}

// planGiveUp is what giving up on a pull event after attempt a writes:
// the preparation log's last line and the head summary's error.
func planGiveUp(a prepAttempt) (log, description string) {
	log = fmt.Sprintf("%sgave up after %d attempts (attempts that crashed a worker or were handed back on shutdown count too; see the worker's log)\n",
		pipeline.LogPrefix, a.attempts())
	return log, status.GaveUpPreparing(int(a.attempts()))
}
