package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/pipeline"
	"github.com/yourci/yourci/pkg/status"
)

// The pull handler's decisions, in memory: no NATS, git or python. The
// real-process tests (worker_test.go, merge_test.go, approval_test.go,
// ...) cover the wiring that carries them out.

func TestPlanClaim(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		claim events.Claim
		v     verdict
		want  claimPlan
	}{
		{"another_message_holds_the_build", events.Claim{Build: 4}, verdict{build: true}, claimPlan{built: true}},
		{"held_elsewhere_even_when_asked", events.Claim{Build: 4, Fresh: false}, verdict{build: true, asked: true}, claimPlan{built: true}},
		{"fresh_claim_announces_the_head", events.Claim{Build: 5, Mine: true, Fresh: true}, verdict{build: true}, claimPlan{announce: true}},
		{"fresh_claim_of_an_asked_head_shows_the_approval", events.Claim{Build: 5, Mine: true, Fresh: true}, verdict{build: true, by: "m", asked: true},
			claimPlan{announce: true, showApproved: true}},
		{"resumed_claim_neither_announces_nor_shows_again", events.Claim{Build: 5, Mine: true}, verdict{build: true, asked: true}, claimPlan{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := planClaim(tc.claim, tc.v); got != tc.want {
				t.Errorf("planClaim = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPlanAdmit(t *testing.T) {
	t.Parallel()
	invalid := errors.New("sha: empty")
	read := admitFacts{read: true}
	judged := admitFacts{read: true, judged: true, verdict: verdict{build: true, by: "m", asked: true}}
	claimed := func(c events.Claim) admitFacts {
		f := judged
		f.claimed, f.claim = true, c
		return f
	}
	cases := []struct {
		name string
		f    admitFacts
		want admitPlan
	}{
		{"invalid_event_is_refused_before_anything", admitFacts{invalid: invalid, read: true, judged: true}, admitPlan{step: admitRefuse, err: invalid}},
		{"valid_event_reads_its_pull_first", admitFacts{}, admitPlan{step: admitRead}},
		{"stale_head_is_dropped_before_the_gate", admitFacts{read: true, stale: "closed"}, admitPlan{step: admitDropStale}},
		{"current_head_asks_the_gate", read, admitPlan{step: admitJudge}},
		{"unapproved_head_waits_unclaimed", admitFacts{read: true, judged: true, verdict: verdict{asked: true}}, admitPlan{step: admitWait}},
		{"approved_head_claims", judged, admitPlan{step: admitClaim}},
		{"build_held_elsewhere_builds_nothing", claimed(events.Claim{Build: 4}), admitPlan{step: admitBuilt, claim: claimPlan{built: true}}},
		{"fresh_claim_builds_announced_and_shown", claimed(events.Claim{Build: 5, Mine: true, Fresh: true}),
			admitPlan{step: admitBuild, claim: claimPlan{announce: true, showApproved: true}}},
		{"resumed_claim_builds_quietly", claimed(events.Claim{Build: 5, Mine: true}), admitPlan{step: admitBuild}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := planAdmit(tc.f); got != tc.want {
				t.Errorf("planAdmit = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPlanMerge(t *testing.T) {
	t.Parallel()
	const base, merge = "3333333333333333333333333333333333333333", "4444444444444444444444444444444444444444"
	recMerged := &events.TestedBase{Ref: "main", SHA: base, Merged: true, Merge: merge}
	recAlone := &events.TestedBase{Ref: "main", SHA: base}
	recConflict := &events.TestedBase{Ref: "main", SHA: base, Merged: true, Conflicts: []string{"a.go"}}
	cases := []struct {
		name string
		f    mergeFacts
		want mergePlan
	}{
		{"resumed_claim_reads_its_record", mergeFacts{}, mergePlan{step: mergeReadRecord}},
		{"fresh_claim_reads_no_record", mergeFacts{fresh: true}, mergePlan{step: mergeNew, merge: true}},
		{"fresh_claim_ignores_a_leftover_record", mergeFacts{fresh: true, read: true, recorded: recMerged}, mergePlan{step: mergeNew, merge: true}},
		{"no_record_merges_anew", mergeFacts{read: true}, mergePlan{step: mergeNew, merge: true}},
		{"heads_alone_are_not_merged", mergeFacts{read: true, headOnly: true}, mergePlan{step: mergeNew}},
		{"recorded_merge_is_made_again", mergeFacts{read: true, recorded: recMerged}, mergePlan{step: mergeRemake, base: base, want: merge}},
		{"recorded_head_alone_is_taken_again", mergeFacts{read: true, recorded: recAlone}, mergePlan{step: mergeRemake, base: base, want: decideSHA}},
		{"recorded_conflict_merges_anew", mergeFacts{read: true, recorded: recConflict}, mergePlan{step: mergeNew, merge: true}},
		{"recorded_base_outranks_the_group", mergeFacts{read: true, group: true, recorded: recAlone}, mergePlan{step: mergeRemake, base: base, want: decideSHA}},
		{"group_is_compared_with_its_base", mergeFacts{fresh: true, group: true}, mergePlan{step: mergeGroup}},
		{"record_without_a_base_merges_anew", mergeFacts{read: true, recorded: &events.TestedBase{}}, mergePlan{step: mergeNew, merge: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.head = decideSHA
			if got := planMerge(tc.f); got != tc.want {
				t.Errorf("planMerge = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// planPull is a pull request as a webhook carries it, for the plans.
func planPull() *github.PullRequest {
	updated := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600))
	return &github.PullRequest{
		Number: github.Ptr(3), State: github.Ptr("open"), UpdatedAt: &github.Timestamp{Time: updated},
		Head: &github.PullRequestBranch{SHA: github.Ptr(decideSHA), Ref: github.Ptr("feature")},
		Base: &github.PullRequestBranch{Ref: github.Ptr("main"), Repo: &github.Repository{CloneURL: github.Ptr("https://github.invalid/acme/widget.git")}},
	}
}

func TestPlanBuild(t *testing.T) {
	t.Parallel()
	ev := events.PullEvent{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, HeadSHA: decideSHA, Installation: 9}
	merged := artifacts.Merged{SHA: decideNewer, Base: "3333333333333333333333333333333333333333", Changes: []string{"a.go", "b.go"}}
	conflicted := merged
	conflicted.Conflicts = []string{"a.go", "we\"ird\n.go"}
	refusal := &pipeline.ConfigError{File: ".yci.py", Line: 3, Message: "no tests() function"}
	tests := []pipeline.Test{{Name: "unit", Command: "go test", Retries: 2}, {Name: "lint", Command: "vet"}}
	cases := []struct {
		name string
		f    buildFacts
		want buildStep
		err  string // a substring of the plan's error
	}{
		{name: "merged_head_is_evaluated", f: buildFacts{merged: merged}, want: stepEvaluate},
		{name: "conflict_ends_before_evaluating", f: buildFacts{merged: conflicted}, want: stepEndConflict},
		{name: "conflict_outranks_an_evaluation", f: buildFacts{merged: conflicted, evaluated: true, tests: tests}, want: stepEndConflict},
		{name: "refused_yci_py_ends_the_build", f: buildFacts{merged: merged, evaluated: true, err: fmt.Errorf("evaluating: %w", refusal)}, want: stepEndConfigError},
		{name: "broken_evaluation_fails_the_attempt", f: buildFacts{merged: merged, evaluated: true, err: errors.New("python3: killed")},
			want: stepFailBuild, err: "evaluating .yci.py: python3: killed"},
		{name: "tests_are_queued", f: buildFacts{merged: merged, evaluated: true, tests: tests}, want: stepQueueTests},
		{name: "no_tests_is_a_verdict_too", f: buildFacts{merged: merged, evaluated: true}, want: stepQueueTests},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.ev, tc.f.pr, tc.f.build = ev, planPull(), 7
			tc.f.mirrored, tc.f.made, tc.f.checkedOut = true, true, true
			p := planBuild(tc.f)
			if p.step != tc.want {
				t.Fatalf("step = %v, want %v", p.step, tc.want)
			}
			if (p.err != nil) != (tc.err != "") || p.err != nil && !strings.Contains(p.err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", p.err, tc.err)
			}
			switch p.step {
			case stepEndConflict:
				for _, want := range []string{"does not merge into main at " + merged.Base, `"we\"ird\n.go"`} {
					if !strings.Contains(p.log, want) {
						t.Errorf("log %q lacks %q", p.log, want)
					}
				}
				if want := status.MergeConflict("main", merged.Base, 2); p.summary != want {
					t.Errorf("summary = %q, want %q", p.summary, want)
				}
				if p.base == nil || !p.base.Merged || p.base.SHA != merged.Base || len(p.base.Conflicts) != 2 {
					t.Errorf("base = %+v, want the merge's base with both conflicts", p.base)
				}
			case stepEndConfigError:
				if p.refusal != refusal {
					t.Errorf("refusal = %v, want %v", p.refusal, refusal)
				}
			case stepQueueTests:
				if len(p.jobs) != len(tc.f.tests) {
					t.Fatalf("%d jobs for %d tests", len(p.jobs), len(tc.f.tests))
				}
				if p.changes == nil || p.changes.Total != 2 {
					t.Errorf("changes = %+v, want both files", p.changes)
				}
			}
		})
	}
}

func TestPlanBuildPreparesInOrder(t *testing.T) {
	t.Parallel()
	ev := events.PullEvent{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, HeadSHA: decideSHA, Installation: 9}
	merged := artifacts.Merged{SHA: decideNewer, Base: "3333333333333333333333333333333333333333"}
	conflicted := merged
	conflicted.Conflicts = []string{"a.go"}
	noURL := planPull()
	noURL.Base.Repo = nil
	cases := []struct {
		name      string
		pr        *github.PullRequest
		f         buildFacts
		want      buildStep
		permanent bool
	}{
		{name: "first_the_mirror", pr: planPull(), want: stepMirror},
		{name: "no_clone_url_fails_for_good", pr: noURL, want: stepFailBuild, permanent: true},
		{name: "then_the_merge", pr: planPull(), f: buildFacts{mirrored: true}, want: stepMerge},
		{name: "then_the_checkout", pr: planPull(), f: buildFacts{mirrored: true, made: true, merged: merged}, want: stepCheckout},
		{name: "a_conflict_is_not_checked_out", pr: planPull(), f: buildFacts{mirrored: true, made: true, merged: conflicted}, want: stepEndConflict},
		{name: "then_the_evaluation", pr: planPull(), f: buildFacts{mirrored: true, made: true, merged: merged, checkedOut: true}, want: stepEvaluate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.ev, tc.f.pr, tc.f.build = ev, tc.pr, 7
			p := planBuild(tc.f)
			if p.step != tc.want {
				t.Fatalf("step = %v, want %v", p.step, tc.want)
			}
			var perm permanentError
			if got := errors.As(p.err, &perm); got != tc.permanent {
				t.Errorf("err = %v, permanent %v, want %v", p.err, got, tc.permanent)
			}
			if p.step == stepMirror && p.cloneURL != tc.pr.GetBase().GetRepo().GetCloneURL() {
				t.Errorf("clone URL = %q, want the base repository's", p.cloneURL)
			}
		})
	}
}

func TestTestJobsStartWithoutReadingGitHub(t *testing.T) {
	t.Parallel()
	ev := events.PullEvent{Repo: events.Repo{Owner: "acme", Name: "widget"}, Number: 3, HeadSHA: decideSHA, Installation: 9}
	m := artifacts.Merged{SHA: decideNewer, Base: "3333333333333333333333333333333333333333"}
	pr := planPull()
	got := testJobs(ev, pr, 7, []pipeline.Test{{Name: "unit", Command: "go test", Retries: 2, Env: map[string]string{"A": "1"}}}, m)
	want := []events.TestJob{{
		Version: events.Version, Repo: ev.Repo, Number: 3, HeadSHA: decideSHA, Installation: 9, Build: 7, Attempt: 1,
		Test:    events.TestSpec{Name: "unit", Command: "go test", Retries: 2, Env: map[string]string{"A": "1"}},
		BaseRef: "main", CloneURL: "https://github.invalid/acme/widget.git", HeadRef: "feature",
		PullUpdatedAt: pr.GetUpdatedAt().UTC(), BaseSHA: m.Base, TestSHA: m.SHA,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("testJobs (-want +got):\n%s", diff)
	}
	if loc := got[0].PullUpdatedAt.Location(); loc != time.UTC {
		t.Errorf("PullUpdatedAt in %v, want UTC", loc)
	}
}

func TestPlanPullEnd(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		f      pullEndFacts
		want   Outcome
		delay  time.Duration
		record bool
	}{
		{"success_is_done_and_tells_nothing", pullEndFacts{delivered: 1}, Done, 0, false},
		{"transient_failure_is_handed_back_and_told", pullEndFacts{err: errors.New("nats timeout"), delivered: 2}, HandBack, 30 * time.Second, true},
		{"permanent_failure_terminates_and_is_told", pullEndFacts{err: permanent(errors.New("no clone URL")), delivered: 1}, Terminate, 0, true},
		{"shutdown_hands_back_at_once_and_tells_nothing", pullEndFacts{err: context.Canceled, stopping: true, delivered: 4}, HandBack, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planPullEnd(tc.f)
			if got.verdict.Outcome != tc.want || got.verdict.Delay != tc.delay || got.recordFailure != tc.record {
				t.Errorf("planPullEnd = %+v, want %v after %v, told %v", got, tc.want, tc.delay, tc.record)
			}
			if !errors.Is(got.verdict.Err, tc.f.err) {
				t.Errorf("verdict carries %v, want %v", got.verdict.Err, tc.f.err)
			}
		})
	}
}

func TestPlanPrepFailure(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	a := prepAttempt{delivered: 2, maxDeliver: 10}
	cases := []struct {
		name     string
		f        prepFailureFacts
		log      []string // substrings of the log entry, in order
		show     bool
		describe string
	}{
		{name: "handed_back_is_logged_and_shown_pending",
			f: prepFailureFacts{attempt: a, steps: []string{"claiming a build number", "build 7"}, build: 7, now: now,
				verdict: Verdict{Outcome: HandBack, Delay: 30 * time.Second, Err: errors.New("updating mirror: timeout")}},
			log:      []string{"attempt 2 of 9 at 2026-03-04T05:06:07Z\n", "claiming a build number\n", "build 7\n", "failed: updating mirror: timeout\n", "trying again in 30s\n\n"},
			show:     true,
			describe: status.PreparingFailed(2, 9, "updating mirror: timeout")},
		{name: "terminated_is_logged_not_shown",
			f:    prepFailureFacts{attempt: a, now: now, verdict: Verdict{Outcome: Terminate, Err: errors.New("no clone URL")}},
			log:  []string{"failed: no clone URL\n", "not tried again: this cannot succeed\n"},
			show: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := planPrepFailure(tc.f)
			rest := got.log
			for _, want := range tc.log {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Fatalf("log entry %q lacks %q (in order)", got.log, want)
				}
				rest = rest[i+len(want):]
			}
			for _, line := range strings.Split(strings.TrimRight(got.log, "\n"), "\n") {
				if !strings.HasPrefix(line, pipeline.LogPrefix) {
					t.Errorf("log line %q lacks the log prefix", line)
				}
			}
			if got.show != tc.show || got.description != tc.describe {
				t.Errorf("shown %v %q, want %v %q", got.show, got.description, tc.show, tc.describe)
			}
			if got.show && got.build != tc.f.build {
				t.Errorf("shown about build %d, want %d", got.build, tc.f.build)
			}
		})
	}
}

func TestPlanGiveUp(t *testing.T) {
	t.Parallel()
	log, desc := planGiveUp(prepAttempt{delivered: 10, maxDeliver: 10})
	if !strings.HasPrefix(log, pipeline.LogPrefix) || !strings.Contains(log, "gave up after 9 attempts") || !strings.HasSuffix(log, "\n") {
		t.Errorf("log line %q, want one prefixed line giving up after 9 attempts", log)
	}
	if want := status.GaveUpPreparing(9); desc != want {
		t.Errorf("description %q, want %q", desc, want)
	}
}
