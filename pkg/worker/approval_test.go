package worker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/status"
)

// publishLabeled queues the event of a labeled webhook: the head as it
// was when the label was added, and who added it.
func (r *rig) publishLabeled(t *testing.T, number int, sha, by, delivery string) {
	t.Helper()
	err := r.bus.Queue().PublishPull(context.Background(), events.PullEvent{
		Version: events.Version, Repo: events.Repo{Owner: owner, Name: repoName},
		Number: number, HeadSHA: sha, Delivery: delivery, LabeledBy: by,
	})
	if err != nil {
		t.Fatal(err)
	}
	r.published.Add(1)
}

// settled waits until every pull event published so far has been handled
// and settled (acked or terminated; none waiting to be delivered again).
func (r *rig) settled(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		c, err := r.js.Consumer(ctx, events.DefaultStream, events.PullConsumer)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// NumPending may lag a publication; the delivery count may not.
		if info.NumPending == 0 && info.NumAckPending == 0 &&
			info.Delivered.Consumer >= r.published.Load() && info.AckFloor.Consumer == info.Delivered.Consumer {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pull events never settled: %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// yciHistory is every yci status of sha, oldest first, as "state: description".
func (r *rig) yciHistory(sha string) []string {
	var out []string
	for _, s := range r.gh.Statuses(owner, repoName, sha) {
		if s.GetContext() == "yci" && !buildSummary(s) {
			out = append(out, s.GetState()+": "+s.GetDescription())
		}
	}
	return out
}

// nextSecond waits for the clock's next whole second: GitHub's times have
// whole seconds, and a label read from the issue events counts only when
// it was added in a later second than YourCI's request for approval.
func nextSecond() {
	// The wait is the behaviour: the clock must pass a second boundary.
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second).Sub(now))
}

// waitHistory waits until sha's yci statuses, oldest first, are want:
// the projector writes them from the records after the handler's change,
// so a settled delivery does not mean its status is on GitHub yet.
func (r *rig) waitHistory(t *testing.T, sha string, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.gh.WaitStatuses(ctx, owner, repoName, sha, func(map[string]github.RepoStatus) bool {
		return slices.Equal(r.yciHistory(sha), want)
	}); err != nil {
		t.Fatalf("yci statuses %q, want %q: %v", r.yciHistory(sha), want, err)
	}
}

func (r *rig) built(t *testing.T, pull, number int) bool {
	t.Helper()
	dir, err := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pull, Number: number})
	if err != nil {
		t.Fatal(err)
	}
	return exists(dir)
}

func TestApproval(t *testing.T) {
	t.Parallel()
	needed := "pending: " + status.ApprovalNeeded("ok-to-test")
	t.Run("label_by_someone_who_may_not_write_builds_nothing", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		if err := r.gh.SetPermission(owner, repoName, "triager", "triage"); err != nil {
			t.Fatal(err)
		}
		n, sha := r.openForkPull(t, "mallory")
		r.publish(t, n, sha, "d1")
		if err := r.gh.AddLabelAs(owner, repoName, n, "ok-to-test", "triager"); err != nil {
			t.Fatal(err)
		}
		r.publishLabeled(t, n, sha, "triager", "d2-labeled")
		// A sweep reading the issue events finds the same labeler.
		r.publish(t, n, sha, "reconcile")
		r.settled(t)
		if r.built(t, n, 1) {
			t.Error("a label by a triager built the fork")
		}
		r.waitHistory(t, sha, needed)
	})
	t.Run("a_new_push_needs_a_new_approval", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		if err := r.gh.SetPermission(owner, repoName, "maint", "write"); err != nil {
			t.Fatal(err)
		}
		n, first := r.openForkPull(t, "mallory")
		r.publish(t, n, first, "d1")
		r.settled(t)
		if err := r.gh.AddLabelAs(owner, repoName, n, "ok-to-test", "maint"); err != nil {
			t.Fatal(err)
		}
		r.publishLabeled(t, n, first, "maint", "d2-labeled")
		if s := r.waitFinal(t, first, "yci/t")["yci/t"]; s.GetState() != "success" {
			t.Fatalf("approved head: %s %q, want success", s.GetState(), s.GetDescription())
		}
		// The author pushes again; the label is still there.
		second, err := r.gh.PushPull(owner, repoName, n, map[string]string{"more.txt": "more\n"})
		if err != nil {
			t.Fatal(err)
		}
		r.publish(t, n, second, "d3-synchronize")
		r.settled(t)
		r.publish(t, n, second, "reconcile")
		r.settled(t)
		if r.built(t, n, 2) {
			t.Error("a push after the approval was built without a new one")
		}
		r.waitHistory(t, second, needed)
		// Re-adding the label approves the new head, even with its
		// webhook lost: the sweep reads who added it, and when.
		nextSecond()
		if err := r.gh.RemoveLabel(owner, repoName, n, "ok-to-test"); err != nil {
			t.Fatal(err)
		}
		if err := r.gh.AddLabelAs(owner, repoName, n, "ok-to-test", "maint"); err != nil {
			t.Fatal(err)
		}
		r.publish(t, n, second, "reconcile-2")
		if s := r.waitFinal(t, second, "yci/t")["yci/t"]; s.GetState() != "success" {
			t.Errorf("re-approved head: %s %q, want success", s.GetState(), s.GetDescription())
		}
		r.waitHistory(t, second, needed, "pending: "+status.Approved("maint"))
	})
	t.Run("label_in_another_case_builds_and_asks_nothing_more", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		if err := r.gh.SetPermission(owner, repoName, "maint", "maintain"); err != nil {
			t.Fatal(err)
		}
		n, sha := r.openForkPull(t, "mallory")
		r.publish(t, n, sha, "d1")
		r.settled(t)
		r.waitHistory(t, sha, needed) // approval asked before the label comes
		if err := r.gh.AddLabelAs(owner, repoName, n, "OK-To-Test", "maint"); err != nil {
			t.Fatal(err)
		}
		r.publishLabeled(t, n, sha, "maint", "d2-labeled")
		if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
			t.Fatalf("%s %q, want success", s.GetState(), s.GetDescription())
		}
		r.publish(t, n, sha, "reconcile")
		r.settled(t)
		r.waitHistory(t, sha, needed, "pending: "+status.Approved("maint"))
	})
	t.Run("labeled_before_yci_asked_and_webhook_lost_does_not_count", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		n, sha := r.openForkPull(t, "mallory", "ok-to-test")
		// Opened with the label by its author: the issue events name
		// mallory, and no approval was ever asked for.
		r.publish(t, n, sha, "reconcile")
		r.settled(t)
		if r.built(t, n, 1) {
			t.Error("a label the author added built the fork")
		}
	})
}

