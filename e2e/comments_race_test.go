package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/status"
)

// deliverComment POSTs comment id's issue_comment webhook to the receiver,
// signed as GitHub signs it, under the given delivery id, and fails the
// test unless the receiver takes it (202).
func (s *stack) deliverComment(id int64, delivery string) {
	s.tb.Helper()
	body, err := s.gh.IssueCommentPayload(owner, repoName, id)
	if err != nil {
		s.tb.Fatal(err)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.recv.WebhookURL, bytes.NewReader(body))
	if err != nil {
		s.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "issue_comment")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.tb.Fatalf("delivering comment %d as %s: %v", id, delivery, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		s.tb.Fatalf("delivery %s of comment %d: %d %s, want 202", delivery, id, resp.StatusCode, answer)
	}
}

// waitLogCount waits until a process has logged text at least count times.
func (s *stack) waitLogCount(w *worker, text string, count int) {
	s.tb.Helper()
	ctx, cancel := context.WithTimeout(s.ctx, waitLimit)
	defer cancel()
	for strings.Count(w.Output(), text) < count {
		select {
		case <-ctx.Done():
			s.tb.Fatalf("%s logged %q %d times, want %d", w.name, text, strings.Count(w.Output(), text), count)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// botReplies are the comments YourCI wrote on pull n.
func (s *stack) botReplies(n int) []string {
	var out []string
	for _, c := range s.gh.Comments(owner, repoName, n) {
		if c.GetUser().GetLogin() == fakegithub.BotLogin {
			out = append(out, c.GetBody())
		}
	}
	return out
}

// TestOkToTestRace plays the race of issue 13: a writer writes /ok-to-test
// for an outsider's pull, the outsider pushes before the comment is
// handled (its webhook arrives after the push's), and the pushed commit
// must not run; the reply names the new head, and /ok-to-test with its sha
// builds it. Then the accepted comment's signed webhook, sent again under
// a new delivery id after a later push, runs nothing.
func TestOkToTestRace(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker")
	s.grant("maint", "write")
	needed := status.ApprovalNeeded("ok-to-test")
	n, first := s.openForkPull("mallory", "patch")
	s.waitYci(first, needed)

	// The writer looked at the first head and wrote /ok-to-test; GitHub's
	// delivery of it is late.
	c, err := s.gh.CommentUndelivered(owner, repoName, n, "maint", "Reviewed, looks safe.\n/ok-to-test")
	if err != nil {
		t.Fatal(err)
	}
	second := s.push(n) // lands before the comment is handled
	s.waitYci(second, needed)
	s.deliverComment(c.GetID(), "late-ok-to-test")
	s.waitComments(n, "a refusal naming the new head", func(cs []github.IssueComment) bool {
		for _, c := range cs {
			if strings.Contains(c.GetBody(), "the head of the pull request is now `"+second+"`") {
				return true
			}
		}
		return false
	})
	if got := s.buildDirs(w.name, n); len(got) != 0 {
		t.Fatalf("builds %v after a raced /ok-to-test, want none: the pushed commit ran unseen", got)
	}
	if got := len(s.starts(second, "t")); got != 0 {
		t.Fatalf("the pushed commit's test started %d times", got)
	}
	if r := s.gh.Reactions(owner, repoName, c.GetID()); len(r) != 0 {
		t.Errorf("the refused /ok-to-test got reactions %+v", r)
	}

	// The writer looks at the new head and approves it by its sha.
	named := s.comment(n, "maint", fmt.Sprintf("/ok-to-test %.9s", second))
	if st := s.waitFinal(second, "yci/t")["yci/t"]; st.GetState() != "success" {
		t.Fatalf("the named head: %s %q, want success", st.GetState(), st.GetDescription())
	}
	s.waitReaction(named.GetID(), "the /ok-to-test naming the head")

	// A later push, then the accepted comment's signed webhook sent again
	// under a new delivery id: nothing runs, nothing is replied.
	third := s.push(n)
	s.waitYci(third, needed)
	s.deliverComment(named.GetID(), "replayed-ok-to-test")
	s.waitLogCount(w, "already handled for another delivery", 1)
	if got := s.buildDirs(w.name, n); len(got) != 1 {
		t.Errorf("builds %v after the replay, want only the named head's", got)
	}
	if got := len(s.starts(third, "t")); got != 0 {
		t.Errorf("the third head's test started %d times after a replayed approval", got)
	}
	if got := s.botReplies(n); len(got) != 1 {
		t.Errorf("replies %q, want only the refusal of the raced comment", got)
	}
}

// TestTenRetestLinesRerunOnce: one writer comment with ten /retest lines
// re-runs the failed test once.
func TestTenRetestLinesRerunOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker", "YCI_JOBS=2")
	s.grant("maintainer", "write")
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"flaky", "steady"}, 0, 0), "test.sh": s.script(rerunScript)})
	if st := s.waitFinal(sha, "yci/flaky", "yci/steady")["yci/flaky"]; st.GetState() != "failure" {
		t.Fatalf("flaky's first run is %s, want failure", st.GetState())
	}
	s.waitRecord(w, n, 1, "flaky failed", finalIs(map[string]events.TestState{"flaky": events.TestFailed, "steady": events.TestPassed}))
	c := s.comment(n, "maintainer", strings.Repeat("/retest\n", 10))
	s.waitReaction(c.GetID(), "the ten /retest lines")
	s.waitStatuses(sha, "flaky re-run", func(m map[string]github.RepoStatus) bool {
		st := m["yci/flaky"]
		return st.GetState() == "success"
	})
	s.waitLogCount(w, "re-run queued", 1)
	if got := strings.Count(w.Output(), "re-run queued"); got != 1 {
		t.Errorf("%d re-runs queued, want 1", got)
	}
	if got := len(s.starts(sha, "flaky")); got != 2 {
		t.Errorf("flaky started %d times, want 2: its run and one re-run", got)
	}
}

