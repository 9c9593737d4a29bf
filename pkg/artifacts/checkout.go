package artifacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Checkouts are the working copies builds and tests run in, each made
// from the repository's mirror at one commit and borrowing its objects,
// and the pins (pins.go) that keep that commit in the mirror while the
// build's directory exists. Its methods are safe for concurrent use; get
// it from Open.
type Checkouts struct {
	layout  Layout
	mirrors *Mirrors
	// refs keeps what each build's first checkout on this box read of
	// the mirror's refs; see pinAndListRefs.
	refs buildRefs
}

// Checkout makes dest a working copy of commit sha of build b's repository,
// taken from the mirror, which must already hold the commit (UpdateMirror):
// when it does not, or there is no mirror yet, the error wraps
// ErrNotMirrored and nothing is made.
// dest must lie inside the build's directory: SourceDir(b) for the build,
// TestSourceDir(b, name) for each test. base is the branch the pull
// request merges into ("main"); empty, or a branch the mirror lacks, means
// none.
//
// The copy behaves like a fresh clone checked out at sha, as a CI's
// checkout of a pull request does: HEAD is detached at sha; every branch of
// the mirror is a remote-tracking branch origin/<name>; base is also a local
// branch <base>, at the same commit as origin/<base>; every tag is there,
// so "git describe --tags" works. The pull request's own branch name is not
// a ref (it may be a fork's, and equal to base); the worker gives it to
// tests as YCI_HEAD_REF. The refs are the mirror's (see below), written as
// one packed-refs file.
//
// The copy costs about the size of its files: its .git holds no objects and
// borrows them from the mirror through objects/info/alternates. Borrowing
// alone would not survive a force-push followed by "git gc --prune=now" on
// the mirror, so the build's commit is pinned in the mirror under
// refs/yci/builds/<pr>/<build>, a ref no fetch prunes, before Checkout
// returns (while git fills the work tree: see pinAndListRefs); Cleanup
// removes the pin with the build. (A tag or branch the mirror later prunes may stop
// resolving in an old checkout; the commit under test never does.)
// The refs are those the build's first checkout on this box saw, when
// that was less than a minute ago: a build's tests see the branches and
// tags its build saw, and spend no git process listing them again.
// Worktrees were the other way to share objects, but each registers itself
// inside the mirror and must be pruned from there, which couples every
// checkout's lifetime to the mirror's bookkeeping.
//
// The copy's .git/config is git init's and names no URL and no remote, and
// holds no credentials. It is made in a temporary directory and renamed
// into place, so dest either does not exist or is complete. A complete copy
// at sha is reused: calling Checkout twice, from a redelivered message or a
// second worker, is harmless. A copy at another commit is an error.
func (c *Checkouts) Checkout(ctx context.Context, b Build, sha, base, dest string) error {
	if err := validateSHA(sha); err != nil {
		return err
	}
	dest, err := c.layout.inBuild(b, dest)
	if err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	mirror, err := c.layout.MirrorDir(b.Owner, b.Repo)
	if err != nil {
		return err
	}
	hasMirror, err := isDir(mirror)
	if err != nil {
		return err
	}
	if !hasMirror {
		return fmt.Errorf("%w: checking out %s: no mirror of %s/%s yet", ErrNotMirrored, b, b.Owner, b.Repo)
	}
	if err := c.layout.ensureDir(filepath.Dir(dest)); err != nil {
		return err
	}
	if done, err := checkedOutAt(dest, sha); done || err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".tmp-")
	if err != nil {
		return fmt.Errorf("making temporary checkout: %w", err)
	}
	if err := c.populate(ctx, b, tmp, mirror, sha, base); err != nil {
		return errors.Join(err, removeTree(tmp))
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

// inBuild cleans dest, a working copy's path, and checks that it lies in
// build b's directory, below it: checkouts and the spare's move make
// nothing elsewhere.
func (l Layout) inBuild(b Build, dest string) (string, error) {
	buildDir, err := l.BuildDir(b)
	if err != nil {
		return "", err
	}
	dest = filepath.Clean(dest)
	if !inside(buildDir, dest) || dest == buildDir {
		return "", fmt.Errorf("%w: %s is not inside build directory %s", ErrInvalid, dest, buildDir)
	}
	return dest, nil
}

// cloneRefs turns the mirror's "<id> <ref>" lines (branches and tags) into
// the packed-refs file of a clone: refs/heads/X becomes
// refs/remotes/origin/X, tags stay, and base is a local branch too. The
// lines are sorted by ref name, as git keeps them.
func cloneRefs(mirrorRefs []byte, base string) []byte {
	type entry struct{ ref, id string }
	var entries []entry
	for line := range strings.Lines(string(mirrorRefs)) {
		id, ref, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if !ok {
			continue
		}
		if branch, isBranch := strings.CutPrefix(ref, "refs/heads/"); isBranch {
			entries = append(entries, entry{"refs/remotes/origin/" + branch, id})
			if branch == base {
				entries = append(entries, entry{ref, id})
			}
		} else if strings.HasPrefix(ref, "refs/tags/") {
			entries = append(entries, entry{ref, id})
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.ref, b.ref) })
	var out bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&out, "%s %s\n", e.id, e.ref)
	}
	return out.Bytes()
}

