package e2e

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/status"
)

const oneTestPy = `from yci.run import Bash

def test_generator(build_id, pull):
    yield Bash('echo built', name='t')
`

// openForkPull opens a pull request from author's fork on branch, with a
// one-test .yci.py, and returns its number and head.
func (s *stack) openForkPull(author, branch string) (int, string) {
	s.tb.Helper()
	if _, err := s.gh.Commit(owner, repoName, "main", map[string]string{"README.md": "widgets\n"}, "Initial commit"); err != nil {
		s.tb.Fatal(err)
	}
	if _, err := s.gh.Fork(owner, repoName, author); err != nil {
		s.tb.Fatal(err)
	}
	if _, err := s.gh.Commit(author, repoName, branch, map[string]string{".yci.py": oneTestPy}, "Add tests"); err != nil {
		s.tb.Fatal(err)
	}
	pr, err := s.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: branch, Author: author, Fork: true})
	if err != nil {
		s.tb.Fatal(err)
	}
	return pr.GetNumber(), pr.GetHead().GetSHA()
}

// waitYci waits until the latest yci status of sha has description want.
func (s *stack) waitYci(sha, want string) {
	s.tb.Helper()
	s.waitStatuses(sha, "yci "+want, func(m map[string]github.RepoStatus) bool {
		st := m["yci"]
		return st.GetDescription() == want
	})
}

