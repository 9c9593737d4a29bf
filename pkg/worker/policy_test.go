package worker

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-github/v88/github"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/status"
)

const oneTest = "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('echo hi', name='t')\n"

// openForkPull opens a pull request from an outsider's fork.
func (r *rig) openForkPull(t *testing.T, author string, labels ...string) (int, string) {
	t.Helper()
	if _, err := r.gh.Commit(owner, repoName, "main", map[string]string{"README": "widget\n"}, "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.gh.Fork(owner, repoName, author); err != nil {
		t.Fatal(err)
	}
	if _, err := r.gh.Commit(author, repoName, "patch", map[string]string{".yci.py": oneTest}, "mine"); err != nil {
		t.Fatal(err)
	}
	pr, err := r.gh.OpenPull(owner, repoName, fakegithub.PullSpec{Head: "patch", Base: "main", Author: author, Fork: true, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	return pr.GetNumber(), pr.GetHead().GetSHA()
}

// waitFor waits until the latest statuses of sha satisfy ok.
func (r *rig) waitFor(t *testing.T, sha string, ok func(map[string]github.RepoStatus) bool) map[string]github.RepoStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got map[string]github.RepoStatus
	if err := r.gh.WaitStatuses(ctx, owner, repoName, sha, func(m map[string]github.RepoStatus) bool { got = m; return ok(m) }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestBuildPolicy(t *testing.T) {
	t.Parallel()
	t.Run("untrusted_fork_waits_for_approval_and_builds_nothing", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		n, sha := r.openForkPull(t, "mallory")
		r.publish(t, n, sha, "d1")
		got := r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool { _, ok := m["yci"]; return ok })
		if s := got["yci"]; s.GetState() != "pending" || !strings.Contains(s.GetDescription(), "ok-to-test") {
			t.Errorf("status %s %q, want pending naming the label", s.GetState(), s.GetDescription())
		}
		dir, _ := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: n, Number: 1})
		if exists(dir) {
			t.Error("an unapproved fork was checked out")
		}
		// A sweep brings the commit back: nothing more is written.
		r.publish(t, n, sha, "reconcile")
		// The maintainer approves: the sweep that reads who labeled it
		// builds the same commit.
		nextSecond()
		if err := r.gh.AddLabel(owner, repoName, n, "ok-to-test"); err != nil {
			t.Fatal(err)
		}
		r.publish(t, n, sha, "d2-labeled")
		if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
			t.Errorf("approved fork: %s %q, want success", s.GetState(), s.GetDescription())
		}
		// "Approval needed" once (the sweep wrote nothing more), then
		// replaced by the approval.
		var yci []string
		for _, s := range r.gh.Statuses(owner, repoName, sha) {
			if s.GetContext() == "yci" && !buildSummary(s) {
				yci = append(yci, s.GetState()+": "+s.GetDescription())
			}
		}
		want := []string{
			"pending: " + status.ApprovalNeeded("ok-to-test"),
			"pending: " + status.Approved("acme"),
		}
		if diff := cmp.Diff(want, yci); diff != "" {
			t.Errorf("yci statuses (-want +got):\n%s", diff)
		}
	})
	t.Run("fork_author_with_write_access_builds", func(t *testing.T) {
		t.Parallel()
		r := newRig(t)
		if err := r.gh.SetPermission(owner, repoName, "colleague", "write"); err != nil {
			t.Fatal(err)
		}
		n, sha := r.openForkPull(t, "colleague")
		r.publish(t, n, sha, "d1")
		if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
			t.Errorf("%s %q, want success", s.GetState(), s.GetDescription())
		}
	})
	t.Run("build_all_policy_builds_outsiders", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, func(o *Options) { o.Policy = BuildAll })
		n, sha := r.openForkPull(t, "stranger")
		r.publish(t, n, sha, "d1")
		if s := r.waitFinal(t, sha, "yci/t")["yci/t"]; s.GetState() != "success" {
			t.Errorf("%s %q, want success", s.GetState(), s.GetDescription())
		}
	})
}

func TestNewHeadStopsRunningTestOfOlderHead(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openPull(t, map[string]string{
		".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('echo started; sleep 600', name='slow')\n",
	})
	old := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), old, "d1")
	r.waitFor(t, old, func(m map[string]github.RepoStatus) bool {
		s := m["yci/slow"]
		return strings.HasPrefix(s.GetDescription(), "running")
	})
	newer := r.pushAndPublish(t, pr.GetNumber())
	s := r.waitFinal(t, old, "yci/slow")["yci/slow"]
	if s.GetState() != "error" || !strings.Contains(s.GetDescription(), "superseded by "+newer[:7]) {
		t.Errorf("old head: %s %q, want error saying superseded by %s", s.GetState(), s.GetDescription(), newer[:7])
	}
	// The new head's own test runs (and would take ten minutes): it is
	// enough that it started.
	r.waitFor(t, newer, func(m map[string]github.RepoStatus) bool {
		s := m["yci/slow"]
		return strings.HasPrefix(s.GetDescription(), "running")
	})
}

func TestKeepSupersededFinishesOlderHeads(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(o *Options) { o.KeepSuperseded = true })
	pr := r.openPull(t, map[string]string{
		".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('while [ ! -e ../../../go ]; do sleep 0.05; done', name='wait')\n",
	})
	old := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), old, "d1")
	r.waitFor(t, old, func(m map[string]github.RepoStatus) bool {
		s := m["yci/wait"]
		return strings.HasPrefix(s.GetDescription(), "running")
	})
	newer := r.pushAndPublish(t, pr.GetNumber())
	r.waitFor(t, newer, func(m map[string]github.RepoStatus) bool {
		s := m["yci/wait"]
		return strings.HasPrefix(s.GetDescription(), "running")
	})
	// Both heads' tests are running; release them.
	pulls, _ := r.ws.BuildDir(artifacts.Build{Owner: owner, Repo: repoName, Pull: pr.GetNumber(), Number: 1})
	if err := os.WriteFile(filepath.Join(pulls, "..", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sha := range []string{old, newer} {
		if s := r.waitFinal(t, sha, "yci/wait")["yci/wait"]; s.GetState() != "success" {
			t.Errorf("%s: %s %q, want success", sha[:7], s.GetState(), s.GetDescription())
		}
	}
}

func TestClosingThePullStopsItsRunningTest(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	pr := r.openPull(t, map[string]string{
		".yci.py": "from yci.run import Bash\n\ndef test_generator(build_id, pull):\n    yield Bash('sleep 600', name='slow')\n",
	})
	sha := pr.GetHead().GetSHA()
	r.publish(t, pr.GetNumber(), sha, "d1")
	r.waitFor(t, sha, func(m map[string]github.RepoStatus) bool {
		s := m["yci/slow"]
		return strings.HasPrefix(s.GetDescription(), "running")
	})
	// What the receiver announces on a "closed" delivery.
	err := r.bus.Heads().AnnounceHead(events.HeadAnnouncement{Repo: events.Repo{Owner: owner, Name: repoName}, Number: pr.GetNumber(), SHA: sha, Closed: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.waitFinal(t, sha, "yci/slow")["yci/slow"]; s.GetState() != "error" || !strings.Contains(s.GetDescription(), "closed") {
		t.Errorf("%s %q, want error saying the pull request closed", s.GetState(), s.GetDescription())
	}
}
