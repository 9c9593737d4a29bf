package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testGit runs git for a test fixture, isolated from the machine's and the
// user's git configuration, with a fixed identity.
func testGit(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env,
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			t.Fatalf("git %v: %v: %s", args, err, exitErr.Stderr)
		}
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// origin is a bare repository standing in for the forge's copy of a
// repository, written with plumbing commands so tests control every ref.
type origin struct {
	t   testing.TB
	dir string
}

// file is one entry of a commit's flat tree; a non-empty link makes it a
// symlink to link instead of a regular file with content.
type file struct {
	name, content, link string
}

func newOrigin(t testing.TB) *origin {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "origin.git")
	testGit(t, "", "init", "--quiet", "--bare", "--template=", "--", dir)
	return &origin{t: t, dir: dir}
}

func (o *origin) git(stdin string, args ...string) string {
	o.t.Helper()
	return testGit(o.t, stdin, append([]string{"--git-dir=" + o.dir}, args...)...)
}

// commit writes a commit whose tree holds exactly files, with parent as its
// parent unless parent is empty, and returns its id.
func (o *origin) commit(parent, message string, files ...file) string {
	o.t.Helper()
	var tree strings.Builder
	for _, f := range files {
		mode, content := "100644", f.content
		if f.link != "" {
			mode, content = "120000", f.link
		}
		blob := o.git(content, "hash-object", "-w", "--stdin")
		fmt.Fprintf(&tree, "%s blob %s\t%s\x00", mode, blob, f.name)
	}
	treeID := o.git(tree.String(), "mktree", "-z")
	args := []string{"commit-tree", treeID, "-m", message}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	return o.git("", args...)
}

func (o *origin) setRef(ref, sha string) {
	o.t.Helper()
	o.git("", "update-ref", "--no-deref", ref, sha)
}

func (o *origin) deleteRef(ref string) {
	o.t.Helper()
	o.git("", "update-ref", "--no-deref", "-d", ref)
}

// refs lists the refs of the bare repository at gitDir as "ref sha" lines.
func refs(t testing.TB, gitDir string) map[string]string {
	t.Helper()
	out := testGit(t, "", "--git-dir="+gitDir, "for-each-ref", "--format=%(refname) %(objectname)")
	m := make(map[string]string)
	for _, line := range strings.Split(out, "\n") {
		if ref, sha, ok := strings.Cut(line, " "); ok {
			m[ref] = sha
		}
	}
	return m
}

// openWorkspace returns a workspace in a fresh temporary directory.
func openWorkspace(t testing.TB) *Workspace {
	t.Helper()
	w, err := Open(filepath.Join(t.TempDir(), "ws"))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// treeSize is the apparent size of the regular files under dir.
func treeSize(t testing.TB, dir string) int64 {
	t.Helper()
	var size int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			size += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return size
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// mirrored fetches o into w's mirror of o/r and returns the mirror's
// directory.
func mirrored(ctx context.Context, t testing.TB, w *Workspace, o *origin) string {
	t.Helper()
	if err := w.UpdateMirror(ctx, "o", "r", o.dir, GitAuth{}); err != nil {
		t.Fatal(err)
	}
	mirror, err := w.MirrorDir("o", "r")
	if err != nil {
		t.Fatal(err)
	}
	return mirror
}