// populate fills the empty directory dir with a checkout of sha borrowing
// the objects of mirror, with the refs pinAndListRefs gives it. The work
// tree is checked out while the refs are listed and the commit pinned
// (see pinAndListRefs for why that is safe); packed-refs is written once
// both are done.
func (c *Checkouts) populate(ctx context.Context, b Build, dir, mirror, sha, base string) error {
	gitDir := filepath.Join(dir, ".git")
	if err := initRepo(gitDir, len(sha) == 64); err != nil {
		return err
	}
	alternates := filepath.Join(mirror, "objects") + "\n"
	if err := os.WriteFile(filepath.Join(gitDir, "objects", "info", "alternates"), []byte(alternates), 0o644); err != nil {
		return fmt.Errorf("writing objects/info/alternates: %w", err)
	}
	packed, err := c.pinAndListRefs(ctx, mirror, b, sha, base, func() error {
		_, err := c.mirrors.git(ctx, GitAuth{}, "--git-dir="+gitDir, "--work-tree="+dir,
			"checkout", "--quiet", "--detach", sha, "--")
		if err != nil {
			return fmt.Errorf("checking out %s of %s: %w", sha, b, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(gitDir, "packed-refs"), packed, 0o644); err != nil {
		return fmt.Errorf("writing packed-refs: %w", err)
	}
	return nil
}

// initConfig is a checkout's config as "git init --template=" writes it,
// with %s the extensions of a sha256 repository (or nothing).
const initConfig = "[core]\n\trepositoryformatversion = %d\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n%s"

// initRepo makes gitDir what "git init --template=" makes, without the
// cost of a git process: a config, HEAD, and empty objects and refs
// directories (objects/info included, for the alternates).
func initRepo(gitDir string, sha256 bool) error {
	for _, d := range []string{"objects/info", "objects/pack", "refs/heads", "refs/tags"} {
		if err := os.MkdirAll(filepath.Join(gitDir, filepath.FromSlash(d)), 0o755); err != nil {
			return fmt.Errorf("initializing %s: %w", gitDir, err)
		}
	}
	version, extensions := 0, ""
	if sha256 {
		version, extensions = 1, "[extensions]\n\tobjectformat = sha256\n"
	}
	files := []struct{ name, content string }{
		{"config", fmt.Sprintf(initConfig, version, extensions)},
		{"HEAD", "ref: refs/heads/master\n"},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(gitDir, f.name), []byte(f.content), 0o644); err != nil {
			return fmt.Errorf("initializing %s: %w", gitDir, err)
		}
	}
	return nil
}

// checkedOutAt tells whether dest is a complete checkout at sha. It reads
// .git/HEAD (see readHostile: no symlink, FIFO or device, 128 bytes) rather
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
	// The test wrote there: HEAD may be a link, a FIFO or /dev/zero.
	head, err := readHostile(filepath.Join(dest, ".git", "HEAD"), 128)
	if err != nil {
		return false, fmt.Errorf("reading HEAD of existing checkout %s: %w", dest, err)
	}
	if got := strings.TrimSpace(string(head)); got != sha {
		return false, fmt.Errorf("existing checkout %s is at %q, not %s", dest, got, sha)
	}
	return true, nil
}
