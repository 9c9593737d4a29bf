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
// A pull event is decided step by step until its build is claimed
// (planAdmit, with planClaim), then step by step as the build is
// prepared (planBuild: mirror, merge, checkout, evaluate, queue; the
// merge itself by planMerge), and once the attempt ended (planPullEnd,
// planPrepFailure, planGiveUp); whether the head may be built at all is
// the approval gate's (approvalplan.go).

// admitStep is what the pull handler does next with a pull event before
// its build is claimed and prepared.
type admitStep int

const (
	// admitRead records the head as seen, authenticates for the
	// installation and reads the pull request (headReader.pullOf).
	admitRead admitStep = iota
	// admitRefuse ends an event that names no valid head, for good.
	admitRefuse
	// admitDropStale builds nothing: the head is no longer the pull
	// request's (or the pull request closed).
	admitDropStale
	// admitJudge asks the approval gate whether the head may be built.
	admitJudge
	// admitWait builds nothing until an approval brings the head back.
	admitWait
	// admitClaim claims the head's build number.
	admitClaim
	// admitBuilt builds nothing: another message holds the head's build.
	admitBuilt
	// admitBuild prepares the claimed build (queueBuild), after what the
	// claim plan says (announce, showApproved).
	admitBuild
)

var admitStepNames = [...]string{"read", "refuse", "drop stale", "judge", "wait for approval", "claim", "already built", "build"}

func (s admitStep) String() string {
	return enumName(s, admitStepNames[:], "admitStep")
}

// admitFacts are what the pull handler knows of a pull event on its way
// to a build: invalid is why the event names no valid head (nil when it
// does); once read, stale is why the head is no longer the pull
// request's ("" when it is); once judged, the approval gate's verdict;
// once claimed, the claim.
type admitFacts struct {
	invalid error
	read    bool
	stale   string
	judged  bool
	verdict verdict
	claimed bool
	claim   events.Claim
}

// admitPlan is the plan of a pull event before its build is prepared:
// its step and, for admitRefuse, the error; for admitBuilt and
// admitBuild, what the claim calls for.
type admitPlan struct {
	step  admitStep
	err   error
	claim claimPlan
}

// planAdmit decides what a pull event calls for before its build is
// prepared. An invalid event ends at once: nothing publishes one (every
// edge validates with the same rule), but one from an older receiver may
// come. A stale head is dropped before the gate is asked, so no approval
// is asked for a head nobody will build; no build is claimed for an
// unapproved head, which an approval brings back.
func planAdmit(f admitFacts) admitPlan {
	switch {
	case f.invalid != nil:
		return admitPlan{step: admitRefuse, err: f.invalid}
	case !f.read:
		return admitPlan{step: admitRead}
	case f.stale != "":
		return admitPlan{step: admitDropStale}
	case !f.judged:
		return admitPlan{step: admitJudge}
	case !f.verdict.build:
		return admitPlan{step: admitWait}
	case !f.claimed:
		return admitPlan{step: admitClaim}
	}
	c := planClaim(f.claim, f.verdict)
	if c.built {
		return admitPlan{step: admitBuilt, claim: c}
	}
	return admitPlan{step: admitBuild, claim: c}
}

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

// mergeStep is how the commit a build tests is made (baseMerger.merge).
type mergeStep int

const (
	// mergeReadRecord reads the build's record, where an earlier attempt
	// at the same claim may have recorded its base.
	mergeReadRecord mergeStep = iota
	// mergeRemake makes the recorded merge again: want, from base.
	mergeRemake
	// mergeGroup compares a merge group's head, GitHub's merge already,
	// with the group's base commit, and records that base.
	mergeGroup
	// mergeNew merges the head into the tip of its base branch (or takes
	// it alone, when merge is unset) and records the base.
	mergeNew
)

var mergeStepNames = [...]string{"read record", "remake", "group", "new"}

func (s mergeStep) String() string {
	return enumName(s, mergeStepNames[:], "mergeStep")
}

// mergeFacts are what is known of a build about to be merged: its head,
// whether it is a merge group's, whether heads are tested alone
// (Options.HeadOnly), whether its claim is fresh and, once read, the base
// its record holds (nil when none).
//
// A fresh claim's record holds no base, so it is not read: a base is
// written only by the holder of a build's claim, once claimed (merge,
// mergeGroup, and a conflict's endWithoutTests), a fresh claim is the
// call that allocated the number, and a later delivery of the same
// message resumes the claim without it being fresh. Numbers are never
// handed out twice while the registry lives; a record left from a lost
// registry would be another head's, which a fresh build must not remake.
type mergeFacts struct {
	head     string
	group    bool
	headOnly bool
	fresh    bool
	read     bool
	recorded *events.TestedBase
}

// mergePlan is how a build's commit is made: its step and, for
// mergeRemake, the base and the commit wanted; for mergeNew, whether the
// head is merged into its base.
type mergePlan struct {
	step       mergeStep
	base, want string
	merge      bool
}

