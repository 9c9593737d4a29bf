package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/status"
)

// alternatingScript fails test flaky on its even runs (the build's own
// run, re-run 2, ...) and passes it on odd ones: each re-run of flaky
// flips its result, so every button and command shows in the outcome.
const alternatingScript = `if [ "$T" = flaky ] && [ $((YCI_RERUN % 2)) = 0 ]; then echo "simulated network failure on run $YCI_RERUN"; exit 1; fi
echo "passed on run $YCI_RERUN"`

// waitCheckRuns waits until done holds for the check runs of sha (every
// one, oldest first).
func (s *stack) waitCheckRuns(sha, what string, done func([]github.CheckRun) bool) []github.CheckRun {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	var runs []github.CheckRun
	err := s.gh.WaitCheckRuns(ctx, owner, repoName, sha, func(rs []github.CheckRun) bool {
		runs = rs
		return done(rs)
	})
	if err != nil {
		s.tb.Fatalf("waiting for %s on %.7s: %v; check runs:\n%s", what, sha, err, describeRuns(runs))
	}
	return runs
}

// describeRuns lists check runs one a line, for failure messages.
func describeRuns(runs []github.CheckRun) string {
	var b strings.Builder
	for _, r := range runs {
		b.WriteString(r.GetName() + " " + r.GetExternalID() + " " + r.GetStatus() + "/" + r.GetConclusion() + "\n")
	}
	return b.String()
}

// runsOf are the runs of test name, oldest first, each as
// "<rerun>:<conclusion>", "" while it is not completed.
func runsOf(runs []github.CheckRun, name string) []string {
	var out []string
	for _, r := range runs {
		id, err := status.ParseExternalID(r.GetExternalID())
		if err != nil || id.Test != name {
			continue
		}
		out = append(out, strconv.Itoa(id.Rerun)+":"+r.GetConclusion())
	}
	return out
}

// settledRuns reports whether every test named in want has exactly the
// runs want gives it, all completed.
func settledRuns(want map[string][]string) func([]github.CheckRun) bool {
	return func(runs []github.CheckRun) bool {
		for name, w := range want {
			got := runsOf(runs, name)
			if strings.Join(got, " ") != strings.Join(w, " ") {
				return false
			}
		}
		return true
	}
}

// checkRunID is the id of the newest check run of test name.
func checkRunID(t *testing.T, runs []github.CheckRun, name string) int64 {
	t.Helper()
	var id int64
	for _, r := range runs {
		if r.GetName() == status.Context(name) && r.GetID() > id {
			id = r.GetID()
		}
	}
	if id == 0 {
		t.Fatalf("no check run of %s:\n%s", name, describeRuns(runs))
	}
	return id
}

// TestRerunButtonsAndRetestWithAppAuth drives GitHub's re-run buttons and
// /retest against a worker authenticated as a GitHub App, through signed
// check_run, check_suite and issue_comment webhooks: each re-run is a new
// check run with its own log, the old ones stay as they were, and a press
// on a commit that is no longer the head runs nothing.
func TestRerunButtonsAndRetestWithAppAuth(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", append(s.appEnv(), "YCI_JOBS=2")...)
	s.grant("maintainer", "write")
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"flaky", "steady"}, 0, 0), "test.sh": s.script(alternatingScript)})
	runs := s.waitCheckRuns(sha, "the build", settledRuns(map[string][]string{"flaky": {"0:failure"}, "steady": {"0:success"}}))
	failedOnce := finalIs(map[string]events.TestState{"flaky": events.TestFailed, "steady": events.TestPassed})
	s.waitRecord(w, n, 1, "the build's end", failedOnce)
	var firstLog string
	for _, r := range runs {
		if r.GetName() == "yci/flaky" {
			firstLog = r.GetDetailsURL()
		}
	}

	// "Re-run" on flaky's failed check: a new check run, its own log.
	if err := s.gh.RerequestCheckRun(owner, repoName, checkRunID(t, runs, "flaky"), "maintainer"); err != nil {
		t.Fatal(err)
	}
	runs = s.waitCheckRuns(sha, "flaky's re-run", settledRuns(map[string][]string{"flaky": {"0:failure", "1:success"}, "steady": {"0:success"}}))
	s.waitRecord(w, n, 1, "flaky's re-run's end", finalIs(map[string]events.TestState{"flaky": events.TestPassed, "steady": events.TestPassed}))
	build := w.httpRoot + owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/1/"
	for _, r := range runs {
		if id, _ := status.ParseExternalID(r.GetExternalID()); id.Test == "flaky" && id.Rerun == 1 {
			if r.GetDetailsURL() != build+"flaky/rerun-1/out.txt" {
				t.Errorf("re-run 1's details_url %q, want %q", r.GetDetailsURL(), build+"flaky/rerun-1/out.txt")
			}
			if got := fetch(t, r.GetDetailsURL()); !strings.Contains(got, "passed on run 1") {
				t.Errorf("re-run 1's log lacks its output:\n%s", got)
			}
		}
	}
	if got := fetch(t, firstLog); !strings.Contains(got, "simulated network failure on run 0") || strings.Contains(got, "passed") {
		t.Errorf("the first run's log at %s was not kept as it was:\n%s", firstLog, got)
	}

	// "Re-run all checks" on the suite: every test of the build again.
	if err := s.gh.RerequestCheckSuite(owner, repoName, sha, "maintainer"); err != nil {
		t.Fatal(err)
	}
	s.waitCheckRuns(sha, "the suite's re-run", settledRuns(map[string][]string{
		"flaky": {"0:failure", "1:success", "2:failure"}, "steady": {"0:success", "1:success"}}))
	s.waitRecord(w, n, 1, "the suite's re-run's end", failedOnce)

	// /retest reads the failed tests from the build record: flaky only.
	s.comment(n, "maintainer", "/retest")
	runs = s.waitCheckRuns(sha, "/retest of the failed check", settledRuns(map[string][]string{
		"flaky": {"0:failure", "1:success", "2:failure", "3:success"}, "steady": {"0:success", "1:success"}}))
	if got := len(s.starts(sha, "steady")); got != 2 {
		t.Errorf("steady started %d times, want 2 (its build and the suite's re-run)", got)
	}
	if st := s.gh.Statuses(owner, repoName, sha); len(st) != 0 {
		for _, x := range st {
			if strings.HasPrefix(x.GetContext(), "yci/") {
				t.Errorf("an App wrote commit status %s %q", x.GetContext(), x.GetDescription())
			}
		}
	}

	// A press on a commit that is no longer the head runs nothing.
	oldRun := checkRunID(t, runs, "flaky")
	second := s.push(n)
	s.waitCheckRuns(second, "the new head's build", settledRuns(map[string][]string{"flaky": {"0:failure"}, "steady": {"0:success"}}))
	if err := s.gh.RerequestCheckRun(owner, repoName, oldRun, "maintainer"); err != nil {
		t.Fatal(err)
	}
	s.waitLog(w, "which is no longer the head of the pull request")
	if got := len(s.gh.CheckRuns(owner, repoName, sha)); got != len(runs) {
		t.Errorf("%d check runs on the old head after a press there, want %d", got, len(runs))
	}
	if got := len(s.gh.Comments(owner, repoName, n)); got != 1 {
		t.Errorf("%d comments, want only /retest: a button press is answered in the log, never on the pull", got)
	}
}

