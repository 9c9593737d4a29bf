package artifacts

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestTakeSpareGivesOneTestTheSpare shows the spare copy going, by
// rename, to exactly one of the tests taking it at once, as a clean
// checkout of the build's commit with the build's refs, and to no later
// test: a retry or a second test checks out its own.
func TestTakeSpareGivesOneTestTheSpare(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	if err := f.w.MakeSpare(ctx, f.b, f.head, "main"); err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c", "d"}
	dests := make([]string, len(names))
	taken := make([]bool, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		dest, err := f.w.TestSourceDir(f.b, name)
		if err != nil {
			t.Fatal(err)
		}
		dests[i] = dest
		wg.Go(func() { taken[i], errs[i] = f.w.TakeSpare(f.b, dest) })
	}
	wg.Wait()
	var got []string
	for i := range names {
		if errs[i] != nil {
			t.Fatalf("TakeSpare for %s: %v", names[i], errs[i])
		}
		if taken[i] {
			got = append(got, dests[i])
		}
	}
	if len(got) != 1 {
		t.Fatalf("the spare went to %q, want exactly one test", got)
	}
	dest := got[0]
	// Checkout reuses the copy: it is complete, at the build's commit.
	if err := f.w.Checkout(ctx, f.b, f.head, "main", dest); err != nil {
		t.Fatalf("checking out into the taken spare: %v", err)
	}
	fresh, err := f.w.TestSourceDir(f.b, "fresh")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.Checkout(ctx, f.b, f.head, "main", fresh); err != nil {
		t.Fatal(err)
	}
	if a, b := workTree(t, dest), workTree(t, fresh); len(a) == 0 || !maps.Equal(a, b) {
		t.Errorf("spare tree %v, want the fresh checkout's %v", a, b)
	}
	if a, b := refs(t, filepath.Join(dest, ".git")), refs(t, filepath.Join(fresh, ".git")); !maps.Equal(a, b) {
		t.Errorf("spare refs %v, want the fresh checkout's %v", a, b)
	}
	// Moved, not copied: the index's stat data still holds, so even git
	// commands that do not refresh it see a clean tree.
	testGit(t, "", "-C", dest, "diff-index", "--quiet", "HEAD", "--")
	spare, err := f.w.SpareSourceDir(f.b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(spare); !os.IsNotExist(err) {
		t.Errorf("spare still at %s after it was taken: %v", spare, err)
	}
	later := filepath.Join(filepath.Dir(dest), "retry")
	if ok, err := f.w.TakeSpare(f.b, later); ok || err != nil {
		t.Errorf("TakeSpare after the spare was taken = %v, %v; want false, nil", ok, err)
	}
}

// TestTakeSpareRefusesBadDestinations keeps the spare where it is when the
// destination is outside the build or already exists.
func TestTakeSpareRefusesBadDestinations(t *testing.T) {
	t.Parallel()
	f := newCheckoutFixture(t)
	ctx := testContext(t)
	if err := f.w.MakeSpare(ctx, f.b, f.head, "main"); err != nil {
		t.Fatal(err)
	}
	existing, err := f.w.TestSourceDir(f.b, "existing")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	other := f.b
	other.Number = 2
	outside, err := f.w.TestSourceDir(other, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, dest string }{
		{"existing", existing},
		{"other_build", outside},
		{"build_dir", filepath.Dir(filepath.Dir(existing))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if ok, err := f.w.TakeSpare(f.b, tt.dest); ok || err == nil {
				t.Errorf("TakeSpare(%s) = %v, %v; want an error", tt.dest, ok, err)
			}
		})
	}
	spare, err := f.w.SpareSourceDir(f.b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(spare, "README")); err != nil {
		t.Errorf("the spare is gone after refused takes: %v", err)
	}
}

// workTree is treeOf without .git, whose index differs between two
// checkouts of one commit (it records the files' inodes and times).
func workTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := treeOf(t, dir)
	maps.DeleteFunc(tree, func(rel, _ string) bool { return rel == ".git" || strings.HasPrefix(rel, ".git/") })
	return tree
}
