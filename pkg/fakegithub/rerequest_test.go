package fakegithub_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
)

// TestRerequestButtons presses "Re-run" on a check run and "Re-run all
// checks" on its suite, and reads the signed webhooks as GitHub sends
// them: the run and suite with their ids, App, commit and pull request,
// the sender and the installation.
func TestRerequestButtons(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	rc, url := newReceiver(t, http.StatusAccepted)
	pr := openPull(t, s, "feature", fakegithub.PullSpec{})
	sha := pr.GetHead().GetSHA()
	c := appClient(t, s)
	s.AddHook(url, "s3cret")
	run, _, err := c.Checks.CreateCheckRun(testContext(t), "acme", "widgets", github.CreateCheckRunOptions{
		Name: "yci/unit", HeadSHA: sha, ExternalID: github.Ptr("ext-1"), Conclusion: github.Ptr("failure"),
		Output: &github.CheckRunOutput{Title: github.Ptr("failed"), Summary: github.Ptr("failed")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RerequestCheckRun("acme", "widgets", run.GetID(), "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.RerequestCheckSuite("acme", "widgets", sha, "bob"); err != nil {
		t.Fatal(err)
	}
	got := map[string]received{}
	for _, r := range rc.all() {
		got[r.header.Get("X-GitHub-Event")] = r
		if ev := r.header.Get("X-GitHub-Event"); ev != "ping" && r.header.Get("X-Hub-Signature-256") != fakegithub.Signature256("s3cret", r.body) {
			t.Errorf("%s delivery is not signed with the hook's secret", ev)
		}
	}
	inst := func(ev interface{ GetInstallation() *github.Installation }) int64 {
		return ev.GetInstallation().GetID()
	}

	var runEv github.CheckRunEvent
	if err := json.Unmarshal(got["check_run"].body, &runEv); err != nil {
		t.Fatalf("check_run delivery: %v", err)
	}
	r := runEv.GetCheckRun()
	if runEv.GetAction() != "rerequested" || r.GetID() != run.GetID() || r.GetExternalID() != "ext-1" || r.GetName() != "yci/unit" ||
		r.GetHeadSHA() != sha || r.GetApp().GetID() != s.AppID() || r.GetCheckSuite().GetID() != run.GetCheckSuite().GetID() {
		t.Errorf("check_run payload does not describe the run: %s", got["check_run"].body)
	}
	if runEv.GetSender().GetLogin() != "alice" || inst(&runEv) == 0 || runEv.GetRepo().GetFullName() != "acme/widgets" {
		t.Errorf("check_run payload's sender, installation or repository: %s", got["check_run"].body)
	}
	if prs := r.GetCheckSuite().PullRequests; len(prs) != 1 || prs[0].GetNumber() != pr.GetNumber() || prs[0].GetHead().GetSHA() != sha {
		t.Errorf("check run's suite names pull requests %+v, want #%d", prs, pr.GetNumber())
	}
	if s.CheckRuns("acme", "widgets", sha)[0].GetConclusion() != "failure" {
		t.Error("pressing Re-run changed the check run; GitHub leaves it to the App")
	}

	var suiteEv github.CheckSuiteEvent
	if err := json.Unmarshal(got["check_suite"].body, &suiteEv); err != nil {
		t.Fatalf("check_suite delivery: %v", err)
	}
	cs := suiteEv.GetCheckSuite()
	if suiteEv.GetAction() != "rerequested" || cs.GetID() != run.GetCheckSuite().GetID() || cs.GetHeadSHA() != sha ||
		cs.GetApp().GetID() != s.AppID() || len(cs.PullRequests) != 1 || suiteEv.GetSender().GetLogin() != "bob" ||
		inst(&suiteEv) != inst(&runEv) {
		t.Errorf("check_suite payload does not describe the suite: %s", got["check_suite"].body)
	}

	if _, err := s.CheckRunRerequestedPayload("acme", "widgets", 999999, "alice"); err == nil {
		t.Error("a payload for a check run that does not exist")
	}
	if _, err := s.CheckSuiteRerequestedPayload("acme", "widgets", "0123456789012345678901234567890123456789", "bob"); err == nil {
		t.Error("a payload for a commit without a suite")
	}
}

// TestSuiteOfAForkNamesNoPullRequest: GitHub leaves pull requests from
// forks out of a check suite's pull_requests.
func TestSuiteOfAForkNamesNoPullRequest(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	seed(t, s)
	if _, err := s.Fork("acme", "widgets", "mallory"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit("mallory", "widgets", "evil", map[string]string{"x": "y\n"}, "x"); err != nil {
		t.Fatal(err)
	}
	pr, err := s.OpenPull("acme", "widgets", fakegithub.PullSpec{Fork: true, Head: "evil", Author: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	c := appClient(t, s)
	if _, _, err := c.Checks.CreateCheckRun(testContext(t), "acme", "widgets", github.CreateCheckRunOptions{
		Name: "yci/unit", HeadSHA: pr.GetHead().GetSHA(), Status: github.Ptr("queued"),
	}); err != nil {
		t.Fatal(err)
	}
	payload, err := s.CheckSuiteRerequestedPayload("acme", "widgets", pr.GetHead().GetSHA(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	var ev github.CheckSuiteEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	if prs := ev.GetCheckSuite().PullRequests; len(prs) != 0 {
		t.Errorf("a fork's suite names pull requests %+v, want none", prs)
	}
}
