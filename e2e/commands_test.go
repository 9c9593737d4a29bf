package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/pause"
)

// rerunScript fails a test's first run and passes its re-runs, as a test
// that met a network flake too often for its retries would.
const rerunScript = `if [ "$T" = flaky ] && [ "$YCI_RERUN" = 0 ]; then echo "simulated network failure"; exit 1; fi
echo "passed on run $YCI_RERUN"`

// waitComments waits until done holds for the comments on pull n.
func (s *stack) waitComments(n int, what string, done func([]github.IssueComment) bool) []github.IssueComment {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	var got []github.IssueComment
	err := s.gh.WaitComments(ctx, owner, repoName, n, func(cs []github.IssueComment) bool {
		got = cs
		return done(cs)
	})
	if err != nil {
		s.tb.Fatalf("waiting for %s: %v", what, err)
	}
	return got
}

// waitReaction waits for the first reaction to comment id, which the
// worker adds just after it queued what the comment asked for, and
// returns every reaction then.
func (s *stack) waitReaction(id int64, what string) []github.Reaction {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	var r []github.Reaction
	if pause.Poll(ctx, 20*time.Millisecond, func() bool { r = s.gh.Reactions(owner, repoName, id); return len(r) > 0 }) != nil {
		s.tb.Fatalf("waiting for a reaction to %s", what)
	}
	return r
}

// grant gives each user the role on the repository, as pairs: user, role.
func (s *stack) grant(userRoles ...string) {
	s.tb.Helper()
	for i := 0; i+1 < len(userRoles); i += 2 {
		if err := s.gh.SetPermission(owner, repoName, userRoles[i], userRoles[i+1]); err != nil {
			s.tb.Fatal(err)
		}
	}
}

// comment posts body as author on pull n; the stand-in delivers the
// issue_comment webhook before it returns.
func (s *stack) comment(n int, author, body string) *github.IssueComment {
	s.tb.Helper()
	c, err := s.gh.Comment(owner, repoName, n, author, body)
	if err != nil {
		s.tb.Fatal(err)
	}
	return c
}

func TestRetestRerunsTheFailedTest(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=2")
	s.grant("maintainer", "write")
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"flaky", "steady"}, 0, 0), "test.sh": s.script(rerunScript)})
	first := s.waitFinal(sha, "yci/flaky", "yci/steady")
	if st := first["yci/flaky"]; st.GetState() != "failure" {
		t.Fatalf("flaky's first run is %s %q, want failure", st.GetState(), st.GetDescription())
	}
	flaky := first["yci/flaky"]
	firstURL := flaky.GetTargetURL()
	s.waitRecord(w, n, 1, "flaky failed", finalIs(map[string]events.TestState{"flaky": events.TestFailed, "steady": events.TestPassed}))

	c := s.comment(n, "maintainer", "The network flaked again.\n\n/retest\n")
	final := s.waitStatuses(sha, "flaky re-run", func(m map[string]github.RepoStatus) bool {
		st := m["yci/flaky"]
		return st.GetState() == "success"
	})

	build := owner + "/" + repoName + "/pulls/" + strconv.Itoa(n) + "/1/flaky/"
	wantURL := w.httpRoot + build + "rerun-1/out.txt"
	rerun := final["yci/flaky"]
	if got := rerun.GetTargetURL(); got != wantURL {
		t.Errorf("re-run's target URL %q, want %q", got, wantURL)
	}
	if got := fetch(t, wantURL); !strings.Contains(got, "passed on run 1") {
		t.Errorf("the re-run's log lacks its output:\n%s", got)
	}
	if got := fetch(t, firstURL); !strings.Contains(got, "simulated network failure") || strings.Contains(got, "passed on run") {
		t.Errorf("the first run's log at %s was not kept as it was:\n%s", firstURL, got)
	}
	checkHistory(t, s.descriptions(sha, "yci/flaky"), []string{
		"pending: queued",
		"pending: running",
		"failure: failed with exit code 1",
		"pending: queued: re-run 1 asked by @maintainer",
		"pending: running",
		"success: passed in",
	})
	if got := len(s.starts(sha, "flaky")); got != 2 {
		t.Errorf("flaky started %d times, want 2", got)
	}
	if got := len(s.starts(sha, "steady")); got != 1 {
		t.Errorf("steady, which passed, started %d times, want 1", got)
	}
	reactions := s.waitReaction(c.GetID(), "the command")
	if len(reactions) != 1 || reactions[0].GetContent() != "rocket" {
		t.Errorf("reactions to the command: %+v, want one rocket", reactions)
	}
	if cs := s.gh.Comments(owner, repoName, n); len(cs) != 1 {
		t.Errorf("%d comments, want only the command (no reply to an accepted command)", len(cs))
	}
}

// TestRetestRefusals wires refusals through the stack: GitHub's
// permission answer, the reply limit in key-value, the build's tests from
// its real checkout, and the bot's replies coming back as webhooks. Which
// command is refused why is decided by worker.planCommands and tested
// there (pkg/worker TestPlanCommands), in memory.
func TestRetestRefusals(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	s.startWorker("worker", "YCI_JOBS=2")
	s.grant("writer", "write", "reader", "triage")
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"steady"}, 0, 0), "test.sh": s.script(rerunScript)})
	s.waitFinal(sha, "yci/steady")

	posted := []*github.IssueComment{
		// Quoted and fenced commands are text: no event, no reply.
		s.comment(n, "writer", "> /retest\n\nWhy this?\n```\n/retest\n```\n"),
		s.comment(n, "reader", "/retest"),
		s.comment(n, "writer", "/retest unknown-test"),
	}
	replies := map[string]string{
		"@reader: only people with write access to " + owner + "/" + repoName:                      "non-writer",
		"@writer: `/retest` was refused: unknown test `unknown-test`. Build 1 has tests `steady`.": "unknown name",
	}
	byBot := func(cs []github.IssueComment) []github.IssueComment {
		var out []github.IssueComment
		for _, c := range cs {
			if c.GetUser().GetLogin() == fakegithub.BotLogin {
				out = append(out, c)
			}
		}
		return out
	}
	got := s.waitComments(n, "two replies", func(cs []github.IssueComment) bool {
		return len(byBot(cs)) >= 2
	})
	for _, c := range byBot(got) {
		found := false
		for prefix, what := range replies {
			if strings.HasPrefix(c.GetBody(), prefix) {
				found = true
				delete(replies, prefix)
				t.Logf("%s: %s", what, c.GetBody())
			}
		}
		if !found {
			t.Errorf("unexpected reply %q", c.GetBody())
		}
	}
	for prefix, what := range replies {
		t.Errorf("no reply for the %s command (starting %q)", what, prefix)
	}
	for _, c := range posted {
		if r := s.gh.Reactions(owner, repoName, c.GetID()); len(r) != 0 {
			t.Errorf("refused or ignored comment %q got reactions %+v", c.GetBody(), r)
		}
	}
	if got := len(s.starts(sha, "steady")); got != 1 {
		t.Errorf("steady started %d times, want 1: a refused command ran it", got)
	}
	checkHistory(t, s.descriptions(sha, "yci/steady"), []string{"pending: queued", "pending: running", "success: passed in"})
	// The bot's replies came back as issue_comment webhooks and were
	// ignored: more would show as more replies by now at the latest.
	if cs := s.gh.Comments(owner, repoName, n); len(cs) != len(posted)+2 {
		t.Errorf("%d comments, want %d", len(cs), len(posted)+2)
	}
}
