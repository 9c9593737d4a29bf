package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/projector"
	"github.com/yourci/yourci/pkg/status"
)

// appEnv makes a worker authenticate as the stand-in's GitHub App,
// installed on the repository's owner, instead of with the token.
func (s *stack) appEnv() []string {
	s.tb.Helper()
	s.gh.Install(owner)
	key := filepath.Join(s.dir, "app-key.pem")
	if err := os.WriteFile(key, s.gh.AppPrivateKeyPEM(), 0o600); err != nil {
		s.tb.Fatal(err)
	}
	return []string{"GITHUB_ACCESS_TOKEN=", "GITHUB_APP_ID=" + strconv.FormatInt(s.gh.AppID(), 10), "GITHUB_APP_PRIVATE_KEY_FILE=" + key}
}

// checkFinals are the conclusions of sha's completed test check runs.
func checkFinals(s *stack) func(sha string) map[string]string {
	return func(sha string) map[string]string {
		out := map[string]string{}
		for name, run := range s.gh.LatestCheckRuns(owner, repoName, sha) {
			if test, ok := strings.CutPrefix(name, "yci/"); ok && run.GetStatus() == "completed" {
				out[test] = run.GetConclusion()
			}
		}
		return out
	}
}

// TestCheckRunsWithAppAuth runs 8 pull requests of 4 quick tests on two
// workers authenticated as a GitHub App: each test is one check run, no
// commit status is written, each run's external_id leads back to its
// test, and the tests cost at most two writes each on average.
func TestCheckRunsWithAppAuth(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	env := append(s.appEnv(), "YCI_JOBS=2", "YCI_STATUS_HOLD=20s")
	load, shas := runWriteLoad(t, s, 2, 8, 4, checkFinals(s), env...)
	t.Log(load)
	if perTest := float64(load.testWrites) / float64(load.tests); perTest > 2 {
		t.Errorf("%.2f writes per test, want at most 2: %s", perTest, load)
	}
	for _, sha := range shas {
		if st := s.gh.Statuses(owner, repoName, sha); len(st) != 0 {
			t.Errorf("%.7s has %d commit statuses; an App writes check runs", sha, len(st))
		}
		checkSummaryRun(t, s, sha, 4)
		var runs []github.CheckRun
		for _, run := range s.gh.CheckRuns(owner, repoName, sha) {
			if run.GetName() != "yci" {
				runs = append(runs, run)
			}
		}
		if len(runs) != 4 {
			t.Errorf("%.7s has %d test check runs, want one per test", sha, len(runs))
		}
		for _, run := range runs {
			id, err := status.ParseExternalID(run.GetExternalID())
			if err != nil || "yci/"+id.Test != run.GetName() || id.SHA != sha || id.Build != 1 || id.Owner+"/"+id.Repo != owner+"/"+repoName {
				t.Errorf("%s: external_id %q reads %+v, %v", run.GetName(), run.GetExternalID(), id, err)
			}
			if run.GetConclusion() != "success" || !strings.HasSuffix(run.GetDetailsURL(), "/"+id.Test+"/out.txt") {
				t.Errorf("%s: %s, details %s", run.GetName(), run.GetConclusion(), run.GetDetailsURL())
			}
			if !strings.Contains(run.GetOutput().GetSummary(), "passed (exit status 0)") || !strings.Contains(run.GetOutput().GetText(), "attempt 1/1 passed") {
				t.Errorf("%s: output lacks the attempt and the log's end:\n%s\n%s", run.GetName(), run.GetOutput().GetSummary(), run.GetOutput().GetText())
			}
		}
	}
}

// checkSummaryRun waits for the summary check run "yci" of sha to
// complete, and checks that it passed, links to the build page and names
// its build.
func checkSummaryRun(t *testing.T, s *stack, sha string, tests int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	var summary github.CheckRun
	err := s.gh.WaitCheckRuns(ctx, owner, repoName, sha, func(runs []github.CheckRun) bool {
		for _, run := range runs {
			if run.GetName() == "yci" && run.GetStatus() == "completed" {
				summary = run
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Errorf("%.7s: no completed summary check run yci: %v", sha, err)
		return
	}
	id, err := status.ParseExternalID(summary.GetExternalID())
	if err != nil || id.Test != "" || id.SHA != sha || id.Build != 1 || id.Pull < 1 {
		t.Errorf("yci: external_id %q reads %+v, %v", summary.GetExternalID(), id, err)
	}
	if summary.GetConclusion() != "success" || !strings.HasSuffix(summary.GetDetailsURL(), "/pulls/"+strconv.Itoa(id.Pull)+"/1/index.html") {
		t.Errorf("yci: %s, details %s", summary.GetConclusion(), summary.GetDetailsURL())
	}
	// The plan: every test .yci.py gave, with its command and attempts.
	if out := summary.GetOutput().GetSummary(); !strings.Contains(out, fmt.Sprintf("**Tests** (%d), as `.yci.py` gave them:\n\n```\n", tests)) ||
		strings.Count(out, " attempt") != tests {
		t.Errorf("yci: the summary's output does not list the %d tests it ran:\n%s", tests, out)
	}
}

// BenchmarkCheckRunWrites is BenchmarkStatusWrites with the workers
// authenticated as a GitHub App, writing check runs.
func BenchmarkCheckRunWrites(b *testing.B) {
	for b.Loop() {
		s := newStack(b, stackOptions{})
		env := append(s.appEnv(), "YCI_JOBS=2", "YCI_STATUS_HOLD="+projector.DefaultHold.String())
		load, _ := runWriteLoad(b, s, 2, 40, 4, checkFinals(s), env...)
		b.ReportMetric(float64(load.testWrites)/float64(load.tests), "writes/test")
		b.ReportMetric(float64(load.summaryWrites)/float64(load.tests), "summary-writes/test")
		b.ReportMetric(float64(load.requests)/float64(load.tests), "requests/test")
		b.Log(load)
	}
}
