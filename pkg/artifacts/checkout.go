package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Checkout makes dest a working copy of commit sha of build b's repository,
// taken from the mirror, which must already hold the commit (UpdateMirror).
// dest must lie inside the build's directory: SourceDir(b) for the build,
// TestSourceDir(b, name) for each test.
//
// The copy costs about the size of its files: its .git holds no objects and
// borrows them from the mirror through objects/info/alternates. Borrowing
// alone would not survive a force-push followed by "git gc --prune=now" on
// the mirror, so the build's commit is first pinned in the mirror under
// refs/yci/builds/<pr>/<build>, a ref no fetch prunes; Cleanup removes the
// pin with the build. Worktrees were the other way to share objects, but
// each registers itself inside the mirror and must be pruned from there,
// which couples every checkout's lifetime to the mirror's bookkeeping.
//
// The copy has a detached HEAD at sha and no refs or remotes of its own, so
// its .git/config names no URL and holds no credentials. It is made in a
// temporary directory and renamed into place, so dest either does not exist
// or is complete. A complete copy at sha is reused: calling Checkout twice,
// from a redelivered message or a second worker, is harmless. A copy at
// another commit is an error.
func (w *Workspace) Checkout(ctx context.Context, b Build, sha, dest string) error {
	buildDir, err := w.BuildDir(b)
	if err != nil {
		return err
	}
	if err := validateSHA(sha); err != nil {
		return err
	}
	dest = filepath.Clean(dest)
	if !inside(buildDir, dest) || dest == buildDir {
		return fmt.Errorf("%w: checkout %s is not inside build directory %s", ErrInvalid, dest, buildDir)
	}
	mirror, err := w.MirrorDir(b.Owner, b.Repo)
	if err != nil {
		return err
	}
	hasMirror, err := isDir(mirror)
	if err != nil {
		return err
	}
	if !hasMirror {
		return fmt.Errorf("checking out %s: no mirror of %s/%s yet", b, b.Owner, b.Repo)
	}
	if err := w.ensureDir(filepath.Dir(dest)); err != nil {
		return err
	}
	if done, err := checkedOutAt(dest, sha); done || err != nil {
		return err
	}
	if err := w.pin(ctx, mirror, b, sha); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-")
	if err != nil {
		return fmt.Errorf("making temporary checkout: %w", err)
	}
	if err := w.populate(ctx, tmp, mirror, sha); err != nil {
		return errors.Join(fmt.Errorf("checking out %s of %s: %w", sha, b, err), removeTree(tmp))
	}
	if err := os.Rename(tmp, dest); err != nil {
		// Someone else finished the same checkout first: use theirs.
		rmErr := removeTree(tmp)
		if done, checkErr := checkedOutAt(dest, sha); done && checkErr == nil {
			return rmErr
		}
		return errors.Join(fmt.Errorf("moving checkout into place: %w", err), rmErr)
	}
	return nil
}

// populate fills the empty directory dir with a checkout of sha borrowing
// the objects of mirror.
func (w *Workspace) populate(ctx context.Context, dir, mirror, sha string) error {
	args := []string{"init", "--quiet", "--template="}
	if len(sha) == 64 {
		args = append(args, "--object-format=sha256")
	}
	if _, err := w.git(ctx, GitAuth{}, append(args, "--", dir)...); err != nil {
		return err
	}
	alternates := filepath.Join(dir, ".git", "objects", "info", "alternates")
	if err := os.MkdirAll(filepath.Dir(alternates), 0o755); err != nil {
		return fmt.Errorf("preparing alternates: %w", err)
	}
	if err := os.WriteFile(alternates, []byte(filepath.Join(mirror, "objects")+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing alternates: %w", err)
	}
	_, err := w.git(ctx, GitAuth{}, "--git-dir="+filepath.Join(dir, ".git"), "--work-tree="+dir,
		"checkout", "--quiet", "--detach", sha, "--")
	return err
}

// checkedOutAt tells whether dest is a complete checkout at sha. It reads
// .git/HEAD (without following symlinks, and only its first bytes) rather
// than running git there, because tests may have rewritten the checkout's
// config, and git run under a config written by untrusted code could run
// its commands.
func checkedOutAt(dest, sha string) (bool, error) {
	ok, err := isDir(dest)
	if err != nil || !ok {
		return false, err
	}
	hasGit, err := isDir(filepath.Join(dest, ".git"))
	if err != nil {
		return false, err
	}
	if !hasGit {
		return false, fmt.Errorf("existing checkout %s has no .git directory", dest)
	}
	f, err := os.OpenFile(filepath.Join(dest, ".git", "HEAD"), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false, fmt.Errorf("reading HEAD of existing checkout %s: %w", dest, err)
	}
	defer f.Close()
	head := make([]byte, 128)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false, fmt.Errorf("reading HEAD of existing checkout %s: %w", dest, err)
	}
	if got := strings.TrimSpace(string(head[:n])); got != sha {
		return false, fmt.Errorf("existing checkout %s is at %q, not %s", dest, got, sha)
	}
	return true, nil
}