// TestCommentFloodGetsOneReply: forty refused comments from a reader on
// one pull request cost one reply, counted in the stand-in's writes.
func TestCommentFloodGetsOneReply(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{})
	w := s.startWorker("worker")
	s.grant("reader", "triage")
	n, sha := s.openPull(map[string]string{".yci.py": yciPy([]string{"steady"}, 0, 0), "test.sh": s.script(rerunScript)})
	s.waitFinal(sha, "yci/steady")
	const route = "POST /repos/{owner}/{repo}/issues/{number}/comments"
	before := s.gh.Requests()
	const flood = 40
	for i := range flood {
		s.comment(n, "reader", fmt.Sprintf("please run it (%d)\n/retest", i))
	}
	s.waitLogCount(w, "command refused: author may not write", flood)
	s.waitLogCount(w, "refusal not replied", flood-1)
	after := s.gh.Requests()
	if got := s.botReplies(n); len(got) != 1 {
		t.Errorf("%d replies to %d refused comments, want 1", len(got), flood)
	}
	if posted := after.ByRoute[route] - before.ByRoute[route]; posted != 1 {
		t.Errorf("%d comment writes for the flood, want 1", posted)
	}
	t.Logf("REST writes during the flood: %d (comment posts %d)", after.Writes-before.Writes, after.ByRoute[route]-before.ByRoute[route])
}

// nextSecond waits until the clock has entered the next whole second.
// GitHub stamps a comment in whole seconds, and YourCI refuses a bare
// /ok-to-test stamped in the second its head was first seen, since it
// cannot tell which came first; a person reading a head before approving
// it is always later. The wait is for that clock event, at most a second.
func (s *stack) nextSecond() {
	s.tb.Helper()
	next := time.Now().Truncate(time.Second).Add(time.Second)
	select {
	case <-s.ctx.Done():
		s.tb.Fatal("the stack's deadline passed waiting for the next second")
	case <-time.After(time.Until(next)):
	}
}
