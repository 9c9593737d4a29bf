package artifacts

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// gitCounter puts a git on PATH that logs each run's subcommand before
// running the real git, and returns what ran since its last call. Each
// git process costs milliseconds on the way from a webhook to a test's
// start, so the tests below pin how many the preparing steps run. It
// sets PATH, so its test cannot be parallel.
func gitCounter(t *testing.T) func() []string {
	t.Helper()
	real, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := "#!/bin/sh\n" +
		"for a in \"$@\"; do case \"$a\" in -*) ;; *) echo \"$a\" >>'" + log + "'; break;; esac; done\n" +
		"exec '" + real + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "git"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() []string {
		out, err := os.ReadFile(log)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		_ = os.Remove(log)
		return strings.Fields(string(out))
	}
}

// TestMergeGitProcesses: a head already on the base's tip costs three
// git processes (the two commits read together, merge-base, diff-tree),
// one behind four (the count too), and a merge two more (merge-tree,
// commit-tree); the behind count is still right.
func TestMergeGitProcesses(t *testing.T) {
	f := newMergeFixture(t)
	ran := gitCounter(t)
	for _, tc := range []struct {
		name       string
		head       string
		wantBehind int
		want       []string
	}{
		{name: "up_to_date", head: f.upToDate,
			want: []string{"cat-file", "merge-base", "diff-tree"}},
		{name: "behind_and_merged", head: f.head, wantBehind: 1,
			want: []string{"cat-file", "merge-base", "rev-list", "diff-tree", "merge-tree", "commit-tree"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran()
			m, err := f.w.MergeBuild(testContext(t), "o", "r", tc.head, "main", true)
			if err != nil {
				t.Fatal(err)
			}
			if m.Behind != tc.wantBehind {
				t.Errorf("behind %d, want %d", m.Behind, tc.wantBehind)
			}
			if got := ran(); !slices.Equal(got, tc.want) {
				t.Errorf("git ran %q, want %q", got, tc.want)
			}
		})
	}
}

// TestMergeBehindCountAfterBaseMoves: the base moving on by two commits
// after the head was up to date makes it two behind, though the head is
// unchanged; a head merging the base again is behind none.
func TestMergeBehindCountAfterBaseMoves(t *testing.T) {
	t.Parallel()
	f := newMergeFixture(t)
	ctx := testContext(t)
	files := []file{{name: "README", content: "base\n"}, {name: "lib.py", content: "x = 2\n"}, {name: "old", content: "old\n"}, {name: "docs.md", content: "docs\n"}}
	again := f.o.commit(f.moved, "main again", files...)
	twice := f.o.commit(again, "main twice", files...)
	f.o.setRef("refs/heads/main", twice)
	if err := f.w.UpdateMirror(ctx, "o", "r", f.o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	m, err := f.w.MergeBuild(ctx, "o", "r", f.upToDate, "main", true)
	if err != nil {
		t.Fatal(err)
	}
	if m.Base != twice || m.Behind != 2 || m.SHA == f.upToDate || m.SHA == "" {
		t.Errorf("base %.7s behind %d tests %.7s; want %.7s, 2 behind, a merge", m.Base, m.Behind, m.SHA, twice)
	}
	if !slices.Equal(m.Changes, []string{"docs.md"}) {
		t.Errorf("changes %q, want [docs.md]", m.Changes)
	}
	// The merge is dated its parents' later committer date, as git reads it.
	mirror, _ := f.w.MirrorDir("o", "r")
	dates := strings.Fields(testGit(t, "", "--git-dir="+mirror, "log", "--no-walk=unsorted", "--format=%ct", twice, f.upToDate))
	merged := testGit(t, "", "--git-dir="+mirror, "show", "-s", "--format=%ct %at", m.SHA)
	if want := slices.Max(dates) + " " + slices.Max(dates); len(dates) != 2 || merged != want {
		t.Errorf("merge dated %q, want its parents' later date twice %q (parents %q)", merged, want, dates)
	}
}

// TestCheckoutGitProcesses: a build's first checkout lists the refs,
// pins its commit and checks out (the checkout alongside the other two),
// and the pin is there once Checkout returns; a test's checkout of the
// same build runs git once, to check out.
func TestCheckoutGitProcesses(t *testing.T) {
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	ran := gitCounter(t)
	if err := f.w.Checkout(ctx, f.b, f.head, "main", f.sourceDir(t)); err != nil {
		t.Fatal(err)
	}
	got := ran()
	slices.Sort(got)
	if want := []string{"checkout", "for-each-ref", "update-ref"}; !slices.Equal(got, want) {
		t.Errorf("the build's checkout ran git %q, want %q", got, want)
	}
	mirror, _ := f.w.MirrorDir("o", "r")
	if pinned := testGit(t, "", "--git-dir="+mirror, "rev-parse", "--verify", pinRef(f.b)); pinned != f.head {
		t.Errorf("pin %s is %q once Checkout returned, want %s", pinRef(f.b), pinned, f.head)
	}
	ran()
	dest, err := f.w.TestSourceDir(f.b, "foo")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.Checkout(ctx, f.b, f.head, "main", dest); err != nil {
		t.Fatal(err)
	}
	if got := ran(); !slices.Equal(got, []string{"checkout"}) {
		t.Errorf("a test's checkout ran git %q, want [checkout]", got)
	}
	if head := testGit(t, "", "-C", dest, "rev-parse", "HEAD", "origin/main"); !strings.HasPrefix(head, f.head+"\n") {
		t.Errorf("the test's checkout is at %q, want %s and its refs", head, f.head)
	}
}