// waitLog waits until a process has logged text.
func (s *stack) waitLog(w *worker, text string) {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	for !strings.Contains(w.Output(), text) {
		select {
		case <-ctx.Done():
			s.tb.Fatalf("%s never logged %q", w.name, text)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestApprovalIsBoundToTheApprovedHead plays GitHub Actions' model with
// real webhooks: a label counts only from someone who may write, covers
// the head it was given for, and a new push asks again.
func TestApprovalIsBoundToTheApprovedHead(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker")
	s.grant("triager", "triage", "maint", "write")
	needed := status.ApprovalNeeded("ok-to-test")
	n, first := s.openForkPull("mallory", "patch")
	s.waitYci(first, needed)

	// A label by someone who may not write builds nothing.
	if err := s.gh.AddLabelAs(owner, repoName, n, "ok-to-test", "triager"); err != nil {
		t.Fatal(err)
	}
	s.waitLog(w, "approval ignored")
	if got := s.buildDirs(w.name, n); len(got) != 0 {
		t.Fatalf("builds %v after a triager's label, want none", got)
	}

	// A writer's label builds the head they saw.
	if err := s.gh.RemoveLabel(owner, repoName, n, "ok-to-test"); err != nil {
		t.Fatal(err)
	}
	if err := s.gh.AddLabelAs(owner, repoName, n, "ok-to-test", "maint"); err != nil {
		t.Fatal(err)
	}
	if st := s.waitFinal(first, "yci/t")["yci/t"]; st.GetState() != "success" {
		t.Fatalf("approved head: %s %q, want success", st.GetState(), st.GetDescription())
	}
	// The request for approval is replaced, not left pending for the
	// sweep to turn into an error.
	checkApprovalReplaced(t, s, first, needed)

	// The author pushes again, the label still on: approval is asked
	// again and nothing is built.
	second := s.push(n)
	s.waitYci(second, needed)
	if got := s.buildDirs(w.name, n); len(got) != 1 {
		t.Errorf("builds %v after an unapproved push, want only the approved one", got)
	}
	if st, ok := s.gh.LatestStatuses(owner, repoName, second)["yci/t"]; ok {
		t.Errorf("the unapproved head has a test status: %s %q", st.GetState(), st.GetDescription())
	}
}

// TestApprovalLabelIgnoresCase: "OK-To-Test" is the approval label for the
// receiver and the worker alike, so it builds, and no "needs approval"
// follows.
func TestApprovalLabelIgnoresCase(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker")
	needed := status.ApprovalNeeded("ok-to-test")
	n, sha := s.openForkPull("mallory", "patch")
	s.waitYci(sha, needed)
	if err := s.gh.AddLabel(owner, repoName, n, "OK-To-Test"); err != nil {
		t.Fatal(err)
	}
	if st := s.waitFinal(sha, "yci/t")["yci/t"]; st.GetState() != "success" {
		t.Fatalf("%s %q, want success", st.GetState(), st.GetDescription())
	}
	checkApprovalReplaced(t, s, sha, needed)
}

// TestOwnerNamesOneRule: my_org (an Enterprise Managed User's kind of
// login) is built end to end, while my.org, which GitHub never allows, is
// refused by the receiver with 400 and published nowhere.
func TestOwnerNamesOneRule(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker")
	const org, repo = "my_org", "widgets"
	if _, err := s.gh.CreateRepo(org, repo); err != nil {
		t.Fatal(err)
	}
	if _, err := s.gh.Commit(org, repo, "main", map[string]string{"README.md": "widgets\n"}, "Initial commit"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.gh.Commit(org, repo, "feature", map[string]string{".yci.py": oneTestPy}, "Add tests"); err != nil {
		t.Fatal(err)
	}
	pr, err := s.gh.OpenPull(org, repo, fakegithub.PullSpec{Head: "feature"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	err = s.gh.WaitStatuses(ctx, org, repo, pr.GetHead().GetSHA(), func(m map[string]github.RepoStatus) bool {
		st := m["yci/t"]
		return st.GetState() == "success"
	})
	if err != nil {
		t.Fatalf("%s/%s never built: %v", org, repo, err)
	}

	payload, err := s.gh.PullRequestPayload(org, repo, pr.GetNumber(), "synchronize")
	if err != nil {
		t.Fatal(err)
	}
	dotted := bytes.ReplaceAll(payload, []byte(org), []byte("my.org"))
	resp, _, err := fakegithub.Deliver(ctx, s.recv.WebhookURL, secret, "pull_request", dotted)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("delivery for owner my.org answered %d, want 400", resp.StatusCode)
	}
}

// TestApprovalWhoseWebhookWasLost: the labeled webhook never arrives (as
// on a box GitHub cannot always reach), and the sweep carries the
// approval. A writer's label counts when the issue events show it added
// after YourCI asked; a later push is asked again.
func TestApprovalWhoseWebhookWasLost(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{noHook: true})
	w := s.startWorker("worker", "YCI_JOBS=1")
	s.grant("maint", "write")
	needed := status.ApprovalNeeded("ok-to-test")
	n, first := s.openForkPull("mallory", "patch")
	// Only the opened webhook gets through.
	payload, err := s.gh.PullRequestPayload(owner, repoName, n, "opened")
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := fakegithub.Deliver(s.ctx, s.recv.WebhookURL, secret, "pull_request", payload)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	s.waitYci(first, needed)

	// GitHub's times have whole seconds; a label must be seen to come
	// after the request for approval.
	// The wait is the behaviour: the clock must pass a second boundary.
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
	if err := s.gh.AddLabelAs(owner, repoName, n, "ok-to-test", "maint"); err != nil {
		t.Fatal(err)
	}
	s.reconcile(1)
	if st := s.waitFinal(first, "yci/t")["yci/t"]; st.GetState() != "success" {
		t.Fatalf("approved head: %s %q, want success", st.GetState(), st.GetDescription())
	}
	checkApprovalReplaced(t, s, first, needed)

	second := s.push(n)
	s.reconcile(2)
	s.waitYci(second, needed)
	if got := s.buildDirs(w.name, n); len(got) != 1 {
		t.Errorf("builds %v after an unapproved push, want only the approved one", got)
	}
}

// checkApprovalReplaced checks that the summary yci of an approved head
// went from "approval needed" to the build's own summary, success, and
// never back: the request for approval is replaced, not left pending for
// the sweep to turn into an error. ("approved by …; building" may be
// overtaken by the build's own summary within the summary interval.)
func checkApprovalReplaced(t *testing.T, s *stack, sha, needed string) {
	t.Helper()
	s.waitFinal(sha, "yci")
	got := s.descriptions(sha, "yci")
	if len(got) < 2 || got[0] != "pending: "+needed || !strings.HasPrefix(got[len(got)-1], "success: ") {
		t.Errorf("summary history:\n  %s\nwant %q first and a success last", strings.Join(got, "\n  "), "pending: "+needed)
	}
	for _, d := range got[1:] {
		if strings.Contains(d, "needs approval") {
			t.Errorf("summary asked for approval again after the build started: %q", d)
		}
	}
}