// planMerge decides how a build's commit is made. A recorded base without
// conflicts is made again, whatever the branch did since, so a
// redelivered build tests what it first tested; a recorded conflict is
// merged anew (the build ended on it, and the base may have moved).
func planMerge(f mergeFacts) mergePlan {
	if !f.fresh && !f.read {
		return mergePlan{step: mergeReadRecord}
	}
	if b := f.recorded; !f.fresh && b != nil && b.SHA != "" && len(b.Conflicts) == 0 {
		want := f.head
		if b.Merged && b.Merge != "" {
			want = b.Merge
		}
		return mergePlan{step: mergeRemake, base: b.SHA, want: want}
	}
	if f.group {
		return mergePlan{step: mergeGroup}
	}
	return mergePlan{step: mergeNew, merge: !f.headOnly}
}

// buildStep is what the pull handler does next with a claimed build.
type buildStep int

const (
	// stepMirror brings the mirror up to date from the base repository.
	stepMirror buildStep = iota
	// stepMerge makes the commit the build tests (baseMerger.merge).
	stepMerge
	// stepCheckout checks that commit out as the build's source.
	stepCheckout
	// stepEvaluate runs .yci.py on the checkout.
	stepEvaluate
	// stepQueueTests records the tests as queued and publishes them.
	stepQueueTests
	// stepEndConflict ends the build without tests: its head does not
	// merge into its base.
	stepEndConflict
	// stepEndConfigError ends the build without tests: .yci.py refused.
	stepEndConfigError
	// stepFailBuild fails the attempt with an error: the build cannot be
	// prepared (no clone URL, for good) or the evaluation itself broke,
	// and the event is handed back.
	stepFailBuild
)

var buildStepNames = [...]string{"mirror", "merge", "checkout", "evaluate", "queue tests", "end on conflict", "end on config error", "fail"}

func (s buildStep) String() string {
	return enumName(s, buildStepNames[:], "buildStep")
}

// buildFacts are what the pull handler knows of a claimed build as it
// prepares it: whether the mirror is up to date (mirrored), whether the
// commit it tests is made (made; merged is that merge), whether it is
// checked out and, when evaluated is set, whether .yci.py ran: tests it
// returned, or err it failed with.
type buildFacts struct {
	ev         events.PullEvent
	pr         *github.PullRequest
	build      int
	mirrored   bool
	made       bool
	merged     artifacts.Merged
	checkedOut bool
	evaluated  bool
	tests      []pipeline.Test
	err        error
}

// buildPlan is the plan of a claimed build: its step and, for stepMirror,
// the clone URL; for stepQueueTests, the jobs to publish and the changed
// files to record; for stepEndConflict, the log (unmasked) and the
// record's base and summary error; for stepEndConfigError, the
// evaluation's refusal; for stepFailBuild, the error.
type buildPlan struct {
	step     buildStep
	cloneURL string
	jobs     []events.TestJob
	changes  *events.Changes
	log      string
	base     *events.TestedBase
	summary  string
	refusal  *pipeline.ConfigError
	err      error
}

// planBuild decides what a claimed build calls for next: mirror, merge,
// check out, evaluate, then end or queue its tests. The mirror is fetched
// from the base repository's clone URL, as GitHub's API gives it, never
// one the author controls; a pull request without one cannot be built. A
// head that does not merge is neither checked out nor evaluated: only a
// push (or a /retest once the base moved) can fix it. A refused .yci.py
// ends the build, as running it again cannot fix the file; any other
// evaluation error hands the event back. No tests is a verdict too: "no
// tests for this change".
func planBuild(f buildFacts) buildPlan {
	baseRef := f.pr.GetBase().GetRef()
	var refusal *pipeline.ConfigError
	switch {
	case !f.mirrored:
		cloneURL := f.pr.GetBase().GetRepo().GetCloneURL()
		if cloneURL == "" {
			return buildPlan{step: stepFailBuild, err: permanent(fmt.Errorf("pull request %s has no base clone URL",
				build(f.ev.Repo, f.ev.Number, f.build)))}
		}
		return buildPlan{step: stepMirror, cloneURL: cloneURL}
	case !f.made:
		return buildPlan{step: stepMerge}
	case len(f.merged.Conflicts) > 0:
		return buildPlan{step: stepEndConflict, log: conflictLog(f.ev.HeadSHA, baseRef, f.merged),
			base:    testedBase(baseRef, f.merged, true),
			summary: status.MergeConflict(baseRef, f.merged.Base, len(f.merged.Conflicts))}
	case !f.checkedOut:
		return buildPlan{step: stepCheckout}
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
		p.description = status.PreparingFailed(int(f.attempt.delivered), int(f.attempt.attempts()), status.ErrorReason(f.verdict.Err))
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
