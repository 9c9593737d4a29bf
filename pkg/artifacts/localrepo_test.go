package artifacts

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A sandboxed command working in a local copy must be shown every object
// directory git reads there: the user's, and those it borrows in turn,
// listed absolute or relative to the directory that borrows.
func TestBorrowedObjectsFollowsAlternatesAsGitDoes(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := func(name string) string { return filepath.Join(root, name, "objects") }
	alternates := func(of string, lines string) {
		t.Helper()
		info := filepath.Join(dir(of), "info")
		if err := os.MkdirAll(info, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(info, "alternates"), []byte(lines), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"user", "shared", "base", "loop"} {
		if err := os.MkdirAll(dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	alternates("user", "# borrowed\n"+dir("shared")+"\n\n../../loop/objects\n")
	alternates("shared", "../../base/objects\n")
	alternates("loop", dir("user")+"\n") // a cycle is followed once

	got, err := borrowedObjects(dir("user"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{dir("shared"), dir("loop"), dir("base")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("borrowed (-want +got):\n%s", diff)
	}
	if got, err := borrowedObjects(dir("base")); err != nil || len(got) != 0 {
		t.Errorf("a repository borrowing nothing: %v, %v", got, err)
	}
}
