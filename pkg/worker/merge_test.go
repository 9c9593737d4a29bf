package worker

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/yourci/yourci/pkg/artifacts"
	"github.com/yourci/yourci/pkg/events"
)

// TestAMergeGroupIsTestedAsTheQueueMadeIt: a merge group's head is
// GitHub's merge already. When its branch has moved on since the group
// was made, the group is still tested as it is, not merged again, and its
// changes are counted from the group's own base commit.
func TestAMergeGroupIsTestedAsTheQueueMadeIt(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	pr := r.openPull(t, map[string]string{"feature.txt": "feature\n"})
	head, groupBase := pr.GetHead().GetSHA(), pr.GetBase().GetSHA()
	if _, err := r.gh.Commit(owner, repoName, "main", map[string]string{"main.txt": "moved\n"}, "main moves"); err != nil {
		t.Fatal(err)
	}
	inst, err := tokenGitHub{r.gh}.Installation(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.ws.UpdateMirror(ctx, owner, repoName, pr.GetBase().GetRepo().GetCloneURL(), inst.Git); err != nil {
		t.Fatal(err)
	}
	repo := events.Repo{Owner: owner, Name: repoName}
	group, err := events.GroupNumber(head)
	if err != nil {
		t.Fatal(err)
	}
	k := buildKey(repo, group, 1)
	m, err := r.w.pulls.merger.merge(ctx, k, head, "main", groupBase, false)
	if err != nil {
		t.Fatal(err)
	}
	if m.SHA != head || m.Base != groupBase || m.Behind != 0 {
		t.Errorf("group tested %.7s on %.7s, %d behind; want its head %.7s on its base %.7s, 0 behind", m.SHA, m.Base, m.Behind, head, groupBase)
	}
	if diff := cmp.Diff([]string{"feature.txt"}, m.Changes); diff != "" {
		t.Errorf("group's changes (-want +got):\n%s", diff)
	}
	rec, err := r.w.opts.Records.BuildRecord(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if b := rec.Base; b == nil || !b.Queued || b.Merged || b.SHA != groupBase {
		t.Errorf("recorded base %+v, want the group's base %.7s, queued, not merged", b, groupBase)
	}
	if _, err := r.w.pulls.merger.merge(ctx, buildKey(repo, group, 2), head, "main", "not-a-sha", false); err == nil {
		t.Error("a group without a base commit was built")
	}
}

// TestABuildKeepsTheBaseItFirstMerged: a build handled again (a
// redelivery after a crash) merges the base its record names, not the
// base's new tip, so its pin and its tests' checkouts stay one commit; a
// box that never saw the build makes the same merge for a test.
func TestABuildKeepsTheBaseItFirstMerged(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	pr := r.openPull(t, map[string]string{"feature.txt": "feature\n"})
	head := pr.GetHead().GetSHA()
	base2, err := r.gh.Commit(owner, repoName, "main", map[string]string{"main.txt": "moved\n"}, "main moves")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := tokenGitHub{r.gh}.Installation(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	cloneURL := pr.GetBase().GetRepo().GetCloneURL()
	update := func(ws *artifacts.Workspace) {
		t.Helper()
		if err := ws.UpdateMirror(ctx, owner, repoName, cloneURL, inst.Git); err != nil {
			t.Fatal(err)
		}
	}
	update(r.ws)
	repo := events.Repo{Owner: owner, Name: repoName}
	k := buildKey(repo, pr.GetNumber(), 41)
	first, err := r.w.pulls.merger.merge(ctx, k, head, "main", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if first.Base != base2 || first.SHA == head || first.Behind != 1 {
		t.Fatalf("first merge %+v, want the head merged into %.7s, 1 behind", first, base2)
	}

	base3, err := r.gh.Commit(owner, repoName, "main", map[string]string{"main.txt": "moved again\n"}, "main moves again")
	if err != nil {
		t.Fatal(err)
	}
	update(r.ws)
	again, err := r.w.pulls.merger.merge(ctx, k, head, "main", "", false)
	if err != nil {
		t.Fatal(err)
	}
	if again.SHA != first.SHA || again.Base != base2 {
		t.Errorf("handled again, the build merged %.7s into %.7s, want %.7s into %.7s", again.SHA, again.Base, first.SHA, base2)
	}
	if next, err := r.w.pulls.merger.merge(ctx, buildKey(repo, pr.GetNumber(), 42), head, "main", "", true); err != nil || next.Base != base3 {
		t.Errorf("a new build merged into %.7s (%v), want the new tip %.7s", next.Base, err, base3)
	}

	// A second box: its own workspace, which has never seen the merge.
	other, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w2, err := New(Options{Workspace: other, Evaluator: r.w.opts.Evaluator, Runner: r.w.opts.Runner,
		GitHub: r.w.opts.GitHub, Queue: r.w.opts.Queue, Records: r.w.opts.Records})
	if err != nil {
		t.Fatal(err)
	}
	b := build(repo, pr.GetNumber(), 41)
	work, err := other.SourceDir(b)
	if err != nil {
		t.Fatal(err)
	}
	job := events.TestJob{Repo: repo, Number: pr.GetNumber(), Build: 41, HeadSHA: head, BaseSHA: base2, TestSHA: first.SHA}
	fetched, err := w2.tests.checkoutTest(ctx, inst, cloneURL, "main", b, job, work)
	if err != nil || !fetched {
		t.Fatalf("checkout on a second box: fetched %v, %v", fetched, err)
	}
	out, err := exec.CommandContext(ctx, "git", "-C", work, "rev-parse", "HEAD").Output()
	if err != nil || strings.TrimSpace(string(out)) != first.SHA {
		t.Errorf("the second box checked out %q (%v), want the build's merge %s", out, err, first.SHA)
	}
	if data, err := os.ReadFile(work + "/main.txt"); err != nil || string(data) != "moved\n" {
		t.Errorf("the second box's checkout has main.txt %q (%v), want the base the build merged", data, err)
	}
}

func TestPullAsTested(t *testing.T) {
	t.Parallel()
	const sha = "1234567890123456789012345678901234567890"
	for _, tc := range []struct{ name, in, want string }{
		{"base_sha_replaced_nulls_kept", `{"number":1,"body":null,"base":{"ref":"main","sha":"old","repo":null}}`,
			`{"base":{"ref":"main","repo":null,"sha":"` + sha + `"},"body":null,"number":1}`},
		{"missing_base_gets_one", `{"number":1}`, `{"base":{"sha":"` + sha + `"},"number":1}`},
		{"null_base_gets_one", `{"base":null}`, `{"base":{"sha":"` + sha + `"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pullAsTested(json.RawMessage(tc.in), sha)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := pullAsTested(json.RawMessage(`{"base":"main"}`), sha); err == nil {
		t.Error("a base that is not an object was taken")
	}
}