func TestPullRequestReachesYciPyAsGitHubSentIt(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openPull(t, map[string]string{".yci.py": `from yci.run import Bash

def test_generator(build_id, pull):
    name = 'body-none' if pull['body'] is None else 'body-set'
    yield Bash('true', name=name)
`})
	r.publish(t, pr.GetNumber(), pr.GetHead().GetSHA(), "d1")
	if s := r.waitFinal(t, pr.GetHead().GetSHA(), "yci/body-none")["yci/body-none"]; s.GetState() != "success" {
		t.Errorf("%s %q, want success", s.GetState(), s.GetDescription())
	}
}

func TestMissingPullRequestIsFinal(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	r.openPull(t, map[string]string{".yci.py": oneTest})
	r.publish(t, 99, strings.Repeat("a", 40), "d1")
	r.settled(t)
	if n := r.gh.Requests().ByRoute["GET /repos/{owner}/{repo}/pulls/{number}"]; n != 1 {
		t.Errorf("pull request read %d times, want once", n)
	}

	base := r.gh.URL() + "/"
	c, err := github.NewClient(github.WithURLs(&base, &base), github.WithAuthToken(r.gh.Token()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		repo events.Repo
		pull int
	}{
		{"pull_request", events.Repo{Owner: owner, Name: repoName}, 99},
		{"repository", events.Repo{Owner: owner, Name: "gone"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := getPull(context.Background(), c, tt.repo, tt.pull)
			var perm permanentError
			var gh *github.ErrorResponse
			if !errors.As(err, &perm) || !errors.As(err, &gh) || gh.Response.StatusCode != http.StatusNotFound {
				t.Errorf("getPull = %v, want a permanent error wrapping GitHub's 404", err)
			}
		})
	}
}

// An event no edge would publish now (an older receiver's, for owner
// my.org) ends at once: terminated, with nothing asked of GitHub, rather
// than handed back until MaxDeliver.
func TestInvalidEventEndsAtOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	repo := events.Repo{Owner: "my.org", Name: "widgets"}
	data, err := json.Marshal(events.PullEvent{Version: events.Version, Repo: repo, Number: 1, HeadSHA: strings.Repeat("a", 40), Delivery: "old"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.js.Publish(context.Background(), events.PullSubject(repo), data); err != nil {
		t.Fatal(err)
	}
	r.published.Add(1)
	r.settled(t)
	if got := r.gh.Requests().Total; got != 0 {
		t.Errorf("%d GitHub requests for an invalid event, want none", got)
	}
}

// buildSummary tells a build's summary, which the projector writes from
// the build record and which links to the build's page, from the head's
// own yci states (approval, .yci.py errors) written before any build.
func buildSummary(s github.RepoStatus) bool {
	return strings.HasSuffix(s.GetTargetURL(), "/index.html")
}