// TestOkToTest: /ok-to-test from a writer builds an untrusted pull
// request's head and replaces "approval needed"; from anyone else it gets
// a reply and builds nothing; a new push needs approval again.
func TestOkToTest(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker")
	s.grant("triager", "triage", "maint", "write")
	needed := status.ApprovalNeeded("ok-to-test")
	n, first := s.openForkPull("mallory", "patch")
	s.waitYci(first, needed)

	refused := s.comment(n, "triager", "Looks fine to me.\n/ok-to-test")
	s.waitComments(n, "a reply to the triager", func(cs []github.IssueComment) bool {
		for _, c := range cs {
			if c.GetUser().GetLogin() == fakegithub.BotLogin && strings.HasPrefix(c.GetBody(), "@triager: only people with write access") {
				return true
			}
		}
		return false
	})
	if got := s.buildDirs(w.name, n); len(got) != 0 {
		t.Fatalf("builds %v after a triager's /ok-to-test, want none", got)
	}

	s.nextSecond() // the writer reads the head first: see nextSecond
	accepted := s.comment(n, "maint", "/ok-to-test")
	if st := s.waitFinal(first, "yci/t")["yci/t"]; st.GetState() != "success" {
		t.Fatalf("approved head: %s %q, want success", st.GetState(), st.GetDescription())
	}
	// "approval needed" is replaced: by "approved by maint" or, when the
	// write budget coalesced that away, by the build's summary.
	s.waitStatuses(first, "yci replaced", func(m map[string]github.RepoStatus) bool {
		st := m["yci"]
		return st.GetDescription() != "" && st.GetDescription() != needed
	})
	if r := s.waitReaction(accepted.GetID(), "the accepted /ok-to-test"); len(r) != 1 || r[0].GetContent() != "rocket" {
		t.Errorf("reactions to the accepted /ok-to-test: %+v, want one rocket", r)
	}
	if r := s.gh.Reactions(owner, repoName, refused.GetID()); len(r) != 0 {
		t.Errorf("the refused /ok-to-test got reactions %+v", r)
	}

	// The author pushes again: approval is asked again, nothing built.
	second := s.push(n)
	s.waitYci(second, needed)
	if got := s.buildDirs(w.name, n); len(got) != 1 {
		t.Errorf("builds %v after an unapproved push, want only the approved one", got)
	}
	// The same writer approves the new head too.
	s.nextSecond()
	s.comment(n, "maint", "/ok-to-test")
	if st := s.waitFinal(second, "yci/t")["yci/t"]; st.GetState() != "success" {
		t.Fatalf("second approved head: %s %q, want success", st.GetState(), st.GetDescription())
	}
	if got := s.buildDirs(w.name, n); len(got) != 2 {
		t.Errorf("builds %v, want one per approved head", got)
	}
}
