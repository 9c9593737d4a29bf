package fakegithub_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/yourci/yourci/pkg/fakegithub"
	"github.com/yourci/yourci/pkg/webhook"
)

func TestQueuePull(t *testing.T) {
	t.Parallel()
	s, err := fakegithub.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	rp, err := s.CreateRepo("acme", "widget")
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Commit("acme", "widget", "main", map[string]string{"README": "w\n"}, "init")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit("acme", "widget", "feature", map[string]string{"new.txt": "new\n"}, "change"); err != nil {
		t.Fatal(err)
	}
	// The base moves on after the pull opened: the group merges both.
	pr, err := s.OpenPull("acme", "widget", fakegithub.PullSpec{Head: "feature", Base: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if base, err = s.Commit("acme", "widget", "main", map[string]string{"other.txt": "o\n"}, "meanwhile"); err != nil {
		t.Fatal(err)
	}
	rc, url := newReceiver(t, http.StatusAccepted)
	s.AddHook(url, "s3cret")

	g, err := s.QueuePull("acme", "widget", pr.GetNumber())
	if err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("git", append([]string{"--git-dir=" + rp.GitDir}, args...)...).Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	t.Run("head_is_a_merge_of_the_pull_into_its_base_on_the_queue_branch", func(t *testing.T) {
		if got := git("rev-parse", g.HeadRef); got != g.HeadSHA {
			t.Errorf("%s is at %s, want %s", g.HeadRef, got, g.HeadSHA)
		}
		if got, want := git("rev-list", "--parents", "-n1", g.HeadSHA), g.HeadSHA+" "+base+" "+pr.GetHead().GetSHA(); got != want {
			t.Errorf("parents %q, want %q", got, want)
		}
		if files := git("ls-tree", "--name-only", g.HeadSHA); files != "README\nnew.txt\nother.txt" {
			t.Errorf("tree holds %q, want both sides' files", files)
		}
		if g.BaseSHA != base || g.BaseRef != "refs/heads/main" || !strings.HasPrefix(g.HeadRef, "refs/heads/gh-readonly-queue/main/pr-1-") {
			t.Errorf("group %+v", g)
		}
	})
	if err := s.DestroyGroup(g, "merged"); err != nil {
		t.Fatal(err)
	}
	t.Run("webhooks_are_signed_merge_group_deliveries_the_receiver_reads", func(t *testing.T) {
		var got []received
		for _, d := range rc.all() {
			if d.header.Get("X-GitHub-Event") != "ping" {
				got = append(got, d)
			}
		}
		if len(got) != 2 {
			t.Fatalf("%d deliveries, want checks_requested and destroyed", len(got))
		}
		for i, want := range []bool{false, true} {
			d := got[i]
			if d.header.Get("X-GitHub-Event") != "merge_group" || d.header.Get("X-Hub-Signature-256") != fakegithub.Signature256("s3cret", d.body) {
				t.Errorf("delivery %d headers %v", i, d.header)
			}
			ge, err := webhook.GroupEventFrom(d.body, "d")
			if err != nil {
				t.Fatalf("delivery %d: %v\n%s", i, err, d.body)
			}
			if ge.Destroyed != want || ge.Event.HeadSHA != g.HeadSHA {
				t.Errorf("delivery %d: %+v", i, ge)
			}
		}
	})
}
