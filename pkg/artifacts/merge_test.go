package artifacts

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// mergeFixture is a repository whose main moved on after a pull request
// branched off it: base -> moved on main; base -> head on the pull.
type mergeFixture struct {
	o                      *origin
	w                      *Workspace
	base, moved, head      string
	conflicting, upToDate  string
	renamed, unrelatedHead string
}

func newMergeFixture(t *testing.T) *mergeFixture {
	t.Helper()
	o := newOrigin(t)
	f := &mergeFixture{o: o}
	f.base = o.commit("", "base", file{name: "README", content: "base\n"}, file{name: "lib.py", content: "x = 1\n"},
		file{name: "old", content: "old\n"})
	f.moved = o.commit(f.base, "main moves", file{name: "README", content: "base\n"}, file{name: "lib.py", content: "x = 2\n"},
		file{name: "old", content: "old\n"}, file{name: "docs.md", content: "docs\n"})
	f.head = o.commit(f.base, "pull", file{name: "README", content: "pull\n"}, file{name: "lib.py", content: "x = 1\n"},
		file{name: "old", content: "old\n"}, file{name: "test.sh", content: "echo ok\n"})
	f.conflicting = o.commit(f.base, "conflicts", file{name: "README", content: "base\n"}, file{name: "lib.py", content: "x = 3\n"},
		file{name: "old", content: "old\n"})
	f.upToDate = o.commit(f.moved, "up to date", file{name: "README", content: "base\n"}, file{name: "lib.py", content: "x = 2\n"},
		file{name: "old", content: "old\n"}, file{name: "docs.md", content: "docs v2\n"})
	// A rename, a deletion and names git would quote, or a command line
	// would take for an option.
	f.renamed = o.commit(f.base, "renames", file{name: "README", content: "base\n"}, file{name: "lib.py", content: "x = 1\n"},
		file{name: "new", content: "old\n"}, file{name: "-rf", content: "dash\n"}, file{name: "line\nbreak", content: "nl\n"},
		file{name: "caf\xe9", content: "latin-1\n"})
	f.unrelatedHead = o.commit("", "unrelated", file{name: "README", content: "elsewhere\n"})
	o.setRef("refs/heads/main", f.moved)
	for i, sha := range []string{f.head, f.conflicting, f.upToDate, f.renamed, f.unrelatedHead} {
		o.setRef("refs/pull/"+string(rune('1'+i))+"/head", sha)
	}
	f.w = openWorkspace(t)
	if err := f.w.UpdateMirror(testContext(t), "o", "r", o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMergeBuild(t *testing.T) {
	t.Parallel()
	f := newMergeFixture(t)
	for _, tc := range []struct {
		name          string
		head          string
		merge         bool
		wantMerge     bool // SHA is a new merge commit
		wantBehind    int
		wantChanges   []string
		wantConflicts []string
	}{
		{name: "head_is_merged_into_the_moved_base", head: f.head, merge: true, wantMerge: true, wantBehind: 1,
			wantChanges: []string{"README", "test.sh"}},
		{name: "merge_off_tests_the_head_alone", head: f.head, merge: false, wantBehind: 1,
			wantChanges: []string{"README", "test.sh"}},
		{name: "a_head_containing_the_base_is_tested_as_it_is", head: f.upToDate, merge: true,
			wantChanges: []string{"docs.md"}},
		{name: "a_conflict_names_its_paths", head: f.conflicting, merge: true, wantBehind: 1,
			wantChanges: []string{"lib.py"}, wantConflicts: []string{"lib.py"}},
		{name: "renames_list_both_names_and_names_come_raw", head: f.renamed, merge: true, wantMerge: true, wantBehind: 1,
			wantChanges: []string{"-rf", "caf\xe9", "line\nbreak", "new", "old"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := f.w.MergeBuild(testContext(t), "o", "r", tc.head, "main", tc.merge)
			if err != nil {
				t.Fatal(err)
			}
			if m.Base != f.moved || m.Behind != tc.wantBehind {
				t.Errorf("base %.7s behind %d, want %.7s behind %d", m.Base, m.Behind, f.moved, tc.wantBehind)
			}
			if !slices.Equal(m.Changes, tc.wantChanges) {
				t.Errorf("changes %q, want %q", m.Changes, tc.wantChanges)
			}
			if !slices.Equal(m.Conflicts, tc.wantConflicts) {
				t.Errorf("conflicts %q, want %q", m.Conflicts, tc.wantConflicts)
			}
			switch {
			case tc.wantConflicts != nil:
				if m.SHA != "" {
					t.Errorf("a conflict has commit %s to test", m.SHA)
				}
			case !tc.wantMerge:
				if m.SHA != tc.head {
					t.Errorf("tests %s, want the head %s", m.SHA, tc.head)
				}
			default:
				mirror, _ := f.w.MirrorDir("o", "r")
				parents := testGit(t, "", "--git-dir="+mirror, "show", "-s", "--format=%P", m.SHA)
				if want := f.moved + " " + tc.head; parents != want {
					t.Errorf("merge %s has parents %q, want the base then the head %q", m.SHA, parents, want)
				}
				// Both sides' changes are in the merge.
				for path, want := range map[string]string{"lib.py": "x = 2", "README": "base"} {
					if tc.head == f.head && path == "README" {
						want = "pull"
					}
					if got := testGit(t, "", "--git-dir="+mirror, "show", m.SHA+":"+path); got != want {
						t.Errorf("merge's %s is %q, want %q", path, got, want)
					}
				}
			}
		})
	}
}

func TestMergeBuildRefuses(t *testing.T) {
	t.Parallel()
	f := newMergeFixture(t)
	for _, tc := range []struct {
		name, head, base string
		want             error
	}{
		{name: "a_base_branch_the_mirror_lacks", head: f.head, base: "release", want: ErrNoBase},
		{name: "a_base_that_is_an_option", head: f.head, base: "--output=/tmp/x", want: ErrInvalid},
		{name: "a_base_that_is_a_revision_expression", head: f.head, base: "main^", want: ErrInvalid},
		{name: "a_head_the_mirror_lacks", head: strings.Repeat("ab", 20), base: "main", want: ErrNotMirrored},
		{name: "unrelated_histories", head: f.unrelatedHead, base: "main", want: ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.w.MergeBuild(testContext(t), "o", "r", tc.head, tc.base, true)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestRemakeMergeOnAnotherBox shows that a second box, whose mirror has
// the head and the base but not the merge, makes the very same commit.
func TestRemakeMergeOnAnotherBox(t *testing.T) {
	t.Parallel()
	f := newMergeFixture(t)
	m, err := f.w.MergeBuild(testContext(t), "o", "r", f.head, "main", true)
	if err != nil {
		t.Fatal(err)
	}
	other := openWorkspace(t)
	if err := other.UpdateMirror(testContext(t), "o", "r", f.o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	if other.HasCommit(testContext(t), "o", "r", m.SHA) {
		t.Fatal("the second mirror already has the merge: the test proves nothing")
	}
	again, err := other.RemakeMerge(testContext(t), "o", "r", f.head, f.moved, m.SHA)
	if err != nil {
		t.Fatal(err)
	}
	if again.SHA != m.SHA || !slices.Equal(again.Changes, m.Changes) {
		t.Errorf("remade %+v, want %+v", again, m)
	}
	if _, err := other.RemakeMerge(testContext(t), "o", "r", f.head, f.base, m.SHA); err == nil {
		t.Error("merging into another base claimed to make the same commit")
	}
}

// TestBranchTip: the tip is what the last fetch saw, moving with the next
// one; a branch the mirror lacks wraps ErrNoBase, a bad name ErrInvalid.
func TestBranchTip(t *testing.T) {
	t.Parallel()
	f := newMergeFixture(t)
	ctx := testContext(t)
	if tip, err := f.w.BranchTip(ctx, "o", "r", "main"); err != nil || tip != f.moved {
		t.Fatalf("BranchTip(main) = %q, %v; want %s", tip, err, f.moved)
	}
	f.o.setRef("refs/heads/main", f.upToDate)
	if tip, _ := f.w.BranchTip(ctx, "o", "r", "main"); tip != f.moved {
		t.Errorf("BranchTip(main) before a fetch = %q, want the fetched %s", tip, f.moved)
	}
	if err := f.w.UpdateMirror(ctx, "o", "r", f.o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	if tip, err := f.w.BranchTip(ctx, "o", "r", "main"); err != nil || tip != f.upToDate {
		t.Errorf("BranchTip(main) after main moved = %q, %v; want %s", tip, err, f.upToDate)
	}
	for _, tc := range []struct {
		branch string
		want   error
	}{{"gone", ErrNoBase}, {"-x", ErrInvalid}, {"a b", ErrInvalid}} {
		if _, err := f.w.BranchTip(ctx, "o", "r", tc.branch); !errors.Is(err, tc.want) {
			t.Errorf("BranchTip(%q) = %v, want %v", tc.branch, err, tc.want)
		}
	}
}
