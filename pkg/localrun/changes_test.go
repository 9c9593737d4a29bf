package localrun

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// changesConfig yields one test whose name says what changed_files() said,
// or none when nothing changed.
const changesConfig = `from yci.changes import changed_files
from yci.run import Bash

def test_generator(build_id, pull):
    files = changed_files()
    if files:
        yield Bash('true', name='seen', env={'CHANGED': ','.join(files)})
`

// TestRunTellsWhatChanged: a local run's changed_files() is what a pull
// request of the branch into its base would show, plus the work not yet
// committed, compared with -base or by default with the upstream or
// origin/HEAD; the run prints what it used.
func TestRunTellsWhatChanged(t *testing.T) {
	t.Parallel()
	src := writeCheckout(t, map[string]string{".yci.py": changesConfig, "lib.py": "x = 1\n", "docs/index.md": "docs\n"})
	git(t, src, "init", "--quiet", "--initial-branch=main")
	git(t, src, "add", ".")
	git(t, src, "commit", "--quiet", "-m", "first")
	git(t, src, "checkout", "--quiet", "-b", "feature")
	writeFiles(t, src, map[string]string{"lib.py": "x = 2\n"})
	git(t, src, "commit", "--quiet", "-am", "feature work")
	// main moves on: its change is not the branch's.
	git(t, src, "checkout", "--quiet", "main")
	writeFiles(t, src, map[string]string{"other.py": "y = 1\n"})
	git(t, src, "add", "other.py")
	git(t, src, "commit", "--quiet", "-m", "main moves")
	git(t, src, "checkout", "--quiet", "feature")
	// Work not yet committed: a changed tracked file and a new one.
	writeFiles(t, src, map[string]string{"docs/index.md": "better docs\n", "new.txt": "new\n"})
	branchWork := "docs/index.md,lib.py,new.txt"

	noUpstream := copyCheckout(t, src)
	withOriginHead := copyCheckout(t, src)
	git(t, withOriginHead, "update-ref", "refs/remotes/origin/main", git(t, withOriginHead, "rev-parse", "main"))
	git(t, withOriginHead, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
	// The branch pushed with `git push -u`: its upstream is itself on the
	// remote, which is no base; origin/HEAD is.
	pushed := copyCheckout(t, withOriginHead)
	git(t, pushed, "remote", "add", "origin", "https://example.invalid/project.git")
	git(t, pushed, "update-ref", "refs/remotes/origin/feature", git(t, pushed, "rev-parse", "feature"))
	git(t, pushed, "branch", "--set-upstream-to=origin/feature")
	// A branch tracking another branch (checkout -b --track origin/main)
	// merges into it, origin/HEAD or not.
	tracking := copyCheckout(t, src)
	git(t, tracking, "remote", "add", "origin", "https://example.invalid/project.git")
	git(t, tracking, "update-ref", "refs/remotes/origin/main", git(t, tracking, "rev-parse", "main"))
	git(t, tracking, "branch", "--set-upstream-to=origin/main")
	git(t, tracking, "update-ref", "refs/remotes/origin/release", git(t, tracking, "rev-parse", "main"))
	// A subdirectory of a repository with a .yci.py of its own: no
	// top level, so no change to tell.
	sub := filepath.Join(copyCheckout(t, src), "docs")
	writeFiles(t, sub, map[string]string{".yci.py": changesConfig})
	for _, tc := range []struct {
		name, src, base string
		want            string // CHANGED, "" for no test
		wantOut         string
		wantErr         string
	}{
		{name: "base_given", src: src, base: "main", want: branchWork, wantOut: "changes: 3 files since main"},
		{name: "base_given_as_a_commit", src: src, base: git(t, src, "rev-parse", "feature~1"), want: branchWork},
		{name: "head_as_base_leaves_the_uncommitted_work", src: src, base: "HEAD", want: "docs/index.md,new.txt"},
		{name: "origin_head_by_default", src: withOriginHead, want: branchWork, wantOut: "since origin/main"},
		{name: "pushed_branch_compares_with_origin_head_not_itself", src: pushed, want: branchWork, wantOut: "since origin/main"},
		{name: "upstream_of_another_name_is_the_base", src: tracking, want: branchWork, wantOut: "since origin/main"},
		{name: "no_default_base_is_a_note", src: noUpstream, wantErr: "did not say what changed", wantOut: "note: changed_files() is not available"},
		{name: "a_bad_base_is_an_error", src: src, base: "no-such-branch", wantErr: "-base no-such-branch"},
		{name: "a_base_only_on_origin_is_named", src: tracking, base: "release", wantErr: "did you mean origin/release?"},
		{name: "base_given_in_a_subdirectory_is_an_error", src: sub, base: "main", wantErr: "must be a git repository's top level"},
		{name: "subdirectory_without_base_is_a_note", src: sub, wantErr: "did not say what changed", wantOut: "note: changed_files() is not available: " + sub},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			rep, err := Run(context.Background(), Options{Source: tc.src, Workspace: t.TempDir(), Base: tc.base, Progress: &out})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error about %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
			if tc.wantErr != "" {
				return
			}
			var got string
			for _, r := range rep.Tests {
				got = r.Test.Env["CHANGED"]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("changed_files() (-want +got):\n%s\noutput:\n%s", diff, out.String())
			}
		})
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// copyCheckout copies the checkout at src, its .git included.
func copyCheckout(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}
